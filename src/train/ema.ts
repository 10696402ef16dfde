import * as tf from '@tensorflow/tfjs-core';
import { describeReceived } from '../validation.js';
import { emaUpdate, hasEMAUpdateKernel } from '../ops/optimizer-updates.js';
import type { StageState, TrainEMA } from './contracts.js';
import { ScalarTable, checkpointName, readWeight, writeWeight, type NamedWeight } from './sgd.js';

/** Anything exposing its weights in a stable order: a `tf.LayersModel`, a `tf.layers.Layer`, or `{ weights }`. */
export interface WeightedNetwork {
  /** All the network's weights, trainable and not, in a stable order. */
  readonly weights: readonly NamedWeight[];
}

/** Options of `NetworkEMA`. */
export interface NetworkEMAArgs {
  /** Entries that are averaged but NOT copied back into the live network. Default: the seed's rule, `isFrozenBySeed`. */
  excludeFromCopyBack?: (name: string) => boolean;
  /** The decay schedule `updateAt(net, step)` follows (the seed's `emaDecayAt`); without it only `update(net, decay)` works. */
  decaySchedule?: EmaDecaySchedule;
}

/** The arguments of `emaDecayAt` for a whole run, so the decays can be listed once. */
export interface EmaDecaySchedule {
  /** Optimiser steps of the run. */
  totalSteps: number;
  /** Default 0.95. */
  decayBase?: number;
  /** Default 5. */
  everyN?: number;
  /** Default 3. */
  pow?: number;
}

/**
 * The seed's copy-back exclusion: batch-norm scales (`'norm'` and `'weight'` in the
 * name) and the whitening conv (`'whiten'` in the name), both frozen in the seed.
 */
export function isFrozenBySeed(name: string): boolean {
  return (name.includes('norm') && name.includes('weight')) || name.includes('whiten');
}

/**
 * The seed's EMA decay for an update at `step` of `totalSteps`:
 * `decayBase ** everyN * (step / totalSteps) ** pow` (defaults 0.95, 5, 3), which warms
 * the averaging up over training: fast early, strong at the end.
 *
 * @remarks
 * `step` must lie in [0, totalSteps]. The seed's `current_steps / total_train_steps` is the
 * fraction of training done, and its run never passes the total (its OneCycleLR, stepped with the
 * same counter, raises past `total_steps`). Beyond it the formula is no decay at all: 6.19 at twice
 * the total, which makes `ema * decay + live * (1 - decay)` diverge. A step past the end is a
 * caller's miscount, refused rather than clamped, so that it is not averaged silently.
 */
export function emaDecayAt(
  step: number,
  totalSteps: number,
  { decayBase = 0.95, everyN = 5, pow = 3 }: { decayBase?: number; everyN?: number; pow?: number } = {},
): number {
  if (!(Number.isFinite(step) && step >= 0)) throw new Error(`emaDecayAt: step must be a non-negative number, got ${step}`);
  if (!(Number.isFinite(totalSteps) && totalSteps > 0))
    throw new Error(`emaDecayAt: totalSteps must be a positive number, got ${totalSteps}`);
  if (step > totalSteps) throw new Error(`emaDecayAt: step must be a number in [0, totalSteps] = [0, ${totalSteps}], got ${step}`);
  for (const [name, v] of [
    ['decayBase', decayBase],
    ['everyN', everyN],
    ['pow', pow],
  ] as const) {
    // A string would be coerced by ** silently.
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0))
      throw new Error(`emaDecayAt: ${name} must be a non-negative finite number, got ${typeof v === 'string' ? `'${v}'` : String(v)}`);
  }
  if (decayBase > 1) throw new Error(`emaDecayAt: decayBase must be in [0, 1], got ${decayBase}`);
  const projected = decayBase ** everyN;
  return projected * (step / totalSteps) ** pow;
}

interface Entry {
  name: string;
  /** The name used to pair entries: tfjs-layers' scoped name without its uniqueness suffix. */
  key: string;
  shape: number[];
  excluded: boolean;
}

const isFloat = (w: NamedWeight): boolean => (w.dtype ?? 'float32') === 'float32';

/**
 * An exponential moving average of a network's weights, reproducing the seed's
 * `NetworkEMA`: every float entry (trainable weights and non-trainable ones such as
 * batch-norm running statistics) moves as `ema = ema * decay + live * (1 - decay)`,
 * and the result is copied back into the live network (Lookahead-style) except for
 * entries the exclusion predicate names.
 *
 * @remarks
 * Create it from the live network at the step the seed would (its first EMA step), then
 * call `update(net, decay)`; the averaged values stay on the backend (on WebGPU each entry's
 * blend is one kernel, `emaUpdate`, with the same float32 operations). Entries are paired
 * by order, as the seed zips two state dicts, and each pair is checked by name and shape.
 * Evaluate the averaged network with `withWeights(net, () => net.predict(x))`: the EMA
 * values are swapped into `net` for the call and the live values restored afterwards
 * (after the promise settles, for an async callback), which stands in for the seed's
 * separate deep copy without holding a second model.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Linear, NetworkEMA } from 'tfjs-dataflow';
 *
 * const input = tfl.input({ shape: [4] });
 * const model = tfl.model({ inputs: input, outputs: new Linear({ units: 2, seed: 1 }).apply(input) as tfl.SymbolicTensor });
 * const ema = new NetworkEMA(model); // starts from the live weights
 * // ... after optimizer steps:
 * ema.update(model, 0.9); // ema = 0.9 · ema + 0.1 · live, then copied back into the model
 * const averaged = ema.withWeights(model, () => model.predict(tf.ones([1, 4])) as tf.Tensor);
 * ema.dispose();
 * ```
 */
export class NetworkEMA implements TrainEMA {
  private readonly entries: Entry[];
  private values: tf.Tensor[];
  private readonly exclude: (name: string) => boolean;
  private readonly decayTables: { keep: ScalarTable; take: ScalarTable } | null;
  private disposed = false;

  constructor(net: WeightedNetwork, args: NetworkEMAArgs = {}) {
    const weights = floatWeights(net, 'NetworkEMA');
    this.exclude = args.excludeFromCopyBack ?? isFrozenBySeed;
    this.entries = weights.map((w) => ({
      name: w.name,
      key: checkpointName(w),
      shape: w.shape.map((d) => d ?? -1),
      excluded: this.exclude(w.name),
    }));
    const schedule = args.decaySchedule;
    if (schedule != null) {
      const { totalSteps, ...rest } = schedule;
      // It sizes the table of decays: NaN made an empty one, a negative count a raw RangeError.
      if (!(typeof totalSteps === 'number' && Number.isInteger(totalSteps) && totalSteps > 0)) {
        throw new Error(
          `NetworkEMA: option 'decaySchedule.totalSteps' must be a positive integer (the run's optimiser steps), got ${describeReceived(totalSteps)}`,
        );
      }
      const keep = Array.from({ length: totalSteps + 1 }, (_, s) => emaDecayAt(s, totalSteps, rest));
      // Listed once: a decay uploaded at every update is a host-to-device transfer; 1 - decay in float64 as `update` does.
      this.decayTables = { keep: new ScalarTable(keep), take: new ScalarTable(keep.map((d) => 1 - d)) };
    } else {
      this.decayTables = null;
    }
    // Copied last: a refused option leaves nothing behind.
    this.values = weights.map((w) => tf.keep(tf.clone(readWeight(w))));
  }

  /** Names of the averaged entries, in pairing order. */
  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** Names of the entries averaged but not copied back into the live network. */
  get excludedNames(): string[] {
    return this.entries.filter((e) => e.excluded).map((e) => e.name);
  }

  /**
   * Moves every float entry toward `net`'s values, `ema = ema * decay + live * (1 - decay)`,
   * then writes the averages back into `net` except the excluded entries.
   */
  update(net: WeightedNetwork, decay: number): void {
    this.assertAlive('update');
    if (!(typeof decay === 'number' && decay >= 0 && decay <= 1))
      throw new Error(
        `NetworkEMA.update: decay must be a number in [0, 1], got ${typeof decay === 'string' ? `'${decay}'` : String(decay)}`,
      );
    this.blend(net, 'update', () => ({ keep: tf.scalar(decay), take: tf.scalar(1 - decay), index: 0 }));
    this.copyBack(net);
  }

  /**
   * `update(net, emaDecayAt(step, ...decaySchedule))` with the decays taken from a table
   * on the backend, so an update uploads nothing. Needs the `decaySchedule` option.
   */
  updateAt(net: WeightedNetwork, step: number): void {
    this.averageAt(net, step, 'updateAt');
    this.copyBack(net);
  }

  /**
   * The averaging of `updateAt` without its copy-back (`TrainEMA.average`: the Trainer calls `copyBack` after it, so
   * a stage can leave the copy-back out). Needs the `decaySchedule` option.
   */
  average(net: WeightedNetwork, step: number): void {
    this.averageAt(net, step, 'average');
  }

  /** Writes the averages into `net`, except the excluded entries (the seed's copy-back, `TrainEMA.copyBack`). */
  copyBack(net: WeightedNetwork): void {
    this.assertAlive('copyBack');
    const weights = this.paired(net, 'copyBack');
    weights.forEach((w, i) => {
      if (!this.entries[i]!.excluded) writeWeight(w, this.values[i]!);
    });
  }

  private averageAt(net: WeightedNetwork, step: number, method: string): void {
    this.assertAlive(method);
    const tables = this.decayTables;
    if (tables == null)
      throw new Error(`NetworkEMA.${method}: construct the EMA with the decaySchedule option, or call update(net, decay)`);
    if (!(Number.isInteger(step) && step >= 0 && step < tables.keep.length)) {
      throw new Error(
        `NetworkEMA.${method}: step must be an integer in [0, ${tables.keep.length - 1}] (the schedule's totalSteps), got ${step}`,
      );
    }
    this.blend(net, method, (fused) =>
      // The fused kernel reads the tables at the step itself; the unfused ops take the step's scalars.
      fused
        ? { keep: tables.keep.resident(), take: tables.take.resident(), index: step }
        : { keep: tables.keep.at(step), take: tables.take.at(step), index: 0 },
    );
  }

  /**
   * `ema * keep + live * take` for every entry. `decays(fused)` gives keep and take as entry `index` of backend
   * tensors: one `emaUpdate` kernel per entry where the backend has it (same float32 operations), the three unfused
   * ops elsewhere.
   */
  private blend(
    net: WeightedNetwork,
    method: string,
    decays: (fused: boolean) => { keep: tf.Tensor; take: tf.Tensor; index: number },
  ): void {
    const weights = this.paired(net, method);
    const fused = hasEMAUpdateKernel();
    const next = tf.tidy(() => {
      const { keep, take, index } = decays(fused);
      if (fused) return weights.map((w, i) => tf.keep(emaUpdate(this.values[i]!, readWeight(w), keep, take, index)));
      return weights.map((w, i) => tf.keep(tf.add(tf.mul(this.values[i]!, keep), tf.mul(readWeight(w), take))));
    });
    tf.dispose(this.values);
    this.values = next;
  }

  /**
   * Runs `fn` with the EMA values swapped into `net` (every float entry, excluded ones
   * too, as the seed's EMA copy evaluates), restoring the live values afterwards,
   * also when `fn` throws or its promise rejects.
   */
  withWeights<T>(net: WeightedNetwork, fn: () => T): T {
    this.assertAlive('withWeights');
    const weights = this.paired(net, 'withWeights');
    const live = weights.map((w) => tf.keep(tf.clone(readWeight(w))));
    const restore = () => {
      weights.forEach((w, i) => writeWeight(w, live[i]!));
      tf.dispose(live);
    };
    weights.forEach((w, i) => writeWeight(w, this.values[i]!));
    let result: T;
    try {
      result = fn();
    } catch (e) {
      restore();
      throw e;
    }
    if (result instanceof Promise) return result.finally(restore) as T;
    restore();
    return result;
  }

  /** Copies of the averaged values keyed by entry name, e.g. for a checkpoint; the caller disposes them. */
  snapshot(): tf.NamedTensorMap {
    this.assertAlive('snapshot');
    return Object.fromEntries(this.entries.map((e, i) => [e.name, tf.clone(this.values[i]!)]));
  }

  /** Replaces the averaged values with copies of a `snapshot()` (e.g. from a checkpoint); the caller keeps `snapshot`. */
  load(snapshot: tf.NamedTensorMap): void {
    this.assertAlive('load');
    const next = this.entries.map((e) => {
      const value = snapshot[e.name];
      if (value == null) throw new Error(`NetworkEMA.load: the snapshot has no entry '${e.name}'`);
      if (!tf.util.arraysEqual(value.shape, e.shape)) {
        throw new Error(`NetworkEMA.load: entry '${e.name}' has shape [${value.shape}], the EMA holds [${e.shape}]`);
      }
      return value;
    });
    tf.dispose(this.values);
    this.values = next.map((v) => tf.keep(tf.clone(v)));
  }

  /**
   * The state for a checkpoint (the EMA stage's, `TrainEMA`): a copy of each average keyed by its weight's
   * `originalName` (`checkpointName`), so another process's model of the same architecture reads it. The caller
   * disposes the tensors.
   */
  saveState(): StageState {
    this.assertAlive('saveState');
    const tensors: tf.NamedTensorMap = {};
    this.entries.forEach((e, i) => {
      if (e.key in tensors) throw new Error(`NetworkEMA.saveState: two entries share the checkpoint name '${e.key}'`);
      tensors[e.key] = tf.clone(this.values[i]!);
    });
    return { tensors };
  }

  /** Puts back a `saveState()` state (the caller keeps its tensors): every entry present with its shape, and nothing else. */
  loadState(state: StageState): void {
    this.assertAlive('loadState');
    const tensors = state?.tensors ?? {};
    const byKey = new Map(this.entries.map((e) => [e.key, e.name]));
    const snapshot: tf.NamedTensorMap = {};
    for (const [key, value] of Object.entries(tensors)) {
      const name = byKey.get(key);
      if (name == null) throw new Error(`NetworkEMA.load: the state has an entry '${key}', which is no entry of this EMA`);
      if (!(value instanceof tf.Tensor) || value.isDisposed) throw new Error(`NetworkEMA.load: '${key}' is not a live tensor`);
      if (value.dtype !== 'float32') throw new Error(`NetworkEMA.load: entry '${key}' has dtype ${value.dtype}, the EMA holds float32`);
      snapshot[name] = value;
    }
    this.load(snapshot);
  }

  /** Frees the averaged values. */
  dispose(): void {
    if (this.disposed) return;
    this.decayTables?.keep.dispose();
    this.decayTables?.take.dispose();
    tf.dispose(this.values);
    this.values = [];
    this.disposed = true;
  }

  private assertAlive(method: string): void {
    if (this.disposed) throw new Error(`NetworkEMA.${method}: this EMA has been disposed`);
  }

  private paired(net: WeightedNetwork, method: string): NamedWeight[] {
    const weights = floatWeights(net, `NetworkEMA.${method}`);
    if (weights.length !== this.entries.length) {
      throw new Error(
        `NetworkEMA.${method}: the network has ${weights.length} float weights, the EMA was made from ${this.entries.length} (${this.entries.map((e) => e.name).join(', ')})`,
      );
    }
    weights.forEach((w, i) => {
      const e = this.entries[i]!;
      const shape = w.shape.map((d) => d ?? -1);
      if (checkpointName(w) !== e.key || !tf.util.arraysEqual(shape, e.shape)) {
        throw new Error(
          `NetworkEMA.${method}: weight ${i} is '${w.name}' [${shape}], the EMA holds '${e.name}' [${e.shape}] there; entries pair by order, so the network must keep the architecture (and weight order) the EMA was made from`,
        );
      }
    });
    return weights;
  }
}

function floatWeights(net: WeightedNetwork, where: string): NamedWeight[] {
  if (net == null || !Array.isArray(net.weights)) {
    throw new Error(
      `${where}: expected a network exposing \`weights\` (a tf.LayersModel or Layer), got ${net == null ? String(net) : typeof net}`,
    );
  }
  // Like the seed's dtype check: only float entries are averaged (integer counters are not).
  return net.weights.filter(isFloat);
}
