import { io } from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFilesAtomic } from './checkpoint-files.js';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';
/** model.json's record of weights.bin's SHA-256 (tfjs ignores keys it does not know). */
const WEIGHTS_SHA256 = 'weightsSha256';

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A tfjs IOHandler that saves a model to, and loads it from, a directory
 * (`model.json` + `weights.bin`), for Node without tfjs-node (whose `file://`
 * handler is the only one tfjs ships). Like that handler, saving writes the two files into the
 * directory and leaves anything else there alone; each goes through a flushed temporary copy renamed
 * over the old file (weights.bin first, model.json last), so an interrupted save or a full disk never
 * leaves a half-written file, and a failed save removes its partial files and names the file and the
 * cause. model.json records weights.bin's SHA-256: a save cut off between the two renames leaves the
 * new weights with the old model.json, which loading refuses, naming the file.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Linear, fileHandler } from 'tfjs-dataflow/node';
 *
 * const input = tfl.input({ shape: [4] });
 * const model = tfl.model({ inputs: input, outputs: new Linear({ units: 2 }).apply(input) as tfl.SymbolicTensor });
 * await model.save(fileHandler('runs/model'));
 * const same = await tfl.loadLayersModel(fileHandler('runs/model'));
 * ```
 */
export function fileHandler(dir: string): io.IOHandler {
  return {
    async save(artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('fileHandler: binary model topologies are not supported');
      }
      const weightData = artifacts.weightData == null ? new ArrayBuffer(0) : io.CompositeArrayBuffer.join(artifacts.weightData);
      const manifest = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        trainingConfig: artifacts.trainingConfig,
        userDefinedMetadata: artifacts.userDefinedMetadata,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      };
      const weights = new Uint8Array(weightData);
      const recorded = { ...manifest, [WEIGHTS_SHA256]: sha256(weights) };
      await writeFilesAtomic(dir, [
        [WEIGHTS_BIN, weights],
        [MODEL_JSON, JSON.stringify(recorded)],
      ]);
      return { modelArtifactsInfo: io.getModelArtifactsInfoForJSON({ ...artifacts, weightData }) };
    },

    async load(): Promise<io.ModelArtifacts> {
      const jsonPath = join(dir, MODEL_JSON);
      let text: string;
      try {
        text = await readFile(jsonPath, 'utf8');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        let hint = '';
        if (code === 'ENOENT' || code === 'ENOTDIR') {
          // A run directory instead of its model/ folder is the usual slip.
          if (await isFile(join(dir, 'model', MODEL_JSON))) hint = ` It has model/${MODEL_JSON}: did you mean ${join(dir, 'model')}?`;
          else hint = ` Expected a directory holding ${MODEL_JSON} and ${WEIGHTS_BIN}, as model.save(fileHandler(dir)) writes.`;
        }
        throw new Error(`fileHandler: cannot read ${jsonPath}: ${(e as Error).message}.${hint}`);
      }
      let manifest: { weightsManifest: Array<{ paths: string[]; weights: io.WeightsManifestEntry[] }> } & Record<string, unknown>;
      try {
        manifest = JSON.parse(text);
      } catch (e) {
        throw new Error(`fileHandler: ${jsonPath} is not valid JSON (${(e as Error).message}): the file is damaged or not a model.json`);
      }
      if (
        !Array.isArray(manifest?.weightsManifest) ||
        !manifest.weightsManifest.every((g) => Array.isArray(g?.paths) && Array.isArray(g?.weights))
      ) {
        throw new Error(`fileHandler: ${jsonPath} has no weightsManifest of { paths, weights } groups: not a tfjs model.json`);
      }
      const specs = manifest.weightsManifest.flatMap((group) => group.weights);
      const paths = manifest.weightsManifest.flatMap((group) => group.paths).map((p) => join(dir, p));
      const buffers = await Promise.all(
        paths.map(async (path) => {
          try {
            return await readFile(path);
          } catch (e) {
            throw new Error(`fileHandler: cannot read the weights file ${path} that ${jsonPath} lists: ${(e as Error).message}`);
          }
        }),
      );
      const joined = Buffer.concat(buffers);
      const expected = weightBytes(specs);
      if (expected !== undefined && joined.byteLength !== expected) {
        const files = paths.length === 1 ? `the weights file ${paths[0]} has` : `the weights files ${paths.join(', ')} have`;
        throw new Error(
          `fileHandler: ${files} ${joined.byteLength} bytes, but ${jsonPath} describes ${expected} bytes of weights: ` +
            `${joined.byteLength < expected ? 'it is truncated (an interrupted copy?)' : 'it is longer than described'} or belongs to another model. Save the model again or restore a complete copy.`,
        );
      }
      const recorded = manifest[WEIGHTS_SHA256];
      if (typeof recorded === 'string' && sha256(joined) !== recorded) {
        throw new Error(
          `fileHandler: the weights file ${paths.join(', ')} does not match the SHA-256 that ${jsonPath} records: it belongs to another save ` +
            '(one cut off between writing weights.bin and model.json?) or is damaged. Save the model again or restore a complete copy.',
        );
      }
      return {
        modelTopology: manifest['modelTopology'] as object,
        format: manifest['format'] as string | undefined,
        generatedBy: manifest['generatedBy'] as string | undefined,
        convertedBy: manifest['convertedBy'] as string | null | undefined,
        trainingConfig: manifest['trainingConfig'] as io.TrainingConfig | undefined,
        userDefinedMetadata: manifest['userDefinedMetadata'] as io.ModelArtifacts['userDefinedMetadata'],
        weightSpecs: specs,
        weightData: joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength),
      };
    },
  };
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

/** Bytes the specs take in a weights file, or undefined when that cannot be known (string tensors). */
function weightBytes(specs: readonly io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const dtype = spec.quantization?.dtype ?? spec.dtype;
    const size = DTYPE_BYTES[dtype];
    if (size === undefined) return undefined;
    total += spec.shape.reduce((a, b) => a * b, 1) * size;
  }
  return total;
}
