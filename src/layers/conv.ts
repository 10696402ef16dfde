import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { checkInput, checkOptionalFactor, checkPositiveInt, knownLastAxis, singleInput, singleShape } from '../validation.js';
import { namespacedClassName, registerLayerClass, scopedWeightName, withDefaultName } from './registry.js';
import type { CallKwargs, LayerArgs } from './types.js';

export interface ConvArgs extends LayerArgs {
  /** Number of output channels. */
  filters: number;
  /** Kernel size, square or [height, width]; default 3, the seed's `default_conv_kwargs`. */
  kernelSize?: number | [number, number];
  /** 'same' (default, as the seed) or 'valid' (the seed's `padding=0`). */
  padding?: 'same' | 'valid';
  /** Factor applied to the weight in every forward pass; null (default) applies none. */
  temperature?: number | null;
  /** Learning-rate multiplier: the initial weight is divided by it and the forward pass multiplies it back; null (default): off. */
  lrMult?: number | null;
  /** Seed of the default initialisation (PyTorch's Conv2d default); random when omitted. */
  seed?: number;
}

/**
 * PyTorch's default initialisation of `nn.Conv2d` / `nn.Linear` weights:
 * `kaiming_uniform_(a=√5)`, i.e. U(-1/√fan_in, 1/√fan_in). tfjs computes the same
 * fan-in (kh·kw·cin for an HWIO kernel, rows for a matrix), so a variance-scaling
 * initializer with scale 1/3 reproduces it.
 */
export function torchDefaultInitializer(seed?: number): ReturnType<typeof tfl.initializers.varianceScaling> {
  return tfl.initializers.varianceScaling({ scale: 1 / 3, mode: 'fanIn', distribution: 'uniform', seed });
}

/**
 * The seed's `Conv`: a bias-free 2-D convolution, 3x3 'same' by default, whose
 * weight is multiplied by `temperature` and by `lrMult` in the forward pass (and
 * divided by `lrMult` once at initialisation, so `lrMult` scales the effective
 * learning rate without changing the initial function). The weight is stored
 * channels-last as `[kh, kw, cin, cout]` and named `weight`, like the seed's
 * state-dict entry; its default initialisation is PyTorch's Conv2d default.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Conv } from 'tfjs-dataflow';
 *
 * const input = tfl.input({ shape: [32, 32, 16] });
 * // 3x3 'same', 32 output channels, no bias: [N, 32, 32, 16] -> [N, 32, 32, 32].
 * const y = new Conv({ name: 'conv', filters: 32, seed: 1 }).apply(input) as tfl.SymbolicTensor;
 * ```
 */
export class Conv extends tfl.layers.Layer {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>Conv'`. */
  static className = namespacedClassName('Conv');
  /** Number of output channels. */
  readonly filters: number;
  /** Kernel size, `[height, width]`. */
  readonly kernelSize: [number, number];
  /** 'same' or 'valid'. */
  readonly padding: 'same' | 'valid';
  /** Factor applied to the weight in every forward pass; null: none. */
  readonly temperature: number | null;
  /** Learning-rate multiplier (see {@link ConvArgs.lrMult}); null: off. */
  readonly lrMult: number | null;
  /** Seed of the default initialisation; undefined: random. */
  readonly seed: number | undefined;
  /** The convolution kernel, `[kh, kw, cin, cout]`; set by build(). */
  weight!: tfl.LayerVariable;
  private inChannels: number | null = null;

  constructor(args: ConvArgs) {
    super(withDefaultName(args, 'Conv'));
    const name = `Conv '${this.name}'`;
    this.filters = checkPositiveInt(args.filters, 'filters', name);
    const k = args.kernelSize ?? 3;
    const ks = typeof k === 'number' ? [k, k] : k;
    if (!Array.isArray(ks) || ks.length !== 2) {
      throw new Error(`${name}: argument 'kernelSize' must be a positive integer or [height, width], got ${JSON.stringify(k)}`);
    }
    this.kernelSize = [checkPositiveInt(ks[0], 'kernelSize', name), checkPositiveInt(ks[1], 'kernelSize', name)];
    this.padding = args.padding ?? 'same';
    if (this.padding !== 'same' && this.padding !== 'valid') {
      throw new Error(`${name}: argument 'padding' must be 'same' or 'valid', got ${JSON.stringify(args.padding)}`);
    }
    this.temperature = checkOptionalFactor(args.temperature, 'temperature', name);
    this.lrMult = checkOptionalFactor(args.lrMult, 'lrMult', name);
    this.seed = args.seed;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = singleShape(inputShape, `Conv '${this.name}'`);
    checkInput({ shape }, 4, `Conv '${this.name}'`);
    const cin = knownLastAxis(shape, `Conv '${this.name}'`);
    this.inChannels = cin;
    this.weight = this.addWeight(
      scopedWeightName(this, 'weight'),
      [this.kernelSize[0], this.kernelSize[1], cin, this.filters],
      'float32',
      torchDefaultInitializer(this.seed),
      undefined,
      true,
    );
    if (this.lrMult != null) {
      const scaled = tf.tidy(() => tf.div(this.weight.read(), this.lrMult!));
      this.weight.write(scaled);
      scaled.dispose();
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    const [n, h, w] = singleShape(inputShape, `Conv '${this.name}'`);
    if (this.padding === 'same') return [n!, h!, w!, this.filters];
    const out = (d: number | null | undefined, k: number) => (d == null ? null : d - k + 1);
    return [n!, out(h, this.kernelSize[0])!, out(w, this.kernelSize[1])!, this.filters];
  }

  /** The weight as used in the forward pass: `weight · temperature · lrMult`. */
  effectiveWeight(): tf.Tensor4D {
    return tf.tidy(() => {
      let w = this.weight.read() as tf.Tensor4D;
      if (this.temperature != null) w = tf.mul(w, this.temperature);
      if (this.lrMult != null) w = tf.mul(w, this.lrMult);
      return w;
    });
  }

  override call(inputs: tf.Tensor | tf.Tensor[], _kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = singleInput(inputs, `Conv '${this.name}'`);
      checkInput(x, 4, `Conv '${this.name}'`, this.inChannels);
      return tf.conv2d(x as tf.Tensor4D, this.effectiveWeight(), 1, this.padding);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      filters: this.filters,
      kernelSize: this.kernelSize,
      padding: this.padding,
      temperature: this.temperature,
      lrMult: this.lrMult,
    };
    if (this.seed != null) config['seed'] = this.seed;
    return { ...super.getConfig(), ...config };
  }
}
registerLayerClass(Conv, 'Conv');
