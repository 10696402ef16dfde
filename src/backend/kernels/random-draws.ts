/**
 * The host reference of `DataflowRandom` (RANDOM_KERNEL): the counter-based hash every backend's kernel
 * computes, and the draws the cpu and wasm kernels (and `DeviceRandom` on a backend without the kernel)
 * write. The WGSL in webgpu/Random.ts must stay bit-identical to `hashIndex` here.
 * @internal
 */
import { util } from '@tensorflow/tfjs-core';

/** What the kernel draws; `sortKey` feeds `DeviceRandom.permutation`. */
export type RandomDistribution = 'uniform' | 'normal' | 'int' | 'sortKey';

/** The attrs of RANDOM_KERNEL. */
export interface RandomAttrs {
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
export function streamKeys(seed: number, counter: number): [number, number] {
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
 * WGSL in webgpu/Random.ts: that is what makes every backend produce the same numbers.
 */
export function fillDraws(out: Float32Array | Int32Array, attrs: RandomAttrs): void {
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

export function randomDtype(distribution: RandomDistribution): 'float32' | 'int32' {
  return distribution === 'int' ? 'int32' : 'float32';
}

/** The draws of `attrs` in a new host array. */
export function hostDraws(attrs: RandomAttrs): Float32Array | Int32Array {
  const size = util.sizeFromShape(attrs.shape);
  const out = randomDtype(attrs.distribution) === 'int32' ? new Int32Array(size) : new Float32Array(size);
  fillDraws(out, attrs);
  return out;
}
