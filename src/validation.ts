/**
 * The argument and input checks of the library's layers, ops and training objects (and of a block of your own),
 * each throwing an error that names who was called, the argument, what it expects and what arrived:
 * `ConvGroup 'g': argument 'channelsOut' must be a positive integer, got 0`. The lowest module of src/ (it imports
 * nothing of the library), so ops, layers and training share one wording.
 */
import type * as tfl from '@tensorflow/tfjs-layers';

/** A shape as tfjs-layers has it (null for an unknown size) or a tensor's. */
type AnyShape = ReadonlyArray<number | null | undefined>;

/** `[2,null,3]`: a shape as the messages show it. */
export function describeShape(shape: AnyShape): string {
  return `[${shape.map((d) => d ?? 'null').join(',')}]`;
}

/** A received value as an error message shows it: a string quoted, so that '0.9' and 0.9 read differently. */
export function describeReceived(value: unknown): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
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

/**
 * Throws unless `x` is float32 (when its dtype is known) of rank `rank` (or at least `rank.atLeast`), with `lastAxis`
 * entries on its last axis when given; names the layer and argument. `lastAxisName` says what the last axis holds:
 * 'channels' (NHWC, the default) or 'features'.
 */
export function checkInput(
  x: { shape: AnyShape; dtype?: string },
  rank: number | { atLeast: number },
  layer: string,
  lastAxis?: number | null,
  lastAxisName = 'channels',
): void {
  const shape = describeShape(x.shape);
  const fits = typeof rank === 'number' ? x.shape.length === rank : x.shape.length >= rank.atLeast;
  if (!fits) {
    const expected = typeof rank === 'number' ? `${rank}${rank === 4 ? ' (NHWC)' : ''}` : `>= ${rank.atLeast} (${lastAxisName} last)`;
    throw new Error(`${layer} expects input 'inputs' of rank ${expected}, got shape ${shape}`);
  }
  const last = x.shape[x.shape.length - 1];
  if (lastAxis != null && last != null && last !== lastAxis) {
    throw new Error(`${layer} expects input 'inputs' with ${lastAxis} ${lastAxisName} (last axis), got shape ${shape}`);
  }
  if (x.dtype != null && x.dtype !== 'float32') {
    throw new Error(`${layer} expects input 'inputs' of dtype float32, got '${x.dtype}'`);
  }
}

/** The size of `shape`'s last axis, which `build()` needs known; names the layer and what the axis holds. */
export function knownLastAxis(shape: AnyShape, layer: string, lastAxisName = 'channel'): number {
  const last = shape[shape.length - 1];
  if (last == null) throw new Error(`${layer} needs a known ${lastAxisName} count (last axis), got shape ${describeShape(shape)}`);
  return last;
}

/**
 * Throws unless the spatial sides of an NHWC `shape` (those known) are at least `min`, e.g. for a
 * block that max-pools twice; `why` says what needs the size.
 */
export function checkSpatialAtLeast(shape: AnyShape, min: number, layer: string, why?: string): void {
  const [, h, w] = shape;
  if ((h != null && h < min) || (w != null && w < min)) {
    throw new Error(
      `${layer} expects input 'inputs' at least ${min}x${min} spatially${why ? ` (${why})` : ''}, got shape ${describeShape(shape)}`,
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

/** Throws unless `value` is a finite number >= 0; names the argument. */
export function checkFiniteNonNegative(value: unknown, arg: string, layer: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new Error(`${layer}: argument '${arg}' must be a finite number >= 0, got ${describeReceived(value)}`);
  }
  return value;
}

/** Throws unless `value` is a number in [0, 1] (a momentum, a decay); names the argument. */
export function checkUnitInterval(value: unknown, arg: string, layer: string): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new Error(`${layer}: argument '${arg}' must be a number in [0, 1], got ${describeReceived(value)}`);
  }
  return value;
}

/** `value`, or null when it is null or undefined; throws unless it is a finite non-zero number (a scale factor). */
export function checkOptionalFactor(value: unknown, arg: string, layer: string): number | null {
  if (value == null) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value === 0) {
    throw new Error(`${layer}: argument '${arg}' must be a finite non-zero number or null, got ${describeReceived(value)}`);
  }
  return value;
}

/** Throws unless `value` is true or false (a string such as 'yes' would read as true); names the argument. */
export function checkBoolean(value: unknown, arg: string, layer: string): boolean {
  if (typeof value !== 'boolean') throw new Error(`${layer}: argument '${arg}' must be true or false, got ${describeReceived(value)}`);
  return value;
}
