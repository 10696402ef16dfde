// Micro-benchmark: Conv2DBackpropFilter as registered (kernels/wasm/Conv2DBackpropFilter.ts: conv of transposes) vs one im2col GEMM,
// on the seed's shapes at batch 64, wasm. Usage: npx tsx bench/filter-grad.ts
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/node.js';
await initBackend('wasm', { wasmThreads: 1 });
const shapes: Array<[number, number, number, number]> = [
  [64, 31, 31, 24, 64],
  [64, 15, 15, 64, 256],
  [64, 7, 7, 256, 512],
  [64, 3, 3, 512, 512],
] as never;
function im2colGrad(x: tf.Tensor4D, dy: tf.Tensor4D, k: number): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w, ci] = x.shape;
    const co = dy.shape[3];
    const p = (k - 1) / 2;
    const xp = tf.pad(x, [
      [0, 0],
      [p, p],
      [p, p],
      [0, 0],
    ]);
    const cols: tf.Tensor[] = [];
    for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) cols.push(tf.slice(xp, [0, a, b, 0], [n, h, w, ci]));
    const col = tf.reshape(tf.concat(cols, 3), [n * h * w, k * k * ci]);
    const dyT = tf.transpose(tf.reshape(dy, [n * h * w, co])); // [co, K]
    const g = tf.matMul(dyT, col); // [co, 9ci]
    return tf.transpose(tf.reshape(g, [co, k, k, ci]), [1, 2, 3, 0]) as tf.Tensor4D;
  });
}
for (const [n, h, w, ci, co] of shapes as unknown as number[][]) {
  const x = tf.randomNormal([n!, h!, w!, ci!]) as tf.Tensor4D;
  const dy = tf.randomNormal([n!, h!, w!, co!]) as tf.Tensor4D;
  const cur = () =>
    tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      strides: [1, 1],
      pad: 'same',
      dataFormat: 'NHWC',
      filterShape: [3, 3, ci, co],
    } as never) as tf.Tensor;
  const time = (f: () => tf.Tensor) => {
    f().dispose();
    const ts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      f().dispose();
      ts.push(performance.now() - t0);
    }
    return Math.min(...ts);
  };
  const a = cur() as tf.Tensor;
  const b = im2colGrad(x, dy, 3);
  const err = tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  const scale = tf.max(tf.abs(a)).dataSync()[0];
  tf.dispose([a, b]);
  const gf = (2 * n! * h! * w! * co! * 9 * ci!) / 1e9;
  const t1 = time(cur as never),
    t2 = time(() => im2colGrad(x, dy, 3));
  console.log(
    `${[n, h, w, ci, co]}: current ${t1.toFixed(0)} ms (${((gf / t1) * 1e3).toFixed(1)} GF/s), im2col ${t2.toFixed(0)} ms (${((gf / t2) * 1e3).toFixed(1)} GF/s), rel err ${(err! / scale!).toExponential(1)}`,
  );
  tf.dispose([x, dy]);
}
