import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { originalKernel } from '../../src/backend/kernels/install.js';

/** Kernel calls by name, through the engine's runKernel, while `fn` runs (awaited when it returns a promise). */
export async function kernelsRun(fn: () => unknown): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
  const run = engine.runKernel.bind(engine);
  engine.runKernel = (name: string, ...rest: unknown[]) => {
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return run(name, ...rest);
  };
  try {
    await fn();
  } finally {
    engine.runKernel = run;
  }
  return counts;
}

/** That `config` is the kernel registered for its name and backend now: the library's override is what runs. */
export function expectRegistered(config: tf.KernelConfig): void {
  expect(tf.getKernel(config.kernelName, config.backendName)?.kernelFunc, config.kernelName).toBe(config.kernelFunc);
}

/** tfjs's own kernel `kernelName` on the active backend: the original that the library's override replaced, if any. */
export function runTfjsKernel(kernelName: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor {
  const info = originalKernel(kernelName, tf.getBackend()).kernelFunc({ inputs, attrs, backend: tf.backend() }) as tf.TensorInfo;
  return tf.engine().makeTensorFromTensorInfo(info);
}
