import * as tf from '@tensorflow/tfjs-core';

// One map per backend instance: a backend that is removed and registered again starts empty.
const cache = new WeakMap<tf.KernelBackend, Map<string, tf.Scalar>>();
const live = new Set<tf.Scalar>();

/**
 * A scalar that lives on the active backend, made once per value, dtype and backend and then reused.
 *
 * tfjs turns each JS number passed to an op (`tf.mul(x, 0.5)`) into a new tensor written from the host:
 * a backend write per call, 143 of them in every SpeedyConvNet training step. Ops on the training path
 * use `deviceScalar(0.5)` instead, so a step writes nothing to the backend once these exist.
 *
 * The scalars are kept alive across `tf.tidy` and count in `tf.memory().numTensors` (a handful in all);
 * `releaseDeviceScalars()` frees them. Never dispose one yourself: a disposed scalar is made again on
 * its next use, but an op holding it in the meantime would fail.
 */
export function deviceScalar(value: number, dtype: 'float32' | 'int32' = 'float32'): tf.Scalar {
  if (typeof value !== 'number' || Number.isNaN(value)) {
    throw new TypeError(`deviceScalar: value must be a number (not NaN), got ${String(value)}`);
  }
  if (dtype === 'int32' && !Number.isInteger(value)) {
    throw new TypeError(`deviceScalar: an int32 scalar needs an integer value, got ${value}`);
  }
  const backend = tf.engine().backend;
  let scalars = cache.get(backend);
  if (scalars == null) {
    scalars = new Map();
    cache.set(backend, scalars);
  }
  // Keyed by the float32 value, so 0.1 and Math.fround(0.1) share one scalar; -0 keeps its own.
  const stored = dtype === 'float32' ? Math.fround(value) : value;
  const key = `${dtype}:${Object.is(stored, -0) ? '-0' : stored}`;
  const cached = scalars.get(key);
  if (cached != null && !cached.isDisposed) return cached;
  const scalar = tf.keep(tf.scalar(value, dtype));
  scalars.set(key, scalar);
  live.add(scalar);
  return scalar;
}

/** How many scalars `deviceScalar` keeps alive now, on all backends: they are part of `tf.memory().numTensors`. */
export function deviceScalarCount(): number {
  let count = 0;
  for (const scalar of live) if (!scalar.isDisposed) count++;
  return count;
}

/** Disposes every scalar `deviceScalar` made, on every backend; later calls make them again. Returns how many it freed. */
export function releaseDeviceScalars(): number {
  let freed = 0;
  for (const scalar of live) {
    if (!scalar.isDisposed) {
      scalar.dispose();
      freed++;
    }
  }
  live.clear();
  return freed;
}
