import {
  backend_util,
  Conv2DBackpropInput,
  type Conv2DBackpropInputAttrs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { originalKernel } from '../install.js';
import type { WebGPUBackendLike } from '../types.js';
import { ConvGemmProgram, runConvGemm } from './conv_gemm.js';
import type { TensorCoreConfig } from './conv_precision.js';

/** K index k as filter tap (ky, kx) and output channel co. */
const TAP_OF_K = `
          let tap = k / COUT;
          let co = k - tap * COUT;
          let ky = i32(tap / KW);
          let kx = i32(tap % KW);`;

/** Opens a block that runs when input position (inY, inX) takes dy at (oy, ox) through tap (ky, kx). */
const DY_POSITION = `
          let oyScaled = inY + PAD_TOP - ky;
          let oxScaled = inX + PAD_LEFT - kx;
          let oy = u32(max(oyScaled, 0)) / STRIDE_H;
          let ox = u32(max(oxScaled, 0)) / STRIDE_W;
          if (rowA < GEMM_M && oyScaled >= 0 && oxScaled >= 0 && i32(oy * STRIDE_H) == oyScaled &&
              i32(ox * STRIDE_W) == oxScaled && oy < OUT_H && ox < OUT_W) {`;

/**
 * dx[b, y, x, ci] = Σ over (ky, kx, co) of dy[b, (y + top - ky) / sh, (x + left - kx) / sw, co] · W[ky, kx, ci, co]
 * (terms whose division is inexact or lands outside dy are zero), as an implicit GEMM: M = batch*inH*inW
 * rows, N = cin columns, K = kh*kw*cout.
 *
 * @remarks Each thread stages one M row (an input position) and one N column (an input channel) at
 * four consecutive K indices, which are consecutive output channels: contiguous in both dy and W.
 */
export class Conv2DInputGradProgram extends ConvGemmProgram {
  readonly variableNames = ['dy', 'W'];

  constructor(info: backend_util.Conv2DInfo, tensorCores?: TensorCoreConfig) {
    super(
      'dataflowConvInputGrad',
      info,
      info.batchSize * info.inHeight * info.inWidth,
      info.inChannels,
      info.filterHeight * info.filterWidth * info.outChannels,
      info.outChannels % 4 === 0,
      tensorCores,
    );
  }

  // The four K indices are four output channels of one tap (cout is a multiple of 4, and so are k0 and kEnd).
  private loadVec4(): string {
    return `
        let k = k0 + kQuad * 4u;
        if (k >= kEnd) {
          return;
        }
        ${TAP_OF_K}
        if (colB < GEMM_N) {
          regB = W[((tap * CIN + colB) * COUT + co) / 4u];
        }
        ${DY_POSITION}
          regA = dy[(((batch * OUT_H + oy) * OUT_W + ox) * COUT + co) / 4u];
        }`;
  }

  private loadScalars(): string {
    return `
        for (var j = 0u; j < 4u; j++) {
          let k = k0 + kQuad * 4u + j;
          if (k >= kEnd) {
            return;
          }
          ${TAP_OF_K}
          if (colB < GEMM_N) {
            regB[j] = W[(tap * CIN + colB) * COUT + co];
          }
          ${DY_POSITION}
            regA[j] = dy[((batch * OUT_H + oy) * OUT_W + ox) * COUT + co];
          }
        }`;
  }

  getUserCode(): string {
    return `
      ${this.declarations()}

      // This thread stages row rowA and column colB at K indices k0 + kQuad*4 .. k0 + kQuad*4 + 3.
      var<private> kQuad : u32;
      var<private> rowA : u32;
      var<private> colB : u32;
      var<private> batch : u32;
      var<private> inY : i32;
      var<private> inX : i32;
      var<private> regA : vec4<f32>;
      var<private> regB : vec4<f32>;

      fn loadTile(k0 : u32) {
        regA = vec4<f32>(0.0);
        regB = vec4<f32>(0.0);
        ${this.vec4 ? this.loadVec4() : this.loadScalars()}
      }

      fn storeTile() {
        let rowLocal = localIndex / 4u;
        for (var j = 0u; j < 4u; j++) {
          let at = (kQuad * 4u + j) * 16u + rowLocal / 4u;
          setA(at, rowLocal % 4u, regA[j]);
          setB(at, rowLocal % 4u, regB[j]);
        }
      }

      ${this.main(`
      kQuad = localIndex % 4u;
      rowA = tileM + localIndex / 4u;
      colB = tileN + localIndex / 4u;
      batch = rowA / IN_HW;
      let pos = rowA - batch * IN_HW;
      inY = i32(pos / IN_W);
      inX = i32(pos % IN_W);`)}
    `;
  }
}

const conv2dBackpropInput: KernelFunc = (args) => {
  const { inputs, attrs, backend } = args;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { inputShape, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as Conv2DBackpropInputAttrs;
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
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
    [dy, filter],
    (tensorCores) => new Conv2DInputGradProgram(info, tensorCores),
    info.inShape,
    () => originalKernel(Conv2DBackpropInput, WEBGPU).kernelFunc(args) as TensorInfo,
  );
};

export const conv2dBackpropInputConfig: KernelConfig = {
  kernelName: Conv2DBackpropInput,
  backendName: WEBGPU,
  kernelFunc: conv2dBackpropInput,
};
