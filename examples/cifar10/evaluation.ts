/** `tfjs-dataflow-cifar10 evaluate`: a saved model's test accuracy with the seed's flip test-time augmentation. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { join, resolve } from 'node:path';
// The library import also registers its layer classes, which loadLayersModel needs.
import { accuracy, fileHandler, initBackend, predictWithFlipTTA, type Cifar10Stats } from '../../src/node.js';
import type { EvaluateConfig } from './args.js';
import { loadData, type CliIO } from './training.js';

/** What `train` stores in the saved model's user-defined metadata. */
export interface SavedModelInfo {
  stats: Cifar10Stats;
  mode: string;
  baseDepth: number;
  seed: number;
  weights: 'ema' | 'live';
  finalAccuracy: number | null;
}

/** Runs `evaluate`; returns the exit code. */
export async function evaluateCommand(config: EvaluateConfig, io: CliIO): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const report = await initBackend(config.backend, config.wasmThreads !== null ? { wasmThreads: config.wasmThreads } : {});
  say(`Backend: ${report.backend} (${report.reason})`);

  // Model (first, so a wrong --model fails before the data is read)
  const dir = resolve(config.model);
  const model = await tfl.loadLayersModel(fileHandler(dir));
  try {
    const info = (model.getUserDefinedMetadata() as { tfjsDataflowCifar10?: SavedModelInfo } | undefined)?.tfjsDataflowCifar10;
    if (!info?.stats) {
      throw new Error(`${join(dir, 'model.json')} has no normalisation statistics (userDefinedMetadata.tfjsDataflowCifar10.stats); was it saved by 'tfjs-dataflow-cifar10 train'?`);
    }
    say(`Model: ${dir} (${info.mode}, base depth ${info.baseDepth}, ${info.weights === 'ema' ? 'EMA' : 'final'} weights, seed ${info.seed})`);

    // Data: the test split, normalised with the training statistics the model was trained with.
    const dataset = await loadData({
      dir: config.data, cacheDir: config.cacheDir, download: config.download, trainLimit: 1, evalLimit: config.evalLimit ?? undefined,
    });
    const { train, eval: test } = dataset.toBackend({ stats: info.stats, padAmount: 0 });
    tf.dispose([train.images, train.targets]);

    // Eval
    try {
      const n = test.images.shape[0];
      const size = config.evalBatch ?? (report.backend === 'wasm' ? Math.min(2500, Math.max(1, Math.floor((512 * 64) / info.baseDepth))) : 2500);
      const started = performance.now();
      const parts: tf.Scalar[] = [];
      for (let start = 0; start < n; start += size) {
        const count = Math.min(size, n - start);
        parts.push(tf.tidy(() => tf.mul(accuracy(predictWithFlipTTA(model, tf.slice(test.images, start, count)), tf.slice(test.targets, start, count)), count) as tf.Scalar));
      }
      const correct = (await Promise.all(parts.map((p) => p.data()))).reduce((sum, v) => sum + v[0]!, 0);
      tf.dispose(parts);
      const seconds = (performance.now() - started) / 1000;
      say(`Test accuracy (flip TTA): ${(correct / n).toFixed(4)} on ${n} images from ${dataset.source} (${seconds.toFixed(1)} s)`);
    } finally {
      tf.dispose([test.images, test.targets]);
    }
  } finally {
    model.dispose();
  }
  return 0;
}
