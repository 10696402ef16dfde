/**
 * DataflowDecodeImages (names.ts) on WebGPU: the program (one thread per output value) and the kernel that
 * runs it. Each thread picks its source from the plan row (the image's own, or inside the cutmix square its
 * partner's), reads the byte from the part that holds that image (bindings cannot be indexed at run time, so the
 * parts are an if-chain) and looks its normalised value up in `lut`, the table the cpu and wasm kernels
 * (cpu/DecodeImages.ts) use, so no division runs here and the values are theirs bit for bit.
 * `installLibraryKernels` installs it.
 * @internal
 */
import { Reshape, getKernel, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { decodeImagesInputs } from '../cpu/DecodeImages.js';
import { DECODE_IMAGES, type DecodeImagesAttrs } from '../names.js';
import type { WebGPUBackendLike, WebGPUProgram } from '../types.js';
import { wgslConstants } from './wgsl.js';

const WORKGROUP = 256;

/** @internal */
export class DecodeImagesProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  readonly size = true;

  constructor(
    private readonly a: DecodeImagesAttrs,
    batch: number,
  ) {
    this.variableNames = ['plan', 'lut', ...Array.from({ length: a.parts }, (_, k) => `p${k}`)];
    const total = batch * a.size * a.size * a.channels;
    this.outputShape = [total];
    this.shaderKey = `dataflowDecodeImages_${a.parts}_${a.perPart}_${a.height}_${a.width}_${a.channels}_${a.pad}_${a.size}_${a.mixSize}`;
    this.dispatch = [Math.ceil(total / WORKGROUP), 1, 1];
  }

  getUserCode(): string {
    const { a } = this;
    const words = (a.height * a.width * a.channels) / 4;
    const columns = a.mixSize > 0 ? 10 : 4;
    const reads = Array.from({ length: a.parts }, (_, k) => `${k === 0 ? '' : ' else '}if (part == ${k}u) { word = p${k}[at]; }`).join('');
    // Inside the cutmix square the partner's columns (4..7) stand in for the image's own (0..3).
    const mix =
      a.mixSize > 0
        ? `let squareTop = plan[row + 8u];
          let squareLeft = plan[row + 9u];
          if (i32(y) >= squareTop && i32(y) < squareTop + MIX && i32(x) >= squareLeft && i32(x) < squareLeft + MIX) { row = row + 4u; }`
        : '';
    return `
      ${wgslConstants({ PER_PART: a.perPart, HEIGHT: a.height, WIDTH: a.width, CHANNELS: a.channels, SIZE: a.size, WORDS: words, COLUMNS: columns }, [])}
      ${wgslConstants({ PAD: a.pad, MIX: a.mixSize }, ['PAD', 'MIX'])}
      fn reflect(q : i32, extent : i32) -> i32 {
        if (q < 0) { return -q; }
        if (q >= extent) { return 2 * (extent - 1) - q; }
        return q;
      }
      fn main(index : i32) {
        if (index < uniforms.size) {
          let i = u32(index);
          let c = i % CHANNELS;
          let x = (i / CHANNELS) % SIZE;
          let y = (i / (CHANNELS * SIZE)) % SIZE;
          let b = i / (CHANNELS * SIZE * SIZE);
          var row = b * COLUMNS;
          ${mix}
          let image = u32(plan[row]);
          let top = plan[row + 1u];
          let left = plan[row + 2u];
          let flip = plan[row + 3u];
          let xx = select(i32(x), i32(SIZE - 1u - x), flip != 0);
          let py = u32(reflect(top + i32(y) - PAD, i32(HEIGHT)));
          let px = u32(reflect(left + xx - PAD, i32(WIDTH)));
          let part = image / PER_PART;
          let byteAt = ((py * WIDTH + px) * CHANNELS + c);
          let at = (image - part * PER_PART) * WORDS + byteAt / 4u;
          var word = 0;
          ${reads}
          let byte = (bitcast<u32>(word) >> ((byteAt % 4u) * 8u)) & 255u;
          result[i] = lut[c * 256u + byte];
        }
      }
    `;
  }
}

const webgpuDecodeImages: KernelFunc = ({ inputs, attrs, backend }) => {
  const a = attrs as unknown as DecodeImagesAttrs;
  const { plan, lut, parts, batch } = decodeImagesInputs(inputs, a);
  const b = backend as unknown as WebGPUBackendLike;
  const flat = b.runWebGPUProgram(new DecodeImagesProgram(a, batch), [plan, lut, ...parts], 'float32');
  const out = getKernel(Reshape, WEBGPU)!.kernelFunc({
    inputs: { x: flat },
    attrs: { shape: [batch, a.size, a.size, a.channels] },
    backend,
  }) as TensorInfo;
  b.disposeData(flat.dataId);
  return out;
};

export const decodeImagesConfig: KernelConfig = { kernelName: DECODE_IMAGES, backendName: WEBGPU, kernelFunc: webgpuDecodeImages };
