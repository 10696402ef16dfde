import { io } from '@tensorflow/tfjs-core';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const MODEL_JSON = 'model.json';
const WEIGHTS_BIN = 'weights.bin';

/**
 * A tfjs IOHandler that saves a model to, and loads it from, a directory
 * (`model.json` + `weights.bin`), for Node without tfjs-node (whose `file://`
 * handler is the only one tfjs ships). Saving writes a temporary directory and
 * renames it into place, so an interrupted save never leaves a half-written model.
 *
 * @example
 * ```ts
 * await model.save(fileHandler('runs/model'));
 * const same = await tf.loadLayersModel(fileHandler('runs/model'));
 * ```
 */
export function fileHandler(dir: string): io.IOHandler {
  return {
    async save(artifacts: io.ModelArtifacts): Promise<io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('fileHandler: binary model topologies are not supported');
      }
      const weightData = artifacts.weightData == null
        ? new ArrayBuffer(0)
        : io.CompositeArrayBuffer.join(artifacts.weightData);
      const manifest = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        trainingConfig: artifacts.trainingConfig,
        userDefinedMetadata: artifacts.userDefinedMetadata,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      };
      const staging = `${dir}.saving-${process.pid}`;
      await rm(staging, { recursive: true, force: true });
      await mkdir(staging, { recursive: true });
      await writeFile(join(staging, WEIGHTS_BIN), new Uint8Array(weightData));
      await writeFile(join(staging, MODEL_JSON), JSON.stringify(manifest));
      const previous = `${dir}.previous-${process.pid}`;
      await rm(previous, { recursive: true, force: true });
      await rename(dir, previous).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      await rename(staging, dir);
      await rm(previous, { recursive: true, force: true });
      return { modelArtifactsInfo: io.getModelArtifactsInfoForJSON({ ...artifacts, weightData }) };
    },

    async load(): Promise<io.ModelArtifacts> {
      let manifest: { weightsManifest: Array<{ paths: string[]; weights: io.WeightsManifestEntry[] }> } & Record<string, unknown>;
      try {
        manifest = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8'));
      } catch (e) {
        throw new Error(`fileHandler: cannot read ${join(dir, MODEL_JSON)}: ${(e as Error).message}`);
      }
      const specs = manifest.weightsManifest.flatMap((group) => group.weights);
      const buffers = await Promise.all(
        manifest.weightsManifest.flatMap((group) => group.paths).map((p) => readFile(join(dir, p))),
      );
      const joined = Buffer.concat(buffers);
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
