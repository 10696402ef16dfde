import { backend_util, Conv2D, type Conv2DAttrs, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { originalKernel } from '../install.js';
import type { WebGPUBackendLike } from '../types.js';
import { ConvGemmProgram, runConvGemm } from './conv_gemm.js';
import type { TensorCoreConfig } from './conv_precision.js';

/**
 * y[b, oy, ox, co] = Σ over (ky, kx, ci) of x[b, oy*sh + ky - top, ox*sw + kx - left, ci] · W[ky, kx, ci, co],
 * as the same implicit GEMM as the gradients: M = batch*outH*outW rows, N = cout columns, K = kh*kw*cin.
 *
 * @remarks A is staged as in the input gradient (one output position, four consecutive K indices:
 * input channels, contiguous in x), B as in the filter gradient (one K index, four consecutive output
 * channels, contiguous in W).
 */
export class Conv2DForwardProgram extends ConvGemmProgram {
  readonly variableNames = ['x', 'W'];

  constructor(info: backend_util.Conv2DInfo, tensorCores?: TensorCoreConfig) {
    super(
      'dataflowConvForward',
      info,
      info.batchSize * info.outHeight * info.outWidth,
      info.outChannels,
      info.filterHeight * info.filterWidth * info.inChannels,
      info.inChannels % 4 === 0 && info.outChannels % 4 === 0,
      tensorCores,
    );
  }

  private loadA(): string {
    const position = `
          let tap = k / CIN;
          let ci = k - tap * CIN;
          let iy = iy0 + i32(tap / KW);
          let ix = ix0 + i32(tap % KW);
          if (rowA < GEMM_M && iy >= 0 && iy < i32(IN_H) && ix >= 0 && ix < i32(IN_W)) {`;
    return this.vec4
      ? `
        let k = k0 + kQuad * 4u;
        if (k < kEnd) {
          ${position}
            regA = x[(((batch * IN_H + u32(iy)) * IN_W + u32(ix)) * CIN + ci) / 4u];
          }
        }`
      : `
        for (var j = 0u; j < 4u; j++) {
          let k = k0 + kQuad * 4u + j;
          if (k < kEnd) {
            ${position}
              regA[j] = x[((batch * IN_H + u32(iy)) * IN_W + u32(ix)) * CIN + ci];
            }
          }
        }`;
  }

  private loadB(): string {
    return this.vec4
      ? `
        if (kB < kEnd && colB < GEMM_N) {
          regB = W[(kB * GEMM_N + colB) / 4u];
        }`
      : `
        for (var j = 0u; j < 4u; j++) {
          if (kB < kEnd && colB + j < GEMM_N) {
            regB[j] = W[kB * GEMM_N + colB + j];
          }
        }`;
  }

  getUserCode(): string {
    return `
      ${this.declarations()}

      // A: row rowA at K indices k0 + kQuad*4 ..+3. B: K index k0 + kLocal at columns colB..colB+3.
      var<private> kQuad : u32;
      var<private> rowA : u32;
      var<private> batch : u32;
      var<private> iy0 : i32;
      var<private> ix0 : i32;
      var<private> kLocal : u32;
      var<private> colB : u32;
      var<private> regA : vec4<f32>;
      var<private> regB : vec4<f32>;

      fn loadTile(k0 : u32) {
        regA = vec4<f32>(0.0);
        regB = vec4<f32>(0.0);
        ${this.loadA()}
        let kB = k0 + kLocal;
        ${this.loadB()}
      }

      fn storeTile() {
        let rowLocal = localIndex / 4u;
        for (var j = 0u; j < 4u; j++) {
          setA((kQuad * 4u + j) * 16u + rowLocal / 4u, rowLocal % 4u, regA[j]);
        }
        setB4(kLocal * 16u + localIndex % 16u, regB);
      }

      ${this.main(`
      kQuad = localIndex % 4u;
      rowA = tileM + localIndex / 4u;
      batch = rowA / OUT_HW;
      let pos = rowA - batch * OUT_HW;
      iy0 = i32((pos / OUT_W) * STRIDE_H) - PAD_TOP;
      ix0 = i32((pos % OUT_W) * STRIDE_W) - PAD_LEFT;
      kLocal = localIndex / 16u;
      colB = tileN + (localIndex % 16u) * 4u;`)}
    `;
  }
}

const conv2d: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as Conv2DAttrs;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    dilations,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
  return runConvGemm(
    backend as unknown as WebGPUBackendLike,
    info,
    [x, filter],
    (tensorCores) => new Conv2DForwardProgram(info, tensorCores),
    info.outShape,
    () => originalKernel(Conv2D, WEBGPU).kernelFunc(args) as TensorInfo,
  );
};

export const conv2dConfig: KernelConfig = { kernelName: Conv2D, backendName: WEBGPU, kernelFunc: conv2d };
