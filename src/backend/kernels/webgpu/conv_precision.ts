/**
 * Tensor cores through WebGPU subgroup matrices (Dawn's `chromium-experimental-subgroup-matrix`, Vulkan's
 * cooperative matrices): the precision switch of the library's convolutions, which configuration a device
 * offers, and which one the kernels use on it. The WGSL is in subgroup_matrix.ts.
 * @internal
 */
import { TILE_K, TILE_M, TILE_N } from './wgsl.js';

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

/**
 * Runs `body` with the convolutions at `value`, then restores the precision before: for work that must stay f32
 * whatever the training runs at (the whitening fit's patches, as the seed takes them in float32). The kernels read
 * the precision when they are dispatched, so `body` must dispatch synchronously (a `tf.tidy` body does).
 */
export function withWebGPUConvPrecision<T>(value: ConvPrecision, body: () => T): T {
  const before = precision;
  setWebGPUConvPrecision(value);
  try {
    return body();
  } finally {
    precision = before;
  }
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
