// Synchronous reads of WebGPU tensors where there is no OffscreenCanvas (Node): a message that says what to use.

interface WebGPUTensorData {
  values?: unknown;
  dtype: string;
}

interface ReadSyncBackend {
  readSync(dataId: object): unknown;
  tensorMap: { get(dataId: object): WebGPUTensorData | undefined };
}

export const SYNC_READ_MESSAGE =
  'dataSync(), arraySync() and bufferSync() cannot read a WebGPU tensor in Node: tfjs-backend-webgpu reads ' +
  'synchronously through OffscreenCanvas, which Node lacks. Read it with await tensor.data(), await tensor.array() ' +
  'or await tensor.buffer() instead.';

/**
 * tfjs-backend-webgpu reads a GPU tensor synchronously by drawing it on OffscreenCanvases; without them (Node) its
 * readSync fails with "ReferenceError: OffscreenCanvas is not defined". There, a synchronous read of a tensor whose
 * values live only on the GPU throws {@link SYNC_READ_MESSAGE} instead; values already on the CPU (a tensor made
 * from an array, or read before) are still returned. Does nothing where OffscreenCanvas exists.
 */
export function explainSyncReads(backend: ReadSyncBackend): void {
  if (typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas !== 'undefined') return;
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId: object) => {
    const data = backend.tensorMap.get(dataId);
    if (data == null || data.values != null || data.dtype === 'string') return readSync(dataId);
    throw new Error(SYNC_READ_MESSAGE);
  };
}
