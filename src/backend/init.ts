import { backend, engine, getBackend, ready, registerBackend, removeBackend, setBackend } from '@tensorflow/tfjs-core';
import { watchDeviceErrors } from './device-errors.js';
import { explainSyncReads } from './sync-reads.js';
import { installLibraryKernels } from './kernels/index.js';
import {
  registerSubgroupMatrixDevice,
  setWebGPUConvPrecision,
  subgroupMatrixDeviceOf,
  SUBGROUP_MATRIX_FEATURE,
  tensorCoreConfigFor,
  type ConvPrecision,
} from './kernels/webgpu/conv_precision.js';

/** Backends `initBackend` knows. `'auto'` picks the fastest that is really available. */
export const BACKEND_NAMES = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
/** A name `initBackend` takes: one of {@link BACKEND_NAMES}. */
export type BackendName = (typeof BACKEND_NAMES)[number];
/** A backend `initBackend` can set: any {@link BackendName} but `'auto'`. */
export type ConcreteBackend = Exclude<BackendName, 'auto'>;

/** What the WebGPU adapter says about itself. */
export interface AdapterDescription {
  /** The adapter's vendor, e.g. `nvidia`; may be empty. */
  vendor: string;
  /** The adapter's architecture, e.g. `hopper`; may be empty. */
  architecture: string;
  /** The adapter's device identifier; may be empty. */
  device: string;
  /** The adapter's description, e.g. the driver's name for it; may be empty. */
  description: string;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader, WARP) rather than a GPU. */
  isSoftware: boolean;
}

/** The backend that `initBackend` set, and why. */
export interface BackendReport {
  /** The backend now set in tfjs. */
  backend: ConcreteBackend;
  /** One sentence: why this backend (for 'auto', what was tried before it). */
  reason: string;
  /** WebGPU only. */
  adapter?: AdapterDescription;
  /** WebGPU only: how the convolutions multiply, e.g. `float16 on subgroup matrices 16x16x16 (subgroups of 32)`, or `float32` and why. */
  convPrecision?: string;
  /** tensorflow only: which package was loaded. */
  tensorflowPackage?: string;
  /** wasm only: worker threads in use (1 when the single-threaded SIMD build runs). */
  wasmThreads?: number;
}

/** Options of `initBackend`: wasm files, the WebGPU adapter and the library's kernels. */
export interface InitBackendOptions {
  /** Where the browser fetches tfjs-backend-wasm's .wasm files (passed to `setWasmPaths`). */
  wasmPaths?: string | Record<string, string>;
  /** Let `'auto'` choose a software WebGPU adapter over wasm. Default false. */
  preferSoftwareWebGPU?: boolean;
  /** Install the library's wasm training kernels (conv filter/input gradients, explicit matMul transposes). Default true; false restores tfjs's own. */
  wasmTrainingKernels?: boolean;
  /** Install the library's WebGPU training kernels (conv gradients as split-K implicit GEMMs, batch statistics). Default true; false restores tfjs's own. */
  webgpuTrainingKernels?: boolean;
  /**
   * How the library's WebGPU convolutions multiply: `'float32'` (default) or `'float16'`, f16 operands with
   * f32 accumulation on subgroup matrices (tensor cores) where the adapter offers
   * `chromium-experimental-subgroup-matrix` with a fitting configuration, the f32 kernels elsewhere.
   * Opt-in until a full run proves its accuracy. Under Node it also turns on Dawn's `allow_unsafe_apis`
   * toggle, which the experimental feature needs, if Dawn was not started before.
   */
  webgpuConvPrecision?: ConvPrecision;
}

/**
 * How a platform provides what tfjs cannot find by itself. The browser entry
 * uses `navigator.gpu`; the `./node` entry installs Dawn first and can load tfjs-node.
 * @internal
 */
export interface Platform {
  name: 'browser' | 'node';
  /** Returns the WebGPU entry point with tfjs's globals in place, or a reason it has none. */
  gpu(): Promise<GPU | string>;
  /** Loads tfjs-node-gpu or tfjs-node and returns the package name, or throws a message saying what to install. */
  loadTensorflow(): Promise<string>;
}

/** Thrown by `initBackend` when the backend asked for by name cannot start here; the message says why and what to install or change. */
export class BackendUnavailableError extends Error {
  constructor(
    /** The backend that could not start. */
    readonly backend: ConcreteBackend,
    message: string,
  ) {
    super(message);
    this.name = 'BackendUnavailableError';
  }
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|warp|basic render/i;

/** What a WebGPU adapter says about itself (vendor, architecture, device, description), and whether it is a software one. */
export function describeAdapter(adapter: GPUAdapter): AdapterDescription {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  const vendor = info?.vendor ?? '';
  const architecture = info?.architecture ?? '';
  const device = info?.device ?? '';
  const description = info?.description ?? '';
  const fallback = Boolean(
    (info as unknown as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
  );
  const isSoftware = fallback || SOFTWARE_ADAPTER.test(`${vendor} ${architecture} ${device} ${description}`);
  return { vendor, architecture, device, description, isSoftware };
}

function adapterName(a: AdapterDescription): string {
  return a.description || [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || 'unnamed adapter';
}

async function activate(name: ConcreteBackend): Promise<void> {
  let ok = false;
  let failure: unknown;
  try {
    ok = await setBackend(name);
  } catch (e) {
    failure = e;
  }
  if (!ok) {
    const why = failure instanceof Error ? `: ${failure.message}` : '';
    throw new BackendUnavailableError(name, `tfjs could not initialise the '${name}' backend${why}`);
  }
  await ready();
}

async function probeWebGPU(platform: Platform): Promise<{ adapter: GPUAdapter; description: AdapterDescription }> {
  const gpu = await platform.gpu();
  if (typeof gpu === 'string') throw new BackendUnavailableError('webgpu', gpu);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter == null) {
    throw new BackendUnavailableError(
      'webgpu',
      platform.name === 'node'
        ? "WebGPU found no adapter. On Linux without a GPU, install a Vulkan driver such as Mesa's lavapipe (Debian: apt-get install -t bookworm-backports mesa-vulkan-drivers) and set XDG_RUNTIME_DIR."
        : "WebGPU found no adapter: this browser or machine exposes no usable GPU. Use initBackend('wasm') instead.",
    );
  }
  return { adapter, description: describeAdapter(adapter) };
}

/**
 * The features the library asks a WebGPU device for, of those `adapter` has: timestamp queries (tf.profile /
 * tf.time report GPU time per kernel; they cost nothing unless used) and bgra8unorm storage (as tfjs's own
 * factory asks), and for the tensor-core convolutions subgroup matrices with f16 and subgroups (which Dawn pairs
 * with them).
 */
export function libraryDeviceFeatures(adapter: GPUAdapter): GPUFeatureName[] {
  const wanted = ['timestamp-query', 'bgra8unorm-storage', SUBGROUP_MATRIX_FEATURE, 'shader-f16', 'subgroups'];
  return wanted.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
}

type EngineRegistry = { registryFactory: Record<string, { factory: unknown }>; registry: Record<string, unknown> };
const libraryFactories = new WeakSet<object>();

/**
 * Makes 'webgpu' tfjs's name for the library's factory: a device with every feature of `libraryDeviceFeatures`.
 * tfjs-backend-webgpu registers its own factory when first imported where `navigator.gpu` exists, and that one
 * asks for timestamp queries only, so it is replaced (with the backend it made, if any: the caller checks that
 * the backend holds no tensor).
 */
function registerLibraryWebGPUFactory(platform: Platform, webgpu: typeof import('@tensorflow/tfjs-backend-webgpu')): void {
  const registered = (engine() as unknown as EngineRegistry).registryFactory['webgpu'];
  if (registered != null && libraryFactories.has(registered.factory as object)) return;
  if (registered != null) removeBackend('webgpu');
  const factory = async () => {
    const gpu = await platform.gpu();
    if (typeof gpu === 'string') throw new Error(gpu);
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter == null) throw new Error('WebGPU adapter disappeared');
    const device = await adapter.requestDevice({
      requiredFeatures: libraryDeviceFeatures(adapter),
      requiredLimits: {
        maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
        maxComputeWorkgroupsPerDimension: adapter.limits.maxComputeWorkgroupsPerDimension,
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
        maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
        maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      },
    });
    const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
    if (device.features.has(SUBGROUP_MATRIX_FEATURE)) registerSubgroupMatrixDevice(device, subgroupMatrixDeviceOf(info));
    watchDeviceErrors(device);
    const created = new webgpu.WebGPUBackend(device, info);
    explainSyncReads(created as unknown as Parameters<typeof explainSyncReads>[0]);
    return created;
  };
  libraryFactories.add(factory);
  registerBackend('webgpu', factory, 3);
}

/** The running 'webgpu' backend's device and how many tensors it holds, or undefined before it starts. */
function runningWebGPU(): { device: GPUDevice; tensors: number } | undefined {
  const instance = (engine() as unknown as EngineRegistry).registry['webgpu'] as { device: GPUDevice; numDataIds(): number } | undefined;
  return instance ? { device: instance.device, tensors: instance.numDataIds() } : undefined;
}

async function initWebGPU(
  platform: Platform,
  adapter: GPUAdapter,
  adapterDescription: AdapterDescription,
  options: InitBackendOptions,
): Promise<BackendReport> {
  // tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is first imported.
  const webgpu = await import('@tensorflow/tfjs-backend-webgpu');
  // After tfjs-backend-webgpu's own registrations (its import above), so the originals are kept.
  installLibraryKernels('webgpu', { trainingKernels: options.webgpuTrainingKernels !== false });
  setWebGPUConvPrecision(options.webgpuConvPrecision ?? 'float32');
  const wanted = libraryDeviceFeatures(adapter);
  const lacking = (device: GPUDevice) => wanted.filter((f) => !device.features.has(f));
  let running = runningWebGPU();
  // A backend made before (by tfjs's factory, or from an earlier Dawn instance without the toggles the features
  // need) is replaced when it lacks a feature, unless replacing it would drop the caller's tensors.
  let keptShort: string | undefined;
  if (running != null && lacking(running.device).length > 0) {
    if (running.tensors === 0) {
      removeBackend('webgpu');
      running = undefined;
    } else {
      keptShort = `the WebGPU backend already running lacks ${lacking(running.device).join(', ')} and holds ${running.tensors} tensor${running.tensors === 1 ? '' : 's'} (call initBackend before creating tensors)`;
    }
  }
  if (running == null) registerLibraryWebGPUFactory(platform, webgpu);
  await activate('webgpu');
  const device = (backend() as unknown as { device: GPUDevice }).device;
  if (keptShort == null && lacking(device).length > 0) {
    // Cannot happen with the library's factory: requestDevice fails rather than drop a required feature.
    throw new BackendUnavailableError('webgpu', `the WebGPU device lacks ${lacking(device).join(', ')}, which its adapter offers`);
  }
  const kind = adapterDescription.isSoftware ? 'software adapter' : 'GPU';
  return {
    backend: 'webgpu',
    adapter: adapterDescription,
    reason: `WebGPU on ${kind} ${adapterName(adapterDescription)}`,
    convPrecision: describeConvPrecision(options, keptShort),
  };
}

function describeConvPrecision(options: InitBackendOptions, keptShort: string | undefined): string {
  if (options.webgpuTrainingKernels === false) return "tfjs-backend-webgpu's own kernels (float32)";
  const device = (backend() as unknown as { device?: GPUDevice }).device;
  const config = keptShort ?? (device ? tensorCoreConfigFor(device) : 'no device');
  if (typeof config !== 'string') {
    return `float16 on subgroup matrices ${config.M}x${config.N}x${config.K} (subgroups of ${config.subgroupSize}), float32 accumulation`;
  }
  return options.webgpuConvPrecision === 'float16' ? `float32 (float16 requested, but ${config})` : 'float32';
}

/** What installs the wasm backend, said wherever wasm is missing. */
const WASM_INSTALL = 'npm install @tensorflow/tfjs-backend-wasm@4.22.0';

/** wasm's package is not installed (as against installed but unable to start). */
class WasmMissingError extends BackendUnavailableError {}

async function initWasm(options: InitBackendOptions): Promise<BackendReport> {
  let wasm: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasm = await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new WasmMissingError('wasm', `backend 'wasm' needs @tensorflow/tfjs-backend-wasm: ${WASM_INSTALL} (${(e as Error).message})`);
  }
  if (options.wasmPaths != null) wasm.setWasmPaths(options.wasmPaths as string);
  installLibraryKernels('wasm', { trainingKernels: options.wasmTrainingKernels !== false });
  await activate('wasm');
  const threads = wasm.getThreadsCount();
  return { backend: 'wasm', wasmThreads: threads, reason: `WebAssembly SIMD with ${threads} thread${threads === 1 ? '' : 's'}` };
}

async function initCpu(reason = 'plain JavaScript (slow; the reference for correctness)'): Promise<BackendReport> {
  await import('@tensorflow/tfjs-backend-cpu');
  installLibraryKernels('cpu');
  await activate('cpu');
  return { backend: 'cpu', reason };
}

async function initTensorflow(platform: Platform): Promise<BackendReport> {
  const pkg = await platform.loadTensorflow();
  installLibraryKernels('tensorflow');
  await activate('tensorflow');
  return { backend: 'tensorflow', tensorflowPackage: pkg, reason: `libtensorflow through ${pkg}` };
}

/** @internal The platform-independent part of `initBackend`. */
export async function initBackendOn(platform: Platform, name: BackendName, options: InitBackendOptions = {}): Promise<BackendReport> {
  if (!(BACKEND_NAMES as readonly string[]).includes(name)) {
    throw new Error(`initBackend: unknown backend '${String(name)}'; expected one of ${BACKEND_NAMES.map((n) => `'${n}'`).join(', ')}`);
  }
  switch (name) {
    case 'webgpu': {
      const { adapter, description } = await probeWebGPU(platform);
      return initWebGPU(platform, adapter, description, options);
    }
    case 'wasm':
      return initWasm(options);
    case 'cpu':
      return initCpu();
    case 'tensorflow':
      return initTensorflow(platform);
    case 'auto':
      return initAuto(platform, options);
  }
}

/**
 * The cpu backend as `'auto'`'s last resort. It is far too slow to train on, so the report's reason (and the
 * console warning `initAuto` prints) say so, name the cure, and say that asking for `'cpu'` chooses it knowingly.
 */
async function initCpuFallback(platform: Platform, wasmFailure: unknown): Promise<BackendReport> {
  const cure =
    wasmFailure instanceof WasmMissingError
      ? `install the wasm backend (${WASM_INSTALL})`
      : platform.name === 'browser'
        ? "make wasm start (serve tfjs-backend-wasm's .wasm files and pass their URL as wasmPaths)"
        : 'make wasm start (its error is under "passed over")';
  return initCpu(
    `cpu, the last resort, far too slow to train on (a short CIFAR-10 run was still in its first epoch after 15 minutes ` +
      `on cpu; on wasm it finished in 11 s): ${cure}, or ask for initBackend('cpu') to choose cpu knowingly`,
  );
}

async function initAuto(platform: Platform, options: InitBackendOptions): Promise<BackendReport> {
  const passedOver: string[] = [];
  let lastFailure: unknown;
  const attempt = async (label: string, init: () => Promise<BackendReport>): Promise<BackendReport | undefined> => {
    try {
      return await init();
    } catch (e) {
      lastFailure = e;
      passedOver.push(`${label}: ${(e as Error).message}`);
      return undefined;
    }
  };
  const explain = (report: BackendReport): BackendReport => ({
    ...report,
    reason: passedOver.length ? `${report.reason} (passed over: ${passedOver.join('; ')})` : report.reason,
  });

  const webgpu = await attempt('webgpu', async () => {
    const { adapter, description } = await probeWebGPU(platform);
    if (description.isSoftware && !options.preferSoftwareWebGPU) {
      throw new Error(`only a software adapter (${adapterName(description)}), slower than wasm`);
    }
    return initWebGPU(platform, adapter, description, options);
  });
  if (webgpu) return explain(webgpu);
  if (platform.name === 'node') {
    const tensorflow = await attempt('tensorflow', () => initTensorflow(platform));
    if (tensorflow) return explain(tensorflow);
  }
  const wasm = await attempt('wasm', () => initWasm(options));
  if (wasm) return explain(wasm);
  const cpu = explain(await initCpuFallback(platform, lastFailure));
  console.warn(`tfjs-dataflow: initBackend('auto') fell back to ${cpu.reason}`);
  return cpu;
}

/** The name of the active tfjs backend, or undefined before any is set. */
export function activeBackend(): string | undefined {
  try {
    return getBackend();
  } catch {
    return undefined;
  }
}
