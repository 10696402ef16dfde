/**
 * DataflowDecodeImages (names.ts) on the cpu backend: compact images decoded by a plan, in JavaScript.
 * `decodeImagesImpl` is also the wasm kernel's (wasm/DecodeImages.ts), over views of the wasm heap, and
 * does what the WebGPU shader (webgpu/DecodeImages.ts) does; `installLibraryKernels` installs the kernel.
 * @internal
 */
import type { KernelConfig, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { DECODE_IMAGES, type DecodeImagesAttrs } from '../names.js';
import type { CpuBackendLike } from '../types.js';

function reflect(q: number, extent: number): number {
  return q < 0 ? -q : q >= extent ? 2 * (extent - 1) - q : q;
}

/** The decode over byte views of the parts, into `out` (float32 [B, size, size, C]). */
export function decodeImagesImpl(out: Float32Array, plan: Int32Array, lut: Float32Array, parts: Uint8Array[], a: DecodeImagesAttrs): void {
  const { size, channels: C, height: H, width: W, pad, perPart, mixSize } = a;
  const imageBytes = H * W * C;
  const columns = mixSize > 0 ? 10 : 4;
  const batch = plan.length / columns;
  // A source: an image's bytes, where it starts in them, and its window and flip.
  const source = (r: number) => {
    const image = plan[r]!;
    const part = Math.floor(image / perPart);
    return {
      bytes: parts[part]!,
      base: (image - part * perPart) * imageBytes,
      top: plan[r + 1]!,
      left: plan[r + 2]!,
      flip: plan[r + 3]! !== 0,
    };
  };
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const own = source(b * columns);
    const partner = mixSize > 0 ? source(b * columns + 4) : own;
    const squareTop = mixSize > 0 ? plan[b * columns + 8]! : 0;
    const squareLeft = mixSize > 0 ? plan[b * columns + 9]! : 0;
    for (let y = 0; y < size; y++) {
      const mixedRow = mixSize > 0 && y >= squareTop && y < squareTop + mixSize;
      for (let x = 0; x < size; x++) {
        const s = mixedRow && x >= squareLeft && x < squareLeft + mixSize ? partner : own;
        const py = reflect(s.top + y - pad, H);
        const px = reflect(s.left + (s.flip ? size - 1 - x : x) - pad, W);
        const at = s.base + (py * W + px) * C;
        for (let c = 0; c < C; c++) out[o++] = lut[c * 256 + s.bytes[at + c]!]!;
      }
    }
  }
}

/** The kernel's inputs, checked: the plan, the table, the parts, and the batch size. */
export function decodeImagesInputs(
  inputs: NamedTensorInfoMap,
  a: DecodeImagesAttrs,
): { plan: TensorInfo; lut: TensorInfo; parts: TensorInfo[]; batch: number } {
  const { plan, lut } = inputs as { plan: TensorInfo; lut: TensorInfo };
  const columns = a.mixSize > 0 ? 10 : 4;
  if (plan.dtype !== 'int32' || plan.shape.length !== 2 || plan.shape[1] !== columns) {
    throw new Error(`${DECODE_IMAGES}: plan must be int32 [batch, ${columns}] for mixSize ${a.mixSize}, got ${plan.dtype} [${plan.shape}]`);
  }
  const parts = Array.from({ length: a.parts }, (_, k) => inputs[`p${k}`]).filter((p): p is TensorInfo => p != null);
  if (parts.length !== a.parts) throw new Error(`${DECODE_IMAGES}: expected ${a.parts} parts, got ${parts.length}`);
  return { plan, lut, parts, batch: plan.shape[0]! };
}

/** A byte view of a tensor's values. */
export function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

const cpuDecodeImages: KernelFunc = ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as DecodeImagesAttrs;
  const { plan, lut, parts, batch } = decodeImagesInputs(inputs, a);
  const values = (t: TensorInfo) =>
    (backend as unknown as { data: { get(id: object): { values: ArrayBufferView } } }).data.get(t.dataId).values;
  const out = new Float32Array(batch * a.size * a.size * a.channels);
  decodeImagesImpl(
    out,
    values(plan) as Int32Array,
    values(lut) as Float32Array,
    parts.map((p) => asBytes(values(p))),
    a,
  );
  return (backend as unknown as CpuBackendLike).makeTensorInfo([batch, a.size, a.size, a.channels], 'float32', out);
};

export const decodeImagesConfig: KernelConfig = { kernelName: DECODE_IMAGES, backendName: 'cpu', kernelFunc: cpuDecodeImages };
