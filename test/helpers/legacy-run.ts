/**
 * The run that wrote test/fixtures/train/checkpoint-v1/ (tools/fixtures/legacy-checkpoint.ts): a small named model
 * from the library's layers, data made in JavaScript, batches of 8 over two epochs with the EMA in the second. The
 * resume test builds the same run to continue the fixture's checkpoint, so nothing here may change its numbers.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ConvGroup } from '../../src/layers/conv-group.js';
import { DiscreteAction } from '../../src/layers/discrete-action.js';
import { Linear } from '../../src/layers/linear.js';
import { GlobalMaxPool } from '../../src/layers/pooling.js';
import type { HypOverrides } from '../../src/models/hyp.js';
import type { TrainData } from '../../src/train/trainable.js';
import { seededUniform } from './assert.js';

export const LEGACY_SIDE = 8;
const PAD = 2;
const CLASSES = 4;

/** Batches of 8: 24 images make 3 steps an epoch, 6 in all; the EMA from epoch 1, every step. */
export const LEGACY_HYP: HypOverrides = {
  opt: { batchSize: 8 },
  misc: { trainEpochs: 2, evalBatchSize: 8, ema: { epochs: 1, everyNSteps: 1 } },
};
/** The data order's seed (`TrainOptions.seed`). */
export const LEGACY_SEED = 4;
/** The mid-run checkpoint's step: epoch 1, one step in, the EMA started. */
export const LEGACY_STOP_STEP = 4;

/** One conv group (its batch norms give the bias group), a discrete action and a linear head, all named. */
export function legacyModel(seed = 3): tfl.LayersModel {
  const input = tfl.input({ shape: [LEGACY_SIDE, LEGACY_SIDE, 3] });
  const y = new ConvGroup({ name: 'block_1', channelsOut: 4, seed }).apply(input) as tfl.SymbolicTensor;
  const x = new DiscreteAction({ name: 'action_1', seed: seed + 1 }).apply(y) as tfl.SymbolicTensor;
  const logits = new Linear({ name: 'head', units: CLASSES, temperature: 1 / 12, seed: seed + 2 }).apply(
    new GlobalMaxPool({ name: 'pool' }).apply(x),
  ) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits });
}

/** The class is the brighter half (left or right, top or bottom) plus noise; train reflect-padded by 2. */
export function legacyData(): { data: TrainData; dispose: () => void } {
  const make = (count: number, seed: number, pad: number) =>
    tf.tidy(() => {
      const labels = Array.from({ length: count }, (_, i) => (i * 7 + seed) % CLASSES);
      const noise = seededUniform(count * LEGACY_SIDE * LEGACY_SIDE * 3, seed, -0.5, 0.5);
      const pixels = new Float32Array(noise.length);
      for (let i = 0; i < count; i++) {
        const c = labels[i]!;
        for (let y = 0; y < LEGACY_SIDE; y++) {
          for (let x = 0; x < LEGACY_SIDE; x++) {
            const bright =
              c < 2 ? (c === 0 ? x < LEGACY_SIDE / 2 : x >= LEGACY_SIDE / 2) : c === 2 ? y < LEGACY_SIDE / 2 : y >= LEGACY_SIDE / 2;
            for (let ch = 0; ch < 3; ch++) {
              const k = ((i * LEGACY_SIDE + y) * LEGACY_SIDE + x) * 3 + ch;
              pixels[k] = noise[k]! + (bright ? 1 : 0);
            }
          }
        }
      }
      let images = tf.tensor4d(pixels, [count, LEGACY_SIDE, LEGACY_SIDE, 3]);
      if (pad) {
        images = tf.mirrorPad(
          images,
          [
            [0, 0],
            [pad, pad],
            [pad, pad],
            [0, 0],
          ],
          'reflect',
        );
      }
      const targets = tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES), 'float32') as tf.Tensor2D;
      return { images, targets };
    });
  const data = { train: make(24, 11, PAD), eval: make(8, 12, 0) };
  return { data, dispose: () => tf.dispose([data.train.images, data.train.targets, data.eval.images, data.eval.targets]) };
}
