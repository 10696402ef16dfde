import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';

/** A tensor as tools/reference/layers_fixtures.py writes it. */
export interface Encoded {
  shape: number[];
  data: number[];
}

/** Reads test/fixtures/layers/<name> (made by tools/reference/layers_fixtures.py). */
export function loadFixture<T>(name: string): T {
  const url = new URL(`../fixtures/layers/${name}`, import.meta.url);
  return JSON.parse(readFileSync(fileURLToPath(url), 'utf8')) as T;
}

export function toTensor(e: Encoded): tf.Tensor {
  return tf.tensor(e.data, e.shape, 'float32');
}

export function values(e: Encoded): Float32Array {
  return Float32Array.from(e.data);
}

/** Disposes a layer's weights (Layer.dispose() refuses layers built without being applied). */
export function disposeWeights(layer: { weights: Array<{ dispose(): void }> }): void {
  for (const w of layer.weights) w.dispose();
}

/** The engine name of a layer weight's variable (the key of `tf.variableGrads`'s result). */
export function varName(w: { read(): tf.Tensor }): string {
  return (w.read() as tf.Variable).name;
}
