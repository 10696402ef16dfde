import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { SCALE_SHIFT_GELU, SCALE_SHIFT_GELU_GRAD } from '../names.js';
import type { WebGPUBackendLike, WebGPUProgram } from '../types.js';
import { GELU_WGSL } from './ColumnSums.js';

const THREADS = 256;

/**
 * The seed's batch norm and the GELU after it as single elementwise passes over [rows, C] (channels last),
 * with per-channel coefficients: forward GELU(x · scale + shift); backward g · scale + x · alpha + beta,
 * g = dy · GELU'(x · scale + shift) recomputed from x (no z, Φ or g tensor is kept). tfjs runs about a dozen
 * kernels over the activation for each direction. The per-channel sums the backward pass needs come from
 * the `geluGradSums` column sums (ColumnSums.ts).
 * @internal
 */
class ScaleShiftGeluProgram implements WebGPUProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [THREADS, 1, 1];
  readonly size = true;
  // Sizes are uniforms, not constants: one pipeline serves every shape (these run on every norm of every batch size).
  readonly uniforms = 'channels : i32,';

  constructor(
    private readonly grad: boolean,
    length: number,
  ) {
    this.variableNames = grad ? ['x', 'dy', 'scale', 'shift', 'alpha', 'beta'] : ['x', 'scale', 'shift'];
    this.outputShape = [length];
    this.shaderKey = `dataflowScaleShiftGelu_${grad ? 'grad' : 'forward'}`;
    this.dispatch = [Math.ceil(length / THREADS), 1, 1];
  }

  getUserCode(): string {
    // Reads go through f32(): a float32 tensor may sit in an int32 buffer after a cast.
    const value = this.grad
      ? `let g = f32(dy[index]) * geluDerivative(xv * f32(scale[c]) + f32(shift[c]));
          setOutputAtIndex(index, g * f32(scale[c]) + xv * f32(alpha[c]) + f32(beta[c]));`
      : 'setOutputAtIndex(index, gelu(xv * f32(scale[c]) + f32(shift[c])));';
    return `
      ${GELU_WGSL}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = index % uniforms.channels;
          let xv = f32(x[index]);
          ${value}
        }
      }
    `;
  }
}

function run(grad: boolean, backend: WebGPUBackendLike, inputs: TensorInfo[]): TensorInfo {
  const x = inputs[0]!;
  const channels = x.shape[x.shape.length - 1] ?? 1;
  const length = x.shape.reduce((a, b) => a * b, 1);
  const out = backend.runWebGPUProgram(new ScaleShiftGeluProgram(grad, length), inputs, 'float32', [{ type: 'int32', data: [channels] }]);
  return { ...out, shape: x.shape };
}

const scaleShiftGelu: KernelFunc = ({ inputs, backend }) => {
  const { x, scale, shift } = inputs as Record<string, TensorInfo>;
  return run(false, backend as unknown as WebGPUBackendLike, [x!, scale!, shift!]);
};

const scaleShiftGeluGrad: KernelFunc = ({ inputs, backend }) => {
  const { x, dy, scale, shift, alpha, beta } = inputs as Record<string, TensorInfo>;
  return run(true, backend as unknown as WebGPUBackendLike, [x!, dy!, scale!, shift!, alpha!, beta!]);
};

export const scaleShiftGeluConfig: KernelConfig = { kernelName: SCALE_SHIFT_GELU, backendName: 'webgpu', kernelFunc: scaleShiftGelu };
export const scaleShiftGeluGradConfig: KernelConfig = {
  kernelName: SCALE_SHIFT_GELU_GRAD,
  backendName: 'webgpu',
  kernelFunc: scaleShiftGeluGrad,
};
