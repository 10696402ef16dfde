// Attributes the bytes a training step uploads to the backend to the code that made them (first library or
// tfjs-gradient stack frame of each backend.write). Usage: npx tsx bench/uploads.ts [--backend wasm] [--batch 64] [--base-depth 64]
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend/node.js';
import { KernelCounter } from '../src/backend/counter.js';
import { parseBenchArgs } from './options.js';
import { setupBench } from './step.js';
const { values, int } = parseBenchArgs({
  backend: { type: 'string', default: 'wasm' },
  batch: { type: 'string', default: '64' },
  'base-depth': { type: 'string', default: '64' },
});
await initBackend(values.backend as never);
const s = await setupBench({ batch: int('batch'), baseDepth: int('base-depth'), totalSteps: 50 });
for (let i = 0; i < 6; i++) s.trainStep();
const which = process.env.UPLOADS_STEP === 'eval' ? 'eval' : 'train';
s.evalStep().dispose();
// The backend's write, wrapped to count host-to-device bytes by the source line that caused them.
const b = tf.engine().backend as unknown as { write: (values: unknown, ...rest: unknown[]) => unknown };
const w = b.write.bind(b);
const bySource = new Map<string, { bytes: number; calls: number }>();
b.write = (v: unknown, ...r: unknown[]) => {
  if (v != null && ArrayBuffer.isView(v) && v.byteLength > 0) {
    const frames = new Error().stack!.split('\n').slice(2);
    const f =
      frames.find((l) => /gradients\/\w+_grad|\/src\/(ops|layers|train|models)\//.test(l) && !l.includes('tfjs-core/src/ops')) ??
      frames[3] ??
      '';
    const key = f
      .trim()
      .replace(/^at /, '')
      .replace(/\(.*?((tfjs-core\/)?src\/)/, '($1')
      .replace(/:\d+\)$/, ')');
    const e = bySource.get(key) ?? { bytes: 0, calls: 0 };
    e.bytes += v.byteLength;
    e.calls++;
    bySource.set(key, e);
  }
  return w(v, ...r);
};
const steps = 5;
const c = await new KernelCounter().measure(() => {
  for (let i = 0; i < steps; i++) {
    if (which === 'eval') s.evalStep().dispose();
    else s.trainStep();
  }
});
console.log(
  JSON.stringify({ backend: values.backend, batch: int('batch'), depth: int('base-depth'), uploadBytesPerStep: c.uploadBytes / steps }),
);
for (const [k, e] of [...bySource].sort((a, b) => b[1].bytes - a[1].bytes))
  console.log(`${(e.bytes / steps).toFixed(0).padStart(10)} B/step ${(e.calls / steps).toFixed(1).padStart(5)} calls  ${k}`);
process.exit(0);
