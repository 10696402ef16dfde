// The seed's net trained on WebGPU with the library's fused kernels (batch norm, discrete action, SGD step, EMA
// update) against the same steps with those kernels unregistered, so the unfused tfjs ops run beside the
// library's convolutions and reductions: the fusions must not change what the net learns.
import type * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { setupBench } from '../../bench/step.js';
import { installOverrides, uninstallOverrides } from '../../src/backend/kernels/install.js';
import {
  ADD_SCALED_NOISE,
  ADD_SCALED_NOISE_GRAD,
  BATCH_NORM_APPLY,
  BATCH_NORM_COEFFICIENTS,
  BATCH_NORM_GRAD,
  BATCH_NORM_TRAIN_STATS,
  EMA_UPDATE,
  SGD_STEP,
} from '../../src/backend/kernels/names.js';
import { WEBGPU_TRAINING_KERNELS } from '../../src/backend/kernels/webgpu/index.js';
import { maxRelativeError } from '../helpers/assert.js';
import { describeOnBackend, TEST_CONV_PRECISION } from '../helpers/backends.js';
import { kernelsRun } from '../helpers/kernels.js';
import { liveTensors } from '../helpers/memory.js';

const FUSED = [
  BATCH_NORM_TRAIN_STATS,
  BATCH_NORM_COEFFICIENTS,
  BATCH_NORM_APPLY,
  BATCH_NORM_GRAD,
  ADD_SCALED_NOISE,
  ADD_SCALED_NOISE_GRAD,
  SGD_STEP,
  EMA_UPDATE,
];

interface Trained {
  /** Every weight of the model (trainable, running statistics) after the first step, in model order. */
  firstStep: Float32Array[];
  /** The same after the fifth. */
  weights: Float32Array[];
  /** The flip-TTA logits of one batch after the steps. */
  logits: Float32Array;
  kernels: Map<string, number>;
}

/** Five seed train steps (the EMA's first update on the fifth) and one flip-TTA eval, batch 4, base depth 8. */
async function train(): Promise<Trained> {
  const bench = await setupBench({ batch: 4, baseDepth: 8, totalSteps: 12, seed: 3 });
  const emaSteps: boolean[] = [];
  const read = () => Promise.all(bench.net.model.weights.map(async (w) => (await w.read().data()) as Float32Array));
  let logitsTensor: tf.Tensor | undefined;
  let firstStep: Float32Array[] = [];
  const kernels = await kernelsRun(async () => {
    for (let i = 0; i < 5; i++) {
      emaSteps.push(bench.trainStep());
      if (i === 0) firstStep = await read();
    }
    logitsTensor = bench.evalStep();
  });
  expect(emaSteps).toEqual([false, false, false, false, true]);
  const logits = (await logitsTensor!.data()) as Float32Array;
  logitsTensor!.dispose();
  const weights = await read();
  bench.dispose();
  bench.net.model.dispose();
  return { firstStep, weights, logits, kernels };
}

describeOnBackend('webgpu', 'SpeedyConvNet with the fused WebGPU kernels', () => {
  it('trains five steps (EMA included) and evaluates as the unfused ops do, in under half their kernels, and leaks nothing', async () => {
    const before = liveTensors();
    const fused = await train();
    expect(liveTensors()).toBe(before);
    for (const name of FUSED) expect(fused.kernels.get(name) ?? 0, `${name} ran`).toBeGreaterThan(0);
    uninstallOverrides('webgpu', FUSED);
    let unfused: Trained;
    try {
      unfused = await train();
    } finally {
      const configs = WEBGPU_TRAINING_KERNELS.filter((k) => FUSED.includes(k.kernelName));
      installOverrides('webgpu', Object.fromEntries(configs.map((k) => [k.kernelName, k.kernelFunc])));
    }
    for (const name of FUSED) expect(unfused.kernels.get(name) ?? 0, `${name} did not run`).toBe(0);
    expect(unfused.weights.length).toBe(fused.weights.length);
    // Each fused kernel computes the unfused ops' float32 operations in their order; what rounding still differs
    // (WGSL against tfjs's kernels, the GELU's erf among them) training grows: on lavapipe the largest difference is
    // 4e-17 after one step and 6e-4 after five (logits 2e-6). A wrong momentum, decay, running average or gradient
    // term is off by far more.
    fused.firstStep.forEach((w, i) => expect(maxRelativeError(w, unfused.firstStep[i]!), `weight ${i}, step 1`).toBeLessThanOrEqual(5e-4));
    if (TEST_CONV_PRECISION === 'float16') {
      // With f16 convolution operands the later steps cannot be compared: rounding to f16 is discontinuous, so the
      // first step's 1e-16 differences flip some operands by a whole f16 step (5e-4), which the next four steps
      // amplify as they amplify f32's 1e-16 to 6e-4 (lavapipe: weights differ by O(1) after five). Both stay finite.
      for (const values of [...fused.weights, ...unfused.weights, fused.logits, unfused.logits]) {
        expect(values.every(Number.isFinite)).toBe(true);
      }
    } else {
      fused.weights.forEach((w, i) => expect(maxRelativeError(w, unfused.weights[i]!), `weight ${i}, step 5`).toBeLessThanOrEqual(5e-3));
      expect(maxRelativeError(fused.logits, unfused.logits), 'logits').toBeLessThanOrEqual(1e-4);
    }
    // The fused step runs far fewer kernels: 717 -> 277 per train step at the time of writing (docs/results.md).
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    expect(total(fused.kernels)).toBeLessThan(0.5 * total(unfused.kernels));
  });
});
