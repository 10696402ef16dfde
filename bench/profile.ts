// Time per kernel name, for backends that run kernels synchronously (wasm, cpu).
import * as tf from '@tensorflow/tfjs-core';

export interface KernelProfileRow {
  kernel: string;
  /** Milliseconds per step spent inside this kernel (engine bookkeeping included). */
  ms: number;
  calls: number;
  /** Share of the profiled step time. */
  share: number;
}

export interface KernelProfile {
  /** Wall time per step while profiling. */
  stepMs: number;
  /** Step time not inside any kernel: JavaScript glue (layers, tape, tidy) and the optimiser's loop. */
  outsideKernelsMs: number;
  rows: KernelProfileRow[];
}

/**
 * Runs `step` `steps` times with every engine kernel call timed, and returns the time per
 * kernel name and step, largest first. Backward kernels are prefixed `grad:`. Meaningful only
 * where kernels finish before they return (wasm, cpu); WebGPU only queues work.
 */
export function profileKernels(step: () => void, steps: number): KernelProfile {
  const eng = tf.engine() as unknown as {
    runKernelFunc(params: { kernelName?: string }): unknown;
    state: { scopeStack: Array<{ name: string }> };
  };
  const original = eng.runKernelFunc;
  const totals = new Map<string, { ms: number; calls: number }>();
  let depth = 0;
  eng.runKernelFunc = function (params) {
    if (depth > 0 || params.kernelName == null) return original.call(this, params);
    const backward = eng.state.scopeStack.some((s) => s.name === 'backward');
    const key = `${backward ? 'grad:' : ''}${params.kernelName}`;
    depth++;
    const t0 = performance.now();
    try {
      return original.call(this, params);
    } finally {
      const dt = performance.now() - t0;
      depth--;
      const row = totals.get(key) ?? { ms: 0, calls: 0 };
      row.ms += dt;
      row.calls++;
      totals.set(key, row);
    }
  };
  const t0 = performance.now();
  try {
    for (let i = 0; i < steps; i++) step();
  } finally {
    eng.runKernelFunc = original;
  }
  const stepMs = (performance.now() - t0) / steps;
  const rows = [...totals]
    .map(([kernel, r]) => ({ kernel, ms: r.ms / steps, calls: r.calls / steps, share: r.ms / steps / stepMs }))
    .sort((a, b) => b.ms - a.ms);
  const inKernels = rows.reduce((a, r) => a + r.ms, 0);
  return { stepMs, outsideKernelsMs: stepMs - inKernels, rows };
}
