import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { simulateDiscreteAction } from '../ops/discrete-action.js';
import { DeviceRandom } from '../ops/random.js';
import { stopGradient } from '../ops/stop-gradient.js';
import { CompositeLayer } from './composite.js';
import { checkBoolean, checkFiniteNonNegative, singleInput, singleShape } from '../validation.js';
import type { CallKwargs, LayerArgs } from './types.js';
import { namespacedClassName, registerLayerClass, withDefaultName } from './registry.js';

/** Options of the `DiscreteAction` layer, on top of tfjs-layers' own (name, inputShape, ...). */
export interface DiscreteActionArgs extends LayerArgs {
  /** Noise scale as a multiple of the input's std, the seed's `noise_std_mul`; default 1. */
  noiseStd?: number;
  /** Also cut the gradient through the std; default false (the seed keeps it: a named variant). */
  detachStd?: boolean;
  /** Add the noise outside training too, as the seed does (its eval pass and EMA net are noisy); default true. */
  noiseAtInference?: boolean;
  /** Seed of the layer's `DeviceRandom`; default drawn at random when the layer is made (and then saved). */
  seed?: number;
}

/**
 * The seed's `simulate_discrete_action` between conv groups as a layer:
 * `stopGradient(x) + noiseStd * std(x) * N(0, 1)` (see `simulateDiscreteAction`),
 * with the noise drawn by the layer's own seeded `DeviceRandom` on the backend.
 *
 * @remarks
 * The seed adds the noise in training and in eval alike, so this layer does by
 * default; `noiseAtInference: false` passes x through (still cut) when the call
 * is not training. `seed`, `noiseStd`, `detachStd` and `noiseAtInference` are
 * saved with the model. A loaded model restarts the noise stream at the seed's
 * start; `random.setState` moves it (e.g. to a checkpointed state). No weights.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { ConvGroup, DiscreteAction } from 'tfjs-dataflow';
 *
 * const input = tfl.input({ shape: [32, 32, 3] });
 * const [y] = new ConvGroup({ channelsOut: 64, statePredDim: 256, seed: 1 }).apply(input) as tfl.SymbolicTensor[];
 * // The next block sees stopGradient(y) plus noise of the size of y's std: no gradient flows back.
 * const action = new DiscreteAction({ name: 'action_1', noiseStd: 1, seed: 2 }).apply(y!) as tfl.SymbolicTensor;
 * ```
 */
export class DiscreteAction extends tfl.layers.Layer {
  /** The name tfjs's serialization knows the class by, and model.json records: `'tfjs-dataflow>DiscreteAction'`. */
  static className = namespacedClassName('DiscreteAction');
  /** Noise scale as a multiple of the input's std. */
  readonly noiseStd: number;
  /** Whether the gradient through the std is cut too. */
  readonly detachStd: boolean;
  /** Whether the noise is added outside training too. */
  readonly noiseAtInference: boolean;
  /** Seed of the layer's `DeviceRandom` (drawn at random when none was given). */
  readonly seed: number;
  /** The layer's generator; `getState` / `setState` checkpoint its noise stream. */
  readonly random: DeviceRandom;
  /** Set by `withInferenceNoise` for the calls it runs: replaces `noiseAtInference` (undefined: the layer's own). @internal */
  inferenceNoiseOverride: boolean | undefined = undefined;

  constructor(args: DiscreteActionArgs = {}) {
    super(withDefaultName(args, 'DiscreteAction'));
    const name = `DiscreteAction '${this.name}'`;
    this.noiseStd = checkFiniteNonNegative(args.noiseStd ?? 1, 'noiseStd', name);
    // A string such as 'yes' (or 'false') would read as true.
    this.detachStd = checkBoolean(args.detachStd ?? false, 'detachStd', name);
    this.noiseAtInference = checkBoolean(args.noiseAtInference ?? true, 'noiseAtInference', name);
    this.seed = args.seed ?? Math.floor(Math.random() * 2 ** 32);
    if (!Number.isSafeInteger(this.seed)) throw new Error(`${name}: argument 'seed' must be a safe integer, got ${String(args.seed)}`);
    this.random = new DeviceRandom(this.seed);
    this.supportsMasking = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape {
    return singleShape(inputShape, `DiscreteAction '${this.name}'`);
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      const x = singleInput(inputs, `DiscreteAction '${this.name}'`);
      if (!(kwargs?.training === true) && !(this.inferenceNoiseOverride ?? this.noiseAtInference)) return stopGradient(x);
      try {
        return simulateDiscreteAction(x, { noiseStd: this.noiseStd, detachStd: this.detachStd, random: this.random });
      } catch (e) {
        throw new Error(`DiscreteAction '${this.name}': ${(e as Error).message}`);
      }
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      noiseStd: this.noiseStd,
      detachStd: this.detachStd,
      noiseAtInference: this.noiseAtInference,
      seed: this.seed,
    };
  }
}
registerLayerClass(DiscreteAction, 'DiscreteAction');

/**
 * The `DiscreteAction` layers of a model (a `tf.LayersModel`, or any layer), in the model's layer
 * order, searching nested models and the sublayers of composite layers too: the noise streams a
 * trainer checkpoints and restores.
 */
export function findDiscreteActions(model: tfl.LayersModel | tfl.layers.Layer): DiscreteAction[] {
  const found: DiscreteAction[] = [];
  const visit = (layer: tfl.layers.Layer) => {
    if (layer instanceof DiscreteAction) {
      if (!found.includes(layer)) found.push(layer);
      return;
    }
    const nested = (layer as { layers?: tfl.layers.Layer[] }).layers;
    for (const child of nested ?? (layer instanceof CompositeLayer ? layer.sublayers : [])) visit(child);
  };
  visit(model);
  return found;
}
