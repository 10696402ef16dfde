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
