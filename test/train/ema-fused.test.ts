// NetworkEMA.update/updateAt through the one-kernel blend (`emaUpdate`, WebGPU with the library's kernels) against
// the EMA on cpu (the unfused ops): several updates of odd-shaped entries with the live net moving in between,
// decays from the schedule's tables and given directly, the copy-back (excluded entries stay live); bit-identical
// reruns, no leaks, an exact snapshot/load resume, one kernel per entry.
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, expect, it } from 'vitest';
import { KernelCounter, type KernelCounts } from '../../src/backend/counter.js';
import { EMA_UPDATE } from '../../src/backend/kernels/names.js';
import { hasEMAUpdateKernel } from '../../src/ops/optimizer-updates.js';
import { NetworkEMA } from '../../src/train/ema.js';
import { maxRelativeError, seededUniform } from '../helpers/assert.js';
import { describeEachBackendAndWebGPUKernelSet, useBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';
import { kernelsRun } from '../helpers/kernels.js';

// 'whiten' and norm weights are averaged but not copied back (the seed's rule).
const SHAPES: Record<string, number[]> = {
  'conv/weight': [3, 3, 5, 7],
  'whiten/weight': [2, 2, 3, 4],
  'norm/weight': [13],
  'norm/bias': [13],
  'linear/weight': [1031],
  scale: [1],
};
const TOTAL_STEPS = 20;
/** Each update: a step of the schedule (updateAt) or a decay given directly (update). */
const UPDATES: ({ step: number } | { decay: number })[] = [{ step: 5 }, { step: 10 }, { decay: 0.3 }, { step: 15 }, { step: 20 }];

let serial = 0;

interface Net {
  weights: tf.Variable[];
}

function makeNet(): Net {
  const suffix = `_emaf${serial++}`;
  return {
    weights: tf.tidy(() =>
      Object.entries(SHAPES).map(([n, shape], i) => {
        const size = shape.reduce((a, b) => a * b, 1);
        return tf.variable(tf.tensor(seededUniform(size, 200 + i), shape), true, `${n}${suffix}`);
      }),
    ),
  };
}

const baseName = (name: string) => name.replace(/_emaf\d+$/, '');

/** Moves the live net as training would between updates: w += delta. */
function moveLive(net: Net, u: number): void {
  tf.tidy(() => {
    net.weights.forEach((w, i) => w.assign(tf.add(w, tf.tensor(seededUniform(w.size, 1000 * u + i, -0.3, 0.3), w.shape))));
  });
}

function update(ema: NetworkEMA, net: Net, u: number): void {
  const how = UPDATES[u]!;
  if ('step' in how) ema.updateAt(net, how.step);
  else ema.update(net, how.decay);
}

async function readAll(m: Record<string, tf.Tensor> | tf.Variable[]): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const [n, t] of Array.isArray(m) ? m.map((w) => [w.name, w] as const) : Object.entries(m))
    out[baseName(n)] = (await t.data()) as Float32Array;
  return out;
}

interface Trace {
  ema: Record<string, Float32Array>[];
  live: Record<string, Float32Array>[];
}

async function trace(): Promise<Trace> {
  const net = makeNet();
  const ema = new NetworkEMA(net, { decaySchedule: { totalSteps: TOTAL_STEPS } });
  const t: Trace = { ema: [], live: [] };
  for (let u = 0; u < UPDATES.length; u++) {
    moveLive(net, u);
    update(ema, net, u);
    const snap = ema.snapshot();
    t.ema.push(await readAll(snap));
    tf.dispose(snap);
    t.live.push(await readAll(net.weights));
  }
  ema.dispose();
  tf.dispose(net.weights);
  return t;
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describeEachBackendAndWebGPUKernelSet('NetworkEMA, fused where the backend has the kernel', (backend) => {
  afterEach(() => tf.disposeVariables());

  it(`${UPDATES.length} updates: averages and live weights within 1e-5 of cpu, excluded entries not copied back; no leaks`, async () => {
    await useBackend('cpu');
    const expected = await trace();
    await useBackend(backend);
    const before = liveTensors();
    const actual = await trace();
    expect(liveTensors()).toBe(before);
    for (let u = 0; u < UPDATES.length; u++) {
      for (const n of Object.keys(SHAPES)) {
        expect(maxRelativeError(actual.ema[u]![n]!, expected.ema[u]![n]!), `ema ${n} after update ${u + 1}`).toBeLessThanOrEqual(1e-5);
        expect(maxRelativeError(actual.live[u]![n]!, expected.live[u]![n]!), `live ${n} after update ${u + 1}`).toBeLessThanOrEqual(1e-5);
        const copiedBack = bytes(actual.live[u]![n]!).equals(bytes(actual.ema[u]![n]!));
        expect(copiedBack, `${n} copied back after update ${u + 1}`).toBe(n !== 'whiten/weight' && n !== 'norm/weight');
      }
    }
  });

  it('reruns bit for bit', async () => {
    const a = await trace();
    const b = await trace();
    for (let u = 0; u < UPDATES.length; u++)
      for (const n of Object.keys(SHAPES)) {
        expect(bytes(a.ema[u]![n]!).equals(bytes(b.ema[u]![n]!)), `ema ${n} update ${u + 1}`).toBe(true);
        expect(bytes(a.live[u]![n]!).equals(bytes(b.live[u]![n]!)), `live ${n} update ${u + 1}`).toBe(true);
      }
  });

  it('resumes exactly from snapshot/load', async () => {
    const netA = makeNet();
    const emaA = new NetworkEMA(netA, { decaySchedule: { totalSteps: TOTAL_STEPS } });
    const netB = makeNet();
    const emaB = new NetworkEMA(netB, { decaySchedule: { totalSteps: TOTAL_STEPS } });
    for (let u = 0; u < UPDATES.length; u++) {
      moveLive(netA, u);
      update(emaA, netA, u);
      if (u < 2) {
        moveLive(netB, u);
        update(emaB, netB, u);
      }
    }
    // A fresh EMA over netB's values, loaded from emaB's snapshot, must continue exactly like emaA.
    const snap = emaB.snapshot();
    emaB.dispose();
    const emaC = new NetworkEMA(netB, { decaySchedule: { totalSteps: TOTAL_STEPS } });
    emaC.load(snap);
    tf.dispose(snap);
    for (let u = 2; u < UPDATES.length; u++) {
      moveLive(netB, u);
      update(emaC, netB, u);
    }
    const [snapA, snapC] = [emaA.snapshot(), emaC.snapshot()];
    const [ea, ec] = [await readAll(snapA), await readAll(snapC)];
    const [la, lc] = [await readAll(netA.weights), await readAll(netB.weights)];
    for (const n of Object.keys(SHAPES)) {
      expect(bytes(ec[n]!).equals(bytes(ea[n]!)), `ema ${n}`).toBe(true);
      expect(bytes(lc[n]!).equals(bytes(la[n]!)), `live ${n}`).toBe(true);
    }
    tf.dispose([snapA, snapC]);
    emaA.dispose();
    emaC.dispose();
    tf.dispose([...netA.weights, ...netB.weights]);
  });

  it(`runs one ${EMA_UPDATE} kernel per entry exactly where the backend has it, and slices or uploads no decay (${backend})`, async () => {
    const net = makeNet();
    const ema = new NetworkEMA(net, { decaySchedule: { totalSteps: TOTAL_STEPS } });
    ema.updateAt(net, 7);
    let uploads: KernelCounts | undefined;
    const counts = await kernelsRun(async () => {
      // The decay tables are on the backend since the first update: nothing is uploaded.
      uploads = await new KernelCounter().measure(() => ema.updateAt(net, 8));
    });
    // (cpu kernels hand their results to the backend through write(): every one counts as an upload there.)
    if (backend !== 'cpu') expect(uploads!.uploadBytes).toBe(0);
    const entries = Object.keys(SHAPES).length;
    if (hasEMAUpdateKernel()) expect([...counts]).toEqual([[EMA_UPDATE, entries]]);
    else {
      expect(counts.get(EMA_UPDATE)).toBeUndefined();
      expect(counts.get('Multiply')).toBe(2 * entries);
      expect(counts.get('Add')).toBe(entries);
    }
    ema.dispose();
    tf.dispose(net.weights);
  });
});
