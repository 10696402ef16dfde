import { defaultWasmThreads, disableNodeWasmThreads, enableNodeWasmThreads, startedWasmThreads } from './wasm-threads.js';
import { initBackendOn, type BackendName, type BackendReport, type InitBackendOptions, type Platform } from './init.js';

/** Options of the Node entry's `initBackend`: those of the browser-safe one, plus Dawn's flags, tfjs-node and wasm threads. */
export interface NodeBackendOptions extends InitBackendOptions {
  /** Options passed to Dawn's `create()`, e.g. `['backend=vulkan']` or `['adapter=NVIDIA H100']`. */
  dawnFlags?: string[];
  /**
   * Exact WebGPU timestamps: turns off Dawn's `timestamp_quantization`, which rounds every timestamp query to
   * 65.5 us (most kernels take less), so that `tf.profile` / `tf.time` report each kernel's GPU time. Default false.
   */
  webgpuExactTimestamps?: boolean;
  /**
   * Threads of the wasm backend: more than 1 runs tfjs's threaded SIMD build (tfjs turns threads off under
   * Node; see `enableNodeWasmThreads`), 1 the single-threaded SIMD build. Default {@link defaultWasmThreads}:
   * one per logical core, at most 4 (1 on a one-core machine). The count is fixed when the wasm backend
   * starts: a later call without `wasmThreads` keeps the running backend; one asking for another count
   * replaces it (refused while wasm is the active backend).
   */
  wasmThreads?: number;
}

/** The Dawn instance made by installNodeWebGPU and the flags it was made with. */
let dawn: { gpu: GPU; flags: readonly string[] } | undefined;
/** Instances replaced by one with more toggles: kept alive, since Dawn crashes the process if an instance is collected while a device it made lives on. */
const retiredDawns: GPU[] = [];
let dawnFlags: string[] = [];

/**
 * Makes WebGPU available to tfjs under Node through Dawn (the `webgpu` package):
 * installs its GPU* globals and `navigator.gpu`. Must run before
 * `@tensorflow/tfjs-backend-webgpu` is first imported, which `initBackend` ensures.
 * Dawn reads its toggles when it starts: asked for flags that the running instance lacks, it starts a new one
 * (the backend on the old device is replaced by `initBackend` when it holds no tensor).
 * A `navigator.gpu` that some other code installed is used as it is.
 * Returns the GPU object, or a sentence saying why there is none.
 */
export async function installNodeWebGPU(flags: readonly string[] = dawnFlags): Promise<GPU | string> {
  if (dawn != null && flags.every((f) => dawn!.flags.includes(f))) return dawn.gpu;
  const existing = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (existing && dawn == null) return existing;
  let webgpu: { create(flags: string[]): GPU; globals: Record<string, unknown> };
  try {
    webgpu = (await import('webgpu')) as never;
  } catch (e) {
    return `WebGPU in Node needs the 'webgpu' package (Dawn): npm install webgpu@0.6 (${(e as Error).message.split('\n')[0]})`;
  }
  // Dawn's Vulkan loader wants a runtime directory; a headless CI shell often has none.
  process.env['XDG_RUNTIME_DIR'] ??= (await import('node:os')).tmpdir();
  Object.assign(globalThis, webgpu.globals);
  const merged = dawn == null ? [...flags] : mergeDawnFlags(dawn.flags, flags);
  const gpu = webgpu.create(merged);
  const g = globalThis as { navigator?: { gpu?: GPU } };
  if (g.navigator == null) {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  } else {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  }
  if (dawn != null) retiredDawns.push(dawn.gpu);
  dawn = { gpu, flags: merged };
  return gpu;
}

/** `base` with every entry of `extra`: toggles of `enable-` / `disable-dawn-features=` joined, other flags added. */
function mergeDawnFlags(base: readonly string[], extra: readonly string[]): string[] {
  let merged = [...base];
  for (const flag of extra) {
    const toggles = /^((?:enable|disable)-dawn-features=)(.*)$/.exec(flag);
    if (toggles) {
      for (const t of toggles[2]!.split(',').filter(Boolean)) merged = withDawnToggle(merged, t, toggles[1]);
    } else if (!merged.includes(flag)) {
      merged.push(flag);
    }
  }
  return merged;
}

/** `flags` with `toggle` added to its `enable-dawn-features=` entry (or `key`'s; made if missing). */
export function withDawnToggle(flags: readonly string[], toggle: string, key = 'enable-dawn-features='): string[] {
  const at = flags.findIndex((f) => f.startsWith(key));
  if (at < 0) return [...flags, key + toggle];
  const toggles = flags[at]!.slice(key.length).split(',').filter(Boolean);
  if (toggles.includes(toggle)) return [...flags];
  return flags.map((f, i) => (i === at ? key + [...toggles, toggle].join(',') : f));
}

async function loadTensorflow(): Promise<string> {
  const reasons: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(/* @vite-ignore */ pkg);
      return pkg;
    } catch (e) {
      reasons.push(`${pkg}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(
    "backend 'tensorflow' needs @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node at 4.22: " +
      `npm install @tensorflow/tfjs-node-gpu@4.22.0 (its install step downloads libtensorflow). Tried ${reasons.join('; ')}`,
  );
}

const nodePlatform: Platform = { name: 'node', gpu: () => installNodeWebGPU(), loadTensorflow };

/**
 * Node's `initBackend`: like the browser one, plus WebGPU through Dawn (the
 * `webgpu` package) and `'tensorflow'` through tfjs-node-gpu or tfjs-node when
 * installed. `'auto'` tries a hardware WebGPU adapter, then tensorflow, then
 * wasm, then cpu; a software adapter (lavapipe, SwiftShader) is not preferred over wasm. Falling back to cpu
 * (too slow to train on) it warns on the console, and the report's reason says what to install.
 */
export async function initBackend(name: BackendName = 'auto', options: NodeBackendOptions = {}): Promise<BackendReport> {
  if (options.dawnFlags) dawnFlags = options.dawnFlags;
  if (options.webgpuConvPrecision === 'float16') {
    // Dawn exposes its experimental subgroup matrices only with allow_unsafe_apis, and keeps shader-f16 (which
    // every f16 configuration needs) off on NVIDIA's Vulkan driver unless asked.
    dawnFlags = withDawnToggle(withDawnToggle(dawnFlags, 'allow_unsafe_apis'), 'vulkan_enable_f16_on_nvidia');
  }
  if (options.webgpuExactTimestamps) dawnFlags = withDawnToggle(dawnFlags, 'timestamp_quantization', 'disable-dawn-features=');
  if (name === 'wasm' || name === 'auto') await chooseWasmThreads(options.wasmThreads);
  return initBackendOn(nodePlatform, name, options);
}

/** Registers the wasm build for `requested` threads (default: defaultWasmThreads()) before the backend starts. */
async function chooseWasmThreads(requested: number | undefined): Promise<void> {
  if (requested !== undefined && !(Number.isInteger(requested) && requested >= 1)) {
    throw new Error(`initBackend: wasmThreads must be a positive integer, got ${String(requested)}`);
  }
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch {
    return; // Not installed: initBackend says so (or 'auto' passes over wasm).
  }
  const running = await startedWasmThreads();
  // A backend already started keeps its threads unless a count is asked for: replacing it would drop its tensors.
  if (running !== undefined && (requested === undefined || requested === running)) return;
  const threads = requested ?? defaultWasmThreads();
  if (threads > 1) await enableNodeWasmThreads(threads);
  else disableNodeWasmThreads();
}
