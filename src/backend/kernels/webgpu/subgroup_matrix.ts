/**
 * The WGSL of the tensor-core GEMM main loop: f16 tiles multiplied into f32 accumulators on subgroup matrices,
 * for the configuration conv_precision.ts picks.
 *
 * @remarks The tiles are staged exactly as the f32 kernels stage them (same loaders, same split-K plan,
 * same split-order sums), only converted to f16 on the way into workgroup memory, so the two variants
 * differ only in operand rounding. Each subgroup owns a fixed block of the 64x64 tile and accumulates it
 * in one fixed order, so reruns give the same bits.
 * @internal
 */
import { TENSOR_CORE_THREADS, type TensorCoreConfig } from './conv_precision.js';
import { TILE_K, TILE_M, TILE_N } from './wgsl.js';

/**
 * Workgroup memory of the tensor-core variant: f16 tiles ([TILE_K][64], K-major as the f32 ones) and
 * per-subgroup result scratch. Each subgroup's offsets come from its invocations' index, which Tint cannot
 * prove uniform (tfjs's entry point passes no subgroup builtins), so its subgroup-matrix uniformity check is
 * turned off; they are uniform over the subgroup because subgroups are runs of SG_SIZE consecutive invocations.
 */
export function tensorCoreDeclarations(c: TensorCoreConfig): string {
  const subgroups = TENSOR_CORE_THREADS / c.subgroupSize;
  return `
  enable f16;
  enable chromium_experimental_subgroup_matrix;
  diagnostic(off, chromium.subgroup_matrix_uniformity);
  var<workgroup> tileA : array<f16, ${TILE_K * TILE_M}>;
  var<workgroup> tileB : array<f16, ${TILE_K * TILE_N}>;
  var<workgroup> scratch : array<f32, ${subgroups * c.M * c.N}>;
  fn setA(quad : u32, j : u32, v : f32) { tileA[quad * 4u + j] = f16(v); }
  fn setB(quad : u32, j : u32, v : f32) { tileB[quad * 4u + j] = f16(v); }
  fn setA4(quad : u32, v : vec4<f32>) { for (var j = 0u; j < 4u; j++) { tileA[quad * 4u + j] = f16(v[j]); } }
  fn setB4(quad : u32, v : vec4<f32>) { for (var j = 0u; j < 4u; j++) { tileB[quad * 4u + j] = f16(v[j]); } }
`;
}

/** How the 64x64 tile is shared: each subgroup owns `rows` x `cols` result matrices, `across` blocks to a row of the tile. */
export function subgroupBlocks(c: TensorCoreConfig): { rows: number; cols: number; across: number } {
  const subgroups = TENSOR_CORE_THREADS / c.subgroupSize;
  const perSubgroup = ((TILE_M / c.M) * (TILE_N / c.N)) / subgroups;
  const cols = Math.min(perSubgroup, TILE_N / c.N);
  return { rows: perSubgroup / cols, cols, across: TILE_N / c.N / cols };
}

/**
 * The tensor-core counterpart of `gemmMain`: the same loaders, K loop and [split][m][n] output, with the
 * 64x64 block computed as subgroup-matrix products. Results go through the subgroup's scratch so edge
 * tiles store only their in-range elements.
 */
export function tensorCoreMain(prologue: string, c: TensorCoreConfig): string {
  const { rows, cols, across } = subgroupBlocks(c);
  const left = `subgroup_matrix_left<f16, ${c.K}, ${c.M}>`;
  const right = `subgroup_matrix_right<f16, ${c.N}, ${c.K}>`;
  const result = `subgroup_matrix_result<f32, ${c.N}, ${c.M}>`;
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) pairs.push([i, j]);
  const products: string[] = [];
  for (let kk = 0; kk < TILE_K; kk += c.K) {
    for (let i = 0; i < rows; i++) {
      products.push(`let a${i}_${kk} = subgroupMatrixLoad<${left}, col_major>(&tileA, ${kk * TILE_M}u + row0 + ${i * c.M}u, ${TILE_M}u);`);
    }
    for (let j = 0; j < cols; j++) {
      products.push(`let b${j}_${kk} = subgroupMatrixLoad<${right}, row_major>(&tileB, ${kk * TILE_N}u + col0 + ${j * c.N}u, ${TILE_N}u);`);
    }
    for (const [i, j] of pairs) products.push(`acc${i}_${j} = subgroupMatrixMultiplyAccumulate(a${i}_${kk}, b${j}_${kk}, acc${i}_${j});`);
  }
  const stores = pairs
    .map(
      ([i, j]) => `
      workgroupBarrier();
      subgroupMatrixStore<row_major>(&scratch, sgBase, acc${i}_${j}, ${c.N}u);
      workgroupBarrier();
      for (var e = lane; e < ${c.M * c.N}u; e += SG_SIZE) {
        let m = tileM + row0 + ${i * c.M}u + e / ${c.N}u;
        let n = tileN + col0 + ${j * c.N}u + e % ${c.N}u;
        if (m < GEMM_M && n < GEMM_N) {
          result[base + m * GEMM_N + n] = scratch[sgBase + e];
        }
      }`,
    )
    .join('');
  return `
    const SG_SIZE : u32 = ${c.subgroupSize}u;
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
      // Subgroups are consecutive runs of SG_SIZE invocations of the one-dimensional workgroup.
      let sg = localIndex / SG_SIZE;
      let lane = localIndex % SG_SIZE;
      let row0 = (sg / ${across}u) * ${rows * c.M}u;
      let col0 = (sg % ${across}u) * ${cols * c.N}u;
      let sgBase = sg * ${c.M * c.N}u;
      ${pairs.map(([i, j]) => `var acc${i}_${j} = ${result}();`).join('\n      ')}
      loadTile(kBegin);
      // A constant trip count keeps the barriers and the subgroup-matrix calls in uniform control flow.
      for (var step = 1u; step <= K_PER_SPLIT / ${TILE_K}u; step++) {
        workgroupBarrier();
        storeTile();
        workgroupBarrier();
        loadTile(kBegin + step * ${TILE_K}u);
        ${products.join('\n        ')}
      }
      let base = split * GEMM_M * GEMM_N;
      ${stores}
    }
  `;
}

const GLOBAL_DIRECTIVE = /^[ \t]*(?:enable[ \t]+[A-Za-z0-9_, \t]+|diagnostic[ \t]*\([A-Za-z0-9_., \t]+\))[ \t]*;[ \t]*$/gm;

/**
 * WGSL wants its global directives (`enable`, `diagnostic`) before every declaration, but
 * tfjs-backend-webgpu puts a program's code after its own header. Moves them to the front (each once, in
 * order); code without one is passed as it is.
 */
export function hoistDirectiveLines(code: string): string {
  const found = code.match(GLOBAL_DIRECTIVE);
  if (found == null) return code;
  const directives = [...new Set(found.map((d) => d.trim()))];
  return `${directives.join('\n')}\n${code.replace(GLOBAL_DIRECTIVE, '')}`;
}

/**
 * Runs `body` (which compiles one of the library's tensor-core programs through tfjs's `runWebGPUProgram`) with
 * `device.createShaderModule` hoisting global directives, and restores it after: tfjs offers no hook for a
 * program's directives, and the scope keeps every other shader (tfjs's own included) untouched. tfjs compiles a
 * program's module synchronously inside `runWebGPUProgram`, so the scope covers it.
 */
export function withHoistedDirectives<T>(device: GPUDevice, body: () => T): T {
  const own = Object.hasOwn(device, 'createShaderModule');
  const create = device.createShaderModule;
  device.createShaderModule = (descriptor: GPUShaderModuleDescriptor) =>
    create.call(device, { ...descriptor, code: hoistDirectiveLines(descriptor.code) });
  try {
    return body();
  } finally {
    if (own) device.createShaderModule = create;
    else delete (device as { createShaderModule?: unknown }).createShaderModule;
  }
}
