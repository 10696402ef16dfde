import type * as tfl from '@tensorflow/tfjs-layers';

/** The options every tfjs-layers layer takes (name, trainable, inputShape, ...); not exported by tfjs-layers itself. */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** tfjs-layers' keyword arguments to `call()`; `training` selects batch statistics and updates. */
export type CallKwargs = {
  /** True in a training pass: batch norms use and update batch statistics. */
  training?: boolean;
} & Record<string, unknown>;
