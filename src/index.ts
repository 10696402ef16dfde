// Public, browser-safe API: re-exports only.
export { initBackend } from './backend/browser.js';
export {
  BACKEND_NAMES,
  BackendUnavailableError,
  describeAdapter,
  type AdapterDescription,
  type BackendName,
  type BackendReport,
  type ConcreteBackend,
  type InitBackendOptions,
} from './backend/init.js';
export { installWasmTrainingKernels, uninstallWasmTrainingKernels } from './backend/wasm-kernels.js';
export { KernelCounter, type KernelCounts } from './backend/counter.js';
