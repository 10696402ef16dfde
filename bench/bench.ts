// The benchmark itself: one configuration, warm-up excluded, medians; returns a JSON-safe record.
import * as tf from '@tensorflow/tfjs-core';
import os from 'node:os';
import { KernelCounter, type KernelCounts } from '../src/backend/counter.js';
import type { BackendReport } from '../src/backend/init.js';
import { initBackend } from '../src/backend/node.js';
import { enableNodeWasmThreads } from '../src/backend/wasm-threads.js';
import { deviceScalarCount } from '../src/ops/constants.js';
import { countFlops } from './flops.js';
import { profileGpuKernels, type GpuProfile } from './gpu-profile.js';
import { profileKernels, type KernelProfile } from './profile.js';
import { setupBench, syncBackend } from './step.js';

export interface BenchOptions {
  backend: 'wasm' | 'webgpu' | 'cpu' | 'tensorflow' | 'auto';
  batch: number;
  /** Timed steps (train and eval each); the medians are over these. */
  steps: number;
  /** Untimed steps first (train and eval each). Default 3. */
  warmup?: number;
  baseDepth?: number;
  imageSize?: number;
  mode?: 'sketch' | 'backprop';
  /**
   * Also time every kernel over this many train steps (and as many eval steps on WebGPU): wall time per
   * kernel name on synchronous backends (wasm, cpu), GPU time per name and input shape on WebGPU. Default 0.
   */
  profileSteps?: number;
  /** webgpu only: run tfjs-backend-webgpu's own kernels instead of the library's training kernels (for before/after figures). */
  tfjsKernels?: boolean;
  /** webgpu only: the convolutions' precision (initBackend's webgpuConvPrecision); 'float16' runs them on tensor cores where the GPU has subgroup matrices. Default 'float32'. */
  convPrecision?: 'float32' | 'float16';

  /** wasm only: run tfjs's threaded SIMD build with this many XNNPACK threads (see enableNodeWasmThreads); default 1, the single-threaded build. */
  wasmThreads?: number;
}

interface StepCounts {
  kernels: number;
  forwardKernels: number;
  backwardKernels: number;
  uploadBytes: number;
  readbackBytes: number;
  readbacks: number;
  byName: Record<string, number>;
  backwardByName: Record<string, number>;
}

export interface BenchResult {
  impl: 'tfjs-dataflow';
  backend: string;
  backendReport: BackendReport;
  batch: number;
  baseDepth: number;
  imageSize: number;
  mode: string;
  steps: number;
  warmup: number;
  threads: { wasm: number | null; cpus: number };
  train: { medianStepMs: number; imagesPerSec: number; stepMs: number[]; emaStep: boolean[] };
  eval: { medianStepMs: number; imagesPerSec: number; stepMs: number[]; note: string };
  gflopPerStep: { train: number; eval: number; byKernel: Record<string, number>; method: string };
  counts: { trainStep: StepCounts; emaStep: StepCounts; evalStep: StepCounts; note: string };
  memory: {
    peakRssBytes: number;
    rssBytes: number;
    wasmHeapBytes: number | null;
    tfNumBytes: number;
    /** Tensor counts, not counting the kept device scalars (`deviceScalars`, made once per value and reused). */
    tensors: {
      beforeSetup: number;
      afterSetup: number;
      afterWarmup: number;
      afterTimed: number;
      afterDispose: number;
      deviceScalars: number;
    };
  };
  profile?: KernelProfile;
  gpuProfile?: { train: GpuProfile; eval: GpuProfile };
  /** Which kernels ran the convolutions, their gradients and the batch statistics. */
  kernels: 'library' | 'tfjs';
  tfjs: string;
  node: string;
  loadAverage: { before: number[]; after: number[]; cpus: number };
  command: string;
}

// BENCH_VERBOSE=1 prints each phase to stderr (long runs on a loaded machine).
const log = (msg: string) => {
  if (process.env['BENCH_VERBOSE']) console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function perStep(c: KernelCounts): StepCounts {
  const { kernels, forwardKernels, backwardKernels, uploadBytes, readbackBytes, readbacks, byName, backwardByName } = c;
  return { kernels, forwardKernels, backwardKernels, uploadBytes, readbackBytes, readbacks, byName, backwardByName };
}

function wasmHeapBytes(): number | null {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength ?? null;
}

/** Runs one benchmark configuration on a fresh backend selection. */
/** Tensors alive, less the kept device scalars: those are made on first use and then reused, not leaked. */
function tensorsAlive(): number {
  return tf.memory().numTensors - deviceScalarCount();
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const { batch, steps, warmup = 3, baseDepth = 64, imageSize = 32, mode = 'sketch', profileSteps = 0 } = options;
  if (!(Number.isInteger(batch) && batch > 0)) throw new Error(`runBench: batch must be a positive integer, got ${batch}`);
  if (!(Number.isInteger(steps) && steps > 0)) throw new Error(`runBench: steps must be a positive integer, got ${steps}`);
  if (!(Number.isInteger(warmup) && warmup >= 0)) throw new Error(`runBench: warmup must be a non-negative integer, got ${warmup}`);
  const loadBefore = os.loadavg();
  if (options.wasmThreads != null) {
    if (options.backend !== 'wasm') throw new Error(`runBench: wasmThreads needs backend 'wasm', got '${options.backend}'`);
    await enableNodeWasmThreads(options.wasmThreads);
  }
  if (options.tfjsKernels && options.backend !== 'webgpu') {
    throw new Error(
      `runBench: tfjsKernels needs backend 'webgpu' (tfjs-backend-wasm 4.22 cannot train convolutions by itself), got '${options.backend}'`,
    );
  }
  if (options.convPrecision != null && options.backend !== 'webgpu') {
    throw new Error(`runBench: convPrecision needs backend 'webgpu', got '${options.backend}'`);
  }
  // wasm: the thread count asked for, else one (initBackend's default is one per core), so figures compare with docs/results.md's.
  const report = await initBackend(options.backend, {
    ...(options.tfjsKernels ? { webgpuTrainingKernels: false } : {}),
    ...(options.convPrecision ? { webgpuConvPrecision: options.convPrecision } : {}),
    ...(options.backend === 'wasm' ? { wasmThreads: options.wasmThreads ?? 1 } : {}),
    // Per-kernel GPU times need Dawn's timestamps unrounded (it quantizes them to 65.5 us by default).
    ...(profileSteps > 0 ? { webgpuExactTimestamps: true } : {}),
  });
  const backend = tf.getBackend();

  const beforeSetup = tensorsAlive();
  // warm-up + timed + 5 counted + 1 for FLOPs + profiled: the schedules must not run out.
  const totalSteps = warmup + steps + 5 + 1 + 2 * profileSteps;
  const bench = await setupBench({ batch, baseDepth, totalSteps, imageSize, mode });
  const afterSetup = tensorsAlive();
  log(`set up on ${backend} (${report.reason})`);
  const everyN = bench.net.hyp.misc.ema.everyNSteps;

  // Training: warm-up, then timed steps, each ended by a 4-byte read so queued GPU work is in the time.
  for (let i = 0; i < warmup; i++) {
    bench.trainStep();
    await syncBackend(bench.net);
  }
  const afterWarmup = tensorsAlive();
  const trainMs: number[] = [];
  const emaStep: boolean[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    const ema = bench.trainStep();
    await syncBackend(bench.net);
    trainMs.push(performance.now() - t0);
    emaStep.push(ema);
    log(`train step ${i + 1}/${steps}: ${trainMs[i]!.toFixed(0)} ms${ema ? ' (EMA)' : ''}`);
  }

  log('counting kernels and transfers');
  // Counts, outside the timed loop: one step without and one with the EMA update.
  const counter = new KernelCounter();
  let trainCounts: KernelCounts | null = null;
  let emaCounts: KernelCounts | null = null;
  for (let i = 0; i < everyN && (trainCounts == null || emaCounts == null); i++) {
    const dueNow = (bench.steps + 1) % everyN === 0;
    const c = await counter.measure(() => bench.trainStep());
    if (dueNow) emaCounts ??= c;
    else trainCounts ??= c;
    await syncBackend(bench.net);
  }
  let flops = { total: 0, byKernel: {} as Record<string, number> };
  if ((bench.steps + 1) % everyN === 0) bench.trainStep(); // keep the EMA out of the FLOP count
  flops = countFlops(() => {
    bench.trainStep();
  });
  await syncBackend(bench.net);

  let profile: KernelProfile | undefined;
  if (profileSteps > 0 && backend !== 'webgpu') {
    profile = profileKernels(() => {
      bench.trainStep();
    }, profileSteps);
    await syncBackend(bench.net);
  }

  log('evaluation');
  // Evaluation: the flip-TTA forward of a batch (doubled inside), timed to its logits' read-back.
  const evalMs: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    const logits = bench.evalStep();
    await logits.data();
    const dt = performance.now() - t0;
    logits.dispose();
    if (i >= warmup) evalMs.push(dt);
    log(`eval step ${i + 1}/${warmup + steps}: ${dt.toFixed(0)} ms`);
  }
  let gpuProfile: BenchResult['gpuProfile'];
  if (profileSteps > 0 && backend === 'webgpu') {
    // After the eval warm-up too, so no shader compilation lands in the GPU times.
    log('GPU kernel profile');
    const train = await profileGpuKernels(() => {
      bench.trainStep();
    }, profileSteps);
    const evalProfile = await profileGpuKernels(() => {
      bench.evalStep().dispose();
    }, profileSteps);
    gpuProfile = { train, eval: evalProfile };
  }
  const evalCounts = await counter.measure(() => bench.evalStep().dispose());
  const evalFlops = countFlops(() => bench.evalStep().dispose());
  await syncBackend(bench.net);
  const afterTimed = tensorsAlive();
  const tfNumBytes = tf.memory().numBytes;
  const heap = wasmHeapBytes();
  const rss = process.memoryUsage().rss;
  bench.dispose();
  bench.net.model.dispose();
  const afterDispose = tensorsAlive();

  const trainMedian = median(trainMs);
  const evalMedian = median(evalMs);
  return {
    impl: 'tfjs-dataflow',
    backend,
    backendReport: report,
    batch,
    baseDepth,
    imageSize,
    mode,
    steps,
    warmup,
    threads: { wasm: report.wasmThreads ?? null, cpus: os.availableParallelism() },
    train: { medianStepMs: trainMedian, imagesPerSec: batch / (trainMedian / 1e3), stepMs: trainMs, emaStep },
    eval: {
      medianStepMs: evalMedian,
      imagesPerSec: batch / (evalMedian / 1e3),
      stepMs: evalMs,
      note: 'images/s counts the batch as given; the flip TTA doubles it inside the forward',
    },
    gflopPerStep: {
      train: flops.total / 1e9,
      eval: evalFlops.total / 1e9,
      byKernel: Object.fromEntries(Object.entries(flops.byKernel).map(([k, v]) => [k, v / 1e9])),
      method:
        'counted: 2*MACs of every Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter and (Batch/Fused)MatMul the engine ran in one step, from their input shapes; elementwise, pooling and reductions excluded',
    },
    counts: {
      trainStep: perStep(trainCounts!),
      emaStep: perStep(emaCounts!),
      evalStep: perStep(evalCounts),
      note: 'KernelCounter over one training step without and one with the EMA update, and one eval step; nothing synchronised inside them',
    },
    memory: {
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      rssBytes: rss,
      wasmHeapBytes: heap,
      tfNumBytes,
      tensors: { beforeSetup, afterSetup, afterWarmup, afterTimed, afterDispose, deviceScalars: deviceScalarCount() },
    },
    ...(profile ? { profile } : {}),
    ...(gpuProfile ? { gpuProfile } : {}),
    kernels: options.tfjsKernels ? 'tfjs' : 'library',
    tfjs: tf.version_core,
    node: process.version,
    loadAverage: { before: loadBefore, after: os.loadavg(), cpus: os.cpus().length },
    command: '',
  };
}
