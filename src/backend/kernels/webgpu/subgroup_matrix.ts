/**
 * Tensor cores through WebGPU subgroup matrices (Dawn's `chromium-experimental-subgroup-matrix`, Vulkan's
 * cooperative matrices): which configuration a device offers, whether the convolutions use it (the
 * precision switch), and the WGSL of the GEMM main loop that multiplies f16 tiles into f32 accumulators.
 *
 * @remarks The tiles are staged exactly as the f32 kernels stage them (same loaders, same split-K plan,
 * same split-order sums), only converted to f16 on the way into workgroup memory, so the two variants
 * differ only in operand rounding. Each subgroup owns a fixed block of the 64x64 tile and accumulates it
 * in one fixed order, so reruns give the same bits.
 * @internal
 */
import { TILE_K, TILE_M, TILE_N } from './tiles.js';

export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';
/** The threads of a tensor-core workgroup: eight subgroups of 32, and a multiple of every maxSubgroupSize Dawn reports (Null: 128). */
export const TENSOR_CORE_THREADS = 256;

/** One entry of `adapter.info.subgroupMatrixConfigs` (M x K left, K x N right, M x N result). */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** What the device offers: its configurations and subgroup sizes (from the adapter info at device creation). */
export interface SubgroupMatrixDevice {
  configs: readonly SubgroupMatrixConfig[];
  subgroupMinSize: number;
  subgroupMaxSize: number;
}

/** The configuration a program is generated for: f16 operands, f32 results, on subgroups of `subgroupSize`. */
export interface TensorCoreConfig {
  M: number;
  N: number;
  K: number;
  subgroupSize: number;
}

/** How the library's WebGPU convolutions multiply: f32 kernels, or f16 operands on tensor cores where the device has them. */
export type ConvPrecision = 'float32' | 'float16';
export const CONV_PRECISIONS: readonly ConvPrecision[] = ['float32', 'float16'];

let precision: ConvPrecision = 'float32';

/**
 * Chooses the precision of the library's WebGPU convolutions. `'float16'` converts both operands to f16
 * in workgroup memory and accumulates in f32 on subgroup matrices (tensor cores), where the device has a
 * matching configuration; elsewhere, and always with `'float32'` (the default), the f32 kernels run.
 */
export function setWebGPUConvPrecision(value: ConvPrecision): void {
  if (!CONV_PRECISIONS.includes(value)) {
    throw new Error(
      `setWebGPUConvPrecision: expected one of ${CONV_PRECISIONS.map((p) => `'${p}'`).join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  precision = value;
}

export function webgpuConvPrecision(): ConvPrecision {
  return precision;
}

const devices = new WeakMap<GPUDevice, SubgroupMatrixDevice>();

/** Reads the subgroup-matrix part of an adapter's info (absent fields read as none). */
export function subgroupMatrixDeviceOf(info: unknown): SubgroupMatrixDevice {
  const i = (info ?? {}) as { subgroupMatrixConfigs?: Iterable<SubgroupMatrixConfig>; subgroupMinSize?: number; subgroupMaxSize?: number };
  const configs = [...(i.subgroupMatrixConfigs ?? [])].map(({ componentType, resultComponentType, M, N, K }) => ({
    componentType,
    resultComponentType,
    M,
    N,
    K,
  }));
  return { configs, subgroupMinSize: i.subgroupMinSize ?? 0, subgroupMaxSize: i.subgroupMaxSize ?? 0 };
}

/**
 * Records what a device created with the subgroup-matrix feature offers (`initBackend` does it when it
 * creates the device; tests and benchmarks that make their own device call it with the configuration
 * they stand for). A device never registered runs the f32 kernels.
 */
export function registerSubgroupMatrixDevice(device: GPUDevice, offer: SubgroupMatrixDevice): void {
  devices.set(device, offer);
  hoistGlobalDirectives(device);
}

/**
 * The largest configuration (M*N*K) with f16 operands and f32 results that tiles the kernels' 64x64x16
 * block among the workgroup's subgroups, or a sentence saying why there is none. The subgroup size must
 * be fixed (min = max): each subgroup's block is found from its invocations' index.
 */
export function pickTensorCoreConfig(offer: SubgroupMatrixDevice): TensorCoreConfig | string {
  const { subgroupMinSize: min, subgroupMaxSize: max } = offer;
  if (offer.configs.length === 0) return 'the adapter reports no subgroup-matrix configuration';
  if (min !== max || min <= 0 || TENSOR_CORE_THREADS % min !== 0) {
    return `the subgroup size is not fixed (${min} to ${max}); the tensor-core kernels need one size that divides ${TENSOR_CORE_THREADS}`;
  }
  const subgroups = TENSOR_CORE_THREADS / min;
  const fits = offer.configs.filter(
    (c) =>
      c.componentType === 'f16' &&
      c.resultComponentType === 'f32' &&
      TILE_M % c.M === 0 &&
      TILE_N % c.N === 0 &&
      TILE_K % c.K === 0 &&
      ((TILE_M / c.M) * (TILE_N / c.N)) % subgroups === 0,
  );
  if (fits.length === 0) {
    const offered = offer.configs.map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`).join(', ');
    return `no configuration has f16 operands, f32 results and tiles ${TILE_M}x${TILE_N}x${TILE_K} over ${subgroups} subgroups (offered: ${offered})`;
  }
  const best = fits.reduce((a, b) => (b.M * b.N * b.K > a.M * a.N * a.K ? b : a));
  return { M: best.M, N: best.N, K: best.K, subgroupSize: min };
}

/**
 * The configuration the convolutions on `device` use now: precision `'float16'`, the feature on the
 * device, a registered offer and a configuration that fits; else a sentence saying which is missing.
 */
export function tensorCoreConfigFor(device: GPUDevice): TensorCoreConfig | string {
  if (precision !== 'float16') return `precision is '${precision}'`;
  if (!device.features.has(SUBGROUP_MATRIX_FEATURE)) return `the device lacks ${SUBGROUP_MATRIX_FEATURE}`;
  if (!device.features.has('shader-f16')) return 'the device lacks shader-f16';
  const offer = devices.get(device);
  if (offer == null) return 'the device was not created by initBackend (registerSubgroupMatrixDevice was not called)';
  return pickTensorCoreConfig(offer);
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

const hoisted = new WeakSet<GPUDevice>();

/** Makes `device.createShaderModule` hoist global directives (idempotent); see `hoistDirectiveLines`. */
export function hoistGlobalDirectives(device: GPUDevice): void {
  if (hoisted.has(device)) return;
  hoisted.add(device);
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = (descriptor: GPUShaderModuleDescriptor) =>
    create({ ...descriptor, code: hoistDirectiveLines(descriptor.code) });
}

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
