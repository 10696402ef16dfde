import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { ConvGroup } from '../../src/layers/conv-group.js';
import { DiscreteAction } from '../../src/layers/discrete-action.js';
import { Linear } from '../../src/layers/linear.js';
import { speedyConvNet } from '../../src/models/speedy-convnet.js';
import { crossEntropy } from '../../src/ops/loss.js';
import { SEED_RECIPE, plainLossStage, plainRecipe, recipeFor } from '../../src/train/recipes.js';
import type { StageContext } from '../../src/train/stages.js';
import type { TrainData } from '../../src/train/trainable.js';
import { Trainer } from '../../src/train/trainer.js';
import { SEED_HYP } from '../../src/models/hyp.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

const SIDE = 8;

/** A stock tfjs model: conv2d, batchNormalization, dense; biases, no temperature. */
function stockModel(seed: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [SIDE, SIDE, 3],
        filters: 8,
        kernelSize: 3,
        padding: 'same',
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
      }),
      tfl.layers.batchNormalization({}),
      tfl.layers.reLU({}),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten({}),
      tfl.layers.dense({ units: 4, kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
}

/** A learnable toy task: the class is which image quadrant is brightest (padded by 2 for the crop). */
function toyData(n: number, seed: number): { data: TrainData; dispose: () => void } {
  const make = (count: number, s: number, pad: number) =>
    tf.tidy(() => {
      const labels = tf.randomUniform([count], 0, 4, 'int32', s) as tf.Tensor1D;
      const half = SIDE / 2;
      const masks = tf.concat(
        [0, 1, 2, 3].map((q) => {
          const m = tf.buffer([1, SIDE, SIDE, 1]);
          for (let y = 0; y < half; y++) for (let x = 0; x < half; x++) m.set(2, 0, y + half * (q >> 1), x + half * (q & 1), 0);
          return m.toTensor();
        }),
        0,
      );
      let images = tf.add(tf.randomNormal([count, SIDE, SIDE, 3], 0, 0.5, 'float32', s + 1), tf.gather(masks, labels)) as tf.Tensor4D;
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
      return { images, targets: tf.cast(tf.oneHot(labels, 4), 'float32') as tf.Tensor2D };
    });
  const data = { train: make(n, seed, 2), eval: make(32, seed + 7, 0) };
  return { data, dispose: () => tf.dispose([data.train.images, data.train.targets, data.eval.images, data.eval.targets]) };
}

const HYP = { opt: { batchSize: 16 }, misc: { trainEpochs: 2, evalBatchSize: 32 } };

describe('recipeFor: the seed recipe for the library layers, the plain one for stock tfjs layers', () => {
  it('chooses from the layers, searching nested models, and says why', () => {
    const stock = stockModel(1);
    expect(recipeFor(stock).recipe.name).toBe('plain');
    expect(recipeFor(stock).reason).toMatch(/none of the library's layers/);

    const net = speedyConvNet({ seed: 1, hyp: { net: { baseDepth: 4 } }, imageSize: 16 });
    const chosen = recipeFor(net.model);
    expect(chosen.recipe).toBe(SEED_RECIPE);
    expect(chosen.reason).toMatch(/built from the library's layers: WhiteningConv '.*' and \d+ more/);

    // A stock body with the library's temperature head, and the same inside a nested model.
    const input = tfl.input({ shape: [SIDE, SIDE, 3] });
    const pooled = tfl.layers.globalAveragePooling2d({}).apply(tfl.layers.conv2d({ filters: 4, kernelSize: 3 }).apply(input));
    const withHead = tfl.model({
      inputs: input,
      outputs: new Linear({ name: 'head', units: 4, temperature: 1 / 12 }).apply(pooled) as tfl.SymbolicTensor,
    });
    expect(recipeFor(withHead).reason).toBe("the model is built from the library's layers: Linear 'head'");
    const outer = tfl.input({ shape: [SIDE, SIDE, 3] });
    const nested = tfl.model({ inputs: outer, outputs: withHead.apply(outer) as tfl.SymbolicTensor });
    expect(recipeFor(nested).recipe.name).toBe('seed');

    // Blocks (composite layers) and discrete actions count too.
    const blockInput = tfl.input({ shape: [SIDE, SIDE, 3] });
    const block = new ConvGroup({ name: 'block', channelsOut: 4, seed: 1 }).apply(blockInput) as tfl.SymbolicTensor;
    const acted = new DiscreteAction({ name: 'act', seed: 2 }).apply(block) as tfl.SymbolicTensor;
    const blocky = tfl.model({
      inputs: blockInput,
      outputs: tfl.layers.dense({ units: 4 }).apply(tfl.layers.globalAveragePooling2d({}).apply(acted)) as tfl.SymbolicTensor,
    });
    expect(recipeFor(blocky).reason).toBe("the model is built from the library's layers: ConvGroup 'block', DiscreteAction 'act'");
    // Disposing the outer model disposes the nested one.
    for (const m of [stock, net.model, nested, blocky]) m.dispose();
  });

  it('plainRecipe checks its options, naming the one at fault', () => {
    expect(plainRecipe().description).toBe(
      'the mean label-smoothed cross-entropy, Nesterov SGD (momentum 0.9, decay 0.0005) at peak lr 0.02 under OneCycle, no EMA',
    );
    expect(plainRecipe({ lr: 0.01, ema: true }).stages.ema).toBe(SEED_RECIPE.stages.ema);
    expect(() => plainRecipe({ lr: -1 })).toThrow("plainRecipe: argument 'lr' must be a finite number >= 0, got -1");
    expect(() => plainRecipe({ momentum: 0 })).toThrow("plainRecipe: argument 'momentum' must be above 0 for Nesterov momentum, got 0");
    expect(() => plainRecipe({ learningRate: 0.1 } as never)).toThrow(
      "plainRecipe: unknown option 'learningRate'; expected one of lr, momentum, weightDecay, ema",
    );
    expect(() => plainRecipe({ ema: 'yes' } as never)).toThrow("plainRecipe: argument 'ema' must be true or false, got 'yes'");
  });
});

describeEachBackend('plainLossStage', () => {
  it('is the mean label-smoothed cross-entropy, each micro-batch weighted by its share of the batch', async () => {
    const logits = tf.tensor2d([
      [2, 0, -1, 0.5],
      [0, 1, 0, 0],
      [-1, 3, 0.2, 0],
      [0.3, 0.1, 0, 2],
    ]);
    const targets = tf.cast(tf.oneHot(tf.tensor1d([0, 1, 3, 3], 'int32'), 4), 'float32') as tf.Tensor2D;
    const context = { hyp: SEED_HYP, batchSize: 4 } as unknown as StageContext;
    const args = { batchScale: 128, context };
    const whole = plainLossStage(logits as tf.Tensor2D, targets, args);
    const expected = tf.mean(crossEntropy(logits, targets, 0.1));
    const halves = [0, 2].map((start) => plainLossStage(tf.slice(logits, start, 2), tf.slice(targets, start, 2), args));
    const [w, e, h0, h1] = (await Promise.all([whole, expected, ...halves].map(async (t) => (await t.data())[0]!))) as [
      number,
      number,
      number,
      number,
    ];
    expect(w).toBeCloseTo(e, 6);
    expect(h0 + h1).toBeCloseTo(e, 6);
    expect(plainLossStage.perExample).toBeUndefined();
    tf.dispose([logits, targets, whole, expected, ...halves]);
  });
});

describeEachBackend('Trainer with a model of stock tfjs layers', () => {
  it('trains it with the plain recipe by default, and says so in trainer.recipe and the result', async () => {
    const { data, dispose } = toyData(128, 1);
    const model = stockModel(1);
    const before = liveTensors();
    const losses: number[] = [];
    const trainer = new Trainer({ model, hyp: { ...HYP, misc: { ...HYP.misc, trainEpochs: 4 } } }, data, {
      seed: 1,
      logEvery: 1,
      callbacks: { onStep: (s) => void (s.loss !== undefined && losses.push(s.loss)) },
    });
    expect(trainer.recipe.name).toBe('plain');
    expect(trainer.recipe.line).toBe(
      "recipe: plain (the model has none of the library's layers (Conv, Linear, BatchNorm, DiscreteAction, ...)): " +
        'the mean label-smoothed cross-entropy, Nesterov SGD (momentum 0.9, decay 0.0005) at peak lr 0.02 under OneCycle, no EMA',
    );
    const result = await trainer.run();
    expect(result.stopReason).toBe('completed');
    expect(result.recipe).toEqual(trainer.recipe);
    expect(result.records.map((r) => r.emaValAcc)).toEqual([null, null, null, null]);
    expect(trainer.networkEMA).toBeNull();
    expect(Math.min(...losses.slice(-3))).toBeLessThan(losses[0]!);
    expect(result.records.at(-1)!.valAcc).toBeGreaterThan(0.45); // 4 classes: chance is 0.25
    trainer.dispose();
    expect(liveTensors()).toBe(before);
    model.dispose();
    dispose();
  });

  it("runs the recipe it is given, names the stages of one's own, and refuses a seed knob the plain recipe would ignore", () => {
    const { data, dispose } = toyData(32, 2);
    const model = stockModel(2);
    const seeded = new Trainer({ model, hyp: HYP }, data, { recipe: 'seed' });
    expect(seeded.recipe.name).toBe('seed');
    expect(seeded.recipe.reason).toBe("TrainOptions.recipe 'seed'");
    seeded.dispose();
    const own = new Trainer({ model, hyp: HYP }, data, {
      recipe: plainRecipe({ lr: 0.01, ema: true }),
      stages: { evaluate: SEED_RECIPE.stages.evaluate },
    });
    expect(own.recipe.line).toMatch(
      /^recipe: plain \(TrainOptions.recipe\): .* at peak lr 0.01 under OneCycle, the seed's EMA; stages of your own: evaluate$/,
    );
    expect(own.stages.ema).toBe(SEED_RECIPE.stages.ema);
    own.dispose();
    expect(() => new Trainer({ model, hyp: { ...HYP, opt: { ...HYP.opt, nonBiasLr: 0.01 } } }, data)).toThrow(
      "Trainer: hyp.opt.nonBiasLr is 0.01, but the plain recipe's optimizer stage does not use it (set its learning rate, momentum and decay with plainRecipe({ lr, momentum, weightDecay })); leave it at the seed's 0.002978515625, or train with recipe: 'seed'",
    );
    expect(() => new Trainer({ model, hyp: { ...HYP, misc: { ...HYP.misc, ema: { epochs: 1 } } } }, data, { recipe: 'plain' })).toThrow(
      "hyp.misc.ema.epochs is 1, but the plain recipe's ema stage does not use it (it runs no EMA unless plainRecipe({ ema: true }))",
    );
    // A stage of one's own in that place may read the key: not refused.
    const withOwnOptimizer = new Trainer({ model, hyp: { ...HYP, opt: { ...HYP.opt, nonBiasLr: 0.01 } } }, data, {
      stages: { optimizer: SEED_RECIPE.stages.optimizer },
    });
    expect(withOwnOptimizer.recipe.ownStages).toEqual(['optimizer']);
    withOwnOptimizer.dispose();
    expect(() => new Trainer({ model, hyp: HYP }, data, { recipe: 'fast' as never })).toThrow(
      "Trainer: recipe must be 'auto', 'seed', 'plain' or a recipe such as plainRecipe({ lr: 0.02 }), got 'fast'",
    );
    expect(() => new Trainer({ model, hyp: HYP }, data, { maxLossRise: 1 })).toThrow(
      'Trainer: maxLossRise must be a number above 1 (Infinity turns the divergence check off), got 1',
    );
    model.dispose();
    dispose();
  });
});

describeEachBackend('Trainer on a run whose loss rises far above its start', () => {
  it('stops it as diverged, naming the knob to turn, and leaves no tensor behind; maxLossRise: Infinity lets it run', async () => {
    const { data, dispose } = toyData(64, 3);
    const model = stockModel(3);
    const before = liveTensors();
    const losses: number[] = [];
    const trainer = new Trainer({ model, hyp: { ...HYP, misc: { ...HYP.misc, trainEpochs: 4 } } }, data, {
      seed: 1,
      logEvery: 1,
      recipe: plainRecipe({ lr: 30 }),
      callbacks: { onStep: (s) => void (s.loss !== undefined && losses.push(s.loss)) },
    });
    const result = await trainer.run();
    expect(result.stopReason).toBe('diverged');
    expect(result.message).toMatch(
      /^training loss [\d.e+]+ at step \d+ is over 10x the larger of its first logged value [\d.]+ and chance level ln\(4\) = 1.386: the run diverged under the plain recipe; lower the learning rate: recipe: plainRecipe\(\{ lr \}\) with lr below its 30 \(TrainOptions.maxLossRise sets this check\)$/,
    );
    expect(losses.at(-1)!).toBeGreaterThan(10 * Math.max(losses[0]!, Math.log(4)));
    expect(losses.slice(0, -1).every((l) => l <= 10 * Math.max(losses[0]!, Math.log(4)))).toBe(true);
    expect(result.records.length).toBeLessThan(4);
    trainer.dispose();
    expect(liveTensors()).toBe(before);

    const unguarded = new Trainer({ model, hyp: { ...HYP, misc: { ...HYP.misc, trainEpochs: 4 } } }, data, {
      seed: 1,
      recipe: plainRecipe({ lr: 30 }),
      maxLossRise: Number.POSITIVE_INFINITY,
    });
    expect((await unguarded.run()).stopReason).not.toBe('diverged');
    unguarded.dispose();
    model.dispose();
    dispose();
  });
});
