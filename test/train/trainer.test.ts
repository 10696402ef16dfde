import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { Conv } from '../../src/layers/conv.js';
import { ConvGroup } from '../../src/layers/conv-group.js';
import { DiscreteAction, findDiscreteActions } from '../../src/layers/discrete-action.js';
import { Gelu } from '../../src/layers/gelu.js';
import { Linear } from '../../src/layers/linear.js';
import { GlobalMaxPool } from '../../src/layers/pooling.js';
import { SEED_HYP, type HypOverrides } from '../../src/models/hyp.js';
import { speedyConvNet } from '../../src/models/speedy-convnet.js';
import { trainSchedule } from '../../src/train/schedule.js';
import type { TrainData } from '../../src/train/trainable.js';
import { Trainer } from '../../src/train/trainer.js';
import { Trainer as PublicTrainer } from '../../src/index.js';
import { describeEachBackend, describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { liveTensors } from '../helpers/memory.js';

const SIDE = 16; // small images keep the cpu and software-WebGPU backends quick

/** A learnable toy task: the class is which image quadrant is brightest. */
function toyData(n: number, seed: number): { data: TrainData; dispose: () => void } {
  const make = (count: number, s: number, pad: number) =>
    tf.tidy(() => {
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
      if (pad)
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

/**
 * A model of one's own, built from the library's layers (named, so checkpoints match across models): two conv groups wired as the sketch's
 * dataflow (the first predicts the second's output), a discrete action after each, a linear head.
 */
function ownModel(seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [SIDE, SIDE, 3] });
  const [y1, statePred2] = new ConvGroup({ name: 'block_1', channelsOut: 4, statePredDim: 8, seed }).apply(input) as tfl.SymbolicTensor[];
  const x1 = new DiscreteAction({ name: 'action_1', seed: seed + 1 }).apply(y1!) as tfl.SymbolicTensor;
  const y2 = new ConvGroup({ name: 'block_2', channelsOut: 8, seed: seed + 2 }).apply(x1) as tfl.SymbolicTensor;
  const x2 = tfl.layers
    .add({ name: 'residual' })
    .apply([new DiscreteAction({ name: 'action_2', seed: seed + 3 }).apply(y2) as tfl.SymbolicTensor, statePred2!]) as tfl.SymbolicTensor;
  const logits = new Linear({ name: 'head', units: 10, temperature: 1 / 12, seed: seed + 4 }).apply(
    new GlobalMaxPool({ name: 'pool' }).apply(x2),
  ) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits });
}

/**
 * A model whose output for an image depends on that image alone (no batch norm, no discrete action, whose noise
 * scales with the batch's std): the gradient of a summed loss over a batch is then the sum of its micro-batches'.
 */
function perExampleModel(seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [SIDE, SIDE, 3] });
  const x = new Gelu({ name: 'act' }).apply(new Conv({ name: 'conv', filters: 8, seed }).apply(input)) as tfl.SymbolicTensor;
  const logits = new Linear({ name: 'head', units: 10, temperature: 1 / 12, seed: seed + 1 }).apply(
    new GlobalMaxPool({ name: 'pool' }).apply(x),
  ) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits });
}

/** The recipe for ownModel: batches of 16, two epochs, the EMA in the second. */
const OWN_HYP: HypOverrides = { opt: { batchSize: 16 }, misc: { trainEpochs: 2, evalBatchSize: 16, ema: { epochs: 1, everyNSteps: 2 } } };

async function weightsOf(trainer: Trainer): Promise<Float32Array[]> {
  return Promise.all(trainer.model.weights.map(async (w) => (await w.read().data()) as Float32Array));
}

describeEachBackend('Trainer', () => {
  it('runs the seed loop: loss falls, the EMA starts on schedule, and nothing leaks', async () => {
    const { data, dispose } = toyData(64, 1);
    const net = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE });
    const before = liveTensors();
    const steps: number[] = [];
    const trainer = new Trainer(net, data, {
      seed: 1,
      logEvery: 1,
      callbacks: {
        onStep: (s) => {
          if (s.loss !== undefined) steps.push(s.loss);
        },
      },
    });
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
});

describeEachBackend(
  'Trainer rates',
  () => {
    it('reports images/s of finished steps only: updated when the loss is read, held between reads', async () => {
      const { data, dispose } = toyData(64, 3);
      const net = speedyConvNet({ seed: 3, hyp: HYP, imageSize: SIDE });
      const infos: Array<{ read: boolean; rate: number }> = [];
      // logEvery 3: reads at each epoch's first and last step and every third step (of 4 per epoch).
      const trainer = new Trainer(net, data, {
        seed: 3,
        logEvery: 3,
        callbacks: {
          onStep: (s) => {
            infos.push({ read: s.loss !== undefined, rate: s.imagesPerSec });
          },
        },
      });
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
  },
  ['wasm', 'webgpu'],
  'loop logic only: the seed loop above runs on cpu, where eight more steps take the cpu backend 20 s',
);

describeEachBackend(
  'Trainer on a model of your own',
  () => {
    it('runs the seed recipe on a LayersModel built from the library layers, finding its discrete actions', async () => {
      const { data, dispose } = toyData(64, 12);
      const model = ownModel(1);
      const before = liveTensors();
      const losses: number[] = [];
      const trainer = new Trainer({ model, hyp: OWN_HYP }, data, {
        seed: 2,
        logEvery: 1,
        callbacks: {
          onStep: (s) => {
            if (s.loss !== undefined) losses.push(s.loss);
          },
        },
      });
      expect(trainer.discreteActions.map((d) => d.name)).toEqual(['action_1', 'action_2']);
      expect(trainer.hyp.opt).toMatchObject({
        batchSize: 16,
        nonBiasLr: SEED_HYP.opt.nonBiasLr,
        biasLr: SEED_HYP.opt.biasLr,
        nonBiasDecay: 6.687e-4 * 16,
      });
      expect(trainer.imageSize).toBe(SIDE);
      const streamsBefore = trainer.discreteActions.map((d) => d.random.getState().counter);
      const weightsBefore = await weightsOf(trainer);
      const result = await trainer.run();
      expect(result.stopReason).toBe('completed');
      expect(result.records.map((r) => [r.epoch, r.steps])).toEqual([
        [0, 4],
        [1, 8],
      ]);
      expect(result.records[0]!.emaValAcc).toBeNull();
      expect(result.records[1]!.emaValAcc).toBeGreaterThanOrEqual(0);
      expect(trainer.networkEMA).not.toBeNull();
      expect(losses).toHaveLength(8);
      expect(losses.every(Number.isFinite)).toBe(true);
      // Noise was drawn from each action's stream, and the trainable weights moved (the frozen batch-norm scales did not).
      trainer.discreteActions.forEach((d, i) => expect(d.random.getState().counter).toBeGreaterThan(streamsBefore[i]!));
      const weightsAfter = await weightsOf(trainer);
      trainer.model.weights.forEach((w, i) => {
        const moved = weightsAfter[i]!.some((v, j) => v !== weightsBefore[i]![j]);
        if (w.originalName.endsWith('/conv1/weight') || w.originalName.endsWith('/bias')) expect(moved, w.originalName).toBe(true);
        if (/norm\d?\/weight$/.test(w.originalName)) expect(moved, w.originalName).toBe(false);
      });
      trainer.dispose();
      expect(liveTensors()).toBe(before);
      model.dispose();
      dispose();
    });

    it('resumes a model of your own from a mid-run checkpoint to exactly the uninterrupted weights', async () => {
      const { data, dispose } = toyData(48, 13);
      const straight = new Trainer({ model: ownModel(3), hyp: OWN_HYP }, data, { seed: 4 });
      await straight.run();
      const expected = await weightsOf(straight);
      const first = new Trainer({ model: ownModel(3), hyp: OWN_HYP }, data, {
        seed: 4,
        callbacks: {
          onStep: (s) => {
            if (s.step === 5) first.requestStop();
          },
        },
      });
      expect((await first.run()).stopReason).toBe('stopped');
      const checkpoint = first.checkpoint();
      expect(checkpoint).toMatchObject({ epoch: 1, epochStep: 2, step: 5, emaActive: true });
      expect(checkpoint.modelRandom).toHaveLength(2);
      // Another seed everywhere: the checkpoint must carry the weights, the noise streams and the data order.
      const resumed = new Trainer({ model: ownModel(30), hyp: OWN_HYP }, data, { seed: 40 });
      resumed.restore(checkpoint);
      tf.dispose(Object.values(checkpoint.tensors));
      expect((await resumed.run()).stopReason).toBe('completed');
      const actual = await weightsOf(resumed);
      actual.forEach((w, i) => expect(Array.from(w), straight.model.weights[i]!.originalName).toEqual(Array.from(expected[i]!)));
      for (const t of [straight, first, resumed]) {
        t.dispose();
        t.model.dispose();
      }
      dispose();
    });
  },
  ['wasm', 'webgpu'],
  'loop logic only, and the cpu backend needs minutes for these runs; its numerics are covered by the golden layer tests',
);

describeEachBackendAndWebGPUKernelSet(
  'Trainer checkpoints and micro-batches',
  () => {
    it('resumes from a mid-run checkpoint to exactly the weights of an uninterrupted run', async () => {
      const { data, dispose } = toyData(48, 2);
      const straight = new Trainer(speedyConvNet({ seed: 5, hyp: HYP, imageSize: SIDE }), data, { seed: 3 });
      await straight.run();
      const expected = await weightsOf(straight);

      const first = new Trainer(speedyConvNet({ seed: 5, hyp: HYP, imageSize: SIDE }), data, {
        seed: 3,
        // Stop in the middle of the second epoch, after the EMA has started.
        callbacks: {
          onStep: (s) => {
            if (s.step === 5) first.requestStop();
          },
        },
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
      actual.forEach((w, i) => expect(Array.from(w), straight.model.weights[i]!.originalName).toEqual(Array.from(expected[i]!)));
      for (const t of [straight, first, resumed]) {
        t.dispose();
        t.model.dispose();
      }
      dispose();
    });

    it("sums micro-batch gradients into one step per batch: the full batch's update and logged loss, on a model without batch norm", async () => {
      const { data, dispose } = toyData(32, 4);
      // Two epochs of two steps; the OneCycle rate starts near 0, so the later steps are the ones that tell.
      const run = async (microBatchSize: number) => {
        const losses: number[] = [];
        const model = perExampleModel(7);
        const initial = await Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
        const trainer = new Trainer({ model, hyp: OWN_HYP }, data, {
          seed: 1,
          microBatchSize,
          logEvery: 1,
          callbacks: { onStep: (s) => void losses.push(s.loss!) },
        });
        const result = await trainer.run();
        expect(result.records.map((r) => r.steps)).toEqual([2, 4]);
        const weights = await weightsOf(trainer);
        const names = trainer.model.weights.map((w) => w.originalName);
        trainer.dispose();
        trainer.model.dispose();
        return { losses, weights, names, initial };
      };
      const full = await run(16);
      const micro = await run(4);
      // Four passes of 4 sum to the batch of 16 up to float32 rounding (summation order): a step that kept one pass's
      // gradients, or scaled them by the pass count, lands elsewhere (tenths, not millionths).
      full.weights.forEach((w, i) => {
        expect(maxRelativeError(w, full.initial[i]!), `${full.names[i]} trained`).toBeGreaterThan(1e-2);
        expect(maxRelativeError(micro.weights[i]!, w), full.names[i]).toBeLessThanOrEqual(1e-4);
      });
      expect(maxRelativeError(micro.losses, full.losses)).toBeLessThanOrEqual(1e-4);
      const model = perExampleModel(7);
      expect(() => new Trainer({ model, hyp: OWN_HYP }, data, { microBatchSize: 5 })).toThrow(
        'microBatchSize must be a positive divisor of the batch size 16, got 5',
      );
      model.dispose();
      dispose();
    });
  },
  ['wasm', 'webgpu'],
  'loop logic only, and the cpu backend needs minutes for these runs; its numerics are covered by the golden layer tests',
);

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
    refused(
      { ...foreign, modelRandom: streams, emaActive: true },
      'Trainer.restore: the checkpoint says the EMA had started (emaActive true) but holds no state for the ema stage',
    );
    refused(
      { ...foreign, modelRandom: streams, emaActive: true, stages: { ...foreign.stages, ema: null } },
      /Trainer\.restore: the checkpoint's EMA does not fit this net: NetworkEMA\.load: the snapshot has no entry/,
    );
    refused(
      { ...foreign, modelRandom: streams, step: 3 },
      'Trainer.restore: the checkpoint is at step 3, but epoch 0 step 0 is step 0 of this trainer',
    );
    refused(
      { ...foreign, modelRandom: streams, epoch: 1, epochStep: 2, step: 4 },
      'Trainer.restore: records must hold one entry per finished epoch (1), got 0',
    );
    refused(
      {
        ...foreign,
        modelRandom: streams,
        tensors: { ...foreign.tensors, 'weights/nowhere/kernel': foreign.tensors[Object.keys(foreign.tensors)[0]!]! },
      },
      "Trainer.restore: tensor 'weights/nowhere/kernel' names no weight of this net",
    );
    const [firstKey] = Object.keys(foreign.tensors);
    const { [firstKey!]: _dropped, ...withoutOne } = foreign.tensors;
    refused(
      { ...foreign, modelRandom: streams, tensors: withoutOne },
      `Trainer.restore: the checkpoint has no value for weight '${firstKey!.slice('weights/'.length)}'`,
    );
    refused(
      { ...foreign, modelRandom: [{ seed: 1, counter: -1 }, streams[1]!, streams[2]!] },
      'Trainer.restore: modelRandom[0] must be { seed, counter }',
    );

    expect(await weightsOf(sketch)).toEqual(before);
    expect(state()).toEqual(fieldsBefore);
    expect(sketch.networkEMA).toBeNull();
    tf.dispose(Object.values(own.tensors));
    tf.dispose(Object.values(foreign.tensors));
    expect(liveTensors()).toBe(tensorsBefore);
    // The same checkpoint with matching streams is taken: the refusals were about what they said.
    const accepted = backprop.checkpoint();
    sketch.restore({ ...accepted, modelRandom: streams });
    const byName = async (t: Trainer) =>
      Object.fromEntries(await Promise.all(t.model.weights.map(async (w) => [w.originalName, Array.from(await w.read().data())])));
    expect(await byName(sketch)).toEqual(await byName(backprop));
    tf.dispose(Object.values(accepted.tensors));
    for (const t of [sketch, backprop]) {
      t.dispose();
      t.model.dispose();
    }
    dispose();
  });

  it('refuses a schedule with no step, and a net.hyp changed out of range after it was built', () => {
    const { data, dispose } = toyData(32, 9);
    const net = speedyConvNet({ seed: 3, hyp: { ...HYP, misc: { ...HYP.misc, trainEpochs: 0.001 } }, imageSize: SIDE });
    expect(() => new Trainer(net, data)).toThrow(
      'Trainer: hyp.misc.trainEpochs 0.001 gives no step to train: 0.001 epochs of 32 examples make no training step (an epoch is 2 steps of 16 examples, and 0.001 of one rounds to 0 steps; train more than 0.250 epochs)',
    );
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
    trainer.model.dispose();
    dispose();
  });
});

describeEachBackend(
  'Trainer on eval data holding NaN',
  () => {
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
  },
  ['wasm', 'webgpu'],
  'loop logic only; the cpu backend needs minutes for training runs',
);

describeEachBackend('Trainer on any LayersModel: what it is given', () => {
  it('takes a bare LayersModel with the seed hyperparameters, and finds discrete actions anywhere in it', () => {
    const { data, dispose } = toyData(32, 14);
    const model = ownModel(5);
    // The seed's batch of 1024 does not fit 32 images: the bare model did get the seed's hyp.
    expect(() => new Trainer(model, data)).toThrow('Trainer: the training set has 32 images, fewer than one batch of 1024');
    const big = tf.tidy(() => ({
      images: tf.tile(data.train.images, [32, 1, 1, 1]) as tf.Tensor4D,
      targets: tf.tile(data.train.targets, [32, 1]) as tf.Tensor2D,
    }));
    const seedTrainer = new Trainer(model, { train: big, eval: data.eval });
    expect(seedTrainer.hyp).toEqual(SEED_HYP);
    expect(seedTrainer.totalSteps).toBe(Math.ceil(12.1));
    seedTrainer.dispose();
    // SpeedyConvNet's own list and the search agree, in order; none in 'backprop' mode.
    const net = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE });
    expect(findDiscreteActions(net.model)).toEqual(net.discreteActions);
    const backprop = speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE, mode: 'backprop' });
    expect(findDiscreteActions(backprop.model)).toEqual([]);
    // A model nested in another as a layer is searched too.
    const input = tfl.input({ shape: [SIDE, SIDE, 3] });
    const outer = tfl.model({ inputs: input, outputs: model.apply(input) as tfl.SymbolicTensor });
    expect(findDiscreteActions(outer).map((d) => d.name)).toEqual(['action_1', 'action_2']);
    tf.dispose([big.images, big.targets]);
    for (const m of [model, net.model, backprop.model]) m.dispose();
    dispose();
  });

  it('refuses what it cannot train, saying what it expected and what it got', () => {
    const { data, dispose } = toyData(32, 15);
    const model = ownModel(6);
    expect(() => new Trainer({ hyp: OWN_HYP } as never, data)).toThrow(
      'Trainer: expected a tf.LayersModel or { model, hyp } (such as a SpeedyConvNet), got an object with keys hyp',
    );
    expect(() => new Trainer(null as never, data)).toThrow(
      'Trainer: expected a tf.LayersModel or { model, hyp } (such as a SpeedyConvNet), got null',
    );
    expect(() => new Trainer({ model, hyp: { opt: { batchSize: 16, momentum: 2 } } }, data)).toThrow(
      'Trainer: net.hyp is invalid: hyp.opt.momentum must be a number in (0, 1)',
    );
    const flat = tfl.sequential({ layers: [tfl.layers.dense({ units: 10, inputShape: [8] })] });
    expect(() => new Trainer({ model: flat, hyp: OWN_HYP }, data)).toThrow(
      'Trainer: the model must take one input of NHWC images [N, H, W, C], it takes [null,8]',
    );
    const input = tfl.input({ shape: [SIDE, SIDE, 3] });
    const twoHeads = tfl.model({
      inputs: input,
      outputs: [
        tfl.layers.globalMaxPooling2d({}).apply(input) as tfl.SymbolicTensor,
        tfl.layers.globalAveragePooling2d({}).apply(input) as tfl.SymbolicTensor,
      ],
    });
    expect(() => new Trainer({ model: twoHeads, hyp: OWN_HYP }, data)).toThrow(
      'Trainer: the model must have one output of logits [N, classes], it has [null,3], [null,3]',
    );
    const fourClasses = tfl.model({
      inputs: input,
      outputs: new Linear({ units: 4 }).apply(new GlobalMaxPool().apply(input)) as tfl.SymbolicTensor,
    });
    expect(() => new Trainer({ model: fourClasses, hyp: OWN_HYP }, data)).toThrow(
      'Trainer: the model outputs 4 classes, the train targets have 10 ([32,10])',
    );
    expect(() => new Trainer({ model, hyp: { ...OWN_HYP, net: { padAmount: 4 } } }, data)).toThrow(
      "Trainer: training images must be square and reflect-padded by hyp.net.padAmount=4 (24x24 for the model's 16x16 input), got shape [32,20,20,3]",
    );
    expect(
      () => new Trainer({ model, hyp: OWN_HYP }, { train: data.train, eval: { images: data.train.images, targets: data.train.targets } }),
    ).toThrow('Trainer: eval images must be 16x16 (unpadded), got shape [32,20,20,3]');
    expect(() => new Trainer({ model, hyp: OWN_HYP }, { train: data.train } as never)).toThrow(
      'Trainer: data must be { train: { images, targets }, eval: { images, targets } }',
    );
    for (const m of [model, flat, twoHeads, fourClasses]) m.dispose();
    dispose();
  });
});

describeEachBackend(
  'Trainer log cadence',
  () => {
    it("takes the table's train loss from the last step with epochStep % hyp.misc.logEveryNSteps == 0", async () => {
      const { data, dispose } = toyData(64, 16);
      const run = async (logEveryNSteps: number | undefined) => {
        const losses: number[] = [];
        const trainer = new Trainer(
          { model: ownModel(7), hyp: { ...OWN_HYP, misc: { ...OWN_HYP.misc, trainEpochs: 1, logEveryNSteps } } },
          data,
          {
            seed: 1,
            logEvery: 1,
            callbacks: {
              onStep: (s) => {
                losses.push(s.loss!);
              },
            },
          },
        );
        const { records } = await trainer.run();
        trainer.dispose();
        trainer.model.dispose();
        return { losses, trainLoss: records[0]!.trainLoss };
      };
      // Four steps per epoch. The seed's 50: only the first step (epochStep 0) is logged.
      const seed = await run(undefined);
      expect(seed.losses).toHaveLength(4);
      expect(seed.trainLoss).toBe(seed.losses[0]);
      // Every step: the last one. Every 3rd: epochStep 3, the fourth step.
      expect((await run(1)).trainLoss).toBe(seed.losses[3]);
      expect((await run(3)).trainLoss).toBe(seed.losses[3]);
      expect((await run(2)).trainLoss).toBe(seed.losses[2]);
      dispose();
    });
  },
  ['wasm', 'webgpu'],
  'loop logic only; the cpu backend needs minutes for training runs',
);

it('trainSchedule follows the seed, running a whole-number last epoch in full', () => {
  expect(trainSchedule(50000, 1024, 12.1)).toEqual({ stepsPerEpoch: 48, totalSteps: 581, epochSteps: [...Array(12).fill(48), 5] });
  expect(trainSchedule(2048, 256, 3)).toEqual({ stepsPerEpoch: 8, totalSteps: 24, epochSteps: [8, 8, 8] });
});

describeEachBackend('Trainer against the hostile review: restores, schedules, and what it refuses up front', () => {
  it('restores any number of times without leaving a tensor or a byte behind (item 6)', async () => {
    const { data, dispose } = toyData(32, 21);
    const trainer = new PublicTrainer(speedyConvNet({ seed: 1, hyp: HYP, imageSize: SIDE }), data, { seed: 1 });
    const checkpoint = trainer.checkpoint();
    // With an EMA, as a checkpoint from the EMA's epochs has: the live values stand in for the averages.
    const ema = Object.fromEntries(trainer.model.weights.map((w) => [`stages/ema/${w.originalName}`, tf.clone(w.read())]));
    const withEma = {
      ...checkpoint,
      emaActive: true,
      stages: { ...checkpoint.stages, ema: null },
      tensors: { ...checkpoint.tensors, ...ema },
    };
    trainer.restore(withEma); // the trainer now holds an EMA, as it will after every restore below
    const tensors = liveTensors();
    const bytes = tf.memory().numBytes;
    for (let i = 0; i < 5; i++) trainer.restore(withEma);
    expect(liveTensors()).toBe(tensors);
    expect(tf.memory().numBytes).toBe(bytes);
    tf.dispose(Object.values(withEma.tensors));
    trainer.dispose();
    trainer.model.dispose();
    dispose();
  });

  it('refuses a checkpoint written for another schedule, also in its first epoch; takes one of its own and an old one without the record (item 3)', async () => {
    const { data, dispose } = toyData(64, 22);
    const make = (hyp: HypOverrides) => new PublicTrainer(speedyConvNet({ seed: 2, hyp, imageSize: SIDE }), data, { seed: 1 });
    const written = make(HYP); // batches of 16, 2 epochs: 4 + 4 steps
    const checkpoint = written.checkpoint();
    const midFirstEpoch = {
      ...checkpoint,
      epochStep: 2,
      step: 2,
      stages: { ...checkpoint.stages, optimizer: { step: 2, scheduleSteps: [2, 2] } },
    };
    // Batches of 8 over 1 epoch (8 steps) and batches of 16 over 3 epochs (4 + 4 + 4): epoch 0 step 2 is a step of both.
    for (const other of [
      make({ ...HYP, opt: { batchSize: 8 }, misc: { ...HYP.misc, trainEpochs: 1 } }),
      make({ ...HYP, misc: { ...HYP.misc, trainEpochs: 3 } }),
    ]) {
      for (const c of [checkpoint, midFirstEpoch]) {
        expect(() => other.restore(c)).toThrow(/^Trainer\.restore: the checkpoint was written for another schedule: /);
      }
      expect(other.checkpoint().step).toBe(0);
      tf.dispose(Object.values(other.checkpoint().tensors));
      other.dispose();
      other.model.dispose();
    }
    const same = make(HYP);
    same.restore(midFirstEpoch);
    expect(same.checkpoint()).toMatchObject({ epoch: 0, epochStep: 2, step: 2 });
    // A checkpoint from before the schedule was recorded is checked by its position alone, as before.
    const { schedule: _, ...old } = midFirstEpoch as typeof midFirstEpoch & { schedule?: unknown };
    same.restore(old as typeof midFirstEpoch);
    tf.dispose(Object.values(checkpoint.tensors));
    for (const t of [written, same]) {
      t.dispose();
      t.model.dispose();
    }
    dispose();
  });

  it('refuses an empty evaluation split in the constructor, saying why (item 13)', () => {
    const { data, dispose } = toyData(32, 23);
    const net = speedyConvNet({ seed: 3, hyp: HYP, imageSize: SIDE });
    const before = liveTensors();
    const empty = { images: tf.zeros([0, SIDE, SIDE, 3]) as tf.Tensor4D, targets: tf.zeros([0, 10]) as tf.Tensor2D };
    expect(() => new PublicTrainer(net, { train: data.train, eval: empty }, { evalEveryEpoch: false })).toThrow(
      'Trainer: data.eval holds no images (shape [0,16,16,3]); the trainer evaluates after the last epoch (and after every epoch with evalEveryEpoch), so it needs at least one',
    );
    tf.dispose([empty.images, empty.targets]);
    expect(liveTensors()).toBe(before);
    net.model.dispose();
    dispose();
  });

  it('refuses a padAmount the seed crop cannot use in the constructor, naming the key (item 12)', () => {
    const { data, dispose } = toyData(32, 24);
    // The seed crops 16x16 windows from images padded by padAmount: an even crop needs them larger than itself.
    const noPad = speedyConvNet({ seed: 3, hyp: { ...HYP, net: { ...HYP.net, padAmount: 0 } }, imageSize: SIDE });
    const before = liveTensors();
    expect(() => new PublicTrainer(noPad, { train: data.eval, eval: data.eval })).toThrow(
      "Trainer: hyp.net.padAmount must be at least 1 for the seed's random 16x16 crop (an even crop needs padded images larger than itself), got 0",
    );
    expect(liveTensors()).toBe(before);
    noPad.model.dispose();
    dispose();
  });

  it('refuses a model with no trainable weight in the constructor, and checkpoint() after dispose() (item 18)', () => {
    const { data, dispose } = toyData(32, 25);
    const net = speedyConvNet({ seed: 3, hyp: HYP, imageSize: SIDE });
    const before = liveTensors();
    net.model.trainable = false;
    expect(() => new PublicTrainer(net, data)).toThrow(
      'Trainer: the model has no trainable weight (model.trainableWeights is empty); there is nothing to train',
    );
    net.model.trainable = true;
    const trainer = new PublicTrainer(net, data);
    trainer.dispose();
    expect(() => trainer.checkpoint()).toThrow(
      'Trainer.checkpoint: this trainer has been disposed (its optimiser state is gone); take the checkpoint before dispose()',
    );
    expect(liveTensors()).toBe(before);
    net.model.dispose();
    dispose();
  });
});
