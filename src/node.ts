// The ./node entry: everything in the main entry, plus Node-only pieces (Dawn WebGPU, tfjs-node, files, downloads).
export * from './index.js';
export { initBackend, installNodeWebGPU, type NodeBackendOptions } from './backend/node.js';
export { fileHandler } from './io/file-handler.js';
export { defaultWasmThreads, enableNodeWasmThreads } from './backend/wasm-threads.js';
export {
  loadCifar10,
  defaultCacheDir,
  CIFAR10_URL,
  CIFAR10_MD5,
  CIFAR10_ARCHIVE_DIR,
  CIFAR10_STALL_TIMEOUT_MS,
  type LoadCifar10Options,
  type DownloadProgress,
} from './data/cifar10-node.js';
export {
  loadCifar100,
  CIFAR100_URL,
  CIFAR100_MD5,
  CIFAR100_ARCHIVE_DIR,
  type LoadCifar100Options,
  type Cifar100Dataset,
} from './data/cifar100-node.js';
export {
  writeCheckpointFiles,
  readCheckpointFiles,
  checkpointFilesProblem,
  recoverCheckpointFiles,
  CHECKPOINT_FILES_FORMAT,
  type CheckpointFilesMeta,
} from './io/checkpoint-files.js';
