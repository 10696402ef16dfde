import type * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { setWeightScope, singleInput, type CallKwargs } from './registry.js';

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
 * statistics twice per training step.
 */
export abstract class CompositeLayer extends tfl.layers.Layer {
  private lastCall: { input: tf.Tensor; training: boolean; params: object[]; outputs: tf.Tensor[] } | null = null;

  /** The sublayers that hold weights, in a fixed order; [] before the subclass constructor has made them. */
  abstract get sublayers(): tfl.layers.Layer[];

  /** The block's computation on one input (called inside `tf.tidy` by the caller's layer machinery). */
  protected abstract forward(input: tf.Tensor, kwargs: CallKwargs): tf.Tensor | tf.Tensor[];

  override get trainableWeights(): tfl.LayerVariable[] {
    return this.trainable ? this.sublayers.flatMap((l) => l.trainableWeights) : [];
  }

  override set trainableWeights(_weights: tfl.LayerVariable[]) {
    // Weights live in the sublayers; tfjs-layers only assigns [] here.
  }

  override get nonTrainableWeights(): tfl.LayerVariable[] {
    return this.trainable ? this.sublayers.flatMap((l) => l.nonTrainableWeights) : this.sublayers.flatMap((l) => l.weights);
  }

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

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor | tf.Tensor[] {
    const input = singleInput(inputs, `${this.getClassName()} '${this.name}'`);
    const training = kwargs?.training === true;
    // The repeat is recognised by the same input tensor, mode and parameter values (running statistics aside).
    const params = this.sublayers
      .flatMap((l) => l.weights)
      .filter((w) => !w.originalName.includes('running_'))
      .map((w) => w.read().dataId);
    const last = this.lastCall;
    if (
      last &&
      last.input === input &&
      last.training === training &&
      last.outputs.some((t) => !t.isDisposed) &&
      last.params.length === params.length &&
      last.params.every((id, i) => id === params[i])
    ) {
      return last.outputs;
    }
    const out = this.forward(input, kwargs);
    this.lastCall = Array.isArray(out) ? { input, training, params, outputs: out } : null;
    return out;
  }
}
