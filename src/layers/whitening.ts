import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { torchDefaultInitializer } from './conv.js';
import { checkInput, checkPositiveInt, checkSpatialAtLeast, singleInput, singleShape } from '../validation.js';
import { namespacedClassName, registerLayerClass, scopedWeightName, withDefaultName } from './registry.js';
import type { CallKwargs, LayerArgs } from './types.js';

export interface WhiteningConvArgs extends LayerArgs {
  /** Square patch size of the whitening kernel; default 2, the seed's. */
  kernelSize?: number;
  /** Input channels; default 3 (RGB). */
  channels?: number;
  /** Seed of the placeholder initialisation used until `fitWhitening` runs; random when omitted. */
  seed?: number;
}

/**
 * The seed's whitening convolution: a frozen, bias-free `kernelSize`² 'valid'
 * convolution whose `2·C·k²` output channels (24 for RGB and 2x2) are a PCA
 * whitening basis of image patches followed by its negation. Its weight
 * (`weight`, `[k, k, C, 2·C·k²]`, not trainable) holds a placeholder of the same
 * `[K, −K]` form until `fitWhitening` sets it from the training images.
 *
 * @remarks Its default name, `whitening_conv_N`, contains 'whiten', which the
 * seed's EMA uses to leave this layer out of the copy-back.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { WhiteningConv, fitWhitening } from 'tfjs-dataflow';
 *
 * const images = tf.randomUniform([64, 32, 32, 3]) as tf.Tensor4D; // a sample of training images, NHWC
 * const input = tfl.input({ shape: [32, 32, 3] });
 * const whiten = new WhiteningConv({ name: 'whiten', kernelSize: 2 });
 * const x = whiten.apply(input) as tfl.SymbolicTensor; // [N, 31, 31, 24]
 * const model = tfl.model({ inputs: input, outputs: x });
 * await fitWhitening(whiten, images); // sets the frozen kernel from the images' 2x2 patches
 * ```
 */
export class WhiteningConv extends tfl.layers.Layer {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>WhiteningConv'`. */
  static className = namespacedClassName('WhiteningConv');
  /** Square patch size of the kernel. */
  readonly kernelSize: number;
  /** Input channels. */
  readonly channels: number;
  /** Seed of the placeholder initialisation; undefined: random. */
  readonly seed: number | undefined;
  /** The fixed kernel, `[k, k, C, 2·C·k²]`; set by build(). */
  weight!: tfl.LayerVariable;

  constructor(args: WhiteningConvArgs = {}) {
    super(withDefaultName(args, 'WhiteningConv'));
    const name = `WhiteningConv '${this.name}'`;
    this.kernelSize = checkPositiveInt(args.kernelSize ?? 2, 'kernelSize', name);
    this.channels = checkPositiveInt(args.channels ?? 3, 'channels', name);
    this.seed = args.seed;
  }

  /** Number of patch components, `C·k²` (12 for RGB 2x2): half the output channels. */
  get patchSize(): number {
    return this.channels * this.kernelSize * this.kernelSize;
  }

  private check(shape: ReadonlyArray<number | null>, dtype?: string): void {
    const name = `WhiteningConv '${this.name}'`;
    checkInput({ shape, dtype }, 4, name, this.channels);
    checkSpatialAtLeast(shape, this.kernelSize, name);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    this.check(singleShape(inputShape, `WhiteningConv '${this.name}'`));
    const k = this.kernelSize;
    const d = this.patchSize;
    this.weight = this.addWeight(
      scopedWeightName(this, 'weight'),
      [k, k, this.channels, 2 * d],
      'float32',
      torchDefaultInitializer(this.seed),
      undefined,
      false,
    );
    // Keep the [K, -K] structure from the start, so an unfitted layer already has the right form.
    const placeholder = tf.tidy(() => {
      const half = tf.slice(this.weight.read(), [0, 0, 0, 0], [k, k, this.channels, d]);
      return tf.concat([half, tf.neg(half)], 3);
    });
    this.weight.write(placeholder);
    placeholder.dispose();
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w] = singleShape(inputShape, `WhiteningConv '${this.name}'`);
    const out = (x: number | null | undefined) => (x == null ? null : x - this.kernelSize + 1);
    return [n!, out(h)!, out(w)!, 2 * this.patchSize];
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = singleInput(inputs, `WhiteningConv '${this.name}'`);
      this.check(x.shape, x.dtype);
      return tf.conv2d(x as tf.Tensor4D, this.weight.read() as tf.Tensor4D, 1, 'valid');
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { kernelSize: this.kernelSize, channels: this.channels };
    if (this.seed != null) config['seed'] = this.seed;
    return { ...super.getConfig(), ...config };
  }
}
registerLayerClass(WhiteningConv, 'WhiteningConv');
