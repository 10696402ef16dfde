import type * as tfl from '@tensorflow/tfjs-layers';

// tfjs-layers prefixes a weight's name with the name of the layer whose build() is running,
// and keeps its name-scope stack private. A composite layer builds its children inside its
// own build(), so it records each child's prefix here and the child adds it to its weight names.
const childScopes = new WeakMap<tfl.layers.Layer, string>();

/** Marks `child` as built by a composite layer under `scope` (e.g. 'conv1'). */
export function setWeightScope(child: tfl.layers.Layer, scope: string): void {
  childScopes.set(child, scope);
}

/** The name to give `addWeight` in `layer`: 'weight', or 'conv1/weight' inside a composite layer. */
export function scopedWeightName(layer: tfl.layers.Layer, name: string): string {
  const scope = childScopes.get(layer);
  return scope ? `${scope}/${name}` : name;
}

/** Shape of a layer's input, unwrapped from the single-element list tfjs-layers sometimes passes. */
export function singleShape(inputShape: tfl.Shape | tfl.Shape[], layer: string): tfl.Shape {
  if (Array.isArray(inputShape[0])) {
    if (inputShape.length !== 1) throw new Error(`${layer} expects one input, got ${inputShape.length}`);
    return inputShape[0] as tfl.Shape;
  }
  return inputShape as tfl.Shape;
}

/** The single tensor of a call's inputs. */
export function singleInput<T>(inputs: T | T[], layer: string): T {
  if (Array.isArray(inputs)) {
    if (inputs.length !== 1) throw new Error(`${layer} expects one input, got ${inputs.length}`);
    return inputs[0]!;
  }
  return inputs;
}

/** Throws unless `x` is a float32 tensor of rank `rank` (channels last); names the layer and argument. */
export function checkInput(
  x: { shape: tfl.Shape | number[]; dtype?: string },
  rank: number,
  layer: string,
  channels?: number | null,
): void {
  const shape = `[${x.shape.map((d) => (d == null ? 'null' : d)).join(',')}]`;
  if (x.shape.length !== rank) {
    throw new Error(`${layer} expects input 'inputs' of rank ${rank}${rank === 4 ? ' (NHWC)' : ''}, got shape ${shape}`);
  }
  if (channels != null && x.shape[rank - 1] != null && x.shape[rank - 1] !== channels) {
    throw new Error(`${layer} expects input 'inputs' with ${channels} channels (last axis), got shape ${shape}`);
  }
  if (x.dtype != null && x.dtype !== 'float32') {
    throw new Error(`${layer} expects input 'inputs' of dtype float32, got '${x.dtype}'`);
  }
}

/**
 * Throws unless the spatial sides of an NHWC `shape` (those known) are at least `min`, e.g. for a
 * block that max-pools twice; `why` says what needs the size.
 */
export function checkSpatialAtLeast(shape: ReadonlyArray<number | null | undefined>, min: number, layer: string, why?: string): void {
  const [, h, w] = shape;
  if ((h != null && h < min) || (w != null && w < min)) {
    throw new Error(
      `${layer} expects input 'inputs' at least ${min}x${min} spatially${why ? ` (${why})` : ''}, got shape [${shape.map((d) => d ?? 'null').join(',')}]`,
    );
  }
}

/** Throws unless `value` is a positive integer; names the argument. */
export function checkPositiveInt(value: unknown, arg: string, layer: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new Error(`${layer}: argument '${arg}' must be a positive integer, got ${String(value)}`);
  }
  return value;
}

/** A received value as an error message shows it: a string quoted, so that '0.9' and 0.9 read differently. */
export function describeReceived(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

/** Throws unless `value` is a finite number >= 0; names the argument. */
export function checkFiniteNonNegative(value: unknown, arg: string, layer: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new Error(`${layer}: argument '${arg}' must be a finite number >= 0, got ${describeReceived(value)}`);
  }
  return value;
}

/** Throws unless `value` is true or false (a string such as 'yes' would read as true); names the argument. */
export function checkBoolean(value: unknown, arg: string, layer: string): boolean {
  if (typeof value !== 'boolean') throw new Error(`${layer}: argument '${arg}' must be true or false, got ${describeReceived(value)}`);
  return value;
}

/** The options every tfjs-layers layer takes (name, trainable, inputShape, ...); not exported by tfjs-layers itself. */
export type LayerArgs = NonNullable<ConstructorParameters<typeof tfl.layers.Layer>[0]>;

/** tfjs-layers' keyword arguments to `call()`; `training` selects batch statistics and updates. */
export type CallKwargs = { training?: boolean } & Record<string, unknown>;
