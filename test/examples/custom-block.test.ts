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
import { focalLoss } from '../../examples/custom-block/stages.js';
import { SEED_HYP, crossEntropy, predictWithFlipTTA, type StageContext } from '../../src/index.js';
import { maxRelativeError } from '../helpers/assert.js';
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
      config: { backend: 'auto', epochs: 3, batchSize: 64, data: undefined, trainLimit: 2048, save: undefined, focalGamma: undefined },
    });
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
