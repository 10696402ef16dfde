// Benchmark of one SpeedyConvNet configuration: training step and flip-TTA eval, medians after warm-up.
// Usage: npm run bench -- --backend wasm --batch 64 --steps 10 [--warmup 3] [--base-depth 64] [--image-size 32]
//          [--profile K] [--wasm-threads N] [--tfjs-kernels] [--conv-precision float16] [--json FILE]
// --wasm-threads N: the threaded wasm build with N threads (default 1, the single-threaded build).
// --profile K: wall time per kernel over K steps on wasm/cpu; GPU time per kernel and input shape on WebGPU.
// --tfjs-kernels (webgpu): tfjs-backend-webgpu's own convolutions, batch statistics and reductions, for before/after figures.
// --conv-precision float16 (webgpu): the convolutions on tensor cores (subgroup matrices) where the GPU has them; the report says which ran.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { COMMON_BENCH_OPTIONS, parseBenchArgs } from './options.js';
import { runBench, type BenchOptions } from './bench.js';

const {
  values,
  int: intOf,
  optionalInt,
} = parseBenchArgs({
  ...COMMON_BENCH_OPTIONS,
  'image-size': { type: 'string', default: '32' },
  mode: { type: 'string', default: 'sketch' },
  profile: { type: 'string', default: '0' },
  'wasm-threads': { type: 'string' },
  'tfjs-kernels': { type: 'boolean', default: false },
  'conv-precision': { type: 'string' },
});

const options: BenchOptions = {
  backend: values.backend as BenchOptions['backend'],
  batch: intOf('batch'),
  steps: intOf('steps'),
  warmup: intOf('warmup'),
  baseDepth: intOf('base-depth'),
  imageSize: intOf('image-size'),
  mode: values.mode as 'sketch' | 'backprop',
  profileSteps: intOf('profile'),
};
const wasmThreads = optionalInt('wasm-threads');
if (wasmThreads != null) options.wasmThreads = wasmThreads;
if (values['tfjs-kernels']) options.tfjsKernels = true;
if (values['conv-precision'] != null) {
  if (values['conv-precision'] !== 'float32' && values['conv-precision'] !== 'float16') {
    throw new Error(`--conv-precision must be float32 or float16, got '${values['conv-precision']}'`);
  }
  options.convPrecision = values['conv-precision'];
}

const result = await runBench(options);
result.command = `npm run bench -- ${process.argv.slice(2).join(' ')}`;
const mib = (b: number | null) => (b == null ? 'n/a' : `${(b / 2 ** 20).toFixed(0)} MiB`);
const t = result.counts.trainStep;
console.log(
  `tfjs-dataflow ${result.backend} (${result.backendReport.reason}${result.backendReport.convPrecision ? `; convolutions ${result.backendReport.convPrecision}` : ''}) batch=${result.batch} base_depth=${result.baseDepth}: ` +
    `train ${result.train.medianStepMs.toFixed(1)} ms/step (${result.train.imagesPerSec.toFixed(1)} img/s), ` +
    `eval ${result.eval.medianStepMs.toFixed(1)} ms/step (${result.eval.imagesPerSec.toFixed(1)} img/s), ` +
    `${result.gflopPerStep.train.toFixed(2)} GFLOP/step, kernels ${t.forwardKernels} fwd + ${t.backwardKernels} bwd, ` +
    `upload ${t.uploadBytes} B/step, read back ${t.readbackBytes} B/step, peak RSS ${mib(result.memory.peakRssBytes)}, wasm heap ${mib(result.memory.wasmHeapBytes)}`,
);
if (result.profile) {
  console.log(
    `kernel profile (${result.profile.stepMs.toFixed(1)} ms/step, ${result.profile.outsideKernelsMs.toFixed(1)} ms outside kernels):`,
  );
  for (const r of result.profile.rows.slice(0, 25)) {
    console.log(`  ${r.kernel.padEnd(32)} ${r.ms.toFixed(2).padStart(9)} ms ${(100 * r.share).toFixed(1).padStart(5)}%  ${r.calls} calls`);
  }
}
if (result.gpuProfile) {
  for (const [phase, p] of Object.entries(result.gpuProfile)) {
    console.log(
      `GPU time per ${phase} step: ${p.gpuMsPerStep.toFixed(1)} ms in kernels (${p.wallMsPerStep.toFixed(1)} ms wall while profiling)`,
    );
    for (const r of p.byKernel.slice(0, 12)) {
      console.log(
        `  ${r.kernel.padEnd(32)} ${r.ms.toFixed(2).padStart(9)} ms ${(100 * r.share).toFixed(1).padStart(5)}%  ${r.calls} calls`,
      );
    }
    console.log(`  by input shape:`);
    for (const r of p.byShape.slice(0, 12)) {
      console.log(`  ${r.ms.toFixed(2).padStart(9)} ms  ${r.kernel} ${r.inputShapes}`);
    }
  }
}
if (values.json) {
  mkdirSync(dirname(values.json), { recursive: true });
  writeFileSync(values.json, `${JSON.stringify(result, null, 1)}\n`);
  console.log(`wrote ${values.json}`);
}
