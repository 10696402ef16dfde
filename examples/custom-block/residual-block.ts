// A user-defined block for the dataflow: a residual conv block with its own state projection.
// Inside this repository it imports ../../src; in your own project import from 'tfjs-dataflow'.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BatchNorm, CompositeLayer, Conv, batchNormGelu, gelu, maxPool2, type CallKwargs, type LayerArgs } from '../../src/index.js';
// The library's own argument checks: internal, not exported by the package. In your own project, write checks of
// your own (or copy src/validation.ts) so that errors name the block, the argument and what arrived.
import { checkInput, checkPositiveInt, checkSpatialAtLeast, singleShape } from '../../src/validation.js';

export interface ResidualBlockArgs extends LayerArgs {
  /** Output channels of the block (both 3x3 convolutions). */
  channelsOut: number;
  /** Channels of the state prediction (the next block's output channels); null (default) for a last block without one. */
  statePredDim?: number | null;
  /** Seed of the sublayers' initialisation (conv1: seed, conv2: seed+1, shortcut: seed+2, state_project: seed+3); random when omitted. */
  seed?: number;
}

/**
 * A residual conv block that plugs into SpeedyConvNet's dataflow in place of a `ConvGroup`:
 * `y = norm2(conv2(gelu(norm1(pool(conv1(x))))))`, output `gelu(y + shortcut(pool(x)))`,
 * where the shortcut is a 1x1 conv when the channel count changes. With `statePredDim` it also
 * predicts the next block's output, as the seed's groups do: `state_norm(pool(state_project(out)))`,
 * at half the block's resolution, to be added to that block's (detached, noisy) output.
 *
 * @remarks
 * Like `ConvGroup`, it extends the library's `CompositeLayer`, which reports its sublayers' weights
 * as its own (tfjs-layers does not track nested layers), so `model.save`, the optimizer's bias split
 * and the EMA see every one of them, and which runs the block once per pass although tfjs-layers asks
 * a two-output layer once per output. Outputs `[x, statePrediction]` with a state prediction, else `x`.
 */
export class ResidualBlock extends CompositeLayer {
  static className = 'ResidualBlock';
  readonly channelsOut: number;
  readonly statePredDim: number | null;
  readonly seed: number | undefined;
  readonly conv1: Conv;
  readonly norm1: BatchNorm;
  readonly conv2: Conv;
  readonly norm2: BatchNorm;
  /** 1x1 projection of the skip path; created in build() when the input's channels differ from channelsOut. */
  shortcut: Conv | null = null;
  readonly stateProject: Conv | null;
  readonly stateNorm: BatchNorm | null;

  constructor(args: ResidualBlockArgs) {
    super(args);
    const name = `ResidualBlock '${this.name}'`;
    this.channelsOut = checkPositiveInt(args.channelsOut, 'channelsOut', name);
    this.statePredDim = args.statePredDim == null ? null : checkPositiveInt(args.statePredDim, 'statePredDim', name);
    this.seed = args.seed;
    const seed = (i: number) => (args.seed == null ? undefined : args.seed + i);
    this.conv1 = new Conv({ name: 'conv1', filters: this.channelsOut, seed: seed(0) });
    this.norm1 = new BatchNorm({ name: 'norm1' });
    this.conv2 = new Conv({ name: 'conv2', filters: this.channelsOut, seed: seed(1) });
    this.norm2 = new BatchNorm({ name: 'norm2' });
    this.stateProject = this.statePredDim == null ? null : new Conv({ name: 'state_project', filters: this.statePredDim, seed: seed(3) });
    this.stateNorm = this.statePredDim == null ? null : new BatchNorm({ name: 'state_norm' });
  }

  /** The sublayers that hold weights, in a fixed order (the EMA pairs weights by order). */
  override get sublayers(): tfl.layers.Layer[] {
    // The base constructor reads the weight getters before the sublayers exist.
    if (this.conv1 == null) return [];
    const layers: tfl.layers.Layer[] = [this.conv1, this.norm1, this.conv2, this.norm2];
    if (this.shortcut) layers.push(this.shortcut);
    if (this.stateProject && this.stateNorm) layers.push(this.stateProject, this.stateNorm);
    return layers;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const name = `ResidualBlock '${this.name}'`;
    const shape = singleShape(inputShape, name);
    checkInput({ shape }, 4, name);
    const cin = shape[3];
    if (cin == null)
      throw new Error(
        `${name} expects input with a known channel count (last axis), got shape [${shape.map((d) => d ?? 'null').join(',')}]`,
      );
    checkSpatialAtLeast(
      shape,
      this.statePredDim == null ? 2 : 4,
      name,
      this.statePredDim == null ? 'it max-pools once' : 'it max-pools twice',
    );
    if (cin !== this.channelsOut)
      this.shortcut = new Conv({
        name: 'shortcut',
        filters: this.channelsOut,
        kernelSize: 1,
        seed: this.seed == null ? undefined : this.seed + 2,
      });
    const convOut = this.buildSublayer(this.conv1, shape);
    const pooled: tfl.Shape = [convOut[0]!, Math.floor(convOut[1]! / 2), Math.floor(convOut[2]! / 2), this.channelsOut];
    this.buildSublayer(this.norm1, pooled);
    this.buildSublayer(this.conv2, pooled);
    this.buildSublayer(this.norm2, pooled);
    if (this.shortcut) this.buildSublayer(this.shortcut, [shape[0]!, pooled[1]!, pooled[2]!, cin]);
    if (this.stateProject && this.stateNorm) {
      const projected = this.buildSublayer(this.stateProject, pooled);
      this.buildSublayer(this.stateNorm, [projected[0]!, Math.floor(projected[1]! / 2), Math.floor(projected[2]! / 2), this.statePredDim!]);
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    const [n, h, w] = singleShape(inputShape, `ResidualBlock '${this.name}'`);
    const half = (d: number | null | undefined) => (d == null ? null : Math.floor(d / 2));
    const out: tfl.Shape = [n!, half(h), half(w), this.channelsOut];
    if (this.statePredDim == null) return out;
    return [out, [n!, half(half(h)), half(half(w)), this.statePredDim]];
  }

  protected override forward(input: tf.Tensor, kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    return tf.tidy(() => {
      const x = input as tf.Tensor4D;
      const skipIn = maxPool2(x);
      const skip = this.shortcut ? this.shortcut.call(skipIn, kwargs) : skipIn;
      // batchNormGelu, not gelu(norm1.call(...)): where the backend has the fused kernels the GELU runs inside them.
      let y = batchNormGelu(maxPool2(this.conv1.call(x, kwargs) as tf.Tensor4D), this.norm1, kwargs);
      y = this.norm2.call(this.conv2.call(y, kwargs), kwargs);
      const out = gelu(tf.add(y, skip)) as tf.Tensor4D;
      if (!this.stateProject || !this.stateNorm) return out;
      // The state projection reads the block's output before any discrete action: it is fully differentiable.
      const state = this.stateNorm.call(maxPool2(this.stateProject.call(out, kwargs) as tf.Tensor4D), kwargs);
      return [out, state];
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = { channelsOut: this.channelsOut, statePredDim: this.statePredDim };
    if (this.seed != null) config['seed'] = this.seed;
    return { ...super.getConfig(), ...config };
  }
}
tf.serialization.registerClass(ResidualBlock);
