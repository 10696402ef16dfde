// The ./node entry: everything in the main entry, plus Node-only pieces (Dawn WebGPU, tfjs-node, files).
export * from './index.js';
export { initBackend, installNodeWebGPU, type NodeBackendOptions } from './backend/node.js';
