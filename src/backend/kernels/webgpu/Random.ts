/**
 * The WebGPU side of `DeviceRandom` (src/ops/random.ts): one flat compute program per distribution,
 * run through the webgpu backend's `runWebGPUProgram`. The hash must stay bit-identical to
 * `hashIndex` in ../random-draws.ts.
 * @internal
 */
import { Reshape, getKernel, util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { RANDOM_KERNEL } from '../names.js';
import { randomDtype, streamKeys, type RandomAttrs, type RandomDistribution } from '../random-draws.js';
import type { WebGPUBackendLike, WebGPUProgram } from '../types.js';

const WORKGROUP = 64;

// Mirrors hashIndex in ../random-draws.ts: Wellons' lowbias32 twice, keyed before each round.
const HASH = `
  fn dfMix(x0 : u32) -> u32 {
    var x = x0;
    x = x ^ (x >> 16u);
    x = x * 0x7feb352du;
    x = x ^ (x >> 15u);
    x = x * 0x846ca68bu;
    x = x ^ (x >> 16u);
    return x;
  }

  fn dfHash(i : u32) -> u32 {
    return dfMix(dfMix(i ^ uniforms.dfKey0) + uniforms.dfKey1);
  }
`;

const BODY: Record<RandomDistribution, string> = {
  uniform: 'setOutputAtIndex(index, f32(dfHash(i) >> 8u) * (1.0 / 16777216.0));',
  // Box-Muller on the pair (2p, 2p+1): both use the draws at 2p and 2p+1; cos for 2p, sin for 2p+1.
  normal: `
      let p = i & ~1u;
      let u1 = f32((dfHash(p) >> 8u) + 1u) * (1.0 / 16777216.0);
      let t = f32(dfHash(p + 1u) >> 8u) * (1.0 / 16777216.0) * 6.2831855 - 3.1415927;
      let r = sqrt(-2.0 * log(u1));
      setOutputAtIndex(index, r * select(cos(t), sin(t), (i & 1u) == 1u));`,
  // A range of 0 stands for the full 2^32.
  int: `
      let h = dfHash(i);
      let r = select(h % uniforms.dfRange, h, uniforms.dfRange == 0u);
      setOutputAtIndexI32(index, bitcast<i32>(bitcast<u32>(uniforms.dfLow) + r));`,
  sortKey: 'setOutputAtIndex(index, bitcast<f32>(0x00800000u + dfHash(i) % 0x7f000000u));',
};

/** A flat program writing `size` draws of `distribution`; the caller reshapes. */
export class RandomProgram implements WebGPUProgram {
  readonly variableNames: string[] = [];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly size = true;
  readonly uniforms = 'dfKey0 : u32, dfKey1 : u32, dfLow : i32, dfRange : u32,';

  constructor(
    private readonly distribution: RandomDistribution,
    size: number,
  ) {
    this.outputShape = [size];
    this.shaderKey = `dataflowRandom_${distribution}`;
    // The backend's reshapeDispatch splits this when it exceeds the per-dimension limit.
    this.dispatch = [Math.ceil(size / WORKGROUP), 1, 1];
  }

  getUserCode(): string {
    return `
      ${HASH}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let i = u32(index);
          ${BODY[this.distribution]}
        }
      }
    `;
  }
}

// A compute shader draws; seed and counter travel as uniforms, never as tensors.
const webgpuRandom: KernelFunc = ({ backend, attrs }) => {
  const a = attrs as unknown as RandomAttrs;
  const b = backend as unknown as WebGPUBackendLike;
  const size = util.sizeFromShape(a.shape);
  const [key0, key1] = streamKeys(a.seed, a.counter);
  const flat = b.runWebGPUProgram(new RandomProgram(a.distribution, size), [], randomDtype(a.distribution), [
    { type: 'uint32', data: [key0] },
    { type: 'uint32', data: [key1] },
    { type: 'int32', data: [a.low] },
    { type: 'uint32', data: [a.range >>> 0] },
  ]);
  if (a.shape.length === 1) return flat;
  const reshape = getKernel(Reshape, WEBGPU)!;
  const out = reshape.kernelFunc({ inputs: { x: flat }, attrs: { shape: a.shape }, backend }) as TensorInfo;
  b.disposeData(flat.dataId);
  return out;
};

export const randomConfig: KernelConfig = { kernelName: RANDOM_KERNEL, backendName: WEBGPU, kernelFunc: webgpuRandom };
