/**
 * DataflowDecodeImages (names.ts) on the cpu backend: compact images decoded by a plan, in JavaScript.
 * `decodeImagesImpl` is also the wasm kernel's (wasm/DecodeImages.ts), over views of the wasm heap, and
 * does what the WebGPU shader (webgpu/DecodeImages.ts) does; `installLibraryKernels` installs the kernel.
 * @internal
 */
import type { KernelConfig, KernelFunc, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import { CPU } from '../backends.js';
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
  // The square's columns, clipped to the image (as the shader's comparisons clip them).
  const clip = (x: number) => Math.min(Math.max(x, 0), size);
  let o = 0;
  for (let b = 0; b < batch; b++) {
    const row = b * columns;
    // Cutmix: the square at (squareTop, squareLeft) reads the partner's columns (4..7) instead of the image's (0..3).
    const squareTop = mixSize > 0 ? plan[row + 8]! : size;
    const squareLeft = mixSize > 0 ? clip(plan[row + 9]!) : size;
    const squareRight = mixSize > 0 ? clip(plan[row + 9]! + mixSize) : size;
    for (let y = 0; y < size; y++) {
      const mixed = y >= squareTop && y < squareTop + mixSize;
      // Runs of the row: [0, squareLeft) own, [squareLeft, squareRight) the partner's, [squareRight, size) own.
      for (let run = 0; run < (mixed ? 3 : 1); run++) {
        const r = run === 1 ? row + 4 : row;
        const x0 = !mixed || run === 0 ? 0 : run === 1 ? squareLeft : squareRight;
        const x1 = !mixed ? size : run === 0 ? squareLeft : run === 1 ? squareRight : size;
        const image = plan[r]!;
        const part = Math.floor(image / perPart);
        const bytes = parts[part]!;
        const left = plan[r + 2]!;
        const flip = plan[r + 3]! !== 0;
        const start = (image - part * perPart) * imageBytes + reflect(plan[r + 1]! + y - pad, H) * W * C;
        for (let x = x0; x < x1; x++) {
          const at = start + reflect(left + (flip ? size - 1 - x : x) - pad, W) * C;
          for (let c = 0; c < C; c++) out[o++] = lut[c * 256 + bytes[at + c]!]!;
        }
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

export const decodeImagesConfig: KernelConfig = { kernelName: DECODE_IMAGES, backendName: CPU, kernelFunc: cpuDecodeImages };
