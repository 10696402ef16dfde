import * as tf from '@tensorflow/tfjs-core';
import { DECODE_IMAGES, type DecodeImagesAttrs } from './names.js';
import type { CpuBackendLike, WasmBackendLike, WebGPUBackendLike } from './types.js';
import { DecodeImagesProgram } from './webgpu/DecodeImages.js';

// DataflowDecodeImages (names.ts) for cpu, wasm and webgpu. Registered by backend name on import, as
// DataflowRandom is: compact data must decode on any backend whether or not initBackend installed the
// training kernels (the WebGPU suites also run with tfjs's own kernel set).

function reflect(q: number, extent: number): number {
  return q < 0 ? -q : q >= extent ? 2 * (extent - 1) - q : q;
}

/** The decode in JavaScript, over byte views of the parts (the same arithmetic as the WebGPU shader). */
export function decodeInto(out: Float32Array, plan: Int32Array, lut: Float32Array, parts: Uint8Array[], a: DecodeImagesAttrs): void {
  const { size, channels: C, height: H, width: W, pad, perPart } = a;
  const imageBytes = H * W * C;
  const batch = plan.length / 4;
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const image = plan[b * 4]!;
    const top = plan[b * 4 + 1]!;
    const left = plan[b * 4 + 2]!;
    const flip = plan[b * 4 + 3]! !== 0;
    const part = Math.floor(image / perPart);
    const bytes = parts[part]!;
    const base = (image - part * perPart) * imageBytes;
    for (let y = 0; y < size; y++) {
      const row = base + reflect(top + y - pad, H) * W * C;
      for (let x = 0; x < size; x++) {
        const at = row + reflect(left + (flip ? size - 1 - x : x) - pad, W) * C;
        for (let c = 0; c < C; c++) out[o++] = lut[c * 256 + bytes[at + c]!]!;
      }
    }
  }
}

function checkPlan(plan: tf.TensorInfo, a: DecodeImagesAttrs, partShapes: number[][]): number {
  if (plan.dtype !== 'int32' || plan.shape.length !== 2 || plan.shape[1] !== 4) {
    throw new Error(`${DECODE_IMAGES}: plan must be int32 [batch, 4], got ${plan.dtype} [${plan.shape}]`);
  }
  if (partShapes.length !== a.parts) throw new Error(`${DECODE_IMAGES}: expected ${a.parts} parts, got ${partShapes.length}`);
  return plan.shape[0]!;
}

function partInputs(inputs: tf.NamedTensorInfoMap, a: DecodeImagesAttrs): tf.TensorInfo[] {
  return Array.from({ length: a.parts }, (_, k) => inputs[`p${k}`]!);
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

const cpuDecode: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as DecodeImagesAttrs;
  const { plan, lut } = inputs as { plan: tf.TensorInfo; lut: tf.TensorInfo };
  const parts = partInputs(inputs, a);
  const batch = checkPlan(
    plan,
    a,
    parts.map((p) => p.shape),
  );
  const values = (t: tf.TensorInfo) =>
    (backend as unknown as { data: { get(id: object): { values: ArrayBufferView } } }).data.get(t.dataId).values;
  const out = new Float32Array(batch * a.size * a.size * a.channels);
  decodeInto(
    out,
    values(plan) as Int32Array,
    values(lut) as Float32Array,
    parts.map((p) => asBytes(values(p))),
    a,
  );
  return (backend as unknown as CpuBackendLike).makeTensorInfo([batch, a.size, a.size, a.channels], 'float32', out);
};

const wasmDecode: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as DecodeImagesAttrs;
  const { plan, lut } = inputs as { plan: tf.TensorInfo; lut: tf.TensorInfo };
  const parts = partInputs(inputs, a);
  const batch = checkPlan(
    plan,
    a,
    parts.map((p) => p.shape),
  );
  const b = backend as unknown as WasmBackendLike;
  const out = b.makeOutput([batch, a.size, a.size, a.channels], 'float32');
  // Views are taken after the allocation above, which may have grown (and so detached) the heap.
  decodeInto(
    b.typedArrayFromHeap(out) as Float32Array,
    b.typedArrayFromHeap(plan) as Int32Array,
    b.typedArrayFromHeap(lut) as Float32Array,
    parts.map((p) => asBytes(b.typedArrayFromHeap(p))),
    a,
  );
  return out;
};

const webgpuDecode: tf.KernelFunc = ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as DecodeImagesAttrs;
  const { plan, lut } = inputs as { plan: tf.TensorInfo; lut: tf.TensorInfo };
  const parts = partInputs(inputs, a);
  const batch = checkPlan(
    plan,
    a,
    parts.map((p) => p.shape),
  );
  const b = backend as unknown as WebGPUBackendLike;
  const flat = b.runWebGPUProgram(new DecodeImagesProgram(a, batch), [plan, lut, ...parts], 'float32');
  const reshape = tf.getKernel(tf.Reshape, 'webgpu')!;
  const out = reshape.kernelFunc({ inputs: { x: flat }, attrs: { shape: [batch, a.size, a.size, a.channels] }, backend }) as tf.TensorInfo;
  b.disposeData(flat.dataId);
  return out;
};

/** DataflowDecodeImages on each backend; installed by `installLibraryKernels` (kernels/index.ts). */
export const cpuDecodeImagesConfig: tf.KernelConfig = { kernelName: DECODE_IMAGES, backendName: 'cpu', kernelFunc: cpuDecode };
export const wasmDecodeImagesConfig: tf.KernelConfig = { kernelName: DECODE_IMAGES, backendName: 'wasm', kernelFunc: wasmDecode };
export const webgpuDecodeImagesConfig: tf.KernelConfig = { kernelName: DECODE_IMAGES, backendName: 'webgpu', kernelFunc: webgpuDecode };
