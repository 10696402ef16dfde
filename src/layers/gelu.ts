import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { gelu } from '../ops/gelu.js';
import { singleInput, singleShape } from '../validation.js';
import type { LayerArgs } from './types.js';

/**
 * The seed's `nn.GELU()` as a layer: exact (erf) GELU with the library's
 * hand-written gradient, for functional models (the initial block's activation).
 */
export class Gelu extends tfl.layers.Layer {
  static className = 'Gelu';

  constructor(args: LayerArgs = {}) {
    super(args);
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return singleShape(inputShape, `Gelu '${this.name}'`);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => gelu(singleInput(inputs, `Gelu '${this.name}'`)));
  }
}
tf.serialization.registerClass(Gelu);
