// Baseline: conv2d forward + both gradients on one shape, per backend. Prints JSON; passes or fails nothing.
// Usage: npx tsx bench/conv.ts [--backends cpu,wasm,webgpu] [--batch 16] [--repeats 5]
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/node.js';
import { parseBenchArgs } from './options.js';

const { values, int } = parseBenchArgs({
  backends: { type: 'string', default: 'cpu,wasm,webgpu' },
  batch: { type: 'string', default: '16' },
  repeats: { type: 'string', default: '5' },
});
const batch = int('batch');
const repeats = int('repeats');
// The seed's first conv group: 24 whitened channels -> 64, 3x3 'same', at 31x31 (after the 2x2 whitening conv).
const xShape: [number, number, number, number] = [batch, 31, 31, 24];
const wShape: [number, number, number, number] = [3, 3, 24, 64];
const flops = 3 * 2 * batch * 31 * 31 * 64 * 9 * 24; // forward, input gradient, filter gradient

const results = [];
for (const name of values.backends!.split(',')) {
  let report: Awaited<ReturnType<typeof initBackend>>;
  try {
    report = await initBackend(name as never);
  } catch (e) {
    results.push({ backend: name, error: (e as Error).message });
    continue;
  }
  const x = tf.randomNormal(xShape) as tf.Tensor4D;
  const w = tf.randomNormal(wShape) as tf.Tensor4D;
  const step = async () => {
    const out = tf.tidy(() => {
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))),
      )([x, w]);
      return tf.add(tf.sum(dx!), tf.sum(dw!));
    });
    await out.data();
    out.dispose();
  };
  await step();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  results.push({ backend: name, reason: report.reason, medianMs: +median.toFixed(1), gflopPerSec: +(flops / median / 1e6).toFixed(2) });
  tf.dispose([x, w]);
}
console.log(JSON.stringify({ shape: { x: xShape, w: wShape }, repeats, results }, null, 2));
