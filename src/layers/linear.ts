import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { deviceScalar } from '../ops/constants.js';
import { torchDefaultInitializer } from './conv.js';
import { checkInput, checkOptionalFactor, checkPositiveInt, knownLastAxis, singleInput, singleShape } from '../validation.js';
import { namespacedClassName, registerLayerClass, scopedWeightName, withDefaultName } from './registry.js';
import type { CallKwargs, LayerArgs } from './types.js';

export interface LinearArgs extends LayerArgs {
  /** Number of output features. */
  units: number;
  /** Factor applied to the weight in every forward pass (the seed's head uses 1/12); null (default) applies none. */
  temperature?: number | null;
  /** Seed of the default initialisation (PyTorch's Linear default); random when omitted. */
  seed?: number;
}

/**
 * The seed's `Linear` head: `x @ (W · temperature)ᵀ` with no bias. The weight is
 * stored as tfjs does, `[in, out]` (the transpose of PyTorch's `[out, in]`), so the
 * forward pass is `x @ (W · temperature)`; it is named `weight` and initialised
 * like PyTorch's `nn.Linear`, U(-1/√in, 1/√in). Inputs of any rank ≥ 2 are
 * accepted; the last axis is the feature axis.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Linear } from 'tfjs-dataflow';
 *
 * const features = tfl.input({ shape: [256] });
 * // Logits of 10 classes, the weight scaled by 1/12 in the forward pass as in the seed's head.
 * const logits = new Linear({ name: 'head', units: 10, temperature: 1 / 12, seed: 1 }).apply(features) as tfl.SymbolicTensor;
 * ```
 */
export class Linear extends tfl.layers.Layer {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>Linear'`. */
  static className = namespacedClassName('Linear');
  /** Number of output features. */
  readonly units: number;
  /** Factor applied to the weight in every forward pass; null: none. */
  readonly temperature: number | null;
  /** Seed of the default initialisation; undefined: random. */
  readonly seed: number | undefined;
  /** The weight, `[in, out]`; set by build(). */
  weight!: tfl.LayerVariable;
  private inFeatures: number | null = null;

  constructor(args: LinearArgs) {
    super(withDefaultName(args, 'Linear'));
    const name = `Linear '${this.name}'`;
    this.units = checkPositiveInt(args.units, 'units', name);
    this.temperature = checkOptionalFactor(args.temperature, 'temperature', name);
    this.seed = args.seed;
  }

  private check(shape: ReadonlyArray<number | null>, dtype?: string): void {
    checkInput({ shape, dtype }, { atLeast: 2 }, `Linear '${this.name}'`, this.inFeatures, 'features');
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = singleShape(inputShape, `Linear '${this.name}'`);
    this.check(shape);
    const fin = knownLastAxis(shape, `Linear '${this.name}'`, 'feature');
    this.inFeatures = fin;
    this.weight = this.addWeight(
      scopedWeightName(this, 'weight'),
      [fin, this.units],
      'float32',
      torchDefaultInitializer(this.seed),
      undefined,
      true,
    );
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const shape = singleShape(inputShape, `Linear '${this.name}'`);
    return [...shape.slice(0, -1), this.units];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = singleInput(inputs, `Linear '${this.name}'`);
      this.check(x.shape, x.dtype);
      let w = this.weight.read();
      if (this.temperature != null) w = tf.mul(w, deviceScalar(this.temperature));
      if (x.rank === 2) return tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D);
      const y = tf.matMul(tf.reshape(x, [-1, this.inFeatures!]), w as tf.Tensor2D);
      return tf.reshape(y, [...x.shape.slice(0, -1), this.units]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { units: this.units, temperature: this.temperature };
    if (this.seed != null) config['seed'] = this.seed;
    return { ...super.getConfig(), ...config };
  }
}
registerLayerClass(Linear, 'Linear');
