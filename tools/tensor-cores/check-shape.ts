// Any convolution shape through the package's public API (`tfjs-dataflow/node`, built by `npm run build`) with
// float16 convolutions on WebGPU, against its f16-rounded oracle on the cpu backend within the bound of
// test/helpers/f16.ts: the forward pass and both gradients through tf.grads, as a model's training computes them.
// Exit 1 when a result is outside the bound or the convolutions did not run on tensor cores.
// Usage (inside tools/tensor-cores/in-root.sh, or on a GPU):
//   node --import tsx tools/tensor-cores/check-shape.ts --x 3,13,11,20 --kernel 3,3 --cout 36 [--stride 1] [--pad same]
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from 'tfjs-dataflow/node';
import { accumulationErrorRatio, roundArrayToF16 } from '../../test/helpers/f16.js';

const { values } = parseArgs({
  options: {
    x: { type: 'string' },
    kernel: { type: 'string', default: '3,3' },
    cout: { type: 'string' },
    stride: { type: 'string', default: '1' },
    pad: { type: 'string', default: 'same' },
  },
});
const ints = (text: string | undefined, name: string, count: number) => {
  const parts = (text ?? '').split(',').map(Number);
  if (parts.length !== count || !parts.every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error(`--${name} must be ${count} positive integers separated by commas, got '${text}'`);
  }
  return parts;
};
const xShape = ints(values.x, 'x', 4) as [number, number, number, number];
const [kh, kw] = ints(values.kernel, 'kernel', 2) as [number, number];
const [cout] = ints(values.cout, 'cout', 1) as [number];
const [stride] = ints(values.stride, 'stride', 1) as [number];
if (values.pad !== 'same' && values.pad !== 'valid') throw new Error(`--pad must be same or valid, got '${values.pad}'`);
const pad = values.pad;
const wShape: [number, number, number, number] = [kh, kw, xShape[3], cout];

const report = await initBackend('webgpu', { webgpuConvPrecision: 'float16' });
console.log(`${report.reason}; convolutions: ${report.convPrecision}`);
if (!report.convPrecision?.startsWith('float16')) process.exit(1);

/** Uniform values in [-1, 1) from a fixed JavaScript generator, rounded to f16. */
function operand(size: number, seed: number): Float32Array {
  let a = seed;
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    out[i] = a / 2 ** 31 - 1;
  }
  return roundArrayToF16(out);
}
const size = (s: number[]) => s.reduce((p, q) => p * q, 1);
const x = operand(size(xShape), 11);
const w = operand(size(wShape), 12);
const yShape = tf.backend_util.computeConv2DInfo(xShape, wShape, stride, 1, pad).outShape;
const g = operand(size(yShape), 13);

/** y = conv(x, w) and the gradients of sum(y * g) (dy = g) on the active backend, of the values or their absolutes. */
async function convAndGrads(abs: boolean): Promise<Float32Array[]> {
  const v = (a: Float32Array) => (abs ? a.map(Math.abs) : a);
  const xt = tf.tensor4d(v(x), xShape);
  const wt = tf.tensor4d(v(w), wShape);
  const gt = tf.tensor4d(v(g), yShape);
  const y = tf.conv2d(xt, wt, stride, pad);
  const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad), gt)))(
    [xt, wt],
  );
  const out = await Promise.all([y, dx!, dw!].map((t) => t.data() as Promise<Float32Array>));
  tf.dispose([xt, wt, gt, y, dx!, dw!]);
  return out;
}

const onTensorCores = await convAndGrads(false);
await tf.setBackend('cpu');
const oracle = await convAndGrads(false);
const absSums = await convAndGrads(true);
const taps = kh * kw;
const positions = size(yShape.slice(0, 3));
// The longest sum of each kernel, plus a split-K pass of at most that many more terms: a bound that holds for any plan.
const lengths = [taps * xShape[3], taps * cout, positions].map((k) => 2 * k);
let failed = false;
['forward', 'input gradient', 'filter gradient'].forEach((name, i) => {
  const ratio = accumulationErrorRatio(onTensorCores[i]!, oracle[i]!, absSums[i]!, lengths[i]!);
  console.log(`${name}: ${ratio.toExponential(2)} of the bound`);
  if (!(ratio <= 1)) failed = true;
});
process.exit(failed ? 1 : 0);
