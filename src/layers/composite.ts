import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { singleInput } from '../validation.js';
import { setWeightScope } from './registry.js';
import type { CallKwargs } from './types.js';

/**
 * A layer built from sublayers (a conv block, a residual block): the base of `ConvGroup`,
 * and of any custom block that fits the sketch's dataflow.
 *
 * @remarks
 * tfjs-layers does not track nested layers. A subclass lists its sublayers in
 * `sublayers` (a fixed order: the EMA pairs weights by order), builds each in its
 * own `build()` with `buildSublayer(child, shape)` (so the child's weights are named
 * `<block>/<child>/weight`), and computes its outputs in `forward()`. This class
 * reports the sublayers' weights as its own, so saving, loading, optimizers and the
 * EMA see them all. It also answers a repeated call for the same pass from the first
 * one: tfjs-layers' graph executor calls a multi-output layer once per output it
 * consumes, which would otherwise run the block twice and update its batch-norm
 * statistics twice per training step. That answer is given only inside the model
 * execution that made it (see `call`); every other call, a direct (eager) one
 * included, runs the block.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { BatchNorm, CompositeLayer, Conv, batchNormGelu, type CallKwargs, type LayerArgs } from 'tfjs-dataflow';
 *
 * // conv -> batch norm -> GELU, its weights named <block>/conv/weight, <block>/norm/bias, ...
 * class ConvNormGelu extends CompositeLayer {
 *   static className = 'ConvNormGelu';
 *   readonly filters: number;
 *   readonly conv: Conv;
 *   readonly norm: BatchNorm;
 *
 *   constructor(args: LayerArgs & { filters: number }) {
 *     super(args);
 *     this.filters = args.filters;
 *     this.conv = new Conv({ name: 'conv', filters: args.filters });
 *     this.norm = new BatchNorm({ name: 'norm' });
 *   }
 *
 *   override get sublayers(): tfl.layers.Layer[] {
 *     // The base constructor reads the weights before the sublayers exist.
 *     return this.conv == null ? [] : [this.conv, this.norm];
 *   }
 *
 *   override build(inputShape: tfl.Shape | tfl.Shape[]): void {
 *     this.buildSublayer(this.norm, this.buildSublayer(this.conv, inputShape as tfl.Shape));
 *     this.built = true;
 *   }
 *
 *   override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
 *     return this.conv.computeOutputShape(inputShape) as tfl.Shape;
 *   }
 *
 *   protected override forward(x: tf.Tensor, kwargs: CallKwargs): tf.Tensor {
 *     return batchNormGelu(this.conv.call(x, kwargs) as tf.Tensor, this.norm, kwargs);
 *   }
 *
 *   override getConfig(): tf.serialization.ConfigDict {
 *     return { ...super.getConfig(), filters: this.filters };
 *   }
 * }
 * tf.serialization.registerClass(ConvNormGelu);
 * ```
 */
export abstract class CompositeLayer extends tfl.layers.Layer {
  private lastCall: CallRecord | null = null;

  /** The sublayers that hold weights, in a fixed order; [] before the subclass constructor has made them. */
  abstract get sublayers(): tfl.layers.Layer[];

  /** The block's computation on one input (called inside `tf.tidy` by the caller's layer machinery). */
  protected abstract forward(input: tf.Tensor, kwargs: CallKwargs): tf.Tensor | tf.Tensor[];

  /** The sublayers' trainable weights, in `sublayers` order ([] when the block is not trainable). */
  override get trainableWeights(): tfl.LayerVariable[] {
    return this.trainable ? this.sublayers.flatMap((l) => l.trainableWeights) : [];
  }

  /** Ignored: the weights live in the sublayers. */
  override set trainableWeights(_weights: tfl.LayerVariable[]) {
    // Weights live in the sublayers; tfjs-layers only assigns [] here.
  }

  /** The sublayers' non-trainable weights (running statistics, frozen scales; all of them when the block is not trainable). */
  override get nonTrainableWeights(): tfl.LayerVariable[] {
    return this.trainable ? this.sublayers.flatMap((l) => l.nonTrainableWeights) : this.sublayers.flatMap((l) => l.weights);
  }

  /** Ignored: the weights live in the sublayers. */
  override set nonTrainableWeights(_weights: tfl.LayerVariable[]) {
    // As above.
  }

  override setFastWeightInitDuringBuild(value: boolean): void {
    super.setFastWeightInitDuringBuild(value);
    for (const l of this.sublayers) l.setFastWeightInitDuringBuild(value);
  }

  /** Builds `child` for `inputShape` inside this layer's `build()`, its weights named `<this>/<child>/...`; returns its output shape. */
  protected buildSublayer(child: tfl.layers.Layer, inputShape: tfl.Shape): tfl.Shape {
    setWeightScope(child, child.name);
    child.build(inputShape);
    child.built = true;
    return child.computeOutputShape(inputShape) as tfl.Shape;
  }

  /**
   * Runs `forward`, or hands back the outputs of the call just before when this call is tfjs-layers' executor
   * asking again, within the same model execution, for another output of the same node. That repeat is known by
   * everything the cached outputs depend on: the executor's form of call (the inputs as a list, where a direct
   * call passes the tensor itself), the same engine scope (one execution runs inside one tidy: `model.apply`, each
   * batch of `predict`, a `fit` step), the same call options (the executor hands one object to every layer of an
   * execution; `predict` gives none, so there a call with no options counts as the same), the same input tensor,
   * the same mode, and every weight still holding the value the first call left it (its own batch-norm updates
   * included, so an optimiser or EMA step in between makes it a new call). In training every cached output must
   * also be alive; an inference execution disposes an output once its consumers have run, and ignores what a
   * repeat returns. Any other call runs the block: a direct call on a tensor always does.
   */
  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    const input = singleInput(inputs, `${this.getClassName().replace(/^.*>/, '')} '${this.name}'`);
    const training = kwargs?.training === true;
    const scope = tf.engine().state.activeScope as object | null;
    const executorScope = Array.isArray(inputs) ? scope : null;
    const last = this.lastCall;
    if (last && executorScope != null && this.isRepeatOf(last, executorScope, kwargs, input, training)) return last.outputs;
    this.lastCall = null;
    const out = this.forward(input, kwargs);
    if (Array.isArray(out) && executorScope != null) {
      this.lastCall = { scope: executorScope, kwargs, input, training, weights: this.weightValues(), outputs: out };
    }
    return out;
  }

  private isRepeatOf(last: CallRecord, scope: object, kwargs: CallKwargs, input: tf.Tensor, training: boolean): boolean {
    const sameOptions = last.kwargs === kwargs || (hasNoOptions(kwargs) && hasNoOptions(last.kwargs));
    if (last.scope !== scope || !sameOptions || last.input !== input || last.training !== training || input.isDisposed) return false;
    if (training && last.outputs.some((t) => t.isDisposed)) return false;
    const weights = this.weightValues();
    return weights.length === last.weights.length && weights.every((id, i) => id === last.weights[i]);
  }

  /** The data behind each of the sublayers' weights now: a write (an optimiser step, a running-statistics update) replaces it. */
  private weightValues(): object[] {
    return this.sublayers.flatMap((l) => l.weights).map((w) => w.read().dataId);
  }
}

/** A multi-output call of a `CompositeLayer`, and what its outputs were computed from. */
interface CallRecord {
  /** The engine scope (tidy) the call ran in: one model execution runs in one. */
  scope: object;
  kwargs: CallKwargs;
  input: tf.Tensor;
  training: boolean;
  /** Each weight's data as the call left it (after its own batch-norm updates). */
  weights: object[];
  outputs: tf.Tensor[];
}

/** Call options that say nothing: what tfjs-layers' `apply` makes for a call given none (`predict`'s executor). */
function hasNoOptions(kwargs: CallKwargs | undefined): boolean {
  return kwargs == null || Object.values(kwargs).every((v) => v === undefined);
}
