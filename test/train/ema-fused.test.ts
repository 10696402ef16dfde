// NetworkEMA.update/updateAt through the one-kernel blend (`emaUpdate`, WebGPU with the library's kernels) and through
// the unfused ops, on every backend (cpu included) against the seed's EMA replayed in float64 in JavaScript, within a
// running f32 error bound (emaReference): several updates of odd-shaped entries with the live net moving in between,
// decays from the schedule's tables and given directly, the copy-back (excluded entries stay live); bit-identical
// reruns, no leaks, an exact snapshot/load resume, one kernel per entry.
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, expect, it } from 'vitest';
import { KernelCounter, type KernelCounts } from '../../src/backend/counter.js';
import { EMA_UPDATE } from '../../src/backend/kernels/names.js';
import { hasEMAUpdateKernel } from '../../src/ops/optimizer-updates.js';
import { NetworkEMA, emaDecayAt, isFrozenBySeed } from '../../src/train/ema.js';
import { seededUniform } from '../helpers/assert.js';
import { describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { U32 } from '../helpers/f64.js';
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

interface Reference {
  /** The averages and the live weights after each update, in float64, and each element's f32 error bound. */
  ema: Record<string, Float64Array>[];
  live: Record<string, Float64Array>[];
  emaBounds: Record<string, Float64Array>[];
  liveBounds: Record<string, Float64Array>[];
}

/**
 * `trace` in float64: the live weights moved by `moveLive`, each update `ema = ema · keep + live · take` (keep the
 * decay, take 1 - decay, the seed's schedule or given), then the copy-back except the seed's frozen entries. With a
 * running error bound of float32 doing the same operations (first order in u = 2^-24; Higham, Accuracy and Stability,
 * §3.3): each result off by at most u of itself, keep and take (rounded to float32) by u of their products, errors
 * carried through:
 *   live = live + delta               E_live = E_live + u|live|
 *   ema = ema · keep + live · take    E_ema = keep E_ema + take E_live + 2u|ema keep| + 2u|live take| + u|ema|
 *   live = ema (copied back)          E_live = E_ema
 */
function emaReference(): Reference {
  const names = Object.keys(SHAPES);
  const live = names.map((n, i) =>
    Float64Array.from(
      seededUniform(
        SHAPES[n]!.reduce((a, b) => a * b, 1),
        200 + i,
      ),
    ),
  );
  const ema = live.map((w) => Float64Array.from(w));
  const [eLive, eEma] = [live.map((w) => new Float64Array(w.length)), live.map((w) => new Float64Array(w.length))];
  const out: Reference = { ema: [], live: [], emaBounds: [], liveBounds: [] };
  const record = (arrays: Float64Array[]) => Object.fromEntries(names.map((n, i) => [n, Float64Array.from(arrays[i]!)]));
  const u = U32;
  UPDATES.forEach((how, step) => {
    const keep = 'step' in how ? emaDecayAt(how.step, TOTAL_STEPS) : how.decay;
    const take = 1 - keep;
    names.forEach((n, i) => {
      const delta = seededUniform(live[i]!.length, 1000 * step + i, -0.3, 0.3);
      const [w, a, ew, ea] = [live[i]!, ema[i]!, eLive[i]!, eEma[i]!];
      for (let j = 0; j < w.length; j++) {
        w[j] = w[j]! + delta[j]!;
        ew[j] = ew[j]! + u * Math.abs(w[j]!);
        const [kept, taken] = [a[j]! * keep, w[j]! * take];
        a[j] = kept + taken;
        ea[j] = keep * ea[j]! + take * ew[j]! + 2 * u * Math.abs(kept) + 2 * u * Math.abs(taken) + u * Math.abs(a[j]!);
        if (!isFrozenBySeed(n)) [w[j], ew[j]] = [a[j]!, ea[j]!];
      }
    });
    out.ema.push(record(ema));
    out.live.push(record(live));
    out.emaBounds.push(record(eEma));
    out.liveBounds.push(record(eLive));
  });
  return out;
}

/** The largest |actual - exact| / bound (at most 1 within the bound); Infinity for a non-finite value. */
function boundRatio(actual: ArrayLike<number>, exact: ArrayLike<number>, bound: ArrayLike<number>): number {
  expect(actual.length).toBe(exact.length);
  let worst = 0;
  for (let i = 0; i < exact.length; i++) {
    if (!Number.isFinite(actual[i]!)) return Infinity;
    const diff = Math.abs(actual[i]! - exact[i]!);
    if (diff > 0) worst = Math.max(worst, diff / bound[i]!);
  }
  return worst;
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describeEachBackendAndWebGPUKernelSet('NetworkEMA, fused where the backend has the kernel', (backend) => {
  afterEach(() => tf.disposeVariables());

  it(`${UPDATES.length} updates: averages and live weights within the f32 bound of the float64 EMA, excluded entries not copied back; no leaks`, async () => {
    const expected = emaReference();
    const before = liveTensors();
    const actual = await trace();
    expect(liveTensors()).toBe(before);
    for (let u = 0; u < UPDATES.length; u++) {
      for (const n of Object.keys(SHAPES)) {
        // First order in u: a hair of slack for the neglected u² terms.
        expect(
          boundRatio(actual.ema[u]![n]!, expected.ema[u]![n]!, expected.emaBounds[u]![n]!),
          `ema ${n} after update ${u + 1}`,
        ).toBeLessThanOrEqual(1 + 1e-6);
        expect(
          boundRatio(actual.live[u]![n]!, expected.live[u]![n]!, expected.liveBounds[u]![n]!),
          `live ${n} after update ${u + 1}`,
        ).toBeLessThanOrEqual(1 + 1e-6);
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
