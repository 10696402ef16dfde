/** `tfjs-dataflow-cifar10 evaluate`: a saved model's test accuracy with the seed's flip test-time augmentation. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
// The library import also registers its layer classes, which loadLayersModel needs.
import {
  CIFAR100_CLASS_COUNTS,
  CIFAR10_CLASSES,
  accuracy,
  fileHandler,
  initBackend,
  meanAndVariance,
  predictWithFlipTTA,
  throwIfWebGPUFailed,
  type Cifar10Stats,
} from '../../src/node.js';
import { UsageError, type EvaluateConfig } from './args.js';
import { datasetTitle, describeBackend, loadData, webgpuImagesPerBinding, type CliIO } from './training.js';

/** What `train` stores in the saved model's user-defined metadata. */
export interface SavedModelInfo {
  stats: Cifar10Stats;
  /** The dataset trained on (absent in models saved before --dataset: CIFAR-10). */
  dataset?: 'cifar10' | 'cifar100';
  /** CIFAR-100's labels; null for CIFAR-10. */
  labels?: 'fine' | 'coarse' | null;
  mode: string;
  baseDepth: number;
  seed: number;
  weights: 'ema' | 'live';
  finalAccuracy: number | null;
}

/**
 * Checks a loaded model against what `evaluate` feeds it and what `train` saves with it: 32x32x3
 * images in, one logit per class out, and normalisation statistics of 3 finite means and positive stds.
 */
function checkSavedModel(model: tfl.LayersModel, info: SavedModelInfo, where: string): void {
  const shape = (s: readonly (number | null)[]) => `[${s.map((d) => d ?? 'null').join(', ')}]`;
  const input = model.inputs.map((t) => t.shape);
  if (input.length !== 1 || input[0]!.length !== 4 || input[0]![1] !== 32 || input[0]![2] !== 32 || input[0]![3] !== 3) {
    throw new Error(`${where}: the model takes ${input.map(shape).join(', ')}; CIFAR-10 evaluation feeds [null, 32, 32, 3] images`);
  }
  // The class count itself is checked against --dataset (and --labels) by the caller.
  const output = model.outputs.map((t) => t.shape);
  if (output.length !== 1 || output[0]!.length !== 2 || !Number.isInteger(output[0]![1]) || output[0]![1]! < 2) {
    throw new Error(`${where}: the model outputs ${output.map(shape).join(', ')}; evaluation needs [null, classes] logits`);
  }
  const { mean, std } = info.stats;
  const three = (v: unknown, ok: (x: number) => boolean) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && ok(x));
  if (!three(mean, Number.isFinite) || !three(std, (x) => Number.isFinite(x) && x > 0)) {
    throw new Error(
      `${where}: its normalisation statistics (userDefinedMetadata.tfjsDataflowCifar10.stats) must be 3 finite means and 3 positive finite stds, ` +
        `got mean ${JSON.stringify(mean)}, std ${JSON.stringify(std)}: the file is damaged`,
    );
  }
}

/**
 * The base depth the model was built with, which sizes wasm's evaluation batches: the metadata's, or, for a model whose
 * metadata lacks it (or holds no positive integer), its widest layer's channels / 8 (SpeedyConvNet's widest block is 8
 * base depths wide).
 */
function baseDepthOf(model: tfl.LayersModel, info: SavedModelInfo): { value: number; recorded: boolean } {
  if (Number.isSafeInteger(info.baseDepth) && info.baseDepth > 0) return { value: info.baseDepth, recorded: true };
  let widest = 0;
  for (const layer of model.layers) {
    const shapes = (Array.isArray(layer.outputShape[0]) ? layer.outputShape : [layer.outputShape]) as (number | null)[][];
    for (const shape of shapes) if (shape.length === 4) widest = Math.max(widest, shape[3] ?? 0);
  }
  return { value: Math.max(1, Math.round(widest / 8)), recorded: false };
}

/** Runs `evaluate`; returns the exit code. */
export async function evaluateCommand(config: EvaluateConfig, io: CliIO): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const report = await initBackend(config.backend, {
    ...(config.wasmThreads !== null ? { wasmThreads: config.wasmThreads } : {}),
    ...(config.convPrecision !== null ? { webgpuConvPrecision: config.convPrecision } : {}),
  });
  say(describeBackend(report, config.verbose));

  // Model (first, so a wrong --model fails before the data is read)
  const dir = resolve(config.model);
  const isFile = (path: string) =>
    stat(path).then(
      (s) => s.isFile(),
      () => false,
    );
  if (!(await isFile(join(dir, 'model.json'))) && (await isFile(join(dir, 'model', 'model.json')))) {
    throw new UsageError(`--model ${config.model} is a run directory, not a model: did you mean --model ${join(config.model, 'model')}?`);
  }
  const model = await tfl.loadLayersModel(fileHandler(dir));
  try {
    const info = (model.getUserDefinedMetadata() as { tfjsDataflowCifar10?: SavedModelInfo } | undefined)?.tfjsDataflowCifar10;
    if (!info?.stats) {
      throw new Error(
        `${join(dir, 'model.json')} has no normalisation statistics (userDefinedMetadata.tfjsDataflowCifar10.stats); was it saved by 'tfjs-dataflow-cifar10 train'?`,
      );
    }
    checkSavedModel(model, info, join(dir, 'model.json'));
    // Its class count against the dataset's, before the data is read.
    const outputs = model.outputs[0]!.shape[1]!;
    const classes = config.dataset === 'cifar100' ? CIFAR100_CLASS_COUNTS[config.labels ?? 'fine'] : CIFAR10_CLASSES.length;
    if (outputs !== classes) {
      throw new UsageError(
        `--model ${config.model} outputs ${outputs} classes, but ${datasetTitle(config.dataset, config.labels, classes)} has ` +
          `${classes}: pass the --dataset${config.dataset === 'cifar100' ? ' and --labels' : ''} it was trained on`,
      );
    }
    const depth = baseDepthOf(model, info);
    say(
      `Model: ${dir} (${info.mode}, base depth ${depth.value}${depth.recorded ? '' : ' (not recorded: from its widest layer)'}, ` +
        `${info.weights === 'ema' ? 'EMA' : 'final'} weights, seed ${info.seed})`,
    );

    // Data: the test split, normalised with the training statistics the model was trained with.
    const dataset = await loadData(
      {
        dir: config.data,
        cacheDir: config.cacheDir,
        download: config.download,
        trainLimit: 1,
        evalLimit: config.evalLimit ?? undefined,
      },
      { from: config.dataFrom, progress: io.stderr, dataset: config.dataset, labels: config.labels },
    );
    const { train, eval: test } = dataset.toBackend({ stats: info.stats, padAmount: 0 });
    tf.dispose([train.images, train.targets]);

    // Eval: each draw continues the discrete actions' noise streams, so draws differ (in sketch mode).
    try {
      const n = test.images.shape[0];
      const size =
        config.evalBatch ??
        (report.backend === 'wasm'
          ? Math.min(2500, Math.max(1, Math.floor((512 * 64) / depth.value)))
          : Math.min(2500, Math.max(1, Math.floor(webgpuImagesPerBinding(report, depth.value) / 2))));
      const started = performance.now();
      const accuracies: number[] = [];
      for (let draw = 0; draw < config.draws; draw++) {
        const parts: tf.Scalar[] = [];
        const finite: tf.Scalar[] = [];
        for (let start = 0; start < n; start += size) {
          const count = Math.min(size, n - start);
          const [correctCount, allFinite] = tf.tidy(() => {
            const logits = predictWithFlipTTA(model, tf.slice(test.images, start, count));
            return [
              tf.mul(accuracy(logits, tf.slice(test.targets, start, count)), count) as tf.Scalar,
              tf.all(tf.isFinite(logits)) as tf.Scalar,
            ];
          });
          parts.push(correctCount!);
          finite.push(allFinite!);
        }
        const correct = (await Promise.all(parts.map((p) => p.data()))).reduce((sum, v) => sum + v[0]!, 0);
        const finiteAll = (await Promise.all(finite.map((p) => p.data()))).every((v) => v[0] === 1);
        tf.dispose([...parts, ...finite]);
        throwIfWebGPUFailed('the evaluation');
        // An accuracy from NaN or infinite logits (damaged weights, a zero std) would be argmax over garbage.
        if (!finiteAll) {
          throw new Error(
            `the model in ${dir} produces NaN or infinite logits on the test images: its weights (weights.bin) are damaged or not trained ones, ` +
              "so no accuracy is reported. Evaluate a model saved by 'tfjs-dataflow-cifar10 train'.",
          );
        }
        accuracies.push(correct / n);
      }
      const seconds = (performance.now() - started) / 1000;
      const where = `on ${n} images from ${dataset.source} (${seconds.toFixed(1)} s)`;
      const noisy = info.mode !== 'backprop';
      if (config.draws === 1) {
        say(`Test accuracy (flip TTA): ${accuracies[0]!.toFixed(4)} ${where}`);
        if (noisy)
          say(
            'Note: the sketch keeps its discrete-action noise at inference, so this is one random draw; --draws K reports the mean and spread of K.',
          );
      } else {
        const { mean, std } = meanAndVariance(accuracies);
        const min = Math.min(...accuracies);
        const max = Math.max(...accuracies);
        say(
          `Test accuracy (flip TTA) over ${config.draws} draws: mean ${mean.toFixed(4)}, std ${std.toFixed(4)}, min ${min.toFixed(4)}, max ${max.toFixed(4)} ${where}`,
        );
        say(`Draws: ${accuracies.map((a) => a.toFixed(4)).join(' ')}`);
        say(
          noisy
            ? 'The sketch keeps its discrete-action noise at inference: each draw runs the test set with fresh noise.'
            : 'A backprop-mode net adds no noise at inference: every draw is the same.',
        );
      }
    } finally {
      tf.dispose([test.images, test.targets]);
    }
  } finally {
    model.dispose();
  }
  return 0;
}
