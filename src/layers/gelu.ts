import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { gelu } from '../ops/gelu.js';
import { singleInput, singleShape } from '../validation.js';
import type { LayerArgs } from './types.js';
import { namespacedClassName, registerLayerClass, withDefaultName } from './registry.js';

/**
 * The seed's `nn.GELU()` as a layer: exact (erf) GELU with the library's
 * hand-written gradient, for functional models (the initial block's activation).
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Gelu } from 'tfjs-dataflow';
 *
 * const input = tfl.input({ shape: [16, 16, 24] });
 * const y = new Gelu({ name: 'activation' }).apply(input) as tfl.SymbolicTensor;
 * ```
 */
export class Gelu extends tfl.layers.Layer {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>Gelu'`. */
  static className = namespacedClassName('Gelu');

  constructor(args: LayerArgs = {}) {
    super(withDefaultName(args, 'Gelu'));
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return singleShape(inputShape, `Gelu '${this.name}'`);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => gelu(singleInput(inputs, `Gelu '${this.name}'`)));
  }
}
registerLayerClass(Gelu, 'Gelu');
