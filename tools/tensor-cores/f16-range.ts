// How much of the seed's real convolution operands f16 cannot hold: trains SpeedyConvNet with the seed's recipe on
// real CIFAR-10 (wasm, float32) and, at every convolution of the sampled steps (forward: x and W; input gradient: dy
// and W; filter gradient: x and dy), counts the nonzero operand values that rounding to f16 would make subnormal
// (|v| < 2^-14 = 6.1e-5: fewer than 11 significant bits), flush to zero (|v| < 2^-25 = 3.0e-8), or overflow
// (|v| >= 65520), and how far the kernel's result moves when its operands are rounded to f16 (the tensor-core
// kernels' rounding), with and without scaling the output gradient dy by a power of two that puts its largest value
// near 2^14 first (loss scaling within the kernel). Prints tables per kernel and operand and writes JSON.
// Usage: npx tsx tools/tensor-cores/f16-range.ts --data DIR [--images 2048] [--batch 128] [--epochs 2]
//          [--base-depth 64] [--every 8] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { Trainer, fitSpeedyConvNetWhitening, initBackend, loadCifar10, speedyConvNet } from '../../src/node.js';
import { roundArrayToF16 } from '../../test/helpers/f16.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    images: { type: 'string', default: '2048' },
    batch: { type: 'string', default: '128' },
    epochs: { type: 'string', default: '2' },
    'base-depth': { type: 'string', default: '64' },
    every: { type: 'string', default: '8' },
    json: { type: 'string' },
  },
});
const int = (name: keyof typeof values) => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${values[name]}'`);
  return n;
};
const [images, batch, epochs, baseDepth, every] = [int('images'), int('batch'), int('epochs'), int('base-depth'), int('every')];

const SUBNORMAL = 2 ** -14;
const FLUSHED = 2 ** -25;
const OVERFLOW = 65520;

interface Counts {
  values: number;
  zeros: number;
  subnormal: number;
  flushed: number;
  overflow: number;
  maxAbs: number;
}
const counts = new Map<string, Counts>();
let sampling = true;

function record(key: string, data: Float32Array): void {
  const c = counts.get(key) ?? { values: 0, zeros: 0, subnormal: 0, flushed: 0, overflow: 0, maxAbs: 0 };
  for (const v of data) {
    const a = Math.abs(v);
    c.values++;
    if (a === 0) c.zeros++;
    else if (a < FLUSHED) c.flushed++;
    else if (a < SUBNORMAL) c.subnormal++;
    if (a >= OVERFLOW) c.overflow++;
    if (a > c.maxAbs) c.maxAbs = a;
  }
  counts.set(key, c);
}

interface Deviation {
  calls: number;
  /** Sum over calls of the result's RMS error relative to its RMS (f32 result as reference). */
  rmsRelative: number;
  /** Largest max |error| / max |result| over calls. */
  maxRelative: number;
}
const deviations = new Map<string, Deviation>();

function deviate(key: string, actual: Float32Array, expected: Float32Array): void {
  let sq = 0;
  let ref = 0;
  let worst = 0;
  let peak = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = actual[i]! - expected[i]!;
    sq += e * e;
    ref += expected[i]! * expected[i]!;
    worst = Math.max(worst, Math.abs(e));
    peak = Math.max(peak, Math.abs(expected[i]!));
  }
  const d = deviations.get(key) ?? { calls: 0, rmsRelative: 0, maxRelative: 0 };
  d.calls++;
  d.rmsRelative += ref > 0 ? Math.sqrt(sq / ref) : 0;
  d.maxRelative = Math.max(d.maxRelative, peak > 0 ? worst / peak : 0);
  deviations.set(key, d);
}

/** The power of two that puts the largest |v| of `values` between 2^13 and 2^14 (1 for all zeros). */
function scaleFor(values: Float32Array): number {
  let peak = 0;
  for (const v of values) peak = Math.max(peak, Math.abs(v));
  return peak > 0 ? 2 ** (13 - Math.floor(Math.log2(peak))) : 1;
}

/**
 * Wraps the active backend's kernel `name` so that, while sampling, its operands `operands` (input name -> label)
 * are counted and the kernel is run again on f16-rounded operands, and with `scaled` (an input name) scaled first.
 */
function watch(name: string, label: string, operands: Record<string, string>, scaled?: string): void {
  const backendName = tf.getBackend();
  const original = tf.getKernel(name, backendName)!;
  tf.unregisterKernel(name, backendName);
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const result = original.kernelFunc(args) as tf.TensorInfo;
      if (!sampling) return result;
      const backend = args.backend as tf.KernelBackend;
      const read = (info: tf.TensorInfo) => backend.readSync(info.dataId) as Float32Array;
      const inputs = Object.fromEntries(Object.entries(args.inputs).map(([k, v]) => [k, read(v as tf.TensorInfo)]));
      for (const [input, as] of Object.entries(operands)) record(`${label} ${as}`, inputs[input]!);
      const rerun = (scale: number) => {
        const made = Object.fromEntries(
          Object.entries(args.inputs).map(([k, v]) => {
            const values = k === scaled ? inputs[k]!.map((x) => x * scale) : inputs[k]!;
            const { shape } = v as tf.TensorInfo;
            return [k, { dataId: backend.write(roundArrayToF16(values), shape, 'float32'), shape, dtype: 'float32' as const }];
          }),
        );
        const out = original.kernelFunc({ ...args, inputs: made }) as tf.TensorInfo;
        const values = read(out).map((x) => x / scale);
        for (const info of [...Object.values(made), out]) backend.disposeData(info.dataId);
        return values;
      };
      const exact = read(result);
      deviate(`${label}, f16 operands`, rerun(1), exact);
      if (scaled) deviate(`${label}, f16 operands, ${scaled} scaled`, rerun(scaleFor(inputs[scaled]!)), exact);
      return result;
    },
  });
}

const report = await initBackend('wasm');
console.log(`${report.backend}: ${report.reason}`);
watch('Conv2D', 'forward', { x: 'x', filter: 'W' });
watch('Conv2DBackpropInput', 'input gradient', { dy: 'dy', filter: 'W' }, 'dy');
watch('Conv2DBackpropFilter', 'filter gradient', { x: 'x', dy: 'dy' }, 'dy');

const data = (await loadCifar10({ dir: values.data, trainLimit: images, evalLimit: 256 })).toBackend();
const net = speedyConvNet({ hyp: { net: { baseDepth }, opt: { batchSize: batch }, misc: { trainEpochs: epochs } }, seed: 0 });
sampling = false;
await fitSpeedyConvNetWhitening(net, data.train.images, { padAmount: net.hyp.net.padAmount });
const sampled: number[] = [];
const trainer = new Trainer(net, data, {
  evalEveryEpoch: false,
  callbacks: {
    onStep: (s) => {
      // The step just finished was sampled; sample the next one when it falls on `every`.
      if (sampling) sampled.push(s.step);
      sampling = (s.step + 1) % every === 1 || every === 1;
      if (s.loss !== undefined) console.log(`step ${s.step}/${s.totalSteps} loss ${s.loss.toFixed(4)}`);
    },
  },
});
const result = await trainer.run();
trainer.dispose();

const rows = [...counts.entries()].map(([key, c]) => ({
  operand: key,
  values: c.values,
  zeroShare: c.zeros / c.values,
  subnormalShare: c.subnormal / c.values,
  flushedShare: c.flushed / c.values,
  overflowShare: c.overflow / c.values,
  maxAbs: c.maxAbs,
}));
console.log(`sampled steps ${sampled.join(', ')} (${result.stopReason})`);
console.log('operand                 values    zero      subnormal  flushed   overflow  max |v|');
for (const r of rows) {
  const pct = (x: number) => `${(100 * x).toFixed(4)}%`.padStart(9);
  console.log(
    `${r.operand.padEnd(22)} ${String(r.values).padStart(10)} ${pct(r.zeroShare)} ${pct(r.subnormalShare)}  ${pct(r.flushedShare)} ${pct(r.overflowShare)}  ${r.maxAbs.toExponential(2)}`,
  );
}
console.log('kernel                                     calls  mean RMS rel. error  max |error| / max |result|');
const deviationRows = [...deviations.entries()].map(([key, d]) => ({
  kernel: key,
  calls: d.calls,
  meanRmsRelativeError: d.rmsRelative / d.calls,
  maxRelativeError: d.maxRelative,
}));
for (const r of deviationRows) {
  console.log(
    `${r.kernel.padEnd(42)} ${String(r.calls).padStart(5)}  ${r.meanRmsRelativeError.toExponential(2).padStart(19)}  ${r.maxRelativeError.toExponential(2)}`,
  );
}
const out = {
  what: 'share of nonzero-or-zero conv operand values by what rounding to f16 does to them (subnormal: |v| < 2^-14, flushed: |v| < 2^-25, overflow: |v| >= 65520)',
  backend: report.backend,
  images,
  batch,
  epochs,
  baseDepth,
  sampledSteps: sampled,
  rows,
  deviations: deviationRows,
};
if (values.json) writeFileSync(values.json, `${JSON.stringify(out, null, 1)}\n`);
process.exit(0);
