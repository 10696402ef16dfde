import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { batchCrop } from '../../src/augment/crop.js';
import { batchCutmix } from '../../src/augment/cutmix.js';
import { batchFlipLR } from '../../src/augment/flip.js';
import { reflectPad } from '../../src/augment/pad.js';
import { seedLoss } from '../../src/ops/loss.js';
import { DeviceRandom } from '../../src/ops/random.js';
import { NetworkEMA, emaDecayAt } from '../../src/train/ema.js';
import { OneCycle } from '../../src/train/one-cycle.js';
import { SGD, splitBiasGroups } from '../../src/train/sgd.js';
import { describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';

describeEachBackendAndWebGPUKernelSet('training toolkit', () => {
  it('keeps the tensor count flat over 100 steps of augmentation + loss + SGD + EMA', async () => {
    const steps = 100;
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          filters: 2,
          kernelSize: 3,
          padding: 'same',
          inputShape: [4, 4, 2],
          useBias: false,
          name: 'conv_group_1_conv1',
        }),
        tfl.layers.batchNormalization({ name: 'conv_group_1_norm1' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 3, name: 'linear' }),
      ],
    });
    const images = tf.tidy(() => reflectPad(tf.randomNormal([4, 4, 4, 2], 0, 1, 'float32', 1) as tf.Tensor4D, 1));
    const targets = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3), 'float32') as tf.Tensor2D);
    const rng = new DeviceRandom(0);
    const { nonBias, bias } = splitBiasGroups(model.trainableWeights);
    const opt = new SGD([
      { weights: nonBias, lr: OneCycle.seed(0.05, steps), momentum: 0.85, nesterov: true, weightDecay: 5e-4 },
      { weights: bias, lr: OneCycle.seed(0.5, steps), momentum: 0.85, nesterov: true, weightDecay: 1e-5 },
    ]);
    let ema: NetworkEMA | undefined;
    const counts: number[] = [];
    let lastLoss = Number.NaN;
    for (let step = 1; step <= steps; step++) {
      const { value, grads } = tf.variableGrads(() => {
        const crops = batchFlipLR(batchCrop(images, 4, rng), rng);
        const mixed = batchCutmix(crops, targets, 2, rng);
        const logits = model.apply(mixed.images, { training: true }) as tf.Tensor;
        return seedLoss(logits, mixed.targets, { batchScale: 1 / 4 }); // a mean: stable at these tiny sizes
      });
      opt.step(grads);
      tf.dispose(grads);
      if (step % 10 === 0) lastLoss = (await value.data())[0]!;
      value.dispose();
      ema ??= new NetworkEMA(model);
      ema.update(model, emaDecayAt(step, steps));
      if (step % 25 === 0) {
        const evalLogits = ema.withWeights(model, () =>
          tf.tidy(() => model.predict(tf.slice(images, [0, 1, 1, 0], [4, 4, 4, 2])) as tf.Tensor),
        );
        expect((await evalLogits.data()).every(Number.isFinite)).toBe(true);
        evalLogits.dispose();
      }
      counts.push(tf.memory().numTensors);
    }
    expect(Number.isFinite(lastLoss)).toBe(true);
    expect(opt.stepCount).toBe(steps);
    // Flat from the first step on: momentum buffers and the EMA copy exist from step 1 and are replaced, not added.
    expect(new Set(counts).size, `tensor counts ${counts[0]} .. ${counts[counts.length - 1]}`).toBe(1);
    ema!.dispose();
    opt.dispose();
    tf.dispose([images, targets]);
    model.dispose();
  });
});
