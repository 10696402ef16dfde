import * as tf from '@tensorflow/tfjs-core';
import { RANDOM_KERNEL } from '../backend/kernels/names.js';
import { hostDraws, randomDtype, type RandomAttrs, type RandomDistribution } from '../backend/kernels/random-draws.js';

export { RANDOM_KERNEL };

/** A `DeviceRandom`'s position: restoring it replays the same draws. */
export interface DeviceRandomState {
  /** The generator's seed. */
  seed: number;
  /** The number of draws made since the seed: the next draw's position in the stream. */
  counter: number;
}

function checkShape(method: string, shape: number[]): number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`DeviceRandom.${method}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape.slice();
}

function checkSeed(where: string, seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new Error(`${where}: seed must be a safe integer, got ${String(seed)}`);
}

/**
 * A seedable random generator that draws on the active backend, standing in for
 * the seed's `torch.randn_like`, `torch.randperm` and `Tensor.random_` calls
 * (noise in `simulate_discrete_action`, epoch shuffles, crop and cutmix positions).
 *
 * @remarks
 * Counter-based: every call consumes one counter value, and the value at flat
 * index i is a pure function of (seed, counter, i) computed with wrapping 32-bit
 * integer hashing (two keyed rounds of lowbias32). So cpu, wasm and webgpu give the same
 * numbers (normal: within f32 rounding of log/cos/sqrt), runs are reproducible,
 * and `getState`/`setState` checkpoint the stream exactly. The draws run as the
 * library's `DataflowRandom` kernel, which `initBackend` installs: on webgpu a compute
 * shader draws; on wasm the output is written in place on the wasm heap; on cpu
 * it is filled on the host, which is the backend's own memory. Other backends
 * (tensorflow, webgl), or a backend set without `initBackend`, draw on the host and
 * upload: the same numbers, one copy.
 * The draws are not PyTorch's: a port reproduces the seed's distributions, not
 * its random streams.
 *
 * @example
 * ```ts
 * import { DeviceRandom } from 'tfjs-dataflow';
 *
 * const random = new DeviceRandom(42);
 * const noise = random.normal([2, 3]); // drawn on the backend, no upload
 * const saved = random.getState();
 * const order = random.permutation(10);
 * random.setState(saved); // replays the same stream from here
 * ```
 */
export class DeviceRandom {
  private seed: number;
  private counter = 0;

  constructor(seed: number) {
    checkSeed('DeviceRandom', seed);
    this.seed = seed;
  }

  /** float32 uniform in [0, 1), 24 random bits per value. */
  uniform(shape: number[]): tf.Tensor {
    return this.draw(checkShape('uniform', shape), 'uniform');
  }

  /**
   * float32 standard normal (Box-Muller on 24-bit uniforms; |z| never exceeds
   * 5.77, a tail a true normal reaches with probability 8e-9).
   */
  normal(shape: number[]): tf.Tensor {
    return this.draw(checkShape('normal', shape), 'normal');
  }

  /**
   * int32 uniform in [low, high), like `torch.randint` or `Tensor.random_(low, high)`.
   * Values are `low + hash % (high - low)`: the modulo bias is below (high - low) / 2^32.
   */
  randInt(shape: number[], low: number, high: number): tf.Tensor {
    const s = checkShape('randInt', shape);
    if (!Number.isInteger(low) || !Number.isInteger(high) || low < -(2 ** 31) || high > 2 ** 31 || high <= low) {
      throw new Error(`DeviceRandom.randInt: low and high must be int32 bounds with low < high, got low=${low}, high=${high}`);
    }
    return this.draw(s, 'int', low, high - low);
  }

  /**
   * int32 random permutation of 0..n-1, like `torch.randperm(n)`: the argsort of
   * random keys on the backend (`tf.topk`). Keys are random bit patterns of
   * positive normal floats, whose order is their integer order, so they carry
   * ~31 random bits and ties (broken by index) are rare: about n^2 / 2^32.
   */
  permutation(n: number): tf.Tensor1D {
    if (!Number.isInteger(n) || n < 0 || n >= 2 ** 31) {
      throw new Error(`DeviceRandom.permutation: n must be a non-negative integer below 2^31, got ${String(n)}`);
    }
    const keys = this.draw([n], 'sortKey');
    if (n <= 1) {
      // topk on webgpu hands its input back for a length-1 axis; nothing to sort anyway.
      keys.dispose();
      return tf.zeros([n], 'int32') as tf.Tensor1D;
    }
    return tf.tidy(() => {
      const { values, indices } = tf.topk(keys, n);
      values.dispose();
      keys.dispose();
      return indices as tf.Tensor1D;
    });
  }

  /** The seed and the next counter value, for checkpoints. */
  getState(): DeviceRandomState {
    return { seed: this.seed, counter: this.counter };
  }

  /** Restores a state from `getState`; the following draws repeat the ones made after it. */
  setState(state: DeviceRandomState): void {
    if (state == null || typeof state !== 'object') {
      throw new Error(`DeviceRandom.setState: state must be { seed, counter }, got ${String(state)}`);
    }
    checkSeed('DeviceRandom.setState', state.seed);
    if (!Number.isSafeInteger(state.counter) || state.counter < 0) {
      throw new Error(`DeviceRandom.setState: counter must be a non-negative safe integer, got ${String(state.counter)}`);
    }
    this.seed = state.seed;
    this.counter = state.counter;
  }

  private draw(shape: number[], distribution: RandomDistribution, low = 0, range = 1): tf.Tensor {
    const attrs: RandomAttrs = { shape, seed: this.seed, counter: this.counter++, distribution, low, range };
    if (tf.getKernel(RANDOM_KERNEL, tf.getBackend()) != null) {
      return tf.engine().runKernel(RANDOM_KERNEL, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    }
    // No device path on this backend (tensorflow, webgl, or before initBackend): the same numbers, drawn here and uploaded.
    return tf.tensor(hostDraws(attrs), shape, randomDtype(distribution));
  }
}

/** @internal The host reference of the kernel, for tests. */
export function drawOnHost(
  seed: number,
  counter: number,
  shape: number[],
  distribution: RandomDistribution,
  low = 0,
  range = 1,
): Float32Array | Int32Array {
  return hostDraws({ shape, seed, counter, distribution, low, range });
}
