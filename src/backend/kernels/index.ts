import type { KernelConfig } from '@tensorflow/tfjs-core';
import { CPU, WASM, WEBGPU } from './backends.js';
import { CPU_LIBRARY_KERNELS } from './cpu/index.js';
import { LIBRARY_GRADIENTS } from './gradients.js';
import { backendsWithOverrides, installGradients, installOverrides, uninstallGradients, uninstallOverrides } from './install.js';
import { decodeImagesConfig as wasmDecodeImagesConfig } from './wasm/DecodeImages.js';
import { randomConfig as wasmRandomConfig } from './wasm/Random.js';
import { installWasmTrainingKernels, uninstallWasmTrainingKernels } from './wasm/index.js';
import { decodeImagesConfig as webgpuDecodeImagesConfig } from './webgpu/DecodeImages.js';
import { randomConfig as webgpuRandomConfig } from './webgpu/Random.js';
import { installWebGPUTrainingKernels, uninstallWebGPUTrainingKernels } from './webgpu/index.js';

/**
 * The kernels the library adds on each backend whatever the options say (the ops that use them
 * fall back to plain tfjs ops, or the host, on a backend without them). The training kernels that
 * replace tfjs's own are in wasm/index.ts and webgpu/index.ts, switched by `trainingKernels`.
 */
const LIBRARY_KERNELS: Readonly<Record<string, readonly KernelConfig[]>> = {
  [CPU]: CPU_LIBRARY_KERNELS,
  [WASM]: [wasmRandomConfig, wasmDecodeImagesConfig],
  [WEBGPU]: [webgpuRandomConfig, webgpuDecodeImagesConfig],
};

/** Options of installing the library's kernels on the current backend. */
export interface InstallLibraryKernelsOptions {
  /** Install the backend's training kernels (wasm, webgpu) over tfjs's own; false restores tfjs's. Default true. */
  trainingKernels?: boolean;
}

/**
 * Installs everything the library registers in tfjs for `backendName`: its own kernels, its training
 * kernels (wasm, webgpu) and its gradients, keeping whatever they replace. Idempotent. Must run after
 * the backend's package registered its kernels; `initBackend` calls it.
 */
export function installLibraryKernels(backendName: string, options: InstallLibraryKernelsOptions = {}): void {
  const own = LIBRARY_KERNELS[backendName] ?? [];
  installOverrides(backendName, Object.fromEntries(own.map((k) => [k.kernelName, k.kernelFunc])));
  const training = options.trainingKernels !== false;
  if (backendName === WASM) {
    if (training) installWasmTrainingKernels();
    else uninstallWasmTrainingKernels();
  } else if (backendName === WEBGPU) {
    if (training) installWebGPUTrainingKernels();
    else uninstallWebGPUTrainingKernels();
  }
  installGradients(LIBRARY_GRADIENTS);
}

/**
 * Removes every kernel and gradient the library registered, on every backend, and puts tfjs's back:
 * tfjs then runs exactly as without the library (`DeviceRandom` draws the same numbers on the host).
 * `initBackend` installs them again.
 */
export function uninstallLibraryKernels(): void {
  for (const backendName of backendsWithOverrides()) uninstallOverrides(backendName);
  uninstallGradients();
}
