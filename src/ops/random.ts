import * as tf from '@tensorflow/tfjs-core';
import { RANDOM_KERNEL } from '../backend/kernels/names.js';
import type { CpuBackendLike, WasmBackendLike, WebGPUBackendLike } from '../backend/kernels/types.js';
import { RandomProgram, type RandomDistribution } from '../backend/kernels/webgpu/random.js';

export { RANDOM_KERNEL };

/** A `DeviceRandom`'s position: restoring it replays the same draws. */
export interface DeviceRandomState {
  seed: number;
  counter: number;
}

interface RandomAttrs {
  shape: number[];
  seed: number;
  counter: number;
  distribution: RandomDistribution;
  /** `int` only: the smallest value. */
  low: number;
  /** `int` only: high - low, up to 2^32. */
  range: number;
}

const TWO_POW_32 = 2 ** 32;
const TWO_POW_MINUS_24 = 2 ** -24;
// The f32 constants the WGSL uses, so the host path rounds the same way.
const TWO_PI_F32 = Math.fround(2 * Math.PI);
const PI_F32 = Math.fround(Math.PI);

/** Wellons' lowbias32: a strong 32-bit bijective finaliser. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Two 32-bit stream keys from (seed, counter); host-side, once per draw. */
function streamKeys(seed: number, counter: number): [number, number] {
  // ToUint32 is modulo 2^32, so every safe integer (negative too) splits into two words.
  let h = mix32((seed >>> 0) ^ 0x9e3779b9);
  h = mix32(h ^ (Math.floor(seed / TWO_POW_32) >>> 0));
  h = mix32(h ^ (counter >>> 0));
  const key0 = mix32(h ^ (Math.floor(counter / TWO_POW_32) >>> 0));
  return [key0, mix32(key0 ^ 0x6a09e667)];
}

/** One 32-bit draw: lowbias32 twice, keyed before each round, so every counter gets an unrelated stream. */
function hashIndex(i: number, key0: number, key1: number): number {
  return mix32((mix32((i ^ key0) >>> 0) + key1) >>> 0);
}

/**
 * Fills `out` with draws for flat indices 0..n-1. Must stay bit-identical to the
 * WGSL in backend/kernels/webgpu/random.ts: that is what makes every backend produce the same numbers.
 */
function fillDraws(out: Float32Array | Int32Array, attrs: RandomAttrs): void {
  const [key0, key1] = streamKeys(attrs.seed, attrs.counter);
  const n = out.length;
  switch (attrs.distribution) {
    case 'uniform':
      for (let i = 0; i < n; i++) out[i] = (hashIndex(i, key0, key1) >>> 8) * TWO_POW_MINUS_24;
      break;
    case 'normal':
      // Box-Muller: the pair (2p, 2p+1) shares the draws at 2p and 2p+1, u1 in (0, 1] (log
      // stays finite) and the angle in [-pi, pi); cos goes to 2p, sin to 2p+1. Each step
      // rounds to f32 as the shader does.
      for (let p = 0; 2 * p < n; p++) {
        const u1 = ((hashIndex(2 * p, key0, key1) >>> 8) + 1) * TWO_POW_MINUS_24;
        const u2 = (hashIndex(2 * p + 1, key0, key1) >>> 8) * TWO_POW_MINUS_24;
        const t = Math.fround(Math.fround(u2 * TWO_PI_F32) - PI_F32);
        const r = Math.fround(Math.sqrt(-2 * Math.fround(Math.log(u1))));
        out[2 * p] = r * Math.fround(Math.cos(t));
        if (2 * p + 1 < n) out[2 * p + 1] = r * Math.fround(Math.sin(t));
      }
      break;
    case 'int': {
      const { low } = attrs;
      const range = attrs.range >>> 0; // 0 stands for the full 2^32 range
      for (let i = 0; i < n; i++) {
        const a = hashIndex(i, key0, key1);
        out[i] = low + (range === 0 ? a : a % range);
      }
      break;
    }
    case 'sortKey': {
      const bits = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) bits[i] = 0x00800000 + (hashIndex(i, key0, key1) % 0x7f000000);
      break;
    }
  }
}

function dtypeOf(distribution: RandomDistribution): 'float32' | 'int32' {
  return distribution === 'int' ? 'int32' : 'float32';
}

function hostDraws(attrs: RandomAttrs): Float32Array | Int32Array {
  const size = tf.util.sizeFromShape(attrs.shape);
  const out = dtypeOf(attrs.distribution) === 'int32' ? new Int32Array(size) : new Float32Array(size);
  fillDraws(out, attrs);
  return out;
}

// cpu: the values are host memory already; makeTensorInfo stores them without a copy.
const cpuRandom: tf.KernelFunc = ({ backend, attrs }) => {
  const a = attrs as unknown as RandomAttrs;
  return (backend as unknown as CpuBackendLike).makeTensorInfo(a.shape, dtypeOf(a.distribution), hostDraws(a));
};

// wasm: the output lives on the wasm heap, which JavaScript can write in place (no transfer).
const wasmRandom: tf.KernelFunc = ({ backend, attrs }) => {
  const a = attrs as unknown as RandomAttrs;
  const b = backend as unknown as WasmBackendLike;
  const out = b.makeOutput(a.shape, dtypeOf(a.distribution));
  if (tf.util.sizeFromShape(a.shape) > 0) fillDraws(b.typedArrayFromHeap(out) as Float32Array | Int32Array, a);
  return out;
};

// webgpu: a compute shader draws; seed and counter travel as uniforms, never as tensors.
const webgpuRandom: tf.KernelFunc = ({ backend, attrs }) => {
  const a = attrs as unknown as RandomAttrs;
  const b = backend as unknown as WebGPUBackendLike;
  const size = tf.util.sizeFromShape(a.shape);
  const [key0, key1] = streamKeys(a.seed, a.counter);
  const flat = b.runWebGPUProgram(new RandomProgram(a.distribution, size), [], dtypeOf(a.distribution), [
    { type: 'uint32', data: [key0] },
    { type: 'uint32', data: [key1] },
    { type: 'int32', data: [a.low] },
    { type: 'uint32', data: [a.range >>> 0] },
  ]);
  if (a.shape.length === 1) return flat;
  const reshape = tf.getKernel(tf.Reshape, 'webgpu')!;
  const out = reshape.kernelFunc({ inputs: { x: flat }, attrs: { shape: a.shape }, backend }) as tf.TensorInfo;
  b.disposeData(flat.dataId);
  return out;
};

/**
 * Registers the `DataflowRandom` kernel for cpu, wasm and webgpu. Registering
 * by backend name needs none of the backend packages, so this runs on import
 * and the backends can be loaded before or after.
 */
function registerRandomKernels(): void {
  const kernels: Array<[string, tf.KernelFunc]> = [['cpu', cpuRandom], ['wasm', wasmRandom], ['webgpu', webgpuRandom]];
  for (const [backendName, kernelFunc] of kernels) {
    if (tf.getKernel(RANDOM_KERNEL, backendName) == null) {
      tf.registerKernel({ kernelName: RANDOM_KERNEL, backendName, kernelFunc });
    }
  }
}
registerRandomKernels();

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
 * and `getState`/`setState` checkpoint the stream exactly. On webgpu a compute
 * shader draws; on wasm the output is written in place on the wasm heap; on cpu
 * it is filled on the host, which is the backend's own memory. Other backends
 * (tensorflow, webgl) draw on the host and upload: the same numbers, one copy.
 * The draws are not PyTorch's: a port reproduces the seed's distributions, not
 * its random streams.
 *
 * @example
 * ```ts
 * const rng = new DeviceRandom(42);
 * const noise = rng.normal([8, 16, 16, 64]);
 * const order = rng.permutation(50000);
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
    // No device path on this backend (tensorflow, webgl): the same numbers, drawn here and uploaded.
    return tf.tensor(hostDraws(attrs), shape, dtypeOf(distribution));
  }
}

/** @internal The host reference of the kernel, for tests. */
export function drawOnHost(seed: number, counter: number, shape: number[], distribution: RandomDistribution, low = 0, range = 1): Float32Array | Int32Array {
  return hostDraws({ shape, seed, counter, distribution, low, range });
}
