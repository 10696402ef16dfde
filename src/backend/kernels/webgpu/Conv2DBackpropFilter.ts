import {
  backend_util,
  Conv2DBackpropFilter,
  type Conv2DBackpropFilterAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { originalKernel } from '../install.js';
import type { WebGPUBackendLike } from '../types.js';
import { ConvGemmProgram, runConvGemm } from './conv_gemm.js';
import type { TensorCoreConfig } from './conv_precision.js';

/**
 * dW[ky, kx, ci, co] = Σ over (b, oy, ox) of x[b, oy*sh + ky - top, ox*sw + kx - left, ci] · dy[b, oy, ox, co],
 * as an implicit GEMM (no im2col tensor): M = kh*kw*cin rows, N = cout columns, K = batch*outH*outW.
 *
 * @remarks Each thread stages four consecutive M rows (channels of one input position, contiguous in
 * x) and four consecutive N columns of dy for one K index per step. tfjs-backend-webgpu 4.22 gives each
 * of the kh*kw*cin*cout outputs one thread looping over all of K, which leaves a large GPU nearly idle
 * (the seed's first conv: 13,824 threads over a million positions each).
 */
export class Conv2DFilterGradProgram extends ConvGemmProgram {
  readonly variableNames = ['x', 'dy'];

  constructor(info: backend_util.Conv2DInfo, tensorCores?: TensorCoreConfig) {
    super(
      'dataflowConvFilterGrad',
      info,
      info.filterHeight * info.filterWidth * info.inChannels,
      info.outChannels,
      info.batchSize * info.outHeight * info.outWidth,
      info.inChannels % 4 === 0 && info.outChannels % 4 === 0,
      tensorCores,
    );
  }

  // Rows rowA.. are four channels of one tap (cin is a multiple of 4), and dy's row is a multiple of 4 long.
  private loadVec4(): string {
    return `
        let iy = iy0 + tapY[0];
        let ix = ix0 + tapX[0];
        if (rowA < GEMM_M && iy >= 0 && iy < i32(IN_H) && ix >= 0 && ix < i32(IN_W)) {
          regA = x[(((b * IN_H + u32(iy)) * IN_W + u32(ix)) * CIN + channel[0]) / 4u];
        }
        if (colB < GEMM_N) {
          regB = dy[(k * GEMM_N + colB) / 4u];
        }`;
  }

  private loadScalars(): string {
    return `
        for (var j = 0u; j < 4u; j++) {
          let iy = iy0 + tapY[j];
          let ix = ix0 + tapX[j];
          if (rowA + j < GEMM_M && iy >= 0 && iy < i32(IN_H) && ix >= 0 && ix < i32(IN_W)) {
            regA[j] = x[((b * IN_H + u32(iy)) * IN_W + u32(ix)) * CIN + channel[j]];
          }
          if (colB + j < GEMM_N) {
            regB[j] = dy[k * GEMM_N + colB + j];
          }
        }`;
  }

  getUserCode(): string {
    return `
      ${this.declarations()}

      // This thread stages rows rowA..rowA+3 and columns colB..colB+3 at K index k0 + kLocal.
      var<private> kLocal : u32;
      var<private> rowA : u32;
      var<private> colB : u32;
      var<private> tapY : vec4<i32>;
      var<private> tapX : vec4<i32>;
      var<private> channel : vec4<u32>;
      var<private> regA : vec4<f32>;
      var<private> regB : vec4<f32>;

      fn loadTile(k0 : u32) {
        regA = vec4<f32>(0.0);
        regB = vec4<f32>(0.0);
        let k = k0 + kLocal;
        if (k >= kEnd) {
          return;
        }
        let b = k / OUT_HW;
        let pos = k - b * OUT_HW;
        let oy = pos / OUT_W;
        let ox = pos - oy * OUT_W;
        let iy0 = i32(oy * STRIDE_H) - PAD_TOP;
        let ix0 = i32(ox * STRIDE_W) - PAD_LEFT;
        ${this.vec4 ? this.loadVec4() : this.loadScalars()}
      }

      fn storeTile() {
        let at = kLocal * 16u + localIndex % 16u;
        setA4(at, regA);
        setB4(at, regB);
      }

      ${this.main(`
      kLocal = localIndex / 16u;
      rowA = tileM + (localIndex % 16u) * 4u;
      colB = tileN + (localIndex % 16u) * 4u;
      for (var j = 0u; j < 4u; j++) {
        let tap = (rowA + j) / CIN;
        channel[j] = rowA + j - tap * CIN;
        tapY[j] = i32(tap / KW);
        tapX[j] = i32(tap % KW);
      }`)}
    `;
  }
}

const conv2dBackpropFilter: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as Conv2DBackpropFilterAttrs;
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    backend_util.convertConv2DDataFormat(dataFormat),
  );
  return runConvGemm(
    backend as unknown as WebGPUBackendLike,
    info,
    [x, dy],
    (tensorCores) => new Conv2DFilterGradProgram(info, tensorCores),
    info.filterShape,
    () => originalKernel(Conv2DBackpropFilter, WEBGPU).kernelFunc(args) as TensorInfo,
  );
};

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: Conv2DBackpropFilter,
  backendName: WEBGPU,
  kernelFunc: conv2dBackpropFilter,
};
