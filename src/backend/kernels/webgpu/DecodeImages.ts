import type { DecodeImagesAttrs } from '../names.js';
import type { WebGPUProgram } from '../types.js';
import { wgslConstants } from './conv_gemm.js';

const WORKGROUP = 256;

/**
 * DataflowDecodeImages on WebGPU: one thread per output value reads its byte from the part that holds
 * the image (bindings cannot be indexed at run time, so the parts are an if-chain) and looks its
 * normalised value up in `lut`, the table the cpu and wasm kernels use, so no division runs here.
 * @internal
 */
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
    this.shaderKey = `dataflowDecodeImages_${a.parts}_${a.perPart}_${a.height}_${a.width}_${a.channels}_${a.pad}_${a.size}`;
    this.dispatch = [Math.ceil(total / WORKGROUP), 1, 1];
  }

  getUserCode(): string {
    const { a } = this;
    const words = (a.height * a.width * a.channels) / 4;
    const reads = Array.from({ length: a.parts }, (_, k) => `${k === 0 ? '' : ' else '}if (part == ${k}u) { word = p${k}[at]; }`).join('');
    return `
      ${wgslConstants({ PER_PART: a.perPart, HEIGHT: a.height, WIDTH: a.width, CHANNELS: a.channels, SIZE: a.size, WORDS: words }, [])}
      ${wgslConstants({ PAD: a.pad }, ['PAD'])}
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
          let image = u32(plan[b * 4u]);
          let top = plan[b * 4u + 1u];
          let left = plan[b * 4u + 2u];
          let flip = plan[b * 4u + 3u];
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
