import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CUSTOM_BLOCK_HELP, UsageError, parseCustomBlockArgs } from '../../examples/custom-block/args.js';
import {
  customBlockNet,
  evaluateCustomBlockNet,
  initCustomBlockNet,
  syntheticDataset,
  trainCustomBlockNet,
} from '../../examples/custom-block/model.js';
import { ResidualBlock } from '../../examples/custom-block/residual-block.js';
import { Adam, adamStage, brightnessJitter, brightnessStage, focalLoss, tfjsOptimizerStage } from '../../examples/custom-block/stages.js';
import {
  DeviceRandom,
  SEED_HYP,
  Trainer,
  compactImages,
  crossEntropy,
  normalisationTable,
  predictWithFlipTTA,
  reflectPad,
  resolveHyp,
  seedBatchesStage,
  type AnyLabelledImages,
  type Batch,
  type BatchesStage,
  type StageContext,
  type TrainOptions,
} from '../../src/index.js';
import { maxRelativeError, seededUniform } from '../helpers/assert.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

// Tiny shapes: 16x16 images (the smallest the three pooling blocks allow), 4/8/8 channels, 4 classes.
const tiny = { imageSize: 16, widths: [4, 8, 8] as [number, number, number], classes: 4, seed: 3 };

describeEachBackend('custom-block example', () => {
  it('trains (loss decreases), saves and loads back, and leaks no tensors', async () => {
    const before = liveTensors();
    const data = syntheticDataset(32, 8, 16, 4, 1);
    const net = customBlockNet(tiny);
    await initCustomBlockNet(net, data.train.images, 0);

    // The blocks report their sublayers' weights under unique, scoped names.
    const names = net.model.weights.map((w) => w.originalName);
    expect(names).toContain('residual_block_2/conv1/weight');
    expect(names).toContain('residual_block_2/shortcut/weight');
    expect(names).toContain('residual_block_2/state_norm/running_var');
    expect(names).toContain('residual_block_3/norm2/bias');
    expect(names.some((n) => n.startsWith('residual_block_3/state'))).toBe(false);
    expect(new Set(names).size).toBe(names.length);
    const trainable = net.model.trainableWeights.map((w) => w.originalName);
    expect(trainable).toContain('residual_block_2/norm1/bias');
    expect(trainable).not.toContain('residual_block_2/norm1/weight'); // frozen at 1, as the seed's
    expect(trainable).not.toContain('initial_block_whiten/weight');

    const block2Before = await net.blocks[0].conv1.weight.read().data();
    // The loss on the training images with the same noise before and after: the step losses are too noisy to
    // compare over 16 steps (the discrete actions' noise is as large as the activations).
    const streams = net.discreteActions.map((d) => d.random.getState());
    const sameNoiseLoss = async () => {
      net.discreteActions.forEach((d, i) => d.random.setState(streams[i]!));
      const loss = tf.tidy(() => tf.mean(crossEntropy(predictWithFlipTTA(net.model, data.train.images), data.train.targets)));
      const value = (await loss.data())[0]!;
      loss.dispose();
      return value;
    };
    const lossBefore = await sameNoiseLoss();
    const losses: number[] = [];
    // 32 images in batches of 8: 4 steps per epoch, 16 in all; the EMA runs from the start (fewer epochs than ema.epochs).
    const result = await trainCustomBlockNet(net, data, {
      hyp: { opt: { batchSize: 8 }, misc: { trainEpochs: 4, evalBatchSize: 8 } },
      seed: 5,
      logEvery: 1,
      callbacks: {
        onStep: (s) => {
          losses.push(s.loss!);
        },
      },
    });
    expect(result.stopReason).toBe('completed');
    expect(result.records.map((r) => r.steps)).toEqual([4, 8, 12, 16]);
    expect(losses).toHaveLength(16);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(await sameNoiseLoss()).toBeLessThan(0.9 * lossBefore);
    // The custom block learned (through its state prediction and the discrete action's std).
    expect(maxRelativeError(await net.blocks[0].conv1.weight.read().data(), block2Before)).toBeGreaterThan(1e-4);
    // Evaluated with flip TTA after every epoch, the live network and (from the first EMA step on) the EMA.
    for (const r of result.records) {
      expect(r.valAcc).toBeGreaterThanOrEqual(0);
      expect(r.valAcc).toBeLessThanOrEqual(1);
    }
    expect(result.records.at(-1)!.emaValAcc).not.toBeNull();
    const acc = await evaluateCustomBlockNet(net, data.eval);
    expect(acc).toBeGreaterThanOrEqual(0);
    expect(acc).toBeLessThanOrEqual(1);

    let saved: tf.io.ModelArtifacts | undefined;
    await net.model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    expect(saved!.weightSpecs!.map((s) => s.name).sort()).toEqual([...names].sort());
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const loadedBlock = loaded.getLayer('residual_block_2');
    expect(loadedBlock).toBeInstanceOf(ResidualBlock);
    expect((loadedBlock as ResidualBlock).statePredDim).toBe(8);
    const byName = new Map(loaded.weights.map((w) => [w.originalName, w]));
    for (const w of net.model.weights) {
      expect(Array.from(await byName.get(w.originalName)!.read().data()), w.originalName).toEqual(Array.from(await w.read().data()));
    }
    // A loaded discrete action restarts its noise stream at its seed; put the original's there too, then outputs agree.
    for (const [i, action] of net.discreteActions.entries()) {
      const twin = loaded.getLayer(`discrete_action_${i + 1}`) as typeof action;
      action.random.setState(twin.random.getState());
    }
    const x = tf.slice(data.eval.images, 0, 4);
    const a = net.model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expect(maxRelativeError(await b.data(), await a.data())).toBeLessThanOrEqual(1e-5);

    tf.dispose([x, a, b, data.train.images, data.train.targets, data.eval.images, data.eval.targets]);
    loaded.dispose();
    net.model.dispose();
    expect(liveTensors()).toBe(before);
  });

  it('rejects a block too small to pool, naming the argument', () => {
    const block = new ResidualBlock({ name: 'too_small', channelsOut: 4, statePredDim: 4 });
    expect(() => block.apply(tfl.input({ shape: [3, 3, 2] }))).toThrow(
      "ResidualBlock 'too_small' expects input 'inputs' at least 4x4 spatially (it max-pools twice), got shape [null,3,3,2]",
    );
    expect(() => new ResidualBlock({ channelsOut: 0 })).toThrow(/'channelsOut' must be a positive integer, got 0/);
  });
});

describeEachBackend('custom-block example: its focal-loss stage', () => {
  const context = { hyp: SEED_HYP } as unknown as StageContext;

  it('is cross-entropy at gamma 0 and down-weights confident examples at gamma 2, scaled like the seed loss', async () => {
    const logits = tf.tensor2d([
      [2, 0, -1],
      [0.5, 0.2, 0.1],
    ]);
    const targets = tf.tensor2d([
      [1, 0, 0],
      [0, 0.4, 0.6],
    ]);
    const p = [
      [2, 0, -1],
      [0.5, 0.2, 0.1],
    ].map((row) => {
      const z = row.reduce((a, v) => a + Math.exp(v), 0);
      return row.map((v) => Math.exp(v) / z);
    });
    const t = [
      [1, 0, 0],
      [0, 0.4, 0.6],
    ];
    const expected = (gamma: number) =>
      0.5 * p.reduce((sum, row, i) => sum - row.reduce((a, pc, c) => a + t[i]![c]! * (1 - pc) ** gamma * Math.log(pc), 0), 0);
    const before = liveTensors();
    for (const gamma of [0, 2]) {
      const loss = focalLoss(gamma)(logits, targets, { batchScale: 0.5, context });
      expect(loss.shape).toEqual([]);
      expect((await loss.data())[0]).toBeCloseTo(expected(gamma), 5);
      loss.dispose();
    }
    const ce = tf.tidy(() => tf.mul(tf.sum(crossEntropy(logits, targets, 0)), 0.5));
    const focal0 = focalLoss(0)(logits, targets, { batchScale: 0.5, context });
    expect((await focal0.data())[0]).toBeCloseTo((await ce.data())[0]!, 5);
    tf.dispose([ce, focal0]);
    expect(liveTensors()).toBe(before);
    tf.dispose([logits, targets]);
  });

  it('refuses a negative gamma, saying what it expected', () => {
    expect(() => focalLoss(-1)).toThrow('focalLoss: gamma must be a number >= 0, got -1');
  });

  it('trains the example net in place of the seed loss, the library unchanged', async () => {
    const data = syntheticDataset(16, 8, 16, 4, 2);
    const net = customBlockNet(tiny);
    await initCustomBlockNet(net, data.train.images, 0);
    let calls = 0;
    const focal = focalLoss(2);
    const result = await trainCustomBlockNet(net, data, {
      hyp: { opt: { batchSize: 8 }, misc: { trainEpochs: 2, evalBatchSize: 8 } },
      stages: {
        loss: (logits, targets, args) => {
          calls++;
          return focal(logits, targets, args);
        },
      },
    });
    expect(result.stopReason).toBe('completed');
    expect(calls).toBe(4);
    expect(result.records.every((r) => Number.isFinite(r.valLoss))).toBe(true);
    net.model.dispose();
    tf.dispose([data.train.images, data.train.targets, data.eval.images, data.eval.targets]);
  });
});

describe('custom-block example: its command line', () => {
  const repo = resolve(__dirname, '../..');
  const example = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(repo, 'examples/custom-block/index.ts'), ...args], {
      cwd: repo,
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('parses its flags with defaults, and refuses a bad value or an unknown flag naming it', () => {
    expect(parseCustomBlockArgs([])).toEqual({
      config: {
        backend: 'auto',
        epochs: 3,
        batchSize: 64,
        data: undefined,
        trainLimit: 2048,
        save: undefined,
        focalGamma: undefined,
        optimizer: 'sgd',
        adamLr: 0.002,
        brightness: undefined,
      },
    });
    expect(parseCustomBlockArgs(['--brightness', '0.2'])).toMatchObject({ config: { brightness: 0.2 } });
    expect(parseCustomBlockArgs(['--backend', 'cpu', '--epochs', '0.5', '--focal-gamma', '2'])).toMatchObject({
      config: { backend: 'cpu', epochs: 0.5, focalGamma: 2 },
    });
    expect(parseCustomBlockArgs(['-h'])).toEqual({ help: CUSTOM_BLOCK_HELP });
    for (const [argv, message] of [
      [['--epochs', 'ten'], "--epochs must be a number in (0, 1000], got 'ten'"],
      [['--batch-size', '0'], "--batch-size must be an integer >= 1, got '0'"],
      [['--focal-gamma=-1'], "--focal-gamma must be a number >= 0, got '-1'"],
      [['--epochs'], "Option '--epochs <value>' argument missing"],
      [['--backend', 'gpu'], "--backend must be one of auto, webgpu, tensorflow, wasm, cpu, got 'gpu'"],
      [['--optimizer', 'lion'], "--optimizer must be one of sgd, adam, tfjs-adam, got 'lion'"],
      [['--adam-lr', '0'], "--adam-lr must be a number > 0, got '0'"],
      [['--brightness', '0'], "--brightness must be a number > 0, got '0'"],
      [['--bogus'], "Unknown option '--bogus'. Valid flags: --backend, --epochs"],
      [['extra'], "Unexpected argument 'extra'"],
    ] as const) {
      expect(() => parseCustomBlockArgs(argv)).toThrow(UsageError);
      expect(() => parseCustomBlockArgs(argv)).toThrow(message);
    }
  });

  it('--help prints its usage and exits 0; a mistake is one line and exit 2; a failure one line and exit 1, no stack trace', () => {
    const help = example('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toBe(`${CUSTOM_BLOCK_HELP}\n`);
    expect(help.stderr).toBe('');
    const unknown = example('--bogus');
    expect(unknown.status).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toMatch(/^custom-block: Unknown option '--bogus'\. Valid flags: [^\n]*\nRun with --help for usage\.\n$/);
    expect(unknown.stderr).not.toContain('ERR_PARSE_ARGS');
    const missing = example('--backend', 'cpu', '--data', join(repo, 'no-such-cifar10-dir'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^custom-block: .*no-such-cifar10-dir/);
    expect(missing.stderr).not.toMatch(/^\s+at /m);
  }, 120_000);
});

describeEachBackend('custom-block example: its optimizer stages', () => {
  /** The tiny net, its data reflect-padded for a Trainer, and the Trainer (the example's model.ts does the same). */
  async function setUp(seed: number, options: TrainOptions) {
    const data = syntheticDataset(16, 8, 16, 4, 2);
    const net = customBlockNet({ ...tiny, seed });
    await initCustomBlockNet(net, data.train.images, 0);
    const hyp = resolveHyp({ opt: { batchSize: 8 }, misc: { trainEpochs: 2, evalBatchSize: 8 } });
    const train = { images: reflectPad(data.train.images, hyp.net.padAmount), targets: data.train.targets };
    const trainer = new Trainer({ model: net.model, hyp }, { train, eval: data.eval }, options);
    const done = () => {
      trainer.dispose();
      net.model.dispose();
      tf.dispose([train.images, data.train.images, data.train.targets, data.eval.images, data.eval.targets]);
    };
    return { trainer, net, done };
  }
  const trainableValues = (trainer: Trainer) =>
    Promise.all(trainer.model.trainableWeights.map(async (w) => Float64Array.from(await w.read().data())));
  const stopAt = (step: number, get: () => Trainer): TrainOptions['callbacks'] => ({
    onStep: (s) => {
      if (s.step === step) get().requestStop();
    },
  });
  const LR = 1e-3;

  it("Adam steps as tfjs's tf.train.adam does, each weight moved by about lr on the first step (SGD's would be lr·g)", async () => {
    // tf.train.adam's constructor leaves a tensor behind (tfjs 4.22), so it is made before the count.
    const reference = tf.train.adam(LR, 0.9, 0.999, 1e-7);
    const before = liveTensors();
    const shape = [3, 4];
    const init = seededUniform(12, 1);
    const own = tf.variable(tf.tensor(init, shape), true, 'adam_own');
    const theirs = tf.variable(tf.tensor(init, shape), true, 'adam_tfjs');
    const adam = new Adam([{ name: own.name, originalName: 'w', read: () => own }], { lr: LR, epsilon: 1e-7 });
    for (let step = 0; step < 3; step++) {
      const g = tf.tensor(seededUniform(12, 10 + step, -2, 2), shape);
      const previous = Float64Array.from(await own.data());
      adam.step({ [own.name]: g });
      reference.applyGradients([{ name: theirs.name, tensor: g }]);
      const [a, b] = [await own.data(), await theirs.data()];
      expect(maxRelativeError(a, b), `step ${step + 1}`).toBeLessThanOrEqual(1e-5);
      if (step === 0) {
        // m̂ = g and v̂ = g² after one step: w moves by lr · g / (|g| + ε), float64 here.
        const gs = await g.data();
        const expected = previous.map((w, i) => w - (LR * gs[i]!) / (Math.abs(gs[i]!) + 1e-7));
        expect(
          maxRelativeError(
            Float64Array.from(a).map((w, i) => w - previous[i]!),
            expected.map((w, i) => w - previous[i]!),
          ),
        ).toBeLessThan(1e-3);
      }
      g.dispose();
    }
    adam.dispose();
    reference.dispose();
    tf.dispose([own, theirs]);
    expect(liveTensors()).toBe(before);
  });

  it('trains the example net through the Trainer: Adam moves each weight by about lr at once, its moments are the checkpoint, and it resumes exactly', async () => {
    // One step: Adam's first update is lr · g / (|g| + ε), about lr wherever there is a gradient. The seed's SGD
    // starts its OneCycle at maxLr / 1e16, so it would leave every weight where it was.
    let first: Trainer;
    const one = await setUp(3, { seed: 5, stages: { optimizer: adamStage({ lr: LR }) }, callbacks: stopAt(1, () => first) });
    first = one.trainer;
    const start = await trainableValues(first);
    await first.run();
    const moved = (await trainableValues(first)).flatMap((w, i) => Array.from(w, (v, j) => Math.abs(v - start[i]![j]!)));
    expect(Math.max(...moved)).toBeLessThanOrEqual(LR * (1 + 1e-3));
    expect(moved.sort((a, b) => a - b)[Math.floor(moved.length / 2)]).toBeGreaterThan(0.5 * LR);
    one.done();

    const straight = await setUp(3, { seed: 5, stages: { optimizer: adamStage({ lr: LR }) } });
    await straight.trainer.run();
    const expected = await trainableValues(straight.trainer);
    straight.done();

    let stopped: Trainer;
    const part = await setUp(3, { seed: 5, stages: { optimizer: adamStage({ lr: LR }) }, callbacks: stopAt(3, () => stopped) });
    stopped = part.trainer;
    await stopped.run();
    const checkpoint = stopped.checkpoint();
    part.done();
    // The optimizer stage's state is Adam's: its step count and two moments per trainable weight, no SGD momentum.
    expect(checkpoint.stages?.['optimizer']).toEqual({ step: 3 });
    const names = stopped.model.trainableWeights.map((w) => w.originalName).sort();
    const optimizerKeys = Object.keys(checkpoint.tensors).filter((k) => k.startsWith('stages/optimizer/'));
    expect(optimizerKeys.sort()).toEqual(
      [...names.map((n) => `stages/optimizer/m/${n}`), ...names.map((n) => `stages/optimizer/v/${n}`)].sort(),
    );
    expect(Object.keys(checkpoint.tensors).some((k) => k.includes('momentum'))).toBe(false);

    const resumed = await setUp(30, { seed: 50, stages: { optimizer: adamStage({ lr: LR }) } });
    resumed.trainer.restore(checkpoint);
    tf.dispose(Object.values(checkpoint.tensors));
    expect((await resumed.trainer.run()).stopReason).toBe('completed');
    const actual = await trainableValues(resumed.trainer);
    actual.forEach((w, i) =>
      expect(Array.from(w), resumed.trainer.model.trainableWeights[i]!.originalName).toEqual(Array.from(expected[i]!)),
    );
    resumed.done();
  });

  it("takes tfjs's own tf.train.adam as the optimizer stage: the same first step as the example's Adam, and no checkpoint", async () => {
    const steps: Trainer[] = [];
    const results: Float64Array[][] = [];
    for (const optimizer of [tfjsOptimizerStage(() => tf.train.adam(LR, 0.9, 0.999, 1e-7), LR), adamStage({ lr: LR, epsilon: 1e-7 })]) {
      const run = await setUp(3, { seed: 5, stages: { optimizer }, callbacks: stopAt(1, () => steps.at(-1)!) });
      steps.push(run.trainer);
      await run.trainer.run();
      results.push(await trainableValues(run.trainer));
      if (steps.length === 1) {
        expect(() => run.trainer.checkpoint()).toThrow(
          'Trainer.checkpoint: the optimiser that stages.optimizer made has no saveState(), so its state cannot be checkpointed',
        );
      }
      run.done();
    }
    results[0]!.forEach((w, i) => expect(maxRelativeError(w, results[1]![i]!), `weight ${i}`).toBeLessThanOrEqual(1e-5));
  });
});

describeEachBackend('custom-block example: its augmentation (brightness jitter)', () => {
  const AMOUNT = 0.2;
  // 8x8 images padded by 2, batches of 4; the last of two epochs runs cutmix (3x3 squares), so the jitter is seen
  // after all of the seed's augmentations.
  const hyp = resolveHyp({ opt: { batchSize: 4 }, misc: { trainEpochs: 2 }, net: { cutmixSize: 3, cutmixEpochs: 1 } });
  const context = { hyp, batchSize: 4, imageSize: 8 } as unknown as StageContext;

  /** The batches a stage gives for one epoch of `train` from generator seed 7, as host arrays; the tensors freed. */
  async function epochOf(stage: BatchesStage, train: AnyLabelledImages, epoch: number) {
    const out: { inputs: Float32Array; targets: Float32Array }[] = [];
    const batches = stage({ epoch, steps: 2, train, random: new DeviceRandom(7), context });
    for (let i = 0; i < 2; i++) {
      const { value, done } = batches.next();
      if (done) throw new Error('the stage ran out');
      const { inputs, targets } = value as Batch;
      out.push({ inputs: (await inputs.data()) as Float32Array, targets: (await targets.data()) as Float32Array });
      tf.dispose([inputs, targets]);
    }
    batches.return?.();
    return out;
  }

  it("gives the seed's batches with each image shifted by one amount within the bound, on float32 and compact sets alike", async () => {
    const before = liveTensors();
    const bytes = Uint8Array.from({ length: 8 * 8 * 8 * 3 }, (_, i) => (i * 37) % 256);
    const [mean, std] = [
      [0.5, 0.5, 0.5],
      [0.25, 0.25, 0.25],
    ];
    const lut = normalisationTable(mean, std);
    const targets = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4), 'float32') as tf.Tensor2D);
    const float = tf.tidy(() =>
      reflectPad(
        tf.tensor4d(
          Float32Array.from(bytes, (v, i) => lut[(i % 3) * 256 + v]!),
          [8, 8, 8, 3],
        ),
        2,
      ),
    );
    const compact = compactImages(bytes, [8, 8, 8, 3], { mean, std, pad: 2 });
    const jitter = brightnessStage(AMOUNT);
    const pixels = 8 * 8 * 3;
    const shifts: number[] = [];
    for (const epoch of [0, 1]) {
      const seed = await epochOf(seedBatchesStage, { images: float, targets }, epoch);
      const jittered = await epochOf(jitter, { images: float, targets }, epoch);
      // The compact set's decode executes the same plan, and the jitter runs after it: the same batches, bit for bit.
      expect(await epochOf(jitter, { images: compact, targets }, epoch)).toEqual(jittered);
      expect(await epochOf(seedBatchesStage, { images: compact, targets }, epoch)).toEqual(seed);
      for (const [b, { inputs, targets: t }] of jittered.entries()) {
        expect(t, `epoch ${epoch} batch ${b}: targets untouched`).toEqual(seed[b]!.targets);
        for (let image = 0; image < 4; image++) {
          const at = image * pixels;
          const shift = inputs[at]! - seed[b]!.inputs[at]!;
          expect(Math.abs(shift)).toBeLessThanOrEqual(AMOUNT);
          for (let k = 0; k < pixels; k++) expect(inputs[at + k]! - seed[b]!.inputs[at + k]!).toBeCloseTo(shift, 5);
          shifts.push(shift);
        }
      }
    }
    // Sixteen images, sixteen different shifts (the seed's batches alone would give sixteen zeros).
    expect(new Set(shifts.map((v) => v.toFixed(5))).size).toBe(16);
    expect(Math.max(...shifts.map(Math.abs))).toBeGreaterThan(AMOUNT / 4);
    tf.dispose([targets, float]);
    compact.dispose();
    expect(liveTensors()).toBe(before);
    expect(() => brightnessJitter(0)).toThrow('brightnessJitter: amount must be a number > 0, got 0');
  });

  it("trains the example net with it in the default data path: the Trainer's batches are the seed's shifted per image", async () => {
    /** The stage, recording the first batch's inputs the Trainer takes from it. */
    const recorded = (stage: BatchesStage) => {
      const seen: { first?: tf.Tensor } = {};
      const spy: BatchesStage = (args) => {
        const batches = stage(args);
        return {
          next: () => {
            const r = batches.next();
            if (!r.done && !seen.first) seen.first = tf.keep(tf.clone((r.value as Batch).inputs));
            return r;
          },
          return: (v?: unknown) => batches.return?.(v) ?? { done: true as const, value: v },
        };
      };
      return { spy, seen };
    };
    const runs = [];
    for (const stage of [seedBatchesStage, brightnessStage(AMOUNT)]) {
      const data = syntheticDataset(16, 8, 16, 4, 2);
      const net = customBlockNet(tiny);
      await initCustomBlockNet(net, data.train.images, 0);
      const { spy, seen } = recorded(stage);
      const result = await trainCustomBlockNet(net, data, {
        hyp: { opt: { batchSize: 8 }, misc: { trainEpochs: 2, evalBatchSize: 8 } },
        seed: 5,
        logEvery: 1,
        stages: { batches: spy },
      });
      expect(result.stopReason).toBe('completed');
      expect(result.records.every((r) => Number.isFinite(r.trainLoss) && Number.isFinite(r.valLoss))).toBe(true);
      runs.push({
        first: (await seen.first!.data()) as Float32Array,
        weights: await Promise.all(net.model.trainableWeights.map(async (w) => Array.from(await w.read().data()))),
      });
      net.model.dispose();
      tf.dispose([seen.first!, data.train.images, data.train.targets, data.eval.images, data.eval.targets]);
    }
    const [plain, jittered] = runs as [(typeof runs)[0], (typeof runs)[0]];
    const pixels = 16 * 16 * 3;
    for (let image = 0; image < 8; image++) {
      const at = image * pixels;
      const shift = jittered.first[at]! - plain.first[at]!;
      expect(Math.abs(shift)).toBeLessThanOrEqual(AMOUNT);
      expect(Math.abs(shift)).toBeGreaterThan(0);
      for (let k = 0; k < pixels; k++) expect(jittered.first[at + k]! - plain.first[at + k]!).toBeCloseTo(shift, 5);
    }
    expect(jittered.weights).not.toEqual(plain.weights);
  });
});
