// CompositeLayer's answer to a repeated call (tfjs-layers' executor asks a two-output layer once per output) is
// decided by the data its sublayers' weights hold, not by their names: a sublayer whose state is called 'tally'
// (nothing like the batch norm's running_mean) is updated once per execution, and a write to it between two calls
// makes the second run anew.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { CompositeLayer } from '../../src/layers/composite.js';
import { scopedWeightName } from '../../src/layers/registry.js';
import type { CallKwargs } from '../../src/layers/types.js';
import { singleInput } from '../../src/validation.js';
import { describeEachBackend } from '../helpers/backends.js';

/** Counts its training calls in a non-trainable weight named 'tally'. */
class Tally extends tfl.layers.Layer {
  static className = 'TallyForCompositeTest';
  tally!: tfl.LayerVariable;

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    void inputShape;
    this.tally = this.addWeight(scopedWeightName(this, 'tally'), [1], 'float32', tfl.initializers.zeros(), undefined, false);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: CallKwargs): tf.Tensor {
    return tf.tidy(() => {
      if (kwargs?.training) this.tally.write(tf.add(this.tally.read(), 1));
      return tf.mul(singleInput(inputs, 'Tally'), 1);
    });
  }
}

/** Two outputs from one Tally. */
class Twin extends CompositeLayer {
  static className = 'TwinForCompositeTest';
  readonly inner = new Tally({ name: 'inner' });

  override get sublayers(): tfl.layers.Layer[] {
    return this.inner == null ? [] : [this.inner];
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    this.buildSublayer(this.inner, inputShape as tfl.Shape);
    this.built = true;
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape[] {
    return [inputShape as tfl.Shape, inputShape as tfl.Shape];
  }

  protected override forward(input: tf.Tensor, kwargs: CallKwargs): tf.Tensor[] {
    return tf.tidy(() => {
      const y = this.inner.call(input, kwargs);
      return [y, tf.mul(y, 2)];
    });
  }
}

describeEachBackend('CompositeLayer repeated calls', () => {
  it("answers the executor's second call from the first by the weights' data, whatever they are named", async () => {
    const input = tfl.input({ shape: [3] });
    const twin = new Twin({ name: 'twin' });
    const [a, b] = twin.apply(input) as tfl.SymbolicTensor[];
    const model = tfl.model({ inputs: input, outputs: tfl.layers.add().apply([a!, b!]) as tfl.SymbolicTensor });
    expect(model.weights.map((w) => w.originalName)).toEqual(['twin/inner/tally']);
    const tally = async () => (await twin.inner.tally.read().data())[0];
    const x = tf.ones([2, 3]);
    // One training execution asks twin once per output: the tally moves once.
    tf.tidy(() => model.apply(x, { training: true }) as tf.Tensor);
    expect(await tally()).toBe(1);
    tf.tidy(() => model.apply(x, { training: true }) as tf.Tensor);
    expect(await tally()).toBe(2);
    // The executor's form (inputs as a list, one options object, one scope): a repeat runs nothing...
    const kwargs = { training: true };
    tf.tidy(() => {
      twin.call([x], kwargs);
      twin.call([x], kwargs);
    });
    expect(await tally()).toBe(3);
    // ...unless a weight was written in between (as an optimiser or EMA step would): then it runs anew.
    tf.tidy(() => {
      twin.call([x], kwargs);
      twin.inner.tally.write(tf.tensor1d([10]));
      twin.call([x], kwargs);
    });
    expect(await tally()).toBe(11);
    x.dispose();
    model.dispose();
  });
});
