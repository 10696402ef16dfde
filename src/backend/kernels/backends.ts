/**
 * The tfjs backend names the library registers kernels for, one constant each, so no kernel file spells a
 * backend's name itself (tfjs-core exports kernel names but no backend names).
 * @internal
 */
export const CPU = 'cpu';
export const WASM = 'wasm';
export const WEBGPU = 'webgpu';
