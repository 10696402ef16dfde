/**
 * The column sums that Sum.ts, Mean.ts, ChannelMoments.ts, ChannelGradSums.ts, BatchNormTrainStats.ts and
 * BatchNormGrad.ts run: per-channel sums over every other axis in one read of the input, for the seed's batch
 * norm and the discrete action's std, where tfjs runs a chain of Mean/Sub/Square/Mean or Sum kernels over
 * [N, H, W, C]. The input is a [rows, C] matrix (channels last). Pass 1: each workgroup sums a chunk of rows for
 * up to 64 columns; pass 2 adds the chunks' sums in chunk order (deterministic: no atomics).
 *
 * - `moments`: sums of (x - shift) and its square, the shift being the column's first value (the
 *   tensor's first with `overAll`), so the variance does not cancel catastrophically when
 *   |mean| >> std. Finished as [mean, biased variance] per column. Over the whole tensor (`overAll`,
 *   the discrete action's std) the same sums are also taken of x · 2^-100 - shift · 2^-100, which no
 *   finite input overflows; where the plain sum of squares reaches 2^110 (inputs near 1e19 and beyond,
 *   whose squares overflow float32) the finish takes those instead. Finished as [mean, variance, scale],
 *   the biased variance being variance · scale²: scale is 1 (and mean and variance the plain sums',
 *   bit for bit) below that, 2^100 above.
 * - `gradSums`: sums of dy and dy * (x - mean[c]), the two sums of the batch norm's gradient (`mean` may
 *   be the batch norm's packed [4, C] coefficients, whose first row it is).
 * - `geluGradSums`: the same sums of g = dy * GELU'(x * scale[c] + shift[c]), the gradient reaching a
 *   batch norm through the GELU after it, computed on the fly (no g tensor), mean, scale and shift read
 *   from the packed [4, C] coefficients (rows 0, 2 and 3).
 * - `sum` / `mean`: tfjs's Sum and Mean over every axis (the discrete action's std scalar), or over every
 *   axis but the last (a bias's gradient): Sum.ts, Mean.ts, through `reduceLeadingAxes`.
 * @internal
 */
import { util, type KernelFunc, type MeanAttrs, type SumAttrs, type TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { originalKernel } from '../install.js';
import type { WebGPUBackendLike, WebGPUProgram } from '../types.js';
import { fitsU32Indexing } from './util.js';
import { GELU_WGSL, wgslConstants } from './wgsl.js';

const THREADS = 256;
const COLUMNS_PER_GROUP = 64;
/** WebGPU's guaranteed `maxComputeWorkgroupsPerDimension`: the partial pass puts column groups on x. */
const MAX_WORKGROUPS_PER_DIMENSION = 65535;
const MAX_COLUMNS = MAX_WORKGROUPS_PER_DIMENSION * COLUMNS_PER_GROUP;

/**
 * The whole-tensor moments' second set of sums is of x · 2^-100 (and the shift likewise): at most 2^28 for a
 * finite input, so neither a difference nor a square overflows, and a term that matters (2^37 or more before
 * scaling) squares to a normal float. Powers of two, so the scaling itself is exact.
 */
const MOMENTS_DOWN = '0x1p-100f';
const MOMENTS_UP = '0x1p100f';
/** The scaled sum of squares below which the plain sums (below 2^110, far from float32's 2^128) are taken. */
const MOMENTS_PLAIN_BELOW = '0x1p-90f';

/** Sums per column of the partial pass: two, or four for the whole-tensor moments (plain and scaled). */
function sumsPerColumn(mode: ColumnSumsMode, overAll: boolean): number {
  return mode === 'moments' && overAll ? 4 : 2;
}

/** Whether `columns` channels fit the partial pass's dispatch. */
function columnsFit(columns: number): boolean {
  return columns <= MAX_COLUMNS;
}

function largestDivisorUpTo(n: number, limit: number): number {
  for (let d = Math.min(n, limit); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

export type ColumnSumsMode = 'moments' | 'gradSums' | 'geluGradSums' | 'sum' | 'mean';

interface Layout {
  rows: number;
  columns: number;
  /** Columns a workgroup covers (all of them when fewer than 64) and the rows it reads at once. */
  groupColumns: number;
  lanes: number;
  columnGroups: number;
  chunks: number;
  rowsPerChunk: number;
}

function layout(rows: number, columns: number): Layout {
  const groupColumns = Math.min(columns, COLUMNS_PER_GROUP);
  const lanes = Math.floor(THREADS / groupColumns);
  const columnGroups = Math.ceil(columns / groupColumns);
  // About a thousand workgroups in all, each lane reading at least 16 rows.
  const chunks = Math.max(1, Math.min(Math.ceil(1024 / columnGroups), Math.floor(rows / (16 * lanes))));
  const rowsPerChunk = Math.ceil(rows / chunks);
  return { rows, columns, groupColumns, lanes, columnGroups, chunks: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/** Pass 1: [chunks, 2, columns] partial sums. */
class ColumnPartialSumsProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [2], y: [0] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];

  constructor(
    private readonly mode: ColumnSumsMode,
    private readonly l: Layout,
    private readonly overAll: boolean,
  ) {
    this.variableNames = mode === 'gradSums' ? ['x', 'dy', 'mean'] : mode === 'geluGradSums' ? ['x', 'dy', 'coefficients'] : ['x'];
    this.outputShape = [l.chunks, sumsPerColumn(mode, overAll), l.columns];
    this.dispatch = [l.columnGroups, l.chunks, 1];
    this.shaderKey = `dataflowColumnPartialSums_${mode}_${overAll}_${l.rows}_${l.columns}_${l.rowsPerChunk}`;
  }

  getUserCode(): string {
    const { l } = this;
    const terms = {
      moments: `let d = f32(x[r * COLUMNS + column]) - shift;
            s1 += d;
            s2 += d * d;`,
      gradSums: `let g = f32(dy[r * COLUMNS + column]);
            s1 += g;
            s2 += g * (f32(x[r * COLUMNS + column]) - shift);`,
      geluGradSums: `let xv = f32(x[r * COLUMNS + column]);
            let g = f32(dy[r * COLUMNS + column]) * geluDerivative(xv * colScale + colShift);
            s1 += g;
            s2 += g * (xv - shift);`,
      sum: 's1 += f32(x[r * COLUMNS + column]);',
      mean: 's1 += f32(x[r * COLUMNS + column]);',
    }[this.mode];
    // Reads go through f32(): a float32 tensor may sit in an int32 buffer after a cast (see storedAsFloat32).
    const shift = {
      moments: this.overAll ? 'f32(x[0])' : 'f32(x[column])',
      gradSums: 'f32(mean[column])',
      geluGradSums: 'f32(coefficients[column])',
      sum: '0.0',
      mean: '0.0',
    }[this.mode];
    const gelu = this.mode === 'geluGradSums';
    // Over the whole tensor, the moments also sum the scaled terms (see the file's comment): four sums, not two.
    const wide = sumsPerColumn(this.mode, this.overAll) === 4;
    const scaledTerms = wide
      ? `
            let e = f32(x[r * COLUMNS + column]) * ${MOMENTS_DOWN} - scaledShift;
            t1 += e;
            t2 += e * e;`
      : '';
    return `
      ${gelu ? GELU_WGSL : ''}
      ${wgslConstants({ ROWS: l.rows, COLUMNS: l.columns, GROUP_COLUMNS: l.groupColumns, LANES: l.lanes, ROWS_PER_CHUNK: l.rowsPerChunk })}
      var<workgroup> laneSums : array<${wide ? 'vec4' : 'vec2'}<f32>, ${THREADS}>;

      fn main() {
        let lane = localIndex / GROUP_COLUMNS;
        let column = workgroupId.x * GROUP_COLUMNS + localIndex % GROUP_COLUMNS;
        let chunk = workgroupId.y;
        let reads = lane < LANES && column < COLUMNS;
        var s1 = 0.0;
        var s2 = 0.0;${wide ? '\n        var t1 = 0.0;\n        var t2 = 0.0;' : ''}
        if (reads) {
          let shift = ${shift};${wide ? `\n          let scaledShift = shift * ${MOMENTS_DOWN};` : ''}
          ${gelu ? 'let colScale = f32(coefficients[2u * COLUMNS + column]);\n          let colShift = f32(coefficients[3u * COLUMNS + column]);' : ''}
          let end = min(ROWS, (chunk + 1u) * ROWS_PER_CHUNK);
          for (var r = chunk * ROWS_PER_CHUNK + lane; r < end; r += LANES) {
            ${terms}${scaledTerms}
          }
        }
        laneSums[localIndex] = ${wide ? 'vec4<f32>(s1, s2, t1, t2)' : 'vec2<f32>(s1, s2)'};
        workgroupBarrier();
        if (lane == 0u && column < COLUMNS) {
          var total = ${wide ? 'vec4' : 'vec2'}<f32>(0.0);
          for (var k = 0u; k < LANES; k++) {
            total += laneSums[k * GROUP_COLUMNS + localIndex];
          }
          result[(chunk * ${wide ? 4 : 2}u) * COLUMNS + column] = total.x;
          result[(chunk * ${wide ? 4 : 2}u + 1u) * COLUMNS + column] = total.y;${
            wide
              ? `
          result[(chunk * 4u + 2u) * COLUMNS + column] = total.z;
          result[(chunk * 4u + 3u) * COLUMNS + column] = total.w;`
              : ''
          }
        }
        // Reads the uniforms, whose binding tfjs always passes and WebGPU drops when unused.
        if (uniforms.outShape.x < 0) {
          result[0] = 0.0;
        }
      }
    `;
  }
}

/**
 * Pass 2: adds the chunks in order and finishes. Per column (or, with `overAll`, over every column:
 * one workgroup, each thread a fixed stride of the partials, then a fixed tree). Output [2, columns] or [2].
 */
class ColumnSumsFinishProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0], y: [1] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];

  constructor(
    private readonly mode: ColumnSumsMode,
    private readonly l: Layout,
    private readonly overAll: boolean,
  ) {
    this.variableNames = mode === 'moments' ? ['partials', 'x'] : ['partials'];
    const outputs = mode === 'sum' || mode === 'mean' ? 1 : mode === 'moments' && overAll ? 3 : 2;
    this.outputShape = overAll ? [outputs] : [outputs, l.columns];
    // A workgroup per column, over two dimensions where there are more columns than one dimension takes.
    this.dispatch = overAll
      ? [1, 1, 1]
      : [Math.min(l.columns, MAX_WORKGROUPS_PER_DIMENSION), Math.ceil(l.columns / MAX_WORKGROUPS_PER_DIMENSION), 1];
    this.shaderKey = `dataflowColumnSumsFinish_${mode}_${overAll}_${l.rows}_${l.columns}_${l.chunks}`;
  }

  getUserCode(): string {
    const { l, overAll } = this;
    const sums = sumsPerColumn(this.mode, overAll);
    const wide = sums === 4;
    // Over all: thread t takes partial index t, t + THREADS, ... of chunk-major [chunks][columns].
    const count = overAll ? l.chunks * l.columns : l.chunks;
    const at = overAll ? `(i / COLUMNS) * ${sums}u * COLUMNS + i % COLUMNS` : `i * ${sums}u * COLUMNS + column`;
    const at0 = overAll ? '0' : 'column';
    const vec = wide ? 'vec4' : 'vec2';
    const read = wide
      ? 'vec4<f32>(partials[p], partials[p + COLUMNS], partials[p + 2u * COLUMNS], partials[p + 3u * COLUMNS])'
      : 'vec2<f32>(partials[p], partials[p + COLUMNS])';
    // The plain sums below 2^110 (the scaled sum of squares below 2^-90): exactly what they were before the scaled
    // ones existed. Above, the scaled sums, with the scale the std is to be multiplied by.
    const wideMoments = `let n = f32(N_PER_COLUMN);
          let shift = f32(x[0]);
          if (total.w < ${MOMENTS_PLAIN_BELOW}) {
            let variance = (total.y - total.x * total.x / n) / n;
            result[0] = shift + total.x / n;
            result[1] = select(variance, 0.0, variance < 0.0);
            result[2] = 1.0;
          } else {
            let variance = (total.w - total.z * total.z / n) / n;
            result[0] = shift + total.z / n * ${MOMENTS_UP};
            result[1] = select(variance, 0.0, variance < 0.0);
            result[2] = ${MOMENTS_UP};
          }`;
    const finish = {
      gradSums: `result[column] = total.x;
          result[COLUMNS + column] = total.y;`,
      geluGradSums: `result[column] = total.x;
          result[COLUMNS + column] = total.y;`,
      // Shifted sums: mean = shift + s1 / n, variance = (s2 - s1² / n) / n, rounding below 0 clamped. Not
      // with max(), which may drop a NaN: a NaN anywhere in x must reach the result, as in torch.
      moments: wide
        ? wideMoments
        : `let n = f32(N_PER_COLUMN);
          let shift = f32(x[${at0}]);
          let variance = (total.y - total.x * total.x / n) / n;
          result[${at0}] = shift + total.x / n;
          result[${overAll ? '1' : 'COLUMNS + column'}] = select(variance, 0.0, variance < 0.0);`,
      sum: `result[${at0}] = total.x;`,
      mean: `result[${at0}] = total.x / f32(N_PER_COLUMN);`,
    }[this.mode];
    return `
      ${wgslConstants({ COLUMNS: l.columns, COUNT: count, N_PER_COLUMN: overAll ? l.rows * l.columns : l.rows })}
      var<workgroup> threadSums : array<${vec}<f32>, ${THREADS}>;

      fn main() {
        let wanted = workgroupId.y * ${MAX_WORKGROUPS_PER_DIMENSION}u + workgroupId.x;
        // The last row of workgroups may run past the columns: those sum column COLUMNS - 1 again and write nothing.
        let column = min(wanted, COLUMNS - 1u);
        var sum = ${vec}<f32>(0.0);
        for (var i = localIndex; i < COUNT; i += ${THREADS}u) {
          let p = ${at};
          sum += ${read};
        }
        threadSums[localIndex] = sum;
        for (var width = ${THREADS / 2}u; width > 0u; width /= 2u) {
          workgroupBarrier();
          if (localIndex < width) {
            threadSums[localIndex] += threadSums[localIndex + width];
          }
        }
        if (localIndex == 0u && wanted < COLUMNS && uniforms.outShape${this.outputShape.length === 1 ? '' : '.x'} >= 0) {
          let total = threadSums[0];
          ${finish}
        }
      }
    `;
  }
}

/** The two passes of `mode` over `inputs` (x first, channels last); the caller owns the result. @internal */
export function columnSums(backend: WebGPUBackendLike, mode: ColumnSumsMode, inputs: TensorInfo[], overAll: boolean): TensorInfo {
  const x = inputs[0]!;
  const size = x.shape.reduce((a, b) => a * b, 1);
  const lastAxis = x.shape[x.shape.length - 1] ?? 1;
  // Over the whole tensor any [rows, columns] view of it gives the sums; one whose column groups fit a dispatch
  // dimension is taken where the last axis is too long for one (a flat tensor of millions).
  const columns = overAll && !columnsFit(lastAxis) ? largestDivisorUpTo(size, COLUMNS_PER_GROUP) : lastAxis;
  if (!columnsFit(columns)) {
    throw new Error(
      `columnSums: ${columns} channels is more than the ${MAX_COLUMNS} one pass handles; reduce over fewer channels at a time`,
    );
  }
  const l = layout(size / columns, columns);
  const partials = backend.runWebGPUProgram(new ColumnPartialSumsProgram(mode, l, overAll), inputs, 'float32');
  const finishInputs = mode === 'moments' ? [partials, x] : [partials];
  const out = backend.runWebGPUProgram(new ColumnSumsFinishProgram(mode, l, overAll), finishInputs, 'float32');
  backend.disposeData(partials.dataId);
  return out;
}

/**
 * tfjs's Sum or Mean (`kernelName`) of a float32 tensor over every axis, or over every axis but the last, in the
 * two passes above; any other reduction (other axes, other dtypes, too many channels, sizes past u32 indexing)
 * goes to tfjs's own kernel. @internal
 */
export function reduceLeadingAxes(mode: 'sum' | 'mean', kernelName: string): KernelFunc {
  return (args) => {
    const { inputs, attrs, backend } = args;
    const { x } = inputs as { x: TensorInfo };
    const { axis, keepDims } = attrs as unknown as SumAttrs | MeanAttrs;
    const rank = x.shape.length;
    const axes = util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const overAll = axes.length === rank;
    const channels = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
    const gpu = backend as unknown as WebGPUBackendLike;
    const tooManyChannels = channels && !columnsFit(x.shape[rank - 1]!);
    if (
      x.dtype !== 'float32' ||
      util.sizeFromShape(x.shape) === 0 ||
      !(overAll || channels) ||
      tooManyChannels ||
      !fitsU32Indexing(x.shape)
    ) {
      return originalKernel(kernelName, WEBGPU).kernelFunc(args);
    }
    const out = columnSums(gpu, mode, [x], overAll);
    const shape = keepDims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : overAll ? [] : [x.shape[rank - 1]!];
    return { ...out, shape };
  };
}
