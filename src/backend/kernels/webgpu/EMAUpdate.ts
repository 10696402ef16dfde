import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import { WEBGPU } from '../backends.js';
import { EMA_UPDATE, type EMAUpdateAttrs } from '../names.js';
import type { WebGPUBackendLike } from '../types.js';
import { FlatProgram } from './util.js';

/**
 * `NetworkEMA`'s ema · keep + live · take in one pass per entry instead of three elementwise kernels (mul, mul,
 * add), with the same float32 operations in the same order. The decays are read from their tables at
 * `decayIndex`, so an update slices nothing.
 * @internal
 */
class EMAUpdateProgram extends FlatProgram {
  readonly variableNames = ['ema', 'live', 'keep', 'take'];
  readonly shaderKey = 'dataflowEMAUpdate';
  // The index is a uniform: one pipeline serves every entry and every step.
  readonly uniforms = 'decayIndex : i32,';

  constructor(length: number) {
    super([length], length);
  }

  getUserCode(): string {
    // Reads go through f32(): a float32 tensor may sit in an int32 buffer after a cast.
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let kept = f32(ema[index]) * f32(keep[uniforms.decayIndex]);
          let taken = f32(live[index]) * f32(take[uniforms.decayIndex]);
          setOutputAtIndex(index, kept + taken);
        }
      }
    `;
  }
}

const emaUpdate: KernelFunc = ({ inputs, backend, attrs }) => {
  const { ema, live, keep, take } = inputs as Record<string, TensorInfo>;
  const { decayIndex } = attrs as unknown as EMAUpdateAttrs;
  const length = ema!.shape.reduce((a, b) => a * b, 1);
  // Both operands are bound as 1-D: the pipeline cache keys on the input ranks, so entries of any rank share one.
  const flat = (info: TensorInfo): TensorInfo => ({ ...info, shape: [length] });
  const out = (backend as unknown as WebGPUBackendLike).runWebGPUProgram(
    new EMAUpdateProgram(length),
    [flat(ema!), flat(live!), keep!, take!],
    'float32',
    [{ type: 'int32', data: [decayIndex] }],
  );
  return { ...out, shape: ema!.shape };
};

export const emaUpdateConfig: KernelConfig = { kernelName: EMA_UPDATE, backendName: WEBGPU, kernelFunc: emaUpdate };
