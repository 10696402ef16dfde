import { Conv2D, getKernel, type KernelConfig } from '@tensorflow/tfjs-core';
import { installOverrides, overridesInstalled, uninstallOverrides } from '../install.js';
import { batchMatMulConfig, fusedMatMulConfig } from './BatchMatMul.js';
import { conv2dBackpropFilterConfig } from './Conv2DBackpropFilter.js';
import { conv2dBackpropInputConfig } from './Conv2DBackpropInput.js';
import { maxPoolGradConfig } from './MaxPoolGrad.js';
import { sliceConfig } from './Slice.js';
import { splitVConfig } from './SplitV.js';
import { WASM } from '../backends.js';

/** The library's wasm kernels: what tfjs-backend-wasm 4.22 lacks, gets wrong or runs slowly (each file says which). */
export const WASM_TRAINING_KERNELS: readonly KernelConfig[] = [
  sliceConfig,
  splitVConfig,
  maxPoolGradConfig,
  conv2dBackpropFilterConfig,
  conv2dBackpropInputConfig,
  batchMatMulConfig,
  fusedMatMulConfig,
];

/**
 * Registers the library's wasm training kernels, which let any tfjs model that uses conv2d or
 * matMul train on wasm, not only ours. Idempotent. Must run after `@tensorflow/tfjs-backend-wasm`
 * has been imported (it registers the kernels these build on); `initBackend('wasm')` calls it.
 */
export function installWasmTrainingKernels(): void {
  if (getKernel(Conv2D, WASM) == null) {
    throw new Error('installWasmTrainingKernels: the wasm backend is not loaded; import @tensorflow/tfjs-backend-wasm first');
  }
  installOverrides(WASM, Object.fromEntries(WASM_TRAINING_KERNELS.map((k) => [k.kernelName, k.kernelFunc])));
}

/** Restores the wasm backend's own kernels (for comparisons in tests and benchmarks). */
export function uninstallWasmTrainingKernels(): void {
  uninstallOverrides(
    WASM,
    WASM_TRAINING_KERNELS.map((k) => k.kernelName),
  );
}

/** Whether the library's Wasm training kernels are installed now. */
export function wasmTrainingKernelsInstalled(): boolean {
  return overridesInstalled(
    WASM,
    WASM_TRAINING_KERNELS.map((k) => k.kernelName),
  );
}
