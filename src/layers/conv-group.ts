import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { batchNormGelu } from '../ops/batch-norm.js';
import { maxPool2 } from '../ops/pooling.js';
import { BatchNorm } from './batch-norm.js';
import { CompositeLayer } from './composite.js';
import { Conv } from './conv.js';
import {
  checkFiniteNonNegative,
  checkInput,
  checkPositiveInt,
  checkSpatialAtLeast,
  checkUnitInterval,
  singleShape,
} from '../validation.js';
import type { CallKwargs, LayerArgs } from './types.js';
import { namespacedClassName, registerLayerClass, withDefaultName } from './registry.js';

export interface ConvGroupArgs extends LayerArgs {
  /** Output channels of both convolutions. */
  channelsOut: number;
  /** Expected input channels; inferred from the input when omitted. */
  channelsIn?: number;
  /** Channels of the state prediction; null (default) for a group without one, like the seed's last group. */
  statePredDim?: number | null;
  /** Seed of the sublayers' default initialisation (conv1: seed, conv2: seed+1, state_project: seed+2); random when omitted. */
  seed?: number;
  /** Momentum of the group's batch norms, PyTorch's convention (the new batch's weight); default 0.4, the seed's. */
  batchNormMomentum?: number;
  /** Epsilon of the group's batch norms; default 1e-12, the seed's. */
  batchNormEps?: number;
}

const pool = (x: tf.Tensor) => maxPool2(x as tf.Tensor4D);
const half = (d: number | null | undefined) => (d == null ? null : Math.floor(d / 2));

/**
 * The seed's `ConvGroup`: conv1 (3x3) → 2x2 max-pool → norm1 → GELU → conv2 (3x3)
 * → norm2 → GELU, and, when `statePredDim` is set, a state prediction from the
 * group's output: state_project (3x3) → 2x2 max-pool → state_norm.
 *
 * @remarks
 * With a state prediction the layer has two outputs, `[x, statePrediction]`; without
 * one it has the single output `x` (the seed returns `(x, None)`; a tfjs layer cannot
 * output null). The sublayers are built in `build()` and their weights are reported
 * as this layer's, named `<group>/conv1/weight`, `<group>/norm1/bias`, ... so saving,
 * loading, optimizers and the EMA see them all. `training: true` in the call's kwargs
 * reaches the batch norms.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { ConvGroup } from 'tfjs-dataflow';
 *
 * const input = tfl.input({ shape: [32, 32, 24] });
 * // Two outputs: the group's output [N, 16, 16, 64] and its prediction of the next group's state [N, 8, 8, 256].
 * const [x, statePrediction] = new ConvGroup({ name: 'group_1', channelsOut: 64, statePredDim: 256, seed: 1 }).apply(
 *   input,
 * ) as tfl.SymbolicTensor[];
 * // Without statePredDim, one output.
 * const last = new ConvGroup({ name: 'group_3', channelsOut: 256, seed: 3 }).apply(x!) as tfl.SymbolicTensor;
 * ```
 */
export class ConvGroup extends CompositeLayer {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>ConvGroup'`. */
  static className = namespacedClassName('ConvGroup');
  /** Output channels of both convolutions. */
  readonly channelsOut: number;
  /** Expected input channels; null: taken from the input. */
  readonly channelsIn: number | null;
  /** Channels of the state prediction; null: the group has none (one output). */
  readonly statePredDim: number | null;
  /** Seed of the sublayers' default initialisation; undefined: random. */
  readonly seed: number | undefined;
  /** Momentum of the group's batch norms (PyTorch's convention). */
  readonly batchNormMomentum: number;
  /** Epsilon of the group's batch norms. */
  readonly batchNormEps: number;
  /** The first 3x3 convolution (before the max-pool). */
  readonly conv1: Conv;
  /** The second 3x3 convolution. */
  readonly conv2: Conv;
  /** The batch norm after the max-pool. */
  readonly norm1: BatchNorm;
  /** The batch norm after conv2. */
  readonly norm2: BatchNorm;
  /** The state projection; null without a state prediction. */
  readonly stateProject: Conv | null;
  /** The state prediction's batch norm; null without a state prediction. */
  readonly stateNorm: BatchNorm | null;

  constructor(args: ConvGroupArgs) {
    super(withDefaultName(args, 'ConvGroup'));
    const name = `ConvGroup '${this.name}'`;
    this.channelsOut = checkPositiveInt(args.channelsOut, 'channelsOut', name);
    this.channelsIn = args.channelsIn == null ? null : checkPositiveInt(args.channelsIn, 'channelsIn', name);
    this.statePredDim = args.statePredDim == null ? null : checkPositiveInt(args.statePredDim, 'statePredDim', name);
    this.seed = args.seed;
    const seed = (i: number) => (args.seed == null ? undefined : args.seed + i);
    this.batchNormMomentum = checkUnitInterval(args.batchNormMomentum ?? 0.4, 'batchNormMomentum', name);
    this.batchNormEps = checkFiniteNonNegative(args.batchNormEps ?? 1e-12, 'batchNormEps', name);
    const norm = (normName: string) => new BatchNorm({ name: normName, momentum: this.batchNormMomentum, eps: this.batchNormEps });
    this.conv1 = new Conv({ name: 'conv1', filters: this.channelsOut, seed: seed(0) });
    this.conv2 = new Conv({ name: 'conv2', filters: this.channelsOut, seed: seed(1) });
    this.norm1 = norm('norm1');
    this.norm2 = norm('norm2');
    this.stateProject = this.statePredDim == null ? null : new Conv({ name: 'state_project', filters: this.statePredDim, seed: seed(2) });
    this.stateNorm = this.statePredDim == null ? null : norm('state_norm');
  }

  /** The sublayers, in the seed's state-dict order. */
  override get sublayers(): tfl.layers.Layer[] {
    // The base constructor reads the weight getters before the sublayers exist.
    if (this.conv1 == null) return [];
    const layers: tfl.layers.Layer[] = [this.conv1, this.conv2, this.norm1, this.norm2];
    if (this.stateProject && this.stateNorm) layers.push(this.stateProject, this.stateNorm);
    return layers;
  }

  private check(shape: ReadonlyArray<number | null>, dtype?: string): void {
    const name = `ConvGroup '${this.name}'`;
    checkInput({ shape, dtype }, 4, name, this.channelsIn);
    const min = this.statePredDim == null ? 2 : 4;
    checkSpatialAtLeast(shape, min, name, `it max-pools ${min === 2 ? 'once' : 'twice'}`);
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = singleShape(inputShape, `ConvGroup '${this.name}'`);
    this.check(shape);
    const [n, h, w] = shape;
    const pooled: tfl.Shape = [n!, half(h)!, half(w)!, this.channelsOut];
    this.buildSublayer(this.conv1, shape);
    this.buildSublayer(this.norm1, pooled);
    this.buildSublayer(this.conv2, pooled);
    this.buildSublayer(this.norm2, pooled);
    if (this.stateProject && this.stateNorm) {
      this.buildSublayer(this.stateProject, pooled);
      this.buildSublayer(this.stateNorm, [n!, half(half(h))!, half(half(w))!, this.statePredDim!]);
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    const [n, h, w] = singleShape(inputShape, `ConvGroup '${this.name}'`);
    const out: tfl.Shape = [n!, half(h)!, half(w)!, this.channelsOut];
    if (this.statePredDim == null) return out;
    return [out, [n!, half(half(h))!, half(half(w))!, this.statePredDim]];
  }

  protected override forward(input: tf.Tensor, kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    return tf.tidy(() => {
      this.check(input.shape, input.dtype);
      let x = this.conv1.call(input, kwargs);
      x = batchNormGelu(pool(x), this.norm1, kwargs);
      x = batchNormGelu(this.conv2.call(x, kwargs), this.norm2, kwargs);
      if (!this.stateProject || !this.stateNorm) return x;
      const state = this.stateNorm.call(pool(this.stateProject.call(x, kwargs)), kwargs);
      return [x, state];
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      channelsOut: this.channelsOut,
      channelsIn: this.channelsIn,
      statePredDim: this.statePredDim,
      batchNormMomentum: this.batchNormMomentum,
      batchNormEps: this.batchNormEps,
    };
    if (this.seed != null) config['seed'] = this.seed;
    return { ...super.getConfig(), ...config };
  }
}
registerLayerClass(ConvGroup, 'ConvGroup');
