// The three convolution kernels of a SpeedyConvNet step, one layer shape at a time, on one backend:
// forward, input gradient and filter gradient, timed alone (best of --repeats after a warm-up call,
// a fresh filter per call as in training, where every step changes the weights). Prints JSON with GFLOP/s
// per kernel; tools/reference/bench_conv_kernels.py measures PyTorch on the same shapes.
// Where the library overrides a gradient kernel, the backend's own one (tfjs's) is timed beside it.
// On WebGPU with timestamp queries the times are GPU time (tf.time's kernelMs), else wall time to a read-back.
// Usage: npx tsx bench/conv-kernels.ts [--backend wasm] [--wasm-threads N] [--batch 64] [--repeats 4] [--json FILE]
import { writeFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel, overridesInstalled } from '../src/backend/kernels/install.js';
import { initBackend } from '../src/backend/node.js';
import { parseBenchArgs } from './options.js';

const { values, int, optionalInt } = parseBenchArgs({
  backend: { type: 'string', default: 'wasm' },
  'wasm-threads': { type: 'string' },
  batch: { type: 'string', default: '64' },
  repeats: { type: 'string', default: '4' },
  json: { type: 'string' },
});
const batch = int('batch');
const repeats = int('repeats');
const wasmThreads = optionalInt('wasm-threads');
// One wasm thread unless --wasm-threads says otherwise (initBackend's own default is one per core).
const report = await initBackend(values.backend as never, values.backend === 'wasm' ? { wasmThreads: wasmThreads ?? 1 } : {});

/** The seed's 3x3 'same' convolutions at base depth 64: [side, in channels, out channels]. */
export const CONV_SHAPES: Array<[number, number, number]> = [
  [31, 24, 64],
  [15, 64, 64],
  [15, 64, 256],
  [7, 256, 256],
  [7, 256, 512],
  [3, 512, 512],
];

const gpuTimer =
  tf.getBackend() === 'webgpu' && Boolean((tf.backend() as unknown as { supportTimestampQuery?: boolean }).supportTimestampQuery);

async function best(f: () => tf.Tensor): Promise<number> {
  const sync = async (t: tf.Tensor) => {
    await t.data();
    t.dispose();
  };
  await sync(f());
  let min = Infinity;
  for (let i = 0; i < repeats; i++) {
    if (gpuTimer) {
      let out: tf.Tensor | undefined;
      const timing = await tf.time(() => {
        out = f();
      });
      await sync(out!);
      min = Math.min(min, timing.kernelMs as number);
      continue;
    }
    const t0 = performance.now();
    await sync(f());
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

/** The backend's own kernel, bypassing the library's override (undefined when none is installed). */
function tfjsKernel(name: string): ((inputs: tf.NamedTensorMap, attrs: object) => tf.Tensor) | undefined {
  const backendName = tf.getBackend();
  if (!overridesInstalled(backendName, [name])) return undefined;
  let kernel: tf.KernelConfig;
  try {
    kernel = originalKernel(name, backendName);
  } catch {
    return undefined; // the backend has none (tfjs-backend-wasm 4.22's Conv2DBackpropFilter)
  }
  return (inputs, attrs) => {
    const out = kernel.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend: tf.backend() }) as tf.TensorInfo;
    return tf.engine().makeTensorFromTensorInfo(out);
  };
}

type Kernel = 'forward' | 'inputGrad' | 'filterGrad' | 'forwardTfjs' | 'inputGradTfjs' | 'filterGradTfjs';
interface Row {
  shape: { batch: number; side: number; cin: number; cout: number };
  gflop: number;
  ms: Partial<Record<Kernel, number>>;
  gflopPerSec: Partial<Record<Kernel, number>>;
}
const rows: Row[] = [];
for (const [side, cin, cout] of CONV_SHAPES) {
  const x = tf.randomNormal([batch, side, side, cin]) as tf.Tensor4D;
  const dy = tf.randomNormal([batch, side, side, cout]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, cin, cout]) as tf.Tensor4D;
  const attrs = { strides: [1, 1], pad: 'same', dataFormat: 'NHWC', dilations: [1, 1] };
  // tf.add(w, 0) makes a new filter each call, so kernels that cache per filter (XNNPACK packing) pay as in training.
  const forward = await best(() => tf.tidy(() => tf.conv2d(x, tf.add(w, 0) as tf.Tensor4D, 1, 'same')));
  const inputAttrs = { ...attrs, inputShape: x.shape };
  const filterAttrs = { ...attrs, filterShape: w.shape };
  const ms: Row['ms'] = { forward };
  const tfjsForward = tfjsKernel('Conv2D');
  if (tfjsForward) ms.forwardTfjs = await best(() => tf.tidy(() => tfjsForward({ x, filter: tf.add(w, 0) }, attrs)));
  ms.inputGrad = await best(() =>
    tf.tidy(() => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: tf.add(w, 0) }, inputAttrs as never) as tf.Tensor),
  );
  ms.filterGrad = await best(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, filterAttrs as never) as tf.Tensor);
  const tfjsInput = tfjsKernel('Conv2DBackpropInput');
  if (tfjsInput) ms.inputGradTfjs = await best(() => tf.tidy(() => tfjsInput({ dy, filter: tf.add(w, 0) }, inputAttrs)));
  const tfjsFilter = tfjsKernel('Conv2DBackpropFilter');
  if (tfjsFilter) ms.filterGradTfjs = await best(() => tfjsFilter({ x, dy }, filterAttrs));
  const gflop = (2 * batch * side * side * cout * 9 * cin) / 1e9;
  const gflopPerSec = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, +(gflop / (v / 1e3)).toFixed(1)]));
  rows.push({ shape: { batch, side, cin, cout }, gflop, ms, gflopPerSec });
  tf.dispose([x, dy, w]);
}
const kernels = Object.keys(rows[0]!.ms) as Kernel[];
const totalMs = Object.fromEntries(kernels.map((k) => [k, rows.reduce((a, r) => a + r.ms[k]!, 0)]));
const result = {
  impl: 'tfjs-dataflow',
  backend: tf.getBackend(),
  reason: report.reason,
  wasmThreads: report.wasmThreads ?? null,
  batch,
  repeats,
  timing: gpuTimer ? 'GPU time (WebGPU timestamp queries), best of the repeats' : 'wall time to a read-back, best of the repeats',
  rows,
  totalMs,
};
const text = JSON.stringify(result, null, 1);
console.log(text);
if (values.json) writeFileSync(values.json, `${text}\n`);
process.exit(0); // the threaded wasm build's pool would otherwise only end with the event loop
