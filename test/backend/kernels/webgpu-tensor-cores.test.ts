// The tensor-core (subgroup-matrix) convolutions executed: initBackend('webgpu', { webgpuConvPrecision: 'float16' })
// on this machine's adapter. Where the adapter offers subgroup matrices (a GPU, or Mesa 26's lavapipe through
// tools/tensor-cores/test.sh), every program variant (forward, input and filter gradients; vec4 and scalar loaders;
// one split and split-K) runs on the seed's shapes at a small batch and on awkward ones, against the same convolution
// on the cpu backend with both operands rounded to f16 and f32 accumulation, within the bound of test/helpers/f16.ts
// (two f32 sums of the same exact products), and reruns bit for bit. Without subgroup matrices the f32 kernels must
// run and the report must say why. Dawn starts here with the toggles the feature needs, so this file does not use
// test/helpers/backends.ts.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/node.js';
import type { BackendReport } from '../../../src/backend/init.js';
import { planSplits, splitTuning } from '../../../src/backend/kernels/webgpu/conv_gemm.js';
import {
  SUBGROUP_MATRIX_FEATURE,
  setWebGPUConvPrecision,
  tensorCoreConfigFor,
  type TensorCoreConfig,
} from '../../../src/backend/kernels/webgpu/conv_precision.js';
import type { WebGPUBackendLike } from '../../../src/backend/kernels/types.js';
import { seededUniform } from '../../helpers/assert.js';
import { accumulationErrorRatio, roundArrayToF16 } from '../../helpers/f16.js';
import { liveTensors } from '../../helpers/memory.js';

const requested = (process.env['TFJS_DATAFLOW_BACKENDS'] ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const report: BackendReport | string =
  requested.length && !requested.includes('webgpu')
    ? `not in TFJS_DATAFLOW_BACKENDS=${requested.join(',')}`
    : await initBackend('webgpu', { webgpuConvPrecision: 'float16' }).catch((e: Error) => e.message);
const noWebGPU = typeof report === 'string' ? report : undefined;
const onTensorCores = typeof report !== 'string' && report.convPrecision?.startsWith('float16') === true;
const noTensorCores = noWebGPU ?? (onTensorCores ? undefined : (report as BackendReport).convPrecision);
const HOW_TO_RUN = 'run them with sudo tools/tensor-cores/test.sh (Mesa 26 lavapipe in a Debian trixie root)';
// tools/tensor-cores/test.sh sets it: there a fallback to the f32 kernels fails the file instead of skipping it.
if (process.env['TFJS_DATAFLOW_REQUIRE_TENSOR_CORES'] === '1' && !onTensorCores) {
  throw new Error(`TFJS_DATAFLOW_REQUIRE_TENSOR_CORES=1, but the convolutions cannot run on tensor cores here: ${noTensorCores}`);
}

afterAll(() => setWebGPUConvPrecision('float32'));

type Kernel = 'forward' | 'inputGrad' | 'filterGrad';
const KERNELS: Kernel[] = ['forward', 'inputGrad', 'filterGrad'];

interface Case {
  name: string;
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  stride: number;
  pad: 'same' | 'valid';
  /** Lowers the split tuning so that every kernel of the case splits K (the seed's larger shapes split by themselves). */
  forceSplits?: boolean;
}
// The seed's convolutions at base depth 64 (bench/conv-kernels.ts's shapes) at a small batch, its whitening conv, and
// the awkward ones: odd channel counts take the scalar loaders, multiples of 4 the vec4 ones.
const CASES: Case[] = [
  { name: 'seed 31x31x24->64', x: [2, 31, 31, 24], k: [3, 3], cout: 64, stride: 1, pad: 'same' },
  { name: 'seed 15x15x64->64', x: [2, 15, 15, 64], k: [3, 3], cout: 64, stride: 1, pad: 'same' },
  { name: 'seed 15x15x64->256', x: [2, 15, 15, 64], k: [3, 3], cout: 256, stride: 1, pad: 'same' },
  { name: 'seed 7x7x256->256', x: [2, 7, 7, 256], k: [3, 3], cout: 256, stride: 1, pad: 'same' },
  { name: 'seed 7x7x256->512', x: [2, 7, 7, 256], k: [3, 3], cout: 512, stride: 1, pad: 'same' },
  { name: 'seed 3x3x512->512', x: [2, 3, 3, 512], k: [3, 3], cout: 512, stride: 1, pad: 'same' },
  { name: 'seed whitening 2x2 valid', x: [2, 32, 32, 3], k: [2, 2], cout: 24, stride: 1, pad: 'valid' },
  { name: 'odd sizes', x: [3, 9, 7, 5], k: [3, 3], cout: 6, stride: 1, pad: 'same' },
  { name: 'stride 2, same', x: [2, 10, 9, 3], k: [3, 3], cout: 4, stride: 2, pad: 'same' },
  { name: 'stride 2, valid', x: [4, 17, 17, 3], k: [3, 3], cout: 5, stride: 2, pad: 'valid' },
  { name: '1x1', x: [2, 6, 6, 8], k: [1, 1], cout: 12, stride: 1, pad: 'valid' },
  { name: '5x5', x: [2, 8, 8, 3], k: [5, 5], cout: 7, stride: 1, pad: 'same' },
  { name: '3x2 kernel', x: [2, 7, 6, 4], k: [3, 2], cout: 4, stride: 1, pad: 'valid' },
  { name: 'split-K, vec4', x: [2, 12, 12, 16], k: [3, 3], cout: 20, stride: 1, pad: 'same', forceSplits: true },
  { name: 'split-K, scalar, stride 2', x: [3, 11, 13, 7], k: [3, 3], cout: 9, stride: 2, pad: 'same', forceSplits: true },
];

const tuned = { ...splitTuning };
afterEach(() => Object.assign(splitTuning, tuned));

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** The case's operands (fixed seeds, rounded to f16 so that the kernels' own rounding is exact) as plain arrays. */
function operands(c: Case) {
  const wShape: [number, number, number, number] = [...c.k, c.x[3], c.cout];
  const info = tf.backend_util.computeConv2DInfo(c.x, wShape, c.stride, 1, c.pad);
  const yShape = info.outShape;
  return {
    wShape,
    yShape,
    info,
    x: roundArrayToF16(seededUniform(size(c.x), 1)),
    w: roundArrayToF16(seededUniform(size(wShape), 2)),
    dy: roundArrayToF16(seededUniform(size(yShape), 3)),
  };
}

/**
 * The three convolutions of case `c` on the active backend, of the operands or (abs) of their absolute values;
 * without `filterGrad`, the filter gradient is left out (an empty array).
 */
async function convs(c: Case, abs = false, filterGrad = true): Promise<Record<Kernel, Float32Array>> {
  const o = operands(c);
  const prepare = (v: Float32Array) => (abs ? v.map(Math.abs) : v);
  const outs = tf.tidy(() => {
    const x = tf.tensor4d(prepare(o.x), c.x);
    const w = tf.tensor4d(prepare(o.w), o.wShape);
    const dy = tf.tensor4d(prepare(o.dy), o.yShape);
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    return {
      forward: tf.conv2d(x, w, c.stride, c.pad),
      inputGrad: tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, { ...attrs, inputShape: c.x } as never) as tf.Tensor,
      filterGrad: filterGrad
        ? (tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: o.wShape } as never) as tf.Tensor)
        : tf.zeros([0]),
    };
  });
  const values = await Promise.all(KERNELS.map((k) => outs[k].data() as Promise<Float32Array>));
  tf.dispose(Object.values(outs));
  return { forward: values[0]!, inputGrad: values[1]!, filterGrad: values[2]! };
}

/** The GEMM each kernel runs for case `c`: M x N outputs over K, and its split plan. */
function gemms(c: Case): Record<Kernel, { m: number; n: number; k: number }> {
  const { info } = operands(c);
  const taps = info.filterHeight * info.filterWidth;
  const positions = info.batchSize * info.outHeight * info.outWidth;
  return {
    forward: { m: positions, n: info.outChannels, k: taps * info.inChannels },
    inputGrad: { m: info.batchSize * info.inHeight * info.inWidth, n: info.inChannels, k: taps * info.outChannels },
    filterGrad: { m: taps * info.inChannels, n: info.outChannels, k: positions },
  };
}

/**
 * dW of case `c` in plain JavaScript, each sum accumulated in f32 (Math.fround per addition) over (b, oy, ox) in
 * order: tfjs-backend-cpu's Conv2DBackpropFilter takes about 30 s for the seed's 7x7x256->512 at batch 2.
 */
function filterGradInF32(c: Case, abs: boolean): Float32Array {
  const { info, x, dy } = operands(c);
  const v = (a: Float32Array, i: number) => (abs ? Math.abs(a[i]!) : a[i]!);
  const { inHeight, inWidth, inChannels: cin, outHeight, outWidth, outChannels: cout, strideHeight, strideWidth } = info;
  const dw = new Float32Array(info.filterHeight * info.filterWidth * cin * cout);
  for (let ky = 0; ky < info.filterHeight; ky++) {
    for (let kx = 0; kx < info.filterWidth; kx++) {
      for (let ci = 0; ci < cin; ci++) {
        const row = ((ky * info.filterWidth + kx) * cin + ci) * cout;
        for (let co = 0; co < cout; co++) {
          let sum = 0;
          for (let b = 0; b < info.batchSize; b++) {
            for (let oy = 0; oy < outHeight; oy++) {
              const iy = oy * strideHeight + ky - info.padInfo.top;
              if (iy < 0 || iy >= inHeight) continue;
              for (let ox = 0; ox < outWidth; ox++) {
                const ix = ox * strideWidth + kx - info.padInfo.left;
                if (ix < 0 || ix >= inWidth) continue;
                const xv = v(x, ((b * inHeight + iy) * inWidth + ix) * cin + ci);
                const dyv = v(dy, ((b * outHeight + oy) * outWidth + ox) * cout + co);
                sum = Math.fround(sum + xv * dyv);
              }
            }
          }
          dw[row + co] = sum;
        }
      }
    }
  }
  return dw;
}

/**
 * The oracle: the cpu backend's forward and input-gradient convolutions of the f16-rounded operands and the filter
 * gradient in f32 JavaScript (the values), and the same of their absolute values (the bound's scale).
 */
async function cpuOracle(c: Case): Promise<{ values: Record<Kernel, Float32Array>; absSums: Record<Kernel, Float32Array> }> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    const values = await convs(c, false, false);
    const absSums = await convs(c, true, false);
    return {
      values: { ...values, filterGrad: filterGradInF32(c, false) },
      absSums: { ...absSums, filterGrad: filterGradInF32(c, true) },
    };
  } finally {
    await tf.setBackend(previous);
  }
}

function convShaderKeys(): string[] {
  const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache;
  return Object.keys(cache).filter((k) => k.startsWith('dataflowConv'));
}

describe.skipIf(!noTensorCores || noWebGPU)(
  `WebGPU without subgroup matrices: float16 falls back to the f32 kernels${noWebGPU ? ` (skipped: ${noWebGPU})` : ''}`,
  () => {
    it('says so in the report, and runs the f32 kernels: the same bits as precision float32', async () => {
      expect((report as BackendReport).convPrecision).toMatch(/^float32 \(float16 requested, but .+\)$/);
      const device = (tf.backend() as unknown as WebGPUBackendLike).device;
      expect(typeof tensorCoreConfigFor(device)).toBe('string');
      // The fallback is the adapter's doing, never the device's: an adapter with the feature gives a device with it.
      const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
      expect(adapter?.features.has(SUBGROUP_MATRIX_FEATURE) && !device.features.has(SUBGROUP_MATRIX_FEATURE)).toBe(false);
      const before = liveTensors();
      for (const c of CASES.slice(7)) {
        const fallback = await convs(c);
        setWebGPUConvPrecision('float32');
        const f32 = await convs(c);
        setWebGPUConvPrecision('float16');
        for (const k of KERNELS) expect(Buffer.from(fallback[k].buffer).equals(Buffer.from(f32[k].buffer)), `${c.name} ${k}`).toBe(true);
      }
      expect(convShaderKeys().length).toBeGreaterThan(0);
      expect(convShaderKeys().every((k) => k.includes('_f32_'))).toBe(true);
      expect(liveTensors()).toBe(before);
    });
  },
);

describe.skipIf(!onTensorCores)(
  `tensor-core convolutions against the f16-rounded cpu oracle${onTensorCores ? '' : ` (skipped: needs an adapter with subgroup matrices, here ${noTensorCores}; ${HOW_TO_RUN})`}`,
  () => {
    it('runs on a device that holds every feature its adapter offers for them, and says which configuration', async () => {
      const device = (tf.backend() as unknown as WebGPUBackendLike).device;
      const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
      for (const feature of [SUBGROUP_MATRIX_FEATURE, 'shader-f16', 'subgroups']) {
        expect(adapter!.features.has(feature), feature).toBe(true);
        expect(device.features.has(feature), feature).toBe(true);
      }
      const config = tensorCoreConfigFor(device) as TensorCoreConfig;
      expect(typeof config).toBe('object');
      expect((report as BackendReport).convPrecision).toBe(
        `float16 on subgroup matrices ${config.M}x${config.N}x${config.K} (subgroups of ${config.subgroupSize}), float32 accumulation`,
      );
    });

    for (const c of CASES) {
      it(`${c.name}: forward and both gradients within the f32 accumulation bound of the oracle, bit-identical reruns`, async () => {
        if (c.forceSplits) Object.assign(splitTuning, { minStepsPerSplit: 1, targetWorkgroups: 1 << 20 });
        const plans = Object.fromEntries(KERNELS.map((k) => [k, planSplits(gemms(c)[k].m, gemms(c)[k].n, gemms(c)[k].k)]));
        if (c.forceSplits) for (const k of KERNELS) expect(plans[k]!.splits, `${k} splits`).toBeGreaterThan(1);
        const oracle = await cpuOracle(c);
        const before = liveTensors();
        setWebGPUConvPrecision('float16');
        const first = await convs(c);
        const second = await convs(c);
        // The f32 kernels on the same rounded operands meet the same bound: the oracle is not tighter than f32 itself.
        setWebGPUConvPrecision('float32');
        const f32 = await convs(c);
        setWebGPUConvPrecision('float16');
        for (const k of KERNELS) {
          const n = gemms(c)[k].k + plans[k]!.splits;
          expect(accumulationErrorRatio(first[k], oracle.values[k], oracle.absSums[k], n), `${c.name} ${k}`).toBeLessThanOrEqual(1);
          expect(accumulationErrorRatio(f32[k], oracle.values[k], oracle.absSums[k], n), `${c.name} ${k}, f32`).toBeLessThanOrEqual(1);
          expect(Buffer.from(second[k].buffer).equals(Buffer.from(first[k].buffer)), `${c.name} ${k} rerun`).toBe(true);
        }
        const keys = convShaderKeys();
        for (const name of ['dataflowConvForward', 'dataflowConvInputGrad', 'dataflowConvFilterGrad']) {
          expect(
            keys.some((key) => key.startsWith(`${name}_tc`)),
            name,
          ).toBe(true);
        }
        expect(liveTensors()).toBe(before);
      });
    }
  },
);

describe('the oracle', () => {
  it("catches a kernel that drops one product of the seed's longest sum", async () => {
    // The seed's 3x3x512->512 forward (K = 4608 products a sum) with the largest product of output (0, 1, 1, 0)
    // left out, against the oracle itself: one missing term stands out of the f32 accumulation bound.
    const c = CASES[5]!;
    const { x, w, wShape } = operands(c);
    const previous = tf.getBackend();
    await tf.setBackend('cpu');
    const [values, absSums] = [await convs(c, false, false), await convs(c, true, false)];
    await tf.setBackend(previous);
    const outAt = ((0 * 3 + 1) * 3 + 1) * 512; // b = 0, y = 1, x = 1, co = 0
    let largest = 0;
    for (let ci = 0; ci < 512; ci++) {
      // The centre tap (1, 1) takes x(0, 1, 1, ci).
      const product = x[outAt + ci]! * w[(4 * 512 + ci) * wShape[3]]!;
      if (Math.abs(product) > Math.abs(largest)) largest = product;
    }
    const dropped = values.forward.slice();
    dropped[outAt] = Math.fround(dropped[outAt]! - largest);
    const n = gemms(c).forward.k + 1;
    expect(accumulationErrorRatio(values.forward, values.forward, absSums.forward, n)).toBe(0);
    expect(accumulationErrorRatio(dropped, values.forward, absSums.forward, n)).toBeGreaterThan(1);
  });
});
