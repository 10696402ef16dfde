/**
 * What the library's three convolution shaders (Conv2D.ts, Conv2DBackpropFilter.ts, Conv2DBackpropInput.ts)
 * share: each an implicit GEMM with a 64x64 output tile per workgroup of 16x16 threads, each thread
 * accumulating a 4x4 block over K in steps of 16 through workgroup memory (register prefetch of the next
 * step while the current one computes), and split-K with a second, fixed-order pass over the per-split
 * partial sums. Shapes are baked into the WGSL as constants (and
 * into the shader key), so every index division is by a constant. The tensor-core variant swaps the tile
 * buffers and the main loop for subgroup_matrix.ts's; `runConvGemm` picks it (conv_precision.ts).
 *
 * @remarks Deterministic by construction: each partial sum is accumulated in one fixed order by one
 * thread, and the partials are added in split order; no atomics.
 * @internal
 */
import type { backend_util, TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackendLike, WebGPUProgram } from '../types.js';
import { TENSOR_CORE_THREADS, tensorCoreConfigFor, type TensorCoreConfig } from './conv_precision.js';
import { tensorCoreDeclarations, tensorCoreMain, withHoistedDirectives } from './subgroup_matrix.js';
import { fitsU32Indexing, storedAsFloat32 } from './util.js';
import { TILE_K, TILE_M, TILE_N, wgslConstants } from './wgsl.js';

// DecodeImages.ts imports wgslConstants from here; it moves to wgsl.js with the DecodeImages kernels' own move.
export { wgslConstants };
const THREADS = 256;

/** How a GEMM of M x N outputs over K is cut: `splits` ranges of `kPerSplit` (a multiple of TILE_K). */
export interface SplitPlan {
  splits: number;
  kPerSplit: number;
}

/** Tunables of the split choice; tests lower them to cross split boundaries at small sizes. */
export const splitTuning = {
  /** Workgroups to aim for (tiles x splits): a few per streaming multiprocessor of a large GPU. */
  targetWorkgroups: 2048,
  /** Fewest K steps of TILE_K per split, so the partial sums stay a small part of the traffic. */
  minStepsPerSplit: 8,
  /** Largest partial-sum buffer, in bytes (WebGPU binds a buffer up to maxStorageBufferBindingSize). */
  maxPartialBytes: 64 * 2 ** 20,
};

export function planSplits(m: number, n: number, k: number): SplitPlan {
  const tiles = Math.ceil(m / TILE_M) * Math.ceil(n / TILE_N);
  const steps = Math.ceil(k / TILE_K);
  let splits = Math.max(
    1,
    Math.min(
      Math.ceil(splitTuning.targetWorkgroups / tiles),
      Math.floor(steps / splitTuning.minStepsPerSplit),
      Math.floor(splitTuning.maxPartialBytes / (4 * m * n)),
    ),
  );
  const kPerSplit = Math.ceil(steps / splits) * TILE_K;
  splits = Math.ceil(k / kPerSplit);
  return { splits, kPerSplit };
}

/**
 * Workgroup memory: A and B tiles as [TILE_K][16] vec4s (four M rows / four N columns each). Loaders write
 * them through setA/setB (component j of vec4 `quad`) and setA4/setB4, which the f16 variant also defines.
 */
export const TILE_DECLARATIONS = `
  var<workgroup> tileA : array<vec4<f32>, ${TILE_K * (TILE_M / 4)}>;
  var<workgroup> tileB : array<vec4<f32>, ${TILE_K * (TILE_N / 4)}>;
  fn setA(quad : u32, j : u32, v : f32) { tileA[quad][j] = v; }
  fn setB(quad : u32, j : u32, v : f32) { tileB[quad][j] = v; }
  fn setA4(quad : u32, v : vec4<f32>) { tileA[quad] = v; }
  fn setB4(quad : u32, v : vec4<f32>) { tileB[quad] = v; }
`;

/** The inner product of one K step: thread (lx, ly) owns rows ly*4.. and columns lx*4.. of the tile. */
export const TILE_PRODUCT = `
      for (var kk = 0u; kk < ${TILE_K}u; kk++) {
        let a = tileA[kk * ${TILE_M / 4}u + localId.y];
        let b = tileB[kk * ${TILE_N / 4}u + localId.x];
        acc0 = fma(vec4<f32>(a.x), b, acc0);
        acc1 = fma(vec4<f32>(a.y), b, acc1);
        acc2 = fma(vec4<f32>(a.z), b, acc2);
        acc3 = fma(vec4<f32>(a.w), b, acc3);
      }
`;

/**
 * The tile loop around a program's loaders: `loadTile(k0)` (fills the registers `regA`/`regB` for
 * the K step starting at k0, zeros at or past `kEnd`) and `storeTile()` (writes them to tileA/tileB),
 * then the 4x4 block written to `result` at [split][m][n] (row-major M x N when there is one split).
 */
export function gemmMain(prologue: string): string {
  return `
    var<private> kEnd : u32;

    fn main() {
      // Always false; it reads the uniforms, whose binding tfjs always passes and WebGPU drops when unused.
      if (uniforms.outShape.z != i32(GEMM_N)) {
        return;
      }
      let split = workgroupId.z;
      let tileM = workgroupId.y * ${TILE_M}u;
      let tileN = workgroupId.x * ${TILE_N}u;
      let kBegin = split * K_PER_SPLIT;
      kEnd = min(GEMM_K, kBegin + K_PER_SPLIT);
      ${prologue}
      var acc0 = vec4<f32>(0.0);
      var acc1 = vec4<f32>(0.0);
      var acc2 = vec4<f32>(0.0);
      var acc3 = vec4<f32>(0.0);
      loadTile(kBegin);
      // A constant trip count keeps the barriers in uniform control flow; steps past kEnd load zeros.
      for (var step = 1u; step <= K_PER_SPLIT / ${TILE_K}u; step++) {
        workgroupBarrier();
        storeTile();
        workgroupBarrier();
        loadTile(kBegin + step * ${TILE_K}u);
        ${TILE_PRODUCT}
      }
      let row = tileM + localId.y * 4u;
      let col = tileN + localId.x * 4u;
      let base = split * GEMM_M * GEMM_N;
      storeRow(base, row, col, acc0);
      storeRow(base, row + 1u, col, acc1);
      storeRow(base, row + 2u, col, acc2);
      storeRow(base, row + 3u, col, acc3);
    }

    fn storeRow(base : u32, m : u32, n : u32, v : vec4<f32>) {
      if (m >= GEMM_M) {
        return;
      }
      let at = base + m * GEMM_N + n;
      for (var j = 0u; j < 4u; j++) {
        if (n + j < GEMM_N) {
          result[at + j] = v[j];
        }
      }
    }
  `;
}

/**
 * A convolution (or one of its gradients) as a split-K GEMM program over NHWC tensors; output [splits, M, N].
 * Subclasses stage A and B (`loadTile`/`storeTile`); the geometry, as WGSL constants, the key and the main
 * loop (`main`) are shared. With `tensorCores`, the tiles are f16 and the products run on subgroup matrices.
 */
export abstract class ConvGemmProgram implements WebGPUProgram {
  abstract readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number];
  readonly plan: SplitPlan;
  /** Both inputs bound as vec4 arrays, four channels per load (the subclass says when that is valid). */
  readonly vec4: boolean;
  readonly variableComponents?: number[];

  constructor(
    name: string,
    protected readonly info: backend_util.Conv2DInfo,
    readonly m: number,
    readonly n: number,
    readonly k: number,
    vec4: boolean,
    readonly tensorCores?: TensorCoreConfig,
  ) {
    this.plan = planSplits(m, n, k);
    // Dawn wants a subgroup-matrix shader's workgroup x size to be a multiple of maxSubgroupSize.
    this.workgroupSize = tensorCores ? [TENSOR_CORE_THREADS, 1, 1] : [16, 16, 1];
    this.outputShape = [this.plan.splits, m, n];
    this.dispatch = [Math.ceil(n / TILE_N), Math.ceil(m / TILE_M), this.plan.splits];
    this.vec4 = vec4;
    if (vec4) this.variableComponents = [4, 4];
    const { inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, strideHeight, strideWidth, filterWidth, padInfo } = info;
    const variant = tensorCores ? `tc${tensorCores.M}x${tensorCores.N}x${tensorCores.K}sg${tensorCores.subgroupSize}` : 'f32';
    this.shaderKey = [
      name,
      variant,
      vec4 ? 'vec4' : 'scalar',
      m,
      n,
      k,
      this.plan.kPerSplit,
      inHeight,
      inWidth,
      inChannels,
      outHeight,
      outWidth,
      outChannels,
      strideHeight,
      strideWidth,
      filterWidth,
      padInfo.top,
      padInfo.left,
    ].join('_');
  }

  /** The GEMM's sizes and the convolution's geometry as WGSL constants, then the tile buffers. */
  protected declarations(): string {
    const i = this.info;
    return `
      ${wgslConstants({ GEMM_M: this.m, GEMM_N: this.n, GEMM_K: this.k, K_PER_SPLIT: this.plan.kPerSplit })}
      ${wgslConstants(
        {
          CIN: i.inChannels,
          COUT: i.outChannels,
          KW: i.filterWidth,
          IN_H: i.inHeight,
          IN_W: i.inWidth,
          IN_HW: i.inHeight * i.inWidth,
          OUT_H: i.outHeight,
          OUT_W: i.outWidth,
          OUT_HW: i.outHeight * i.outWidth,
          STRIDE_H: i.strideHeight,
          STRIDE_W: i.strideWidth,
          PAD_TOP: i.padInfo.top,
          PAD_LEFT: i.padInfo.left,
        },
        ['PAD_TOP', 'PAD_LEFT'],
      )}
      ${this.tensorCores ? tensorCoreDeclarations(this.tensorCores) : TILE_DECLARATIONS}
    `;
  }

  /** The GEMM's main loop around the subclass's `prologue` (f32 or tensor cores). */
  protected main(prologue: string): string {
    return this.tensorCores ? tensorCoreMain(prologue, this.tensorCores) : gemmMain(prologue);
  }

  abstract getUserCode(): string;
}

/** Sums [splits, size] over splits, in split order, into [size]. */
export class SplitSumProgram implements WebGPUProgram {
  readonly variableNames = ['partials'];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  readonly size = true;

  constructor(
    private readonly splits: number,
    private readonly length: number,
  ) {
    this.outputShape = [length];
    this.shaderKey = `dataflowSplitSum_${splits}_${length}`;
    this.dispatch = [Math.ceil(length / THREADS), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var sum = 0.0;
          for (var s = 0u; s < ${this.splits}u; s++) {
            sum += partials[s * ${this.length}u + u32(index)];
          }
          setOutputAtIndex(index, sum);
        }
      }
    `;
  }
}

/**
 * Runs the program `makeProgram` gives when the library's shaders handle the case (channels last, no
 * dilation, float32 buffers, sizes within u32 indexing), else `fallback` (tfjs's own kernel). The program
 * is the tensor-core variant when the device and the precision setting allow it (`tensorCoreConfigFor`),
 * else the f32 one. The M x N result, summed over splits in split order, comes back as `shape`.
 */
export function runConvGemm(
  backend: WebGPUBackendLike,
  info: backend_util.Conv2DInfo,
  inputs: TensorInfo[],
  makeProgram: (tensorCores?: TensorCoreConfig) => ConvGemmProgram,
  shape: number[],
  fallback: () => TensorInfo,
): TensorInfo {
  const handled =
    info.dataFormat === 'channelsLast' &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    storedAsFloat32(backend, ...inputs) &&
    fitsU32Indexing(info.inShape, info.outShape, info.filterShape);
  if (!handled) return fallback();
  const tensorCores = tensorCoreConfigFor(backend.device);
  const program = makeProgram(typeof tensorCores === 'string' ? undefined : tensorCores);
  // A tensor-core program's `enable` directives must lead the WGSL that tfjs assembles around its code.
  const partials = program.tensorCores
    ? withHoistedDirectives(backend.device, () => backend.runWebGPUProgram(program, inputs, 'float32'))
    : backend.runWebGPUProgram(program, inputs, 'float32');
  const { splits } = program.plan;
  if (splits === 1) return { ...partials, shape };
  const summed = backend.runWebGPUProgram(new SplitSumProgram(splits, program.m * program.n), [partials], 'float32');
  backend.disposeData(partials.dataId);
  return { ...summed, shape };
}
