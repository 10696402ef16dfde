import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import type { HypOverrides } from '../../src/models/hyp.js';
import { speedyConvNet } from '../../src/models/speedy-convnet.js';
import { Trainer, trainSchedule, type TrainData } from '../../src/train/trainer.js';
import { describeEachBackend, describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

const SIDE = 16; // small images keep the cpu and software-WebGPU backends quick

/** A learnable toy task: the class is which image quadrant is brightest. */
function toyData(n: number, seed: number): { data: TrainData; dispose: () => void } {
  const make = (count: number, s: number, pad: number) => tf.tidy(() => {
    const labels = tf.randomUniform([count], 0, 4, 'int32', s) as tf.Tensor1D;
    const noise = tf.randomNormal([count, SIDE, SIDE, 3], 0, 0.5, 'float32', s + 1);
    const half = SIDE / 2;
    const quadrant = (q: number) => {
      const m = tf.buffer([1, SIDE, SIDE, 1]);
      for (let y = 0; y < half; y++) for (let x = 0; x < half; x++) m.set(2, 0, y + half * (q >> 1), x + half * (q & 1), 0);
      return m.toTensor();
    };
    const masks = tf.concat([0, 1, 2, 3].map(quadrant), 0); // [4, SIDE, SIDE, 1]
    let images = tf.add(noise, tf.gather(masks, labels)) as tf.Tensor4D;
    if (pad) images = tf.mirrorPad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], 'reflect');
    return { images, targets: tf.cast(tf.oneHot(labels, 10), 'float32') as tf.Tensor2D };
  });
  const data = { train: make(n, seed, 2), eval: make(32, seed + 7, 0) };
  return { data, dispose: () => tf.dispose([data.train.images, data.train.targets, data.eval.images, data.eval.targets]) };
}

const HYP: HypOverrides = {
  net: { baseDepth: 4, whiteningChunkSize: 16 },
  opt: { batchSize: 16 },
  misc: { trainEpochs: 2, evalBatchSize: 16, ema: { epochs: 1, everyNSteps: 2 } },
};

async function weightsOf(trainer: Trainer): Promise<Float32Array[]> {
  return Promise.all(trainer.net.model.weights.map(async (w) => (await w.read().data()) as Float32Array));
}

describeEachBackend('Trainer', () => {
  it('runs the seed loop: loss falls, the EMA starts on schedule, and nothing leaks', async () => {
    const { data, dispose } = toyData(64, 1);
    const net = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE });
    const before = liveTensors();
    const steps: number[] = [];
    const trainer = new Trainer(net, data, { seed: 1, logEvery: 1, callbacks: { onStep: (s) => { if (s.loss !== undefined) steps.push(s.loss); } } });
    expect(trainer.totalSteps).toBe(8);
    expect(trainer.emaStartEpoch).toBe(1);
    const result = await trainer.run();
    expect(result.stopReason).toBe('completed');
    expect(result.records.map((r) => r.epoch)).toEqual([0, 1]);
    expect(result.records[0]!.emaValAcc).toBeNull();
    expect(result.records[1]!.emaValAcc).toBeGreaterThanOrEqual(0);
    expect(result.records[1]!.steps).toBe(8);
    expect(steps).toHaveLength(8);
    expect(steps.every(Number.isFinite)).toBe(true);
    expect(Math.min(...steps.slice(4))).toBeLessThan(steps[0]!);
    expect(result.records[1]!.totalTimeSeconds).toBeGreaterThan(0);
    trainer.dispose();
    expect(liveTensors()).toBe(before);
    net.model.dispose();
    dispose();
  });

  it('reports images/s of finished steps only: updated when the loss is read, held between reads', async () => {
    const { data, dispose } = toyData(64, 3);
    const net = speedyConvNet({ seed: 3, hyp: HYP, imageSize: SIDE });
    const infos: Array<{ read: boolean; rate: number }> = [];
    // logEvery 3: reads at each epoch's first and last step and every third step (of 4 per epoch).
    const trainer = new Trainer(net, data, { seed: 3, logEvery: 3, callbacks: { onStep: (s) => { infos.push({ read: s.loss !== undefined, rate: s.imagesPerSec }); } } });
    await trainer.run();
    expect(infos).toHaveLength(8);
    expect(infos.filter((i) => !i.read).length).toBeGreaterThan(0);
    for (let i = 0; i < infos.length; i++) {
      const { read, rate } = infos[i]!;
      expect(Number.isFinite(rate) && rate > 0, `step ${i + 1}: ${rate}`).toBe(true);
      // A step whose loss was not read adds nothing known to be finished: the rate stays the previous one.
      if (!read) expect(rate).toBe(infos[i - 1]!.rate);
    }
    trainer.dispose();
    net.model.dispose();
    dispose();
  });
});

describeEachBackendAndWebGPUKernelSet('Trainer checkpoints and micro-batches', () => {
  it('resumes from a mid-run checkpoint to exactly the weights of an uninterrupted run', async () => {
    const { data, dispose } = toyData(48, 2);
    const straight = new Trainer(speedyConvNet({ seed: 5, hyp: HYP, imageSize: SIDE }), data, { seed: 3 });
    await straight.run();
    const expected = await weightsOf(straight);

    const first = new Trainer(speedyConvNet({ seed: 5, hyp: HYP, imageSize: SIDE }), data, {
      seed: 3,
      // Stop in the middle of the second epoch, after the EMA has started.
      callbacks: { onStep: (s) => { if (s.step === 5) first.requestStop(); } },
    });
    const partial = await first.run();
    expect(partial.stopReason).toBe('stopped');
    const checkpoint = first.checkpoint();
    expect(checkpoint).toMatchObject({ epoch: 1, epochStep: 2, step: 5, emaActive: true });

    const resumed = new Trainer(speedyConvNet({ seed: 99, hyp: HYP, imageSize: SIDE }), data, { seed: 42 });
    resumed.restore(checkpoint);
    tf.dispose(Object.values(checkpoint.tensors));
    const result = await resumed.run();
    expect(result.stopReason).toBe('completed');
    expect(result.records.map((r) => r.epoch)).toEqual([0, 1]);
    const actual = await weightsOf(resumed);
    actual.forEach((w, i) => expect(Array.from(w), straight.net.model.weights[i]!.originalName).toEqual(Array.from(expected[i]!)));
    for (const t of [straight, first, resumed]) {
      t.dispose();
      t.net.model.dispose();
    }
    dispose();
  });

  it('sums micro-batch gradients into one step per batch', async () => {
    const { data, dispose } = toyData(32, 4);
    const net = speedyConvNet({ seed: 7, hyp: HYP, imageSize: SIDE });
    const trainer = new Trainer(net, data, { seed: 1, microBatchSize: 4 });
    const result = await trainer.run();
    expect(result.records.at(-1)!.steps).toBe(4);
    expect(() => new Trainer(net, data, { microBatchSize: 5 })).toThrow('microBatchSize must be a positive divisor of the batch size 16, got 5');
    trainer.dispose();
    net.model.dispose();
    dispose();
  });
}, ['wasm', 'webgpu'], 'loop logic only, and the cpu backend needs minutes for these runs; its numerics are covered by the golden layer tests');

describeEachBackend('Trainer on a diverging run', () => {
  it('stops on a non-finite loss and names the step', async () => {
    const { data, dispose } = toyData(32, 3);
    const net = speedyConvNet({ seed: 6, hyp: { ...HYP, opt: { batchSize: 16, nonBiasLr: 1e30, biasLr: 1e30 } }, imageSize: SIDE });
    const trainer = new Trainer(net, data, { seed: 1, logEvery: 1 });
    const result = await trainer.run();
    expect(result.stopReason).toBe('non-finite-loss');
    expect(result.message).toMatch(/training loss became (NaN|Infinity|-Infinity) at step \d+/);
    trainer.dispose();
    net.model.dispose();
    dispose();
  });
});

describeEachBackend('Trainer refuses what it cannot train, before changing anything', () => {
  it('restore checks the whole checkpoint before writing: a refused one leaves weights, EMA and position as they were', async () => {
    const { data, dispose } = toyData(32, 8);
    const sketch = new Trainer(speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE }), data, { seed: 1 });
    const backprop = new Trainer(speedyConvNet({ seed: 2, hyp: HYP, imageSize: SIDE, mode: 'backprop' }), data, { seed: 1 });
    const before = await weightsOf(sketch);
    const state = () => {
      const c = sketch.checkpoint();
      tf.dispose(Object.values(c.tensors));
      const { tensors: _, ...fields } = c;
      return fields;
    };
    const fieldsBefore = state();
    const tensorsBefore = liveTensors();
    const foreign = backprop.checkpoint();
    // The other net's weights differ, so a write before the refusal would show.
    expect((await weightsOf(backprop)).some((w, i) => w.some((v, j) => v !== before[i]![j]))).toBe(true);

    const refused = (checkpoint: typeof foreign, message: string | RegExp) => {
      expect(() => sketch.restore(checkpoint)).toThrow(message);
    };
    refused(foreign, 'Trainer.restore: the checkpoint has 0 noise streams, the net has 3 discrete actions (was it saved in another mode?)');
    const own = sketch.checkpoint();
    const streams = own.modelRandom;
    refused({ ...foreign, modelRandom: streams, emaActive: true }, /Trainer\.restore: the checkpoint's EMA does not fit this net: NetworkEMA\.load: the snapshot has no entry/);
    refused({ ...foreign, modelRandom: streams, step: 3 }, 'Trainer.restore: the checkpoint is at step 3, but epoch 0 step 0 is step 0 of this trainer');
    refused({ ...foreign, modelRandom: streams, epoch: 1, epochStep: 2, step: 4 }, 'Trainer.restore: records must hold one entry per finished epoch (1), got 0');
    refused({ ...foreign, modelRandom: streams, tensors: { ...foreign.tensors, 'weights/nowhere/kernel': foreign.tensors[Object.keys(foreign.tensors)[0]!]! } },
      "Trainer.restore: tensor 'weights/nowhere/kernel' names no weight of this net");
    const [firstKey] = Object.keys(foreign.tensors);
    const { [firstKey!]: _dropped, ...withoutOne } = foreign.tensors;
    refused({ ...foreign, modelRandom: streams, tensors: withoutOne }, `Trainer.restore: the checkpoint has no value for weight '${firstKey!.slice('weights/'.length)}'`);
    refused({ ...foreign, modelRandom: [{ seed: 1, counter: -1 }, streams[1]!, streams[2]!] }, 'Trainer.restore: modelRandom[0] must be { seed, counter }');

    expect(await weightsOf(sketch)).toEqual(before);
    expect(state()).toEqual(fieldsBefore);
    expect(sketch.networkEMA).toBeNull();
    tf.dispose(Object.values(own.tensors));
    tf.dispose(Object.values(foreign.tensors));
    expect(liveTensors()).toBe(tensorsBefore);
    // The same checkpoint with matching streams is taken: the refusals were about what they said.
    const accepted = backprop.checkpoint();
    sketch.restore({ ...accepted, modelRandom: streams });
    const byName = async (t: Trainer) => Object.fromEntries(await Promise.all(t.net.model.weights.map(async (w) => [w.originalName, Array.from(await w.read().data())])));
    expect(await byName(sketch)).toEqual(await byName(backprop));
    tf.dispose(Object.values(accepted.tensors));
    for (const t of [sketch, backprop]) {
      t.dispose();
      t.net.model.dispose();
    }
    dispose();
  });

  it('refuses a schedule with no step, and a net.hyp changed out of range after it was built', () => {
    const { data, dispose } = toyData(32, 9);
    const net = speedyConvNet({ seed: 3, hyp: { ...HYP, misc: { ...HYP.misc, trainEpochs: 0.001 } }, imageSize: SIDE });
    expect(() => new Trainer(net, data)).toThrow(
      'Trainer: hyp.misc.trainEpochs 0.001 gives no step to train: 0.001 epochs of 32 examples make no training step (an epoch is 2 steps of 16 examples, and 0.001 of one rounds to 0 steps; train more than 0.250 epochs)');
    expect(() => trainSchedule(32, 16, 0.001)).toThrow('trainSchedule: 0.001 epochs of 32 examples make no training step');
    net.model.dispose();
    const changed = speedyConvNet({ seed: 3, hyp: HYP, imageSize: SIDE });
    changed.hyp.opt.lossBatchSize = 0;
    expect(() => new Trainer(changed, data)).toThrow('Trainer: net.hyp is invalid: hyp.opt.lossBatchSize must be a number > 0');
    changed.model.dispose();
    dispose();
  });

  it('a stop asked for before run() stops before the first step', async () => {
    const { data, dispose } = toyData(32, 10);
    const trainer = new Trainer(speedyConvNet({ seed: 4, hyp: HYP, imageSize: SIDE }), data, { seed: 1 });
    const before = await weightsOf(trainer);
    trainer.requestStop();
    const result = await trainer.run();
    expect(result.stopReason).toBe('stopped');
    const checkpoint = trainer.checkpoint();
    expect([checkpoint.epoch, checkpoint.epochStep, checkpoint.step]).toEqual([0, 0, 0]);
    tf.dispose(Object.values(checkpoint.tensors));
    expect(await weightsOf(trainer)).toEqual(before);
    trainer.dispose();
    trainer.net.model.dispose();
    dispose();
  });
});

describeEachBackend('Trainer on eval data holding NaN', () => {
  it('stops with a non-finite validation loss instead of completing', async () => {
    const { data, dispose } = toyData(32, 11);
    // NaN in a target row makes the validation loss NaN whatever the backend does with NaN pixels (WebGPU's
    // max pool, for one, turns an all-NaN window into -1e20, so a NaN image need not reach the loss).
    const poisoned = tf.tidy(() => tf.concat([tf.fill([1, 10], Number.NaN), tf.slice(data.eval.targets, 1)], 0) as tf.Tensor2D);
    const net = speedyConvNet({ seed: 8, hyp: HYP, imageSize: SIDE });
    const trainer = new Trainer(net, { train: data.train, eval: { images: data.eval.images, targets: poisoned } }, { seed: 1 });
    const result = await trainer.run();
    expect(result.stopReason).toBe('non-finite-loss');
    expect(result.message).toBe('validation loss became NaN after epoch 0 (step 2)');
    expect(result.records).toEqual([]);
    trainer.dispose();
    net.model.dispose();
    poisoned.dispose();
    dispose();
  });
}, ['wasm', 'webgpu'], 'loop logic only; the cpu backend needs minutes for training runs');

it('trainSchedule follows the seed, running a whole-number last epoch in full', () => {
  expect(trainSchedule(50000, 1024, 12.1)).toEqual({ stepsPerEpoch: 48, totalSteps: 581, epochSteps: [...Array(12).fill(48), 5] });
  expect(trainSchedule(2048, 256, 3)).toEqual({ stepsPerEpoch: 8, totalSteps: 24, epochSteps: [8, 8, 8] });
});
