// GPU time per kernel from timestamp queries (WebGPU), through tf.profile.
import * as tf from '@tensorflow/tfjs-core';

export interface GpuProfileRow {
  kernel: string;
  /** The kernel's input shapes, e.g. "[1024,31,31,24] [1024,31,31,64]"; absent in the per-name rows. */
  inputShapes?: string;
  /** GPU milliseconds per step (all programs the kernel ran). */
  ms: number;
  calls: number;
  /** Share of the GPU time of the step. */
  share: number;
}

export interface GpuProfile {
  method: string;
  /** Wall time per step while profiling (each kernel then runs in its own submitted pass: slower than normal). */
  wallMsPerStep: number;
  /** Sum of the kernels' GPU time per step. */
  gpuMsPerStep: number;
  byKernel: GpuProfileRow[];
  byShape: GpuProfileRow[];
}

function rows(
  totals: Map<string, { kernel: string; inputShapes?: string; ms: number; calls: number }>,
  steps: number,
  gpuMs: number,
): GpuProfileRow[] {
  return [...totals.values()]
    .map((r) => ({ ...r, ms: r.ms / steps, calls: r.calls / steps, share: r.ms / steps / gpuMs }))
    .sort((a, b) => b.ms - a.ms);
}

/**
 * Runs `step` `steps` times under `tf.profile` and sums each kernel's GPU time (WebGPU timestamp
 * queries: the adapter must offer 'timestamp-query', which initBackend requests when it does).
 */
export async function profileGpuKernels(step: () => void, steps: number): Promise<GpuProfile> {
  const backend = tf.backend() as unknown as { supportTimestampQuery?: boolean };
  if (!backend.supportTimestampQuery) {
    throw new Error(`GPU kernel profile needs WebGPU timestamp queries; the '${tf.getBackend()}' backend's device has none`);
  }
  // The profiler otherwise reads every kernel's output back to check it for NaN.
  const checked = tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS');
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  const t0 = performance.now();
  let info: Awaited<ReturnType<typeof tf.profile>>;
  try {
    info = await tf.profile(() => {
      for (let i = 0; i < steps; i++) step();
    });
  } finally {
    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', checked);
  }
  const wallMsPerStep = (performance.now() - t0) / steps;
  const byKernel = new Map<string, { kernel: string; ms: number; calls: number }>();
  const byShape = new Map<string, { kernel: string; inputShapes: string; ms: number; calls: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = Number(k.kernelTimeMs) || 0;
    total += ms;
    const inputShapes = k.inputShapes.map((s: number[] | undefined) => `[${(s ?? []).join(',')}]`).join(' ');
    const a = byKernel.get(k.name) ?? { kernel: k.name, ms: 0, calls: 0 };
    a.ms += ms;
    a.calls++;
    byKernel.set(k.name, a);
    const key = `${k.name} ${inputShapes}`;
    const b = byShape.get(key) ?? { kernel: k.name, inputShapes, ms: 0, calls: 0 };
    b.ms += ms;
    b.calls++;
    byShape.set(key, b);
  }
  const gpuMsPerStep = total / steps;
  return {
    method: 'tf.profile over the steps; each kernel timed with WebGPU timestamp queries around its compute passes',
    wallMsPerStep,
    gpuMsPerStep,
    byKernel: rows(byKernel, steps, gpuMsPerStep),
    byShape: rows(byShape, steps, gpuMsPerStep),
  };
}
