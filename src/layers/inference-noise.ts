import type * as tfl from '@tensorflow/tfjs-layers';
import { describeReceived } from '../validation.js';
import { findDiscreteActions } from './discrete-action.js';

/** How the discrete actions of a model draw their noise inside {@link withInferenceNoise} (and `predictWithFlipTTA`). */
export interface InferenceNoiseOptions {
  /**
   * Seeds the noise for the call: the model's `DiscreteAction` number `i` (in `findDiscreteActions` order) draws from
   * the stream `{ seed, counter: i * 2^32 }`, so the same seed on the same batch gives the same logits, bit for bit
   * on one backend, in another process and on the model saved and loaded. Each layer's own stream is put back
   * afterwards. Default: none, each layer's own stream, which moves on with every call (the seed's behaviour).
   */
  seed?: number;
  /**
   * 'sample' (the default) adds the noise at inference as the seed does; 'off' leaves it out for the call, as
   * `noiseAtInference: false` does: deterministic and independent of the rest of the batch, but a different
   * predictor, neither the seed's evaluation nor the average of its noisy predictions.
   */
  noise?: 'sample' | 'off';
}

/** The counter offset between the seeded streams of two discrete actions: 2^32 draws each before they could overlap. */
const STREAM_STRIDE = 2 ** 32;

/**
 * Runs `fn` with the inference noise of `model`'s discrete actions as `options` say (seeded, or off), then puts each
 * layer back as it was: its noise stream where it stood and its own `noiseAtInference`. Also when `fn` throws, and,
 * when `fn` returns a promise, once it settles.
 *
 * @remarks
 * The seed adds the discrete actions' noise at inference too, so two predictions of one model differ; this makes one
 * reproducible without changing the model. Seeded, a prediction is still the seed's stochastic one (the same
 * distribution, a fixed draw): the noise's scale is the std of the whole batch a layer sees, so the logits of an
 * image depend on the rest of its batch, and on the batch's order, as in the seed's evaluation.
 * With `noise: 'off'` each action passes its input through. That is the noise's mean at the action, and the
 * layers that follow only up to the first nonlinearity (the next conv, the add of the state prediction, a batch norm
 * in inference mode) keep it so; a max-pool, a GELU and the head's global max-pool do not, so the noiseless logits are
 * not the expectation of the noisy ones (Jensen's inequality: a max-pool of noisy inputs is larger on average).
 * Calls to the model from elsewhere while a promise returned by `fn` is pending draw from the seeded streams too.
 */
export function withInferenceNoise<T>(model: tfl.LayersModel | tfl.layers.Layer, options: InferenceNoiseOptions, fn: () => T): T {
  const { seed, noise } = checkOptions(options);
  if (typeof fn !== 'function') throw new Error(`withInferenceNoise: fn must be a function, got ${describeReceived(fn)}`);
  const actions = findDiscreteActions(model);
  const saved = actions.map((a) => ({ state: a.random.getState(), override: a.inferenceNoiseOverride }));
  const restore = () => {
    actions.forEach((a, i) => {
      a.random.setState(saved[i]!.state);
      a.inferenceNoiseOverride = saved[i]!.override;
    });
  };
  actions.forEach((a, i) => {
    if (seed !== undefined) a.random.setState({ seed, counter: i * STREAM_STRIDE });
    if (noise !== undefined) a.inferenceNoiseOverride = noise === 'sample';
  });
  let result: T;
  try {
    result = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (isPromiseLike(result)) {
    return Promise.resolve(result).finally(restore) as T;
  }
  restore();
  return result;
}

function checkOptions(options: InferenceNoiseOptions): InferenceNoiseOptions {
  if (options == null || typeof options !== 'object') {
    throw new Error(
      `withInferenceNoise: options must be an object such as { seed: 7 } or { noise: 'off' }, got ${describeReceived(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (key !== 'seed' && key !== 'noise') throw new Error(`withInferenceNoise: unknown option '${key}'; expected seed or noise`);
  }
  const { seed, noise } = options;
  if (seed !== undefined && !Number.isSafeInteger(seed)) {
    throw new Error(`withInferenceNoise: option 'seed' must be a safe integer, got ${describeReceived(seed)}`);
  }
  if (noise !== undefined && noise !== 'sample' && noise !== 'off') {
    throw new Error(`withInferenceNoise: option 'noise' must be 'sample' or 'off', got ${describeReceived(noise)}`);
  }
  return options;
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return value != null && typeof (value as PromiseLike<unknown>).then === 'function';
}
