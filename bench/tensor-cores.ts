// The WebGPU convolutions with f16 operands on tensor cores (subgroup matrices) against the f32 kernels, on the
// seed's conv shapes: the max relative error of each of the three kernels and the GPU time of both variants.
// Prints the adapter's subgroup-matrix configurations and which variant ran; without subgroup matrices (lavapipe)
// it says why and times the f32 kernels only. Writes JSON.
// Usage: npx tsx bench/tensor-cores.ts [--batch 1024] [--repeats 3] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/node.js';
import { setWebGPUConvPrecision, subgroupMatrixDeviceOf, tensorCoreConfigFor } from '../src/backend/kernels/webgpu/conv_precision.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '1024' },
    repeats: { type: 'string', default: '3' },
    json: { type: 'string' },
  },
});
const batch = Number(values.batch);
const repeats = Number(values.repeats);
if (!(Number.isInteger(batch) && batch > 0)) throw new Error(`--batch must be a positive integer, got '${values.batch}'`);
if (!(Number.isInteger(repeats) && repeats > 0)) throw new Error(`--repeats must be a positive integer, got '${values.repeats}'`);

const report = await initBackend('webgpu', { webgpuConvPrecision: 'float16' });
const device = (tf.backend() as unknown as { device: GPUDevice }).device;
const adapter = await (globalThis as unknown as { navigator: { gpu: GPU } }).navigator.gpu.requestAdapter({
  powerPreference: 'high-performance',
});
const offer = subgroupMatrixDeviceOf((adapter as (GPUAdapter & { info?: GPUAdapterInfo }) | null)?.info);
const tensorCores = tensorCoreConfigFor(device);
const gpuTimer = Boolean((tf.backend() as unknown as { supportTimestampQuery?: boolean }).supportTimestampQuery);

/** The seed's convolutions at base depth 64: [side, in, out, kernel, pad]; the last is the whitening conv. */
const SHAPES: Array<[number, number, number, number, 'same' | 'valid']> = [
  [31, 24, 64, 3, 'same'],
  [15, 64, 64, 3, 'same'],
  [15, 64, 256, 3, 'same'],
  [7, 256, 256, 3, 'same'],
  [7, 256, 512, 3, 'same'],
  [3, 512, 512, 3, 'same'],
  [32, 3, 24, 2, 'valid'],
];
const KERNELS = ['forward', 'inputGrad', 'filterGrad'] as const;
type Kernel = (typeof KERNELS)[number];

/** Best GPU time (timestamp queries; wall time to a read-back without them) of `f` over the repeats, and its last values. */
async function timed(f: () => tf.Tensor): Promise<{ ms: number; values: Float32Array }> {
  let best = Infinity;
  let values: Float32Array | undefined;
  for (let i = 0; i <= repeats; i++) {
    let out: tf.Tensor | undefined;
    const t0 = performance.now();
    const timing = gpuTimer
      ? await tf.time(() => {
          out = f();
        })
      : undefined;
    if (!gpuTimer) out = f();
    values = (await out!.data()) as Float32Array;
    const ms = timing ? (timing.kernelMs as number) : performance.now() - t0;
    out!.dispose();
    if (i > 0) best = Math.min(best, ms); // the first call compiles the pipelines
  }
  return { ms: best, values: values! };
}

function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  let sumSq = 0;
  for (const v of expected) sumSq += v * v;
  const floor = Math.max(1e-6, 0.1 * Math.sqrt(sumSq / Math.max(1, expected.length)));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    if (!Number.isFinite(actual[i]!)) return Infinity;
    worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / Math.max(Math.abs(expected[i]!), floor));
  }
  return worst;
}

interface Row {
  shape: { batch: number; side: number; cin: number; cout: number; kernel: number; pad: string };
  gflop: number;
  f32Ms: Partial<Record<Kernel, number>>;
  tensorCoreMs: Partial<Record<Kernel, number>>;
  maxRelativeError: Partial<Record<Kernel, number>>;
}
const rows: Row[] = [];
for (const [side, cin, cout, k, pad] of SHAPES) {
  const x = tf.randomUniform([batch, side, side, cin], -1, 1, 'float32', 1) as tf.Tensor4D;
  const w = tf.randomUniform([k, k, cin, cout], -1, 1, 'float32', 2) as tf.Tensor4D;
  const yShape = tf.tidy(() => tf.conv2d(tf.zeros([1, side, side, cin]) as tf.Tensor4D, w, 1, pad).shape.slice(1));
  const dy = tf.randomUniform([batch, yShape[0]!, yShape[1]!, yShape[2]!], -1, 1, 'float32', 3) as tf.Tensor4D;
  const attrs = { strides: 1, pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
  const run: Record<Kernel, () => tf.Tensor> = {
    forward: () => tf.conv2d(x, w, 1, pad),
    inputGrad: () =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, { ...attrs, inputShape: x.shape } as never) as tf.Tensor,
    filterGrad: () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: w.shape } as never) as tf.Tensor,
  };
  const row: Row = {
    shape: { batch, side, cin, cout, kernel: k, pad },
    gflop: (2 * batch * yShape[0]! * yShape[1]! * cout * k * k * cin) / 1e9,
    f32Ms: {},
    tensorCoreMs: {},
    maxRelativeError: {},
  };
  for (const kernel of KERNELS) {
    setWebGPUConvPrecision('float32');
    const f32 = await timed(run[kernel]);
    row.f32Ms[kernel] = f32.ms;
    if (typeof tensorCores === 'string') continue;
    setWebGPUConvPrecision('float16');
    const tc = await timed(run[kernel]);
    row.tensorCoreMs[kernel] = tc.ms;
    row.maxRelativeError[kernel] = maxRelativeError(tc.values, f32.values);
  }
  console.log(
    `${batch}x${side}x${side}x${cin} -> ${cout} (${k}x${k} ${pad}): f32 ${KERNELS.map((q) => row.f32Ms[q]!.toFixed(2)).join('/')} ms` +
      (typeof tensorCores === 'string'
        ? ''
        : `, tensor cores ${KERNELS.map((q) => row.tensorCoreMs[q]!.toFixed(2)).join('/')} ms, ` +
          `max rel err ${KERNELS.map((q) => row.maxRelativeError[q]!.toExponential(2)).join('/')}`),
  );
  rows.push(row);
  tf.dispose([x, w, dy]);
}
setWebGPUConvPrecision('float32');
const sum = (pick: (r: Row) => Partial<Record<Kernel, number>>) =>
  Object.fromEntries(KERNELS.map((q) => [q, rows.reduce((a, r) => a + (pick(r)[q] ?? 0), 0)]));
const result = {
  impl: 'tfjs-dataflow',
  backend: 'webgpu',
  reason: report.reason,
  convPrecision: report.convPrecision,
  batch,
  repeats,
  subgroupMatrixConfigs: offer.configs,
  subgroupMinSize: offer.subgroupMinSize,
  subgroupMaxSize: offer.subgroupMaxSize,
  tensorCores: typeof tensorCores === 'string' ? { unavailable: tensorCores } : tensorCores,
  timing: gpuTimer
    ? 'GPU time (WebGPU timestamp queries), best of the repeats after a first call'
    : 'wall time to a read-back, best of the repeats',
  order: 'forward/inputGrad/filterGrad',
  rows,
  totalF32Ms: sum((r) => r.f32Ms),
  totalTensorCoreMs: sum((r) => r.tensorCoreMs),
  worstRelativeError: Math.max(0, ...rows.flatMap((r) => Object.values(r.maxRelativeError))),
};
const text = JSON.stringify(result, null, 1);
if (values.json) writeFileSync(values.json, `${text}\n`);
console.log(
  `configs ${JSON.stringify(offer.configs)}; tensor cores: ${JSON.stringify(result.tensorCores)}; worst relative error ${result.worstRelativeError}`,
);
process.exit(0);
