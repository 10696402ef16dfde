import * as tf from '@tensorflow/tfjs-core';
import { deviceScalarCount } from '../../src/ops/constants.js';

/**
 * Tensors alive now, not counting the scalars `deviceScalar` keeps on each backend (made on first use,
 * then reused; test/ops/constants.test.ts proves that cache stops growing). Leak checks compare this
 * before and after: a leak is anything else left behind.
 */
export function liveTensors(): number {
  return tf.memory().numTensors - deviceScalarCount();
}
