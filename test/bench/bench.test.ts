import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runBench } from '../../bench/bench.js';
import { setupBench } from '../../bench/step.js';
import { KernelCounter } from '../../src/backend/counter.js';
import { deviceScalarCount } from '../../src/ops/constants.js';
import { NetworkEMA, emaDecayAt } from '../../src/train/ema.js';
import { OneCycle } from '../../src/train/one-cycle.js';
import { SGD } from '../../src/train/sgd.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

// A SpeedyConvNet at test size: base depth 4 (channels 4/16/32), 16x16 images, batch 2.
const TINY = { batch: 2, baseDepth: 4, imageSize: 16 };

describeEachBackend('bench: one tiny configuration', (backend) => {
  it('returns a complete, JSON-safe record and leaves no tensor behind', async () => {
    const before = liveTensors();
    const result = await runBench({ backend, ...TINY, steps: 2, warmup: 1 });
    const parsed = JSON.parse(JSON.stringify(result));
    expect(parsed).toEqual(result);
    expect(result.backend).toBe(backend);
    expect(result.train.stepMs).toHaveLength(2);
    expect(result.eval.stepMs).toHaveLength(2);
    expect(result.train.imagesPerSec).toBeCloseTo(2 / (result.train.medianStepMs / 1000), 6);
    expect(result.gflopPerStep.train).toBeGreaterThan(result.gflopPerStep.eval / 2);
    expect(result.gflopPerStep.byKernel['Conv2DBackpropFilter']).toBeGreaterThan(0);
    const t = result.counts.trainStep;
    expect(t.forwardKernels + t.backwardKernels).toBe(t.kernels);
    expect(t.backwardKernels).toBeGreaterThan(0);
    expect(result.counts.evalStep.backwardKernels).toBe(0);
    // Nothing is read back inside a step (the 4-byte sync read is outside the counted steps).
    expect(t.readbackBytes).toBe(0);
    expect(result.memory.peakRssBytes).toBeGreaterThan(0);
    expect(result.memory.wasmHeapBytes != null).toBe(backend === 'wasm');
    expect(result.memory.tensors.afterDispose).toBe(result.memory.tensors.beforeSetup);
    expect(liveTensors()).toBe(before);
  }, 120_000);

  it('--profile: wall time per kernel on synchronous backends, GPU time per kernel and input shape on WebGPU', async () => {
    const result = await runBench({ backend, ...TINY, steps: 1, warmup: 1, profileSteps: 1 });
    if (backend === 'webgpu') {
      expect(result.profile).toBeUndefined();
      const { train, eval: evalProfile } = result.gpuProfile!;
      for (const p of [train, evalProfile]) {
        expect(p.gpuMsPerStep).toBeGreaterThan(0);
        expect(p.byKernel.reduce((a, r) => a + r.ms, 0)).toBeCloseTo(p.gpuMsPerStep, 6);
        expect(p.byShape.reduce((a, r) => a + r.ms, 0)).toBeCloseTo(p.gpuMsPerStep, 6);
        expect(p.byShape.length).toBeGreaterThanOrEqual(p.byKernel.length);
      }
      expect(train.byKernel.map((r) => r.kernel)).toEqual(
        expect.arrayContaining(['Conv2D', 'Conv2DBackpropFilter', 'DataflowChannelMoments']),
      );
      // The first conv group's filter gradient: x [2,15,15,24] (the whitened image) against dy [2,15,15,4].
      expect(train.byShape.some((r) => r.kernel === 'Conv2DBackpropFilter' && r.inputShapes === '[2,15,15,24] [2,15,15,4]')).toBe(true);
      expect(evalProfile.byKernel.some((r) => r.kernel === 'Conv2DBackpropFilter')).toBe(false);
    } else {
      expect(result.gpuProfile).toBeUndefined();
      expect(result.profile!.rows.some((r) => r.kernel === 'grad:Conv2DBackpropFilter' || r.kernel === 'Conv2DBackpropFilter')).toBe(true);
    }
  }, 120_000);

  it('the device tables give bit-identical weights to per-step scalars', async () => {
    const make = (name: string) =>
      tf.variable(
        tf.tensor2d([
          [0.5, -1.25],
          [2, 0.125],
        ]),
        true,
        `${name}${backend}`,
      );
    const [a, b] = [make('table_a'), make('table_b')];
    const g = tf.tensor2d([
      [0.3, -0.2],
      [0.05, 1.5],
    ]);
    // The same OneCycle, seen through an object without lrAt: SGD must take the per-step scalar path.
    const cycle = OneCycle.seed(0.2, 6);
    const opaque = new OneCycle({
      maxLr: 0.2,
      totalSteps: 6,
      pctStart: 0.23,
      anneal: 'linear',
      divFactor: 1e16,
      finalDivFactor: 1 / (1e16 * 0.07),
    });
    const plain = {
      get lr() {
        return opaque.lr;
      },
      step: () => opaque.step(),
    };
    const tabled = new SGD([{ weights: [a], lr: cycle, momentum: 0.85, nesterov: true, weightDecay: 0.01 }]);
    const scalars = new SGD([{ weights: [b], lr: plain, momentum: 0.85, nesterov: true, weightDecay: 0.01 }]);
    const emaA = new NetworkEMA({ weights: [a] }, { decaySchedule: { totalSteps: 6 } });
    const emaB = new NetworkEMA({ weights: [b] });
    for (let step = 1; step <= 6; step++) {
      tabled.step({ [a.name]: g });
      scalars.step({ [b.name]: g });
      emaA.updateAt({ weights: [a] }, step);
      emaB.update({ weights: [b] }, emaDecayAt(step, 6));
    }
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([a, b, g]);
    [tabled, scalars, emaA, emaB].forEach((x) => x.dispose());
  });
});

// On cpu every kernel result is host memory written through the backend, so only wasm and webgpu have uploads to count.
describeEachBackend(
  'bench: no host-to-device transfers in the optimiser and EMA',
  () => {
    it('SGD.step and NetworkEMA.updateAt upload nothing once warm', async () => {
      const bench = await setupBench({ ...TINY, totalSteps: 40 });
      for (let i = 0; i < 5; i++) bench.trainStep(); // the 5th step creates the EMA
      const model = bench.net.model;
      const trainable = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const grads = tf.variableGrads(
        () => tf.sum(model.apply(tf.zeros([2, 16, 16, 3]), { training: false }) as tf.Tensor) as tf.Scalar,
        trainable,
      );
      grads.value.dispose();
      const sgd = new SGD([
        { weights: model.trainableWeights, lr: OneCycle.seed(0.1, 20), momentum: 0.85, nesterov: true, weightDecay: 5e-4 },
      ]);
      const ema = new NetworkEMA(model, { decaySchedule: { totalSteps: 20 } });
      sgd.step(grads.grads);
      ema.updateAt(model, 1); // warm-up: the constants and tables are made here, once
      const counts = await new KernelCounter().measure(() => {
        for (let step = 2; step <= 4; step++) {
          sgd.step(grads.grads);
          ema.updateAt(model, step);
        }
      });
      expect(counts.kernels).toBeGreaterThan(0);
      expect(counts.uploadBytes).toBe(0);
      expect(counts.readbackBytes).toBe(0);
      tf.dispose(Object.values(grads.grads));
      sgd.dispose();
      ema.dispose();
      bench.dispose();
      model.dispose();
    }, 60_000);
  },
  ['wasm', 'webgpu'],
  'the cpu backend keeps tensors in JS memory: there is no upload to measure',
);

describeEachBackend('bench: what the backward pass runs (KernelCounter, one training step)', () => {
  it('no input gradient for convs fed only by data and the frozen whitening conv', async () => {
    const bench = await setupBench({ ...TINY, totalSteps: 10 });
    bench.trainStep();
    const counts = await new KernelCounter().measure(() => bench.trainStep());
    // 10 conv layers: whitening (frozen, no gradient at all), initial_block_state_pred, and per group conv1, conv2
    // (+ state projection in groups 1 and 2). Filter gradients: the 9 trainable ones. Input gradients: not for the
    // whitening conv, and not for the two convs whose input x0 = gelu(whiten(images)) depends on no trainable
    // weight (initial_block_state_pred, conv_group_1/conv1); every other conv's input does (the residual adds
    // the previous block's state prediction, and the cut keeps the std path), so 7.
    expect(counts.backwardByName['Conv2DBackpropFilter']).toBe(9);
    expect(counts.backwardByName['Conv2DBackpropInput']).toBe(7);
    bench.dispose();
    bench.net.model.dispose();
  }, 60_000);
});

describe('bench CLI', () => {
  it('writes valid JSON for one tiny step on cpu', () => {
    const file = join(mkdtempSync(join(os.tmpdir(), 'bench-cli-')), 'out.json');
    execFileSync(
      'npx',
      [
        'tsx',
        'bench/run.ts',
        '--backend',
        'cpu',
        '--batch',
        '2',
        '--steps',
        '1',
        '--warmup',
        '0',
        '--base-depth',
        '4',
        '--image-size',
        '16',
        '--json',
        file,
      ],
      { cwd: new URL('../..', import.meta.url), stdio: 'pipe' },
    );
    const result = JSON.parse(readFileSync(file, 'utf8'));
    expect(result.impl).toBe('tfjs-dataflow');
    expect(result.backend).toBe('cpu');
    expect(result.command).toContain('--batch 2');
    expect(result.train.stepMs).toHaveLength(1);
  }, 120_000);
});

describeEachBackend(
  'bench: a whole training step and an eval step write nothing to the backend',
  () => {
    it('uploads 0 bytes per step once warm, and makes no new device scalars', async () => {
      const bench = await setupBench({ ...TINY, totalSteps: 20 });
      for (let i = 0; i < 5; i++) bench.trainStep(); // the 5th step makes the EMA and its tables
      const scalars = deviceScalarCount();
      const counts = await new KernelCounter().measure(() => {
        for (let i = 0; i < 5; i++) bench.trainStep(); // includes the next EMA step (the 10th)
      });
      expect(counts.kernels).toBeGreaterThan(0);
      expect(counts.uploadBytes).toBe(0);
      expect(counts.readbackBytes).toBe(0);
      expect(deviceScalarCount()).toBe(scalars);
      // The flip-TTA evaluation forward too; reading its logits is the caller's business, not the step's.
      bench.evalStep().dispose();
      const evalCounts = await new KernelCounter().measure(() => bench.evalStep().dispose());
      expect(evalCounts.kernels).toBeGreaterThan(0);
      expect(evalCounts.uploadBytes).toBe(0);
      expect(evalCounts.readbackBytes).toBe(0);
      bench.dispose();
      bench.net.model.dispose();
    }, 120_000);
  },
  ['wasm', 'webgpu'],
  'the cpu backend keeps tensors in JS memory: there is no upload to measure',
);
