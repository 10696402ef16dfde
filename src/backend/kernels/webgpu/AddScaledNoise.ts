import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { ADD_SCALED_NOISE, ADD_SCALED_NOISE_GRAD, type AddScaledNoiseAttrs } from '../names.js';
import type { WebGPUBackendLike } from '../types.js';
import { FlatProgram } from './util.js';

/**
 * The seed's discrete action, `x.detach() + noiseStd · x.std() · noise`, as one elementwise pass that reads the
 * std's moments itself, and its gradient through the std, `(x - mean) · noiseStd · Σ(dy · noise) / ((n - 1) · std)`,
 * as another. tfjs runs Unpack, Mul, Sqrt, Mul, Mul and Add for the forward, Mul, Sub, Mul, RealDiv and Mul for the
 * gradient. The f32 operations are those of the unfused ops, in their order (n / (n - 1), n - 1 and noiseStd
 * rounded to f32 as the device scalars are), so both agree to rounding. The moments are the whole-tensor
 * [mean, variance, scale] of CHANNEL_MOMENTS: the std is sqrt(variance · unbias) · scale, scale being 1 (an exact
 * product) unless x's squares would overflow float32.
 * @internal
 */
class AddScaledNoiseProgram extends FlatProgram {
  readonly variableNames: string[];
  readonly shaderKey: string;
  // Scalars are uniforms, not constants: one pipeline serves every shape and noise scale.
  readonly uniforms = 'noiseStd : f32, unbias : f32, countLessOne : f32,';

  constructor(
    private readonly grad: boolean,
    length: number,
  ) {
    super([length], length);
    this.variableNames = grad ? ['x', 'moments', 'noiseDot'] : ['x', 'moments', 'noise'];
    this.shaderKey = `dataflowAddScaledNoise_${grad ? 'grad' : 'forward'}`;
  }

  getUserCode(): string {
    // Reads go through f32(): a float32 tensor may sit in an int32 buffer after a cast.
    const value = this.grad
      ? `let dStd = f32(noiseDot[0]) * uniforms.noiseStd;
          setOutputAtIndex(index, (f32(x[index]) - f32(moments[0])) * (dStd / (stdDev * uniforms.countLessOne)));`
      : 'setOutputAtIndex(index, f32(x[index]) + (stdDev * uniforms.noiseStd) * f32(noise[index]));';
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let stdDev = sqrt(f32(moments[1]) * uniforms.unbias) * f32(moments[2]);
          ${value}
        }
      }
    `;
  }
}

function run(grad: boolean, backend: WebGPUBackendLike, inputs: TensorInfo[], attrs: AddScaledNoiseAttrs): TensorInfo {
  const x = inputs[0]!;
  const n = x.shape.reduce((a, b) => a * b, 1);
  // One entry per member: tfjs lays out a multi-value entry as a vector, with a vector's alignment.
  const out = backend.runWebGPUProgram(new AddScaledNoiseProgram(grad, n), inputs, 'float32', [
    { type: 'float32', data: [attrs.noiseStd] },
    { type: 'float32', data: [attrs.unbias] },
    { type: 'float32', data: [attrs.countLessOne] },
  ]);
  return { ...out, shape: x.shape };
}

const addScaledNoise: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, moments, noise } = inputs as Record<string, TensorInfo>;
  return run(false, backend as unknown as WebGPUBackendLike, [x!, moments!, noise!], attrs as unknown as AddScaledNoiseAttrs);
};

const addScaledNoiseGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, moments, noiseDot } = inputs as Record<string, TensorInfo>;
  return run(true, backend as unknown as WebGPUBackendLike, [x!, moments!, noiseDot!], attrs as unknown as AddScaledNoiseAttrs);
};

export const addScaledNoiseConfig: KernelConfig = { kernelName: ADD_SCALED_NOISE, backendName: WEBGPU, kernelFunc: addScaledNoise };
export const addScaledNoiseGradConfig: KernelConfig = {
  kernelName: ADD_SCALED_NOISE_GRAD,
  backendName: WEBGPU,
  kernelFunc: addScaledNoiseGrad,
};
