import { DeviceRandom } from './random.js';

let global: DeviceRandom | undefined;

/**
 * Seeds the library's global generator: the `DeviceRandom` that the augmentations
 * (`batchCrop`, `batchFlipLR`, `batchCutmix`, `randomSquareMasks`), `epochBatches` and
 * `simulateDiscreteAction` draw from when no generator is passed. Until it is called the
 * global generator is seeded at random, so results differ from one process to the next;
 * after `setGlobalSeed(s)` the same calls in the same order draw the same numbers.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { batchCrop, setGlobalSeed } from 'tfjs-dataflow';
 *
 * setGlobalSeed(42);
 * const cropped = batchCrop(tf.zeros([8, 36, 36, 3]), 32); // the same crops on every run
 * ```
 */
export function setGlobalSeed(seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new Error(`setGlobalSeed: seed must be a safe integer, got ${String(seed)}`);
  global = new DeviceRandom(seed);
}

/** The global generator (see {@link setGlobalSeed}); made with a random seed on first use. */
export function globalRandom(): DeviceRandom {
  global ??= new DeviceRandom(Math.floor(Math.random() * 2 ** 32));
  return global;
}

/** Duck-typed, so a generator from another copy of the library is accepted too. */
function isDeviceRandom(value: unknown): value is DeviceRandom {
  const r = value as Partial<DeviceRandom> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    ['uniform', 'normal', 'randInt', 'permutation'].every((m) => typeof (r as Record<string, unknown>)[m] === 'function')
  );
}

/** `random`, or the global generator when it is left out; anything else is a TypeError naming `where`. */
export function randomOrGlobal(where: string, random: unknown): DeviceRandom {
  if (random === undefined || random === null) return globalRandom();
  if (isDeviceRandom(random)) return random;
  const got = typeof random === 'object' ? ((random as object).constructor?.name ?? 'object') : `${typeof random} ${String(random)}`;
  throw new TypeError(`${where}: the generator must be a DeviceRandom (or left out to use the global one, see setGlobalSeed), got ${got}`);
}
