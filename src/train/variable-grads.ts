import * as tf from '@tensorflow/tfjs-core';
import { deviceScalar } from '../ops/constants.js';

interface EngineGradients {
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy: tf.Tensor,
    allowNoGradients: boolean,
  ): { value: tf.Tensor; grads: Array<tf.Tensor | null> };
}

/**
 * `tf.variableGrads` for a scalar loss, with the seed gradient (d loss / d loss = 1) taken from a kept
 * device scalar: tfjs makes it with `ones()`, a host write on every training step. Same result otherwise:
 * the gradient of each trainable variable in `varList` that the loss depends on, by variable name.
 *
 * @param f Computes the loss; must return a scalar.
 * @param varList The variables to differentiate against; non-trainable ones are skipped.
 */
export function variableGrads(
  f: () => tf.Scalar,
  varList: tf.Variable[],
): {
  /** The loss. */
  value: tf.Scalar;
  /** Each trainable variable's gradient, by variable name. */
  grads: tf.NamedTensorMap;
} {
  if (typeof f !== 'function') throw new TypeError(`variableGrads: argument 'f' must be a function, got ${typeof f}`);
  if (!Array.isArray(varList) || !varList.every((v) => v instanceof tf.Variable)) {
    throw new TypeError(`variableGrads: argument 'varList' must be an array of tf.Variable`);
  }
  const trainable = varList.filter((v) => v.trainable);
  if (trainable.length === 0) throw new Error(`variableGrads: none of the ${varList.length} variables is trainable`);
  const one = deviceScalar(1);
  const checkedLoss = () => {
    const y = f();
    if (!(y instanceof tf.Tensor) || y.rank !== 0) {
      throw new Error(
        `variableGrads: f must return a scalar tensor, got ${y instanceof tf.Tensor ? `shape [${y.shape.join(',')}]` : typeof y}`,
      );
    }
    return y;
  };
  const { value, grads } = (tf.engine() as unknown as EngineGradients).gradients(checkedLoss, trainable, one, true);
  if (grads.every((g) => g == null)) {
    value.dispose();
    throw new Error('variableGrads: the loss does not depend on any of the variables (compute it from them inside f)');
  }
  const named: tf.NamedTensorMap = {};
  trainable.forEach((v, i) => {
    const g = grads[i];
    // A loss that is a variable itself gets the seed back as its gradient: hand out a copy, never the kept scalar.
    if (g != null) named[v.name] = g === one ? tf.clone(one) : g;
  });
  return { value: value as tf.Scalar, grads: named };
}
