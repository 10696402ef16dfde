import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { globalMaxPool, maxPool2 } from '../ops/pooling.js';
import { checkInput, checkSpatialAtLeast, singleInput, singleShape } from '../validation.js';
import type { LayerArgs } from './types.js';
import { namespacedClassName, registerLayerClass, withDefaultName } from './registry.js';

const POOL_NEEDS = 'it max-pools 2x2 windows';

/**
 * The seed's `nn.MaxPool2d(2)`: 2x2 windows, stride 2, odd trailing rows and columns dropped (floor).
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { MaxPool2 } from 'tfjs-dataflow';
 *
 * const input = tfl.input({ shape: [15, 15, 8] });
 * const y = new MaxPool2().apply(input) as tfl.SymbolicTensor; // [N, 7, 7, 8]
 * ```
 */
export class MaxPool2 extends tfl.layers.Layer {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>MaxPool2'`. */
  static className = namespacedClassName('MaxPool2');

  constructor(args: LayerArgs = {}) {
    super(withDefaultName(args, 'MaxPool2'));
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = singleShape(inputShape, `MaxPool2 '${this.name}'`);
    checkInput({ shape }, 4, `MaxPool2 '${this.name}'`);
    checkSpatialAtLeast(shape, 2, `MaxPool2 '${this.name}'`, POOL_NEEDS);
    const [n, h, w, c] = shape;
    return [n!, h == null ? null : Math.floor(h / 2), w == null ? null : Math.floor(w / 2), c!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = singleInput(inputs, `MaxPool2 '${this.name}'`);
      checkInput(x, 4, `MaxPool2 '${this.name}'`);
      // Floor of 1 / 2 is 0: a smaller input would give an empty tensor, not an error.
      checkSpatialAtLeast(x.shape, 2, `MaxPool2 '${this.name}'`, POOL_NEEDS);
      return maxPool2(x as tf.Tensor4D);
    });
  }
}
registerLayerClass(MaxPool2, 'MaxPool2');

/**
 * The seed's `FastGlobalMaxPooling` (`torch.amax` over height and width) as a layer: NHWC in, [N, C] out.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { GlobalMaxPool } from 'tfjs-dataflow';
 *
 * const input = tfl.input({ shape: [4, 4, 256] });
 * const features = new GlobalMaxPool().apply(input) as tfl.SymbolicTensor; // [N, 256]
 * ```
 */
export class GlobalMaxPool extends tfl.layers.Layer {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>GlobalMaxPool'`. */
  static className = namespacedClassName('GlobalMaxPool');

  constructor(args: LayerArgs = {}) {
    super(withDefaultName(args, 'GlobalMaxPool'));
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, , , c] = singleShape(inputShape, `GlobalMaxPool '${this.name}'`);
    return [n!, c!];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => globalMaxPool(singleInput(inputs, `GlobalMaxPool '${this.name}'`) as tf.Tensor4D));
  }
}
registerLayerClass(GlobalMaxPool, 'GlobalMaxPool');
