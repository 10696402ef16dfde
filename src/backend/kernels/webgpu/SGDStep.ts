import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { SGD_STEP, type SGDStepAttrs } from '../names.js';
import type { ProgramUniform, WebGPUBackendLike } from '../types.js';
import { FlatProgram } from './util.js';

/** How the update u is formed from d (the decayed gradient) and the new momentum buffer. */
type UpdateMode = 'plain' | 'momentum' | 'nesterov';

// d = grad + param · decay, as `tf.add(grad, tf.mul(p, decay))`; skipped (d = grad) where the group has no decay,
// as the unfused step skips the two ops (grad + 0 would turn a -0 gradient into +0).
const DECAYED_GRAD_WGSL = `
  fn decayedGrad(index : i32) -> f32 {
    let g = f32(grad[index]);
    if (uniforms.decayed != 0) {
      return g + f32(param[index]) * uniforms.weightDecay;
    }
    return g;
  }
`;

/**
 * SGD's new momentum buffer, buffer · momentum + d (d alone on a weight's first step), one element per thread.
 * @internal
 */
class SGDBufferProgram extends FlatProgram {
  readonly variableNames: string[];
  readonly shaderKey: string;
  // Hyper-parameters are uniforms: one pipeline per variant serves every weight and every group.
  readonly uniforms = 'momentum : f32, weightDecay : f32, decayed : i32,';

  constructor(
    private readonly first: boolean,
    length: number,
  ) {
    super([length], length);
    this.variableNames = first ? ['param', 'grad'] : ['param', 'grad', 'buffer'];
    this.shaderKey = `dataflowSGDBuffer_${first ? 'first' : 'next'}`;
  }

  getUserCode(): string {
    const value = this.first ? 'd' : 'f32(buffer[index]) * uniforms.momentum + d';
    return `
      ${DECAYED_GRAD_WGSL}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let d = decayedGrad(index);
          setOutputAtIndex(index, ${value});
        }
      }
    `;
  }
}

/**
 * SGD's new parameter, param - u · lr, with u = d, the new buffer, or d + buffer · momentum (Nesterov). It reads
 * the buffer the buffer program just wrote and recomputes d where it needs it (no d tensor is kept).
 * @internal
 */
class SGDParamProgram extends FlatProgram {
  readonly variableNames: string[];
  readonly shaderKey: string;
  readonly uniforms = 'momentum : f32, weightDecay : f32, decayed : i32, lrIndex : i32,';

  constructor(
    private readonly mode: UpdateMode,
    length: number,
  ) {
    super([length], length);
    // Plain momentum needs no gradient, and a binding the shader does not read would be missing from its layout.
    this.variableNames = {
      plain: ['param', 'grad', 'lr'],
      momentum: ['param', 'lr', 'buffer'],
      nesterov: ['param', 'grad', 'lr', 'buffer'],
    }[mode];
    this.shaderKey = `dataflowSGDParam_${mode}`;
  }

  getUserCode(): string {
    const update =
      this.mode === 'plain'
        ? 'decayedGrad(index)'
        : this.mode === 'nesterov'
          ? 'decayedGrad(index) + f32(buffer[index]) * uniforms.momentum'
          : 'f32(buffer[index])';
    return `
      ${this.mode === 'momentum' ? '' : DECAYED_GRAD_WGSL}
      fn main(index : i32) {
        if (index < uniforms.size) {
          let u = ${update};
          setOutputAtIndex(index, f32(param[index]) - u * f32(lr[uniforms.lrIndex]));
        }
      }
    `;
  }
}

/**
 * `SGD.step` for one weight in two passes (tfjs programs write one output each) instead of up to eight
 * elementwise kernels: the momentum buffer, then the parameter from it. Each computes the unfused ops' float32
 * operations in their order (reads go through f32(): a float32 tensor may sit in an int32 buffer after a cast).
 */
const sgdStep: KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as unknown as WebGPUBackendLike;
  const { param, grad, lr, buffer } = inputs as Record<string, TensorInfo | undefined>;
  const { momentum, nesterov, weightDecay, lrIndex } = attrs as unknown as SGDStepAttrs;
  const length = param!.shape.reduce((a, c) => a * c, 1);
  const decay: ProgramUniform[] = [
    { type: 'float32', data: [momentum] },
    { type: 'float32', data: [weightDecay] },
    { type: 'int32', data: [weightDecay !== 0 ? 1 : 0] },
  ];
  const reshaped = (info: TensorInfo): TensorInfo => ({ ...info, shape: param!.shape });
  // Every operand is bound as 1-D: the pipeline cache keys on the input ranks, so weights of any rank share one.
  const flat = (info: TensorInfo): TensorInfo => ({ ...info, shape: [length] });
  if (momentum === 0) {
    const out = b.runWebGPUProgram(new SGDParamProgram('plain', length), [flat(param!), flat(grad!), lr!], 'float32', [
      ...decay,
      { type: 'int32', data: [lrIndex] },
    ]);
    return [reshaped(out)];
  }
  const bufferInputs = buffer == null ? [flat(param!), flat(grad!)] : [flat(param!), flat(grad!), flat(buffer)];
  const newBuffer = b.runWebGPUProgram(new SGDBufferProgram(buffer == null, length), bufferInputs, 'float32', decay);
  const mode = nesterov ? 'nesterov' : 'momentum';
  const paramInputs = nesterov ? [flat(param!), flat(grad!), lr!, newBuffer] : [flat(param!), lr!, newBuffer];
  const newParam = b.runWebGPUProgram(new SGDParamProgram(mode, length), paramInputs, 'float32', [
    ...decay,
    { type: 'int32', data: [lrIndex] },
  ]);
  return [reshaped(newParam), reshaped(newBuffer)];
};

export const sgdStepConfig: KernelConfig = { kernelName: SGD_STEP, backendName: WEBGPU, kernelFunc: sgdStep };
