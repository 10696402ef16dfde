import * as tf from '@tensorflow/tfjs-core';
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

/** The package's namespace in tfjs's serialization registry: a layer class is saved as `tfjs-dataflow>Conv`. */
export const PACKAGE_NAMESPACE = 'tfjs-dataflow';

/** `'tfjs-dataflow>Conv'` for `'Conv'`: the `className` a layer class of the package has, and model.json records. */
export function namespacedClassName(name: string): string {
  return `${PACKAGE_NAMESPACE}>${name}`;
}

// Layer names as tfjs-layers makes them when none is given (`conv_Conv1`, `conv_group_ConvGroup2`): its
// default takes the class name, and the namespaced one ('tfjs-dataflow>Conv') is no valid tensor name.
const nameCounts = new Map<string, number>();

/** tfjs-layers' snake case of a class name (`ConvGroup` -> `conv_group`). */
function toSnakeCase(name: string): string {
  const snake = name
    .replace(/(.)([A-Z][a-z0-9]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
  return snake.startsWith('_') ? `private${snake}` : snake;
}

/** `args` with a name: its own, else the one tfjs-layers would give a class called `name` (`conv_Conv1`, ...). */
export function withDefaultName<A extends { name?: string }>(args: A, name: string): A {
  if (args.name) return args;
  const count = (nameCounts.get(name) ?? 0) + 1;
  nameCounts.set(name, count);
  return { ...args, name: `${toSnakeCase(name)}_${name}${count}` };
}

/**
 * Registers a layer class of the package with tfjs's serialization under `tfjs-dataflow>name` (the class's
 * `className`, so model.json names it so and loading finds it), and under the bare `name`, which model.json files
 * saved by tfjs-dataflow 0.1.0 carry, when no other class holds that name.
 *
 * @remarks
 * tfjs-layers 4.22 saves a layer as its class's `className` and loads it by that key alone in one global map;
 * `registerClass(cls, pkg)` adds a `pkg>name` entry to another map that layers' loading does not read. A bare name
 * like `Conv` or `BatchNorm` is then shared with every other package's class of that name: whichever registers last
 * wins, and a model of one loads the other's class. Hence the namespace in the `className` itself. The bare
 * alias loads 0.1.0's files; it never replaces a class that another package registered first, and one registered
 * after it replaces it (as tfjs does for any name), so it can take nobody's name.
 */
export function registerLayerClass(cls: tf.serialization.SerializableConstructor<tfl.layers.Layer>, name: string): void {
  tf.serialization.registerClass(cls, PACKAGE_NAMESPACE, name);
  const map = tf.serialization.SerializationMap.getMap().classNameMap;
  const entry = [cls, cls.fromConfig] as unknown as (typeof map)[string];
  if (!(name in map)) map[name] = entry;
}
