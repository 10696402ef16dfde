/**
 * The Trainer against misuse (issue 20): two run() at once, run() after dispose(), data disposed
 * before run(), eval targets of another length, bad option types, an oversized cutmix patch, and
 * no tensor left behind by a run that stops on a NaN loss.
 */
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import type { HypOverrides } from '../../src/models/hyp.js';
import { speedyConvNet } from '../../src/models/speedy-convnet.js';
import type { TrainData } from '../../src/train/trainable.js';
import { Trainer } from '../../src/train/trainer.js';
import { describeEachBackend, describeOnBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

const SIDE = 16;
const HYP: HypOverrides = {
  net: { baseDepth: 2, whiteningChunkSize: 16, cutmixSize: 0 },
  opt: { batchSize: 8 },
  misc: { trainEpochs: 1, evalBatchSize: 8, ema: { epochs: 0 } },
};

function tinyData(n: number, evalTargets = 8): { data: TrainData; dispose: () => void } {
  const targets = (count: number) =>
    tf.tidy(
      () =>
        tf.cast(
          tf.oneHot(
            tf.tensor1d(
              Array.from({ length: count }, (_, i) => i % 10),
              'int32',
            ),
            10,
          ),
          'float32',
        ) as tf.Tensor2D,
    );
  const data: TrainData = {
    train: { images: tf.randomNormal([n, SIDE + 4, SIDE + 4, 3], 0, 1, 'float32', 1), targets: targets(n) },
    eval: { images: tf.randomNormal([8, SIDE, SIDE, 3], 0, 1, 'float32', 2), targets: targets(evalTargets) },
  };
  return { data, dispose: () => tf.dispose([data.train.images, data.train.targets, data.eval.images, data.eval.targets]) };
}

describeEachBackend('Trainer guards', () => {
  it('refuses a second run() while one runs, run() after dispose(), and leaks nothing', async () => {
    // One step of 8 images: software WebGPU on a shared CPU is slow.
    const { data, dispose } = tinyData(8);
    const net = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE });
    const before = liveTensors();
    const trainer = new Trainer(net, data, { seed: 1 });
    const first = trainer.run();
    await expect(trainer.run()).rejects.toThrow('Trainer.run: this trainer is already running; await the run in progress');
    expect(() => trainer.dispose()).toThrow('Trainer.dispose: the trainer is running');
    const result = await first;
    expect(result.stopReason).toBe('completed');
    expect(result.records).toHaveLength(1);
    trainer.dispose();
    await expect(trainer.run()).rejects.toThrow('Trainer.run: this trainer has been disposed; make a new Trainer');
    expect(liveTensors()).toBe(before);
    net.model.dispose();
    dispose();
  });

  it('refuses data disposed before run() or before construction, naming the tensor', async () => {
    const { data, dispose } = tinyData(16);
    const net = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE });
    const trainer = new Trainer(net, data, { seed: 1 });
    data.train.targets.dispose();
    await expect(trainer.run()).rejects.toThrow(
      'Trainer.run: data.train.targets has been disposed; keep the data alive until the run ends',
    );
    expect(() => new Trainer(net, data, { seed: 1 })).toThrow('Trainer: data.train.targets has been disposed');
    trainer.dispose();
    net.model.dispose();
    dispose();
  });

  it('refuses eval targets of another length than the eval images up front', () => {
    const { data, dispose } = tinyData(16, 5);
    const net = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE });
    const before = liveTensors();
    expect(() => new Trainer(net, data, { seed: 1 })).toThrow(
      'Trainer: data.eval has 8 images but 5 targets ([8,16,16,3] and [5,10]); each image needs one target row',
    );
    expect(liveTensors()).toBe(before);
    net.model.dispose();
    dispose();
  });

  it('refuses a logEvery that is not a positive integer, and a cutmix patch larger than the crop, before anything is allocated', () => {
    const { data, dispose } = tinyData(16);
    const net = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE });
    const before = liveTensors();
    expect(() => new Trainer(net, data, { logEvery: 'x' as unknown as number })).toThrow(
      "Trainer: logEvery must be a positive integer (steps between loss reads), got 'x'",
    );
    expect(() => new Trainer(net, data, { logEvery: 0 })).toThrow('got 0');
    // An even crop holds the seed's even square only one row short of it: 16x16 crops take at most 15.
    const big = speedyConvNet({ seed: 1, hyp: { ...HYP, net: { ...HYP.net, cutmixSize: SIDE } }, imageSize: SIDE });
    const afterModel = liveTensors();
    expect(() => new Trainer(big, data, { seed: 1 })).toThrow(
      `Trainer: hyp.net.cutmixSize ${SIDE} does not fit the ${SIDE}x${SIDE} training crops; it must be at most ${SIDE - 1}`,
    );
    expect(liveTensors()).toBe(afterModel);
    big.model.dispose();
    expect(liveTensors()).toBe(before);
    net.model.dispose();
    dispose();
  });

  it('a run stopped by a NaN loss leaves no tensor behind once disposed', async () => {
    const { data, dispose } = tinyData(32);
    const net = speedyConvNet({ seed: 6, hyp: { ...HYP, opt: { batchSize: 8, nonBiasLr: 1e30, biasLr: 1e30 } }, imageSize: SIDE });
    const before = liveTensors();
    const trainer = new Trainer(net, data, { seed: 1, logEvery: 1 });
    const result = await trainer.run();
    expect(result.stopReason).toBe('non-finite-loss');
    trainer.dispose();
    expect(liveTensors()).toBe(before);
    net.model.dispose();
    dispose();
  });
});

describeOnBackend('webgpu', 'Trainer on a failing WebGPU device', () => {
  it('stops with the device’s message instead of reporting numbers from a command WebGPU dropped', async () => {
    const { data, dispose } = tinyData(8);
    const net = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE });
    const trainer = new Trainer(net, data, { seed: 1, logEvery: 1 });
    // A command WebGPU refuses comes back as an error event, never as an exception: here a buffer with no usage.
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    device.createBuffer({ size: 4, usage: 0 });
    await device.queue.onSubmittedWorkDone();
    await expect(trainer.run()).rejects.toThrow(/^WebGPU failed during training step 1\. The device said: .+/);
    trainer.dispose();
    net.model.dispose();
    dispose();
  });
});
