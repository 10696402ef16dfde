import * as tf from '@tensorflow/tfjs-core';
import { EMA_UPDATE, SGD_STEP, type EMAUpdateAttrs, type SGDStepAttrs } from '../backend/kernels/names.js';

/**
 * One-kernel updates of the optimizer and the weight average (`SGD.step`, `NetworkEMA.update`), where the
 * backend has them (WebGPU with the library's kernels). Elsewhere the callers run their unfused ops, which
 * cpu and wasm run as fast. None is differentiable.
 */

/** Whether `sgdStep` runs here. @internal */
export function hasSGDStepKernel(): boolean {
  return tf.getKernel(SGD_STEP, tf.getBackend()) != null;
}

/** Whether `emaUpdate` runs here. @internal */
export function hasEMAUpdateKernel(): boolean {
  return tf.getKernel(EMA_UPDATE, tf.getBackend()) != null;
}

/** The float32 tensors a fused update takes: same-shaped operands, and scalar-or-table coefficients read at `index`. */
function checkOperands(op: string, operands: Record<string, tf.Tensor>, coefficients: Record<string, tf.Tensor>, index: number): void {
  const entries = Object.entries(operands);
  const [firstName, first] = entries[0]!;
  for (const [name, t] of [...entries, ...Object.entries(coefficients)]) {
    if (!(t instanceof tf.Tensor)) throw new Error(`${op}: ${name} must be a tensor, got ${String(t)}`);
    if (t.dtype !== 'float32') throw new Error(`${op}: ${name} must be float32, got ${t.dtype}`);
  }
  for (const [name, t] of entries) {
    if (!tf.util.arraysEqual(t.shape, first.shape))
      throw new Error(`${op}: ${name} has shape [${t.shape}], ${firstName} has shape [${first.shape}]`);
  }
  for (const [name, t] of Object.entries(coefficients)) {
    if (t.rank > 1) throw new Error(`${op}: ${name} must be a scalar or a 1-D table, got shape [${t.shape}]`);
    if (!(Number.isInteger(index) && index >= 0 && index < t.size))
      throw new Error(`${op}: index ${index} is outside ${name}, which has ${t.size} entries`);
  }
}

/** What `sgdStep` returns: the new parameter, and the new momentum buffer when momentum is not 0. */
export interface SGDStepResult {
  param: tf.Tensor;
  buffer: tf.Tensor | null;
}

/**
 * One weight's SGD update in one kernel, torch 1.13's float32 operations in order (see `SGD`):
 * d = grad + weightDecay · param (grad alone when weightDecay is 0), buffer' = d on the first momentum step
 * (`buffer` null), buffer · momentum + d after; param' = param - u · lr with u = d (momentum 0),
 * d + buffer' · momentum (Nesterov) or buffer'. `lr` is a scalar or a table of rates read at `lrIndex`.
 * @internal
 */
export function sgdStep(
  param: tf.Tensor,
  grad: tf.Tensor,
  buffer: tf.Tensor | null,
  lr: tf.Tensor,
  { momentum, nesterov, weightDecay, lrIndex = 0 }: { momentum: number; nesterov: boolean; weightDecay: number; lrIndex?: number },
): SGDStepResult {
  if (!hasSGDStepKernel())
    throw new Error(`sgdStep: the '${tf.getBackend()}' backend has no fused SGD kernel; check hasSGDStepKernel() first`);
  if (!(Number.isFinite(momentum) && momentum >= 0)) throw new Error(`sgdStep: momentum must be a finite number >= 0, got ${momentum}`);
  if (!Number.isFinite(weightDecay)) throw new Error(`sgdStep: weightDecay must be finite, got ${weightDecay}`);
  if (nesterov && momentum === 0) throw new Error('sgdStep: Nesterov momentum requires momentum > 0');
  if (buffer != null && momentum === 0) throw new Error('sgdStep: a momentum buffer was given, but momentum is 0');
  checkOperands('sgdStep', buffer == null ? { param, grad } : { param, grad, buffer }, { lr }, lrIndex);
  const inputs: tf.NamedTensorMap = buffer == null ? { param, grad, lr } : { param, grad, lr, buffer };
  const attrs: SGDStepAttrs = { momentum, nesterov, weightDecay, lrIndex };
  const out = tf.engine().runKernel(SGD_STEP, inputs, attrs as unknown as tf.NamedAttrMap) as unknown as tf.Tensor[];
  return { param: out[0]!, buffer: momentum === 0 ? null : out[1]! };
}

/** ema · keep + live · take in one kernel; `keep` and `take` are scalars or tables of decays read at `decayIndex`. @internal */
export function emaUpdate(ema: tf.Tensor, live: tf.Tensor, keep: tf.Tensor, take: tf.Tensor, decayIndex = 0): tf.Tensor {
  if (!hasEMAUpdateKernel())
    throw new Error(`emaUpdate: the '${tf.getBackend()}' backend has no fused EMA kernel; check hasEMAUpdateKernel() first`);
  checkOperands('emaUpdate', { ema, live }, { keep, take }, decayIndex);
  const attrs: EMAUpdateAttrs = { decayIndex };
  return tf.engine().runKernel(EMA_UPDATE, { ema, live, keep, take }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}
