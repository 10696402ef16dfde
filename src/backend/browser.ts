import { initBackendOn, type BackendName, type BackendReport, type InitBackendOptions, type Platform } from './init.js';

const browserPlatform: Platform = {
  name: 'browser',
  async gpu() {
    const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (gpu) return gpu;
    return typeof window === 'undefined'
      ? "WebGPU is not set up in this JavaScript runtime: in Node, import initBackend from 'tfjs-dataflow/node', which installs Dawn (npm install webgpu@0.6)"
      : "this browser has no WebGPU (navigator.gpu is missing): use a recent Chrome or Edge, or initBackend('wasm')";
  },
  async loadTensorflow() {
    throw new Error(
      "backend 'tensorflow' runs only in Node: import initBackend from 'tfjs-dataflow/node' and npm install @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node",
    );
  },
};

/**
 * Sets the tfjs backend and returns which one runs and why.
 *
 * - `'webgpu'`: the browser's `navigator.gpu`.
 * - `'wasm'`: WebAssembly SIMD, with the library's training kernels installed
 *   so conv nets can train (tfjs 4.22's wasm backend lacks a conv filter gradient).
 * - `'cpu'`: plain JavaScript, the reference for correctness.
 * - `'tensorflow'`: Node only; use the `tfjs-dataflow/node` entry.
 * - `'auto'`: a hardware WebGPU adapter, else wasm, else cpu; falling back to cpu (too slow to train on) it
 *   warns on the console, and the report's reason says why wasm did not start and what to do.
 *
 * @throws an Error naming the valid backends for an unknown name, and a
 *   `BackendUnavailableError` saying what to install when a backend cannot start.
 */
export function initBackend(name: BackendName = 'auto', options?: InitBackendOptions): Promise<BackendReport> {
  return initBackendOn(browserPlatform, name, options);
}
