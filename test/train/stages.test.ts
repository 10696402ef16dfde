import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { compactImages } from '../../src/data/compact.js';
import { ConvGroup } from '../../src/layers/conv-group.js';
import { DiscreteAction } from '../../src/layers/discrete-action.js';
import { Linear } from '../../src/layers/linear.js';
import { GlobalMaxPool } from '../../src/layers/pooling.js';
import type { HypOverrides } from '../../src/models/hyp.js';
import { crossEntropy, seedLoss } from '../../src/ops/loss.js';
import {
  SEED_STAGES,
  resolveStages,
  seedBatches,
  seedBatchesStage,
  type BatchesStage,
  type LossStage,
  type StageCheckpoint,
  type StageState,
} from '../../src/train/stages.js';
import type { TrainData } from '../../src/train/trainable.js';
import { Trainer } from '../../src/train/trainer.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

const SIDE = 8;

/** A learnable toy task: the class is whether the left or the right half is brighter. */
function toyData(n: number, seed: number): { data: TrainData; dispose: () => void } {
  const make = (count: number, s: number, pad: number) =>
    tf.tidy(() => {
      const labels = tf.randomUniform([count], 0, 2, 'int32', s) as tf.Tensor1D;
      const noise = tf.randomNormal([count, SIDE, SIDE, 3], 0, 0.5, 'float32', s + 1);
      const left = tf.concat([tf.fill([1, SIDE, SIDE / 2, 1], 2), tf.zeros([1, SIDE, SIDE / 2, 1])], 2);
      const masks = tf.concat([left, tf.reverse(left, 2)], 0);
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
  const data = { train: make(n, seed, 2), eval: make(16, seed + 7, 0) };
  return { data, dispose: () => tf.dispose([data.train.images, data.train.targets, data.eval.images, data.eval.targets]) };
}

/** One conv group, its discrete action and a linear head, named so checkpoints match across models. */
function tinyModel(seed: number): tfl.LayersModel {
  const input = tfl.input({ shape: [SIDE, SIDE, 3] });
  const y = new ConvGroup({ name: 'block_1', channelsOut: 4, seed }).apply(input) as tfl.SymbolicTensor;
  const x = new DiscreteAction({ name: 'action_1', seed: seed + 1 }).apply(y) as tfl.SymbolicTensor;
  const logits = new Linear({ name: 'head', units: 10, temperature: 1 / 12, seed: seed + 2 }).apply(
    new GlobalMaxPool({ name: 'pool' }).apply(x),
  ) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits });
}

/** Batches of 8, two epochs (3 steps each), the EMA in the second. */
const HYP: HypOverrides = { opt: { batchSize: 8 }, misc: { trainEpochs: 2, evalBatchSize: 16, ema: { epochs: 1, everyNSteps: 2 } } };

/**
 * A loss stage of a user's own, with state: the seed's loss weighted up by 5% per call (a made-up
 * curriculum), and a running sum of the losses it returned, kept on the backend.
 */
class GrowingLoss implements StageCheckpoint {
  calls = 0;
  total: tf.Scalar = tf.keep(tf.scalar(0));
  readonly loss: LossStage = (logits, targets, { batchScale, context }) => {
    const value = tf.mul(
      seedLoss(logits, targets, { labelSmoothing: context.hyp.opt.labelSmoothing, batchScale }),
      1 + 0.05 * this.calls,
    ) as tf.Scalar;
    this.calls++;
    const total = tf.keep(tf.add(this.total, value) as tf.Scalar);
    this.total.dispose();
    this.total = total;
    return value;
  };

  saveState(): StageState {
    return { json: { calls: this.calls }, tensors: { total: tf.clone(this.total) } };
  }

  loadState(state: StageState): void {
    const calls = (state.json as { calls?: unknown } | null)?.calls;
    const total = state.tensors?.['total'];
    if (!Number.isSafeInteger(calls) || total == null)
      throw new Error(`expected { calls } and a 'total' tensor, got ${JSON.stringify(state.json)}`);
    this.calls = calls as number;
    this.total.dispose();
    this.total = tf.keep(tf.clone(total) as tf.Scalar);
  }

  /** The stage as the Trainer takes it: the loss function, carrying the checkpoint interface. */
  stage(): LossStage & StageCheckpoint {
    return Object.assign(this.loss, { saveState: () => this.saveState(), loadState: (s: StageState) => this.loadState(s) });
  }

  dispose(): void {
    this.total.dispose();
  }
}

async function weightsOf(trainer: Trainer): Promise<number[][]> {
  return Promise.all(trainer.model.weights.map(async (w) => Array.from(await w.read().data())));
}

describe('resolveStages', () => {
  it("gives the seed's stage wherever none is given, and takes the ones given", () => {
    expect(resolveStages(undefined)).toEqual(SEED_STAGES);
    const batches: BatchesStage = (args) => seedBatchesStage(args);
    const resolved = resolveStages({ batches, loss: undefined });
    expect(resolved.batches).toBe(batches);
    expect(resolved.loss).toBe(SEED_STAGES.loss);
  });

  it('refuses an unknown stage and a stage of the wrong kind, saying what it expected', () => {
    expect(() => resolveStages({ augment: () => undefined } as never)).toThrow(
      "Trainer: unknown stage 'augment'; expected one of loss, batches, optimizer, ema, evaluate",
    );
    expect(() => resolveStages({ loss: 3 } as never)).toThrow('Trainer: stages.loss must be a function, got number');
    expect(() => resolveStages({ ema: { isDue: () => true } } as never)).toThrow(
      'Trainer: stages.ema must be an object with startEpoch, isDue and create functions',
    );
    const withState = Object.assign(SEED_STAGES.optimizer.bind(null), { saveState: () => ({}), loadState: () => undefined });
    expect(() => resolveStages({ optimizer: withState })).toThrow(
      'Trainer: stages.optimizer keeps its state in the optimiser it makes (saveState/loadState of TrainOptimizer), not on the stage itself',
    );
    expect(() => resolveStages({ loss: Object.assign(() => tf.scalar(0), { perExample: 2 }) as never })).toThrow(
      'Trainer: stages.loss.perExample must be a function (the per-example loss to log), got number',
    );
  });
});

describeEachBackend(
  'Trainer with a swapped stage',
  () => {
    it('uses a batches stage of your own: its batches are the ones trained on', async () => {
      const { data, dispose } = toyData(24, 3);
      const model = tinyModel(1);
      const seen: number[] = [];
      // No augmentation: the centre of the padded images, in an order drawn from the generator it is given.
      const flipOnly: BatchesStage = function* ({ steps, train, random, context }) {
        const pad = (train.images.shape[1] - context.imageSize) / 2;
        const order = random.permutation(train.images.shape[0]);
        try {
          for (let s = 0; s < steps; s++) {
            const idx = tf.slice(order, s * context.batchSize, context.batchSize);
            const inputs = tf.tidy(
              () =>
                tf.slice(
                  tf.gather(train.images as tf.Tensor4D /* toyData: float32 on the device, not compact */, idx),
                  [0, pad, pad, 0],
                  [-1, context.imageSize, context.imageSize, -1],
                ) as tf.Tensor4D,
            );
            const targets = tf.gather(train.targets, idx) as tf.Tensor2D;
            idx.dispose();
            seen.push(s);
            yield { inputs, targets };
          }
        } finally {
          order.dispose();
        }
      };
      const before = liveTensors();
      const trainer = new Trainer({ model, hyp: HYP }, data, { seed: 2, stages: { batches: flipOnly } });
      const result = await trainer.run();
      expect(result.stopReason).toBe('completed');
      expect(result.records.map((r) => r.steps)).toEqual([3, 6]);
      expect(seen).toEqual([0, 1, 2, 0, 1, 2]);
      trainer.dispose();
      expect(liveTensors()).toBe(before);
      model.dispose();
      dispose();
    }, 600_000); // the file's first training run: on software WebGPU it compiles every pipeline, minutes on a busy machine

    it("adds an augmentation of your own to the seed's batches (seedBatches({ augment })), and a run with it resumes exactly", async () => {
      const { data, dispose } = toyData(24, 6);
      let calls = 0;
      // A brightness jitter, as in docs/extending.md, counting its batches.
      const jitter = seedBatches({
        augment: ({ inputs, targets }, random) => {
          calls++;
          const shift = tf.mul(tf.sub(random.uniform([inputs.shape[0], 1, 1, 1]), 0.5), 0.4);
          return { inputs: tf.add(inputs, shift) as tf.Tensor4D, targets };
        },
      });
      const straight = new Trainer({ model: tinyModel(5), hyp: HYP }, data, { seed: 6, stages: { batches: jitter } });
      await straight.run();
      expect(calls).toBe(6);
      const expected = await weightsOf(straight);
      const plain = new Trainer({ model: tinyModel(5), hyp: HYP }, data, { seed: 6 });
      await plain.run();
      expect(await weightsOf(plain)).not.toEqual(expected);

      const first = new Trainer({ model: tinyModel(5), hyp: HYP }, data, {
        seed: 6,
        stages: { batches: jitter },
        callbacks: {
          onStep: (s) => {
            if (s.step === 4) first.requestStop();
          },
        },
      });
      expect((await first.run()).stopReason).toBe('stopped');
      const checkpoint = first.checkpoint();
      const resumed = new Trainer({ model: tinyModel(50), hyp: HYP }, data, { seed: 60, stages: { batches: jitter } });
      resumed.restore(checkpoint);
      tf.dispose(Object.values(checkpoint.tensors));
      expect((await resumed.run()).stopReason).toBe('completed');
      const actual = await weightsOf(resumed);
      actual.forEach((w, i) => expect(w, straight.model.weights[i]!.originalName).toEqual(expected[i]));
      for (const t of [straight, plain, first, resumed]) {
        t.dispose();
        t.model.dispose();
      }
      // The same stage on a compact set (what the CLI trains from): the augmentation runs on its batches too.
      calls = 0;
      const bytes = Uint8Array.from({ length: 24 * SIDE * SIDE * 3 }, (_, i) => (i * 97) % 256);
      const compact = {
        train: {
          images: compactImages(bytes, [24, SIDE, SIDE, 3], { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], pad: 2 }),
          targets: data.train.targets,
        },
        eval: data.eval,
      };
      const onCompact = new Trainer({ model: tinyModel(5), hyp: HYP }, compact, { seed: 6, stages: { batches: jitter } });
      expect((await onCompact.run()).stopReason).toBe('completed');
      expect(calls).toBe(6);
      onCompact.dispose();
      onCompact.model.dispose();
      compact.train.images.dispose();
      expect(() => seedBatches({ augment: 3 as never })).toThrow(
        'seedBatches: augment must be a function (batch, random) => batch, got number',
      );
      dispose();
    });

    it("checks the hyperparameters against the seed's crop and cutmix only when the seed's batches stage runs", () => {
      const { data, dispose } = toyData(24, 3);
      const model = tinyModel(1);
      // 8x8 crops hold the seed's even cutmix square only up to 7.
      const hyp: HypOverrides = { ...HYP, net: { cutmixSize: SIDE } };
      expect(() => new Trainer({ model, hyp }, data)).toThrow(
        `Trainer: hyp.net.cutmixSize ${SIDE} does not fit the ${SIDE}x${SIDE} training crops`,
      );
      const own: BatchesStage = (args) => seedBatchesStage({ ...args, context: { ...args.context, hyp: { ...args.context.hyp } } });
      const trainer = new Trainer({ model, hyp }, data, { stages: { batches: own } });
      trainer.dispose();
      model.dispose();
      dispose();
    });

    it('puts back the states already loaded when a later stage refuses its own: a refused restore changes nothing', () => {
      const { data, dispose } = toyData(24, 7);
      const writerLoss = new GrowingLoss();
      writerLoss.calls = 4;
      const writer = new Trainer({ model: tinyModel(3), hyp: HYP }, data, { seed: 4, stages: { loss: writerLoss.stage() } });
      const checkpoint = writer.checkpoint();
      const targetLoss = new GrowingLoss();
      targetLoss.calls = 7;
      const target = new Trainer({ model: tinyModel(3), hyp: HYP }, data, { seed: 4, stages: { loss: targetLoss.stage() } });
      const before = liveTensors();
      // The loss stage (first in stage order) takes its state; the optimiser then refuses one schedule step too few.
      const bad = { ...checkpoint, stages: { ...checkpoint.stages, optimizer: { step: 0, scheduleSteps: [0] } } };
      expect(() => target.restore(bad)).toThrow(/^Trainer\.restore: the optimizer stage refused its state: SGD\.loadState/);
      expect(targetLoss.calls).toBe(7);
      expect(liveTensors()).toBe(before);
      target.restore(checkpoint);
      expect(targetLoss.calls).toBe(4);
      tf.dispose(Object.values(checkpoint.tensors));
      for (const t of [writer, target]) {
        t.dispose();
        t.model.dispose();
      }
      for (const l of [writerLoss, targetLoss]) l.dispose();
      dispose();
    });

    it('logs the loss as the loss stage says: the seed sum divided back per example, a mean as it is', async () => {
      const { data, dispose } = toyData(24, 6);
      const firstLoss = async (loss?: LossStage) => {
        let logged = Number.NaN;
        const trainer = new Trainer({ model: tinyModel(4), hyp: HYP }, data, {
          seed: 2,
          logEvery: 1,
          ...(loss ? { stages: { loss } } : {}),
          callbacks: {
            onStep: (s) => {
              logged = s.loss!;
              trainer.requestStop();
            },
          },
        });
        await trainer.run();
        trainer.dispose();
        trainer.model.dispose();
        return logged;
      };
      // Each pass's share of the batch mean (micro-batches sum their gradients), no perExample: logged as it is.
      const meanLoss: LossStage = (logits, targets, { context }) =>
        tf.tidy(() =>
          tf.mul(tf.mean(crossEntropy(logits, targets, context.hyp.opt.labelSmoothing)), logits.shape[0] / context.batchSize),
        ) as tf.Scalar;
      const seed = await firstLoss();
      expect(seed).toBeGreaterThan(0.5); // about ln 10 at the start
      expect(Math.abs((await firstLoss(meanLoss)) - seed) / seed).toBeLessThanOrEqual(1e-5);
      dispose();
    });

    it('refuses a batches stage that runs out before the epoch ends, saying how many it gave', async () => {
      const { data, dispose } = toyData(24, 3);
      const model = tinyModel(1);
      const short: BatchesStage = (args) => {
        const all = seedBatchesStage(args);
        let given = 0;
        return {
          next: () => {
            if (given++ < 2) return all.next();
            all.return?.(undefined);
            return { done: true, value: undefined };
          },
        };
      };
      const trainer = new Trainer({ model, hyp: HYP }, data, { seed: 2, stages: { batches: short } });
      await expect(trainer.run()).rejects.toThrow(
        'Trainer: stages.batches gave 2 batches for epoch 0, which needs 3 (hyp.opt.batchSize 8)',
      );
      trainer.dispose();
      model.dispose();
      dispose();
    });

    it('checkpoints a loss stage of your own through StageCheckpoint and resumes it exactly', async () => {
      const { data, dispose } = toyData(24, 5);
      const straightLoss = new GrowingLoss();
      const straight = new Trainer({ model: tinyModel(3), hyp: HYP }, data, { seed: 4, stages: { loss: straightLoss.stage() } });
      await straight.run();
      // The stage was used: once per step (no micro-batches), and its weighting changed the run.
      expect(straightLoss.calls).toBe(6);
      const expected = await weightsOf(straight);
      const expectedTotal = (await straightLoss.total.data())[0]!;

      const firstLoss = new GrowingLoss();
      const first = new Trainer({ model: tinyModel(3), hyp: HYP }, data, {
        seed: 4,
        stages: { loss: firstLoss.stage() },
        callbacks: {
          onStep: (s) => {
            if (s.step === 4) first.requestStop();
          },
        },
      });
      expect((await first.run()).stopReason).toBe('stopped');
      const checkpoint = first.checkpoint();
      expect(checkpoint.stages?.['loss']).toEqual({ calls: 4 });
      expect(Object.keys(checkpoint.stages!)).toEqual(['loss', 'optimizer', 'ema']); // beside the optimiser's and the EMA's
      expect(Object.keys(checkpoint.tensors).filter((k) => k.startsWith('stages/loss/'))).toEqual(['stages/loss/total']);

      // The seed's loss keeps no state: a checkpoint holding the loss stage's is refused, before anything changes.
      const plain = new Trainer({ model: tinyModel(3), hyp: HYP }, data, { seed: 4 });
      expect(() => plain.restore(checkpoint)).toThrow(
        'Trainer.restore: the checkpoint holds state for the loss stage, which keeps none in this trainer',
      );
      // And a stateful stage needs its state.
      const plainCheckpoint = plain.checkpoint();
      const needsState = new GrowingLoss();
      const strict = new Trainer({ model: tinyModel(3), hyp: HYP }, data, { seed: 4, stages: { loss: needsState.stage() } });
      expect(() => strict.restore(plainCheckpoint)).toThrow("Trainer.restore: the checkpoint holds no state for this trainer's loss stage");
      tf.dispose(Object.values(plainCheckpoint.tensors));

      // A fresh stage and other seeds: the checkpoint carries the stage's state with the rest.
      const resumedLoss = new GrowingLoss();
      const resumed = new Trainer({ model: tinyModel(30), hyp: HYP }, data, { seed: 40, stages: { loss: resumedLoss.stage() } });
      resumed.restore(checkpoint);
      tf.dispose(Object.values(checkpoint.tensors));
      expect(resumedLoss.calls).toBe(4);
      expect((await resumed.run()).stopReason).toBe('completed');
      expect(resumedLoss.calls).toBe(6);
      expect((await resumedLoss.total.data())[0]).toBe(expectedTotal);
      const actual = await weightsOf(resumed);
      actual.forEach((w, i) => expect(w, straight.model.weights[i]!.originalName).toEqual(expected[i]));
      for (const t of [straight, first, plain, strict, resumed]) {
        t.dispose();
        t.model.dispose();
      }
      for (const l of [straightLoss, firstLoss, needsState, resumedLoss]) l.dispose();
      dispose();
    });
  },
  ['wasm', 'webgpu'],
  'loop logic only; the cpu backend needs minutes for training runs',
);
