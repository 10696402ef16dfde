// The WebGPU convolutions with f16 operands on tensor cores (subgroup matrices) on the seed's conv shapes, each kernel
// against its oracle (the same convolution of the f16-rounded operands with f32 accumulation: the library's f32
// kernel, run on those operands on the same device) within the bound of test/helpers/f16.ts, and the GPU time of the
// f32 and tensor-core variants. Prints the adapter's features and subgroup-matrix configurations and what the device
// holds first; with --require-tensor-cores it stops there (exit 1) when float16 did not reach the device, so that no
// later figure measures the f32 kernels by mistake. Writes JSON.
// Usage: npx tsx bench/tensor-cores.ts [--batch 1024] [--repeats 3] [--require-tensor-cores] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/node.js';
import { planSplits } from '../src/backend/kernels/webgpu/conv_gemm.js';
import {
  SUBGROUP_MATRIX_FEATURE,
  setWebGPUConvPrecision,
  subgroupMatrixDeviceOf,
  tensorCoreConfigFor,
} from '../src/backend/kernels/webgpu/conv_precision.js';
import { accumulationErrorRatio, roundArrayToF16 } from '../test/helpers/f16.js';

const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '1024' },
    repeats: { type: 'string', default: '3' },
    'require-tensor-cores': { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
const batch = Number(values.batch);
const repeats = Number(values.repeats);
if (!(Number.isInteger(batch) && batch > 0)) throw new Error(`--batch must be a positive integer, got '${values.batch}'`);
if (!(Number.isInteger(repeats) && repeats > 0)) throw new Error(`--repeats must be a positive integer, got '${values.repeats}'`);

const report = await initBackend('webgpu', { webgpuConvPrecision: 'float16', webgpuExactTimestamps: true });
const device = (tf.backend() as unknown as { device: GPUDevice }).device;
const adapter = await (globalThis as unknown as { navigator: { gpu: GPU } }).navigator.gpu.requestAdapter({
  powerPreference: 'high-performance',
});
const info = (adapter as (GPUAdapter & { info?: GPUAdapterInfo }) | null)?.info;
const offer = subgroupMatrixDeviceOf(info);
const tensorCores = tensorCoreConfigFor(device);
const gpuTimer = Boolean((tf.backend() as unknown as { supportTimestampQuery?: boolean }).supportTimestampQuery);
const featuresOf = (set: GPUSupportedFeatures | undefined) => [...(set ?? [])].sort();
console.log(`adapter: ${report.reason}`);
console.log(`adapter features: ${featuresOf(adapter?.features).join(' ')}`);
console.log(
  `subgroup sizes ${offer.subgroupMinSize}..${offer.subgroupMaxSize}; subgroupMatrixConfigs: ${
    offer.configs.map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`).join(', ') || 'none'
  }`,
);
console.log(`device features: ${featuresOf(device.features).join(' ')}`);
console.log(`convolutions: ${report.convPrecision}`);
if (adapter?.features.has(SUBGROUP_MATRIX_FEATURE) && !device.features.has(SUBGROUP_MATRIX_FEATURE)) {
  console.error(`the adapter offers ${SUBGROUP_MATRIX_FEATURE} but the device tfjs runs on lacks it`);
  process.exit(1);
}
if (values['require-tensor-cores'] && typeof tensorCores === 'string') {
  console.error(`--require-tensor-cores: the convolutions would run the f32 kernels (${tensorCores})`);
  process.exit(1);
}

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

/** Uniform values in [-1, 1) drawn on the device with `seed`, rounded to f16 (exact in the kernels' own rounding). */
async function f16Uniform(shape: number[], seed: number): Promise<tf.Tensor4D> {
  const drawn = tf.randomUniform(shape, -1, 1, 'float32', seed);
  const rounded = roundArrayToF16((await drawn.data()) as Float32Array);
  drawn.dispose();
  return tf.tensor4d(rounded, shape as [number, number, number, number]);
}

interface Row {
  shape: { batch: number; side: number; cin: number; cout: number; kernel: number; pad: string };
  gflop: number;
  f32Ms: Partial<Record<Kernel, number>>;
  tensorCoreMs: Partial<Record<Kernel, number>>;
  /** Largest |tensor cores - oracle| / (2 gamma~_n S) over the outputs: at most 1 within the bound. */
  oracleBoundRatio: Partial<Record<Kernel, number>>;
}
const rows: Row[] = [];
for (const [side, cin, cout, k, pad] of SHAPES) {
  const x = await f16Uniform([batch, side, side, cin], 1);
  const w = await f16Uniform([k, k, cin, cout], 2);
  const info = tf.backend_util.computeConv2DInfo(x.shape, w.shape, 1, 1, pad);
  const dy = await f16Uniform(info.outShape, 3);
  const attrs = { strides: 1, pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
  const kernelsOf = (xs: tf.Tensor4D, ws: tf.Tensor4D, dys: tf.Tensor4D): Record<Kernel, () => tf.Tensor> => ({
    forward: () => tf.conv2d(xs, ws, 1, pad),
    inputGrad: () =>
      tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: dys, filter: ws }, { ...attrs, inputShape: xs.shape } as never) as tf.Tensor,
    filterGrad: () =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: xs, dy: dys }, { ...attrs, filterShape: ws.shape } as never) as tf.Tensor,
  });
  const run = kernelsOf(x, w, dy);
  const taps = k * k;
  const positions = batch * info.outHeight * info.outWidth;
  const gemm: Record<Kernel, [number, number, number]> = {
    forward: [positions, cout, taps * cin],
    inputGrad: [batch * side * side, cin, taps * cout],
    filterGrad: [taps * cin, cout, positions],
  };
  const row: Row = {
    shape: { batch, side, cin, cout, kernel: k, pad },
    gflop: (2 * positions * cout * taps * cin) / 1e9,
    f32Ms: {},
    tensorCoreMs: {},
    oracleBoundRatio: {},
  };
  for (const kernel of KERNELS) {
    setWebGPUConvPrecision('float32');
    const f32 = await timed(run[kernel]);
    row.f32Ms[kernel] = f32.ms;
    if (typeof tensorCores === 'string') continue;
    // The oracle's scale: the f32 kernel on the operands' absolute values.
    const [ax, aw, ady] = [tf.abs(x), tf.abs(w), tf.abs(dy)] as tf.Tensor4D[];
    const absOut = kernelsOf(ax!, aw!, ady!)[kernel]();
    const absSums = (await absOut.data()) as Float32Array;
    tf.dispose([ax, aw, ady, absOut]);
    setWebGPUConvPrecision('float16');
    const tc = await timed(run[kernel]);
    row.tensorCoreMs[kernel] = tc.ms;
    const [m, n, kk] = gemm[kernel];
    row.oracleBoundRatio[kernel] = accumulationErrorRatio(tc.values, f32.values, absSums, kk + planSplits(m, n, kk).splits);
  }
  console.log(
    `${batch}x${side}x${side}x${cin} -> ${cout} (${k}x${k} ${pad}): f32 ${KERNELS.map((q) => row.f32Ms[q]!.toFixed(2)).join('/')} ms` +
      (typeof tensorCores === 'string'
        ? ''
        : `, tensor cores ${KERNELS.map((q) => row.tensorCoreMs[q]!.toFixed(2)).join('/')} ms, ` +
          `oracle bound ratio ${KERNELS.map((q) => row.oracleBoundRatio[q]!.toExponential(2)).join('/')}`),
  );
  rows.push(row);
  tf.dispose([x, w, dy]);
}
setWebGPUConvPrecision('float32');
const sum = (pick: (r: Row) => Partial<Record<Kernel, number>>) =>
  Object.fromEntries(KERNELS.map((q) => [q, rows.reduce((a, r) => a + (pick(r)[q] ?? 0), 0)]));
const worstRatio = Math.max(0, ...rows.flatMap((r) => Object.values(r.oracleBoundRatio)));
const result = {
  impl: 'tfjs-dataflow',
  backend: 'webgpu',
  reason: report.reason,
  convPrecision: report.convPrecision,
  batch,
  repeats,
  adapterFeatures: featuresOf(adapter?.features),
  deviceFeatures: featuresOf(device.features),
  subgroupMatrixConfigs: offer.configs,
  subgroupMinSize: offer.subgroupMinSize,
  subgroupMaxSize: offer.subgroupMaxSize,
  tensorCores: typeof tensorCores === 'string' ? { unavailable: tensorCores } : tensorCores,
  timing: gpuTimer
    ? 'GPU time (WebGPU timestamp queries, quantization off), best of the repeats after a first call'
    : 'wall time to a read-back, best of the repeats',
  oracle:
    'the f32 kernel on the same f16-rounded operands; bound 2 gamma~_n(8) sum|a b| (test/helpers/f16.ts); a ratio over 1 is outside it',
  order: 'forward/inputGrad/filterGrad',
  rows,
  totalF32Ms: sum((r) => r.f32Ms),
  totalTensorCoreMs: sum((r) => r.tensorCoreMs),
  worstOracleBoundRatio: worstRatio,
};
const text = JSON.stringify(result, null, 1);
if (values.json) writeFileSync(values.json, `${text}\n`);
console.log(`tensor cores: ${JSON.stringify(result.tensorCores)}; worst oracle bound ratio ${worstRatio} (at most 1 within the bound)`);
process.exit(0);
