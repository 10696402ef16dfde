import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { DiscreteAction } from '../../src/layers/discrete-action.js';
import { simulateDiscreteAction } from '../../src/ops/discrete-action.js';
import { DeviceRandom } from '../../src/ops/random.js';
import { describeEachBackendAndWebGPUKernelSet } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';

/** An IOHandler that keeps the artifacts in memory, and one that hands them back. */
function memoryIO(): { save: tf.io.IOHandler; load: () => tf.io.IOHandler } {
  let artifacts: tf.io.ModelArtifacts | undefined;
  return {
    save: {
      save: async (a: tf.io.ModelArtifacts) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      },
    },
    load: () => ({ load: async () => artifacts! }),
  };
}

const input = () => tf.tidy(() => tf.randomNormal([2, 4, 4, 3], 0, 2, 'float32', 1));

async function values(t: tf.Tensor | tf.Tensor[]): Promise<number[]> {
  const tensor = Array.isArray(t) ? t[0]! : t;
  const v = [...(await tensor.data())];
  tf.dispose(t);
  return v;
}

describeEachBackendAndWebGPUKernelSet('DiscreteAction layer', () => {
  it("adds the seed's noise in training and, by default, at inference, from its own seeded stream", async () => {
    const before = liveTensors();
    const x = input();
    const layer = new DiscreteAction({ seed: 5, noiseStd: 0.5 });
    const trained = await values(layer.apply(x, { training: true }) as tf.Tensor);
    const expected = await values(simulateDiscreteAction(x, { random: new DeviceRandom(5), noiseStd: 0.5 }));
    for (let i = 0; i < expected.length; i++) expect(trained[i]).toBeCloseTo(expected[i]!, 5);
    const model = tfl.sequential({ layers: [new DiscreteAction({ inputShape: [4, 4, 3], seed: 6 })] });
    const xs = await x.data();
    const a = await values(model.predict(x) as tf.Tensor);
    const b = await values(model.predict(x) as tf.Tensor);
    expect(a).not.toEqual([...xs]);
    expect(b).not.toEqual(a); // the stream moves on
    expect(model.countParams()).toBe(0);
    x.dispose();
    model.dispose();
    expect(liveTensors()).toBe(before);
  });

  it('noiseAtInference: false passes x through outside training, still cutting the gradient', async () => {
    const x = input();
    const layer = new DiscreteAction({ seed: 1, noiseAtInference: false });
    expect(await values(layer.apply(x) as tf.Tensor)).toEqual([...(await x.data())]);
    expect(await values(layer.apply(x, { training: true }) as tf.Tensor)).not.toEqual([...(await x.data())]);
    const v = tf.tidy(() => tf.variable(tf.ones([1, 1, 1, 3]), true, 'discrete_action_layer_v'));
    tf.tidy(() => {
      expect(() => tf.variableGrads(() => tf.sum(layer.apply(tf.mul(x, v)) as tf.Tensor) as tf.Scalar, [v])).toThrow(
        /Cannot find a connection/,
      );
    });
    tf.dispose([x, v]);
  });

  it('saves seed, noiseStd, detachStd and noiseAtInference, and round-trips through save / loadLayersModel', async () => {
    const x = input();
    for (const args of [
      { seed: 11, noiseStd: 0 },
      { seed: 12, noiseStd: 1.5, detachStd: true },
    ]) {
      const model = tfl.sequential({ layers: [new DiscreteAction({ inputShape: [4, 4, 3], ...args })] });
      const layer = model.layers[0] as DiscreteAction;
      expect(layer.getConfig()).toMatchObject({
        noiseStd: args.noiseStd,
        seed: args.seed,
        detachStd: args.detachStd ?? false,
        noiseAtInference: true,
      });
      const io = memoryIO();
      await model.save(io.save);
      const loaded = await tfl.loadLayersModel(io.load());
      const loadedLayer = loaded.layers[0] as DiscreteAction;
      expect(loadedLayer).toBeInstanceOf(DiscreteAction);
      expect(loadedLayer.getConfig()).toMatchObject({ noiseStd: args.noiseStd, seed: args.seed, detachStd: args.detachStd ?? false });
      // Both streams at the start: identical outputs (equal to x itself when noiseStd is 0).
      const a = await values(model.predict(x) as tf.Tensor);
      const b = await values(loaded.predict(x) as tf.Tensor);
      expect(b).toEqual(a);
      if (args.noiseStd === 0) expect(a).toEqual([...(await x.data())]);
      // A checkpointed state carries over too.
      layer.random.setState({ seed: args.seed, counter: 40 });
      loadedLayer.random.setState(layer.random.getState());
      expect(await values(loaded.predict(x) as tf.Tensor)).toEqual(await values(model.predict(x) as tf.Tensor));
      model.dispose();
      loaded.dispose();
    }
    x.dispose();
  });

  it('refuses a detachStd or noiseAtInference that is not a boolean (hostile review item 18)', () => {
    expect(() => new lib.DiscreteAction({ name: 'da_s', detachStd: 'yes' as never })).toThrow(
      "DiscreteAction 'da_s': argument 'detachStd' must be true or false, got 'yes'",
    );
    expect(() => new lib.DiscreteAction({ name: 'da_n', noiseAtInference: 1 as never })).toThrow(
      "DiscreteAction 'da_n': argument 'noiseAtInference' must be true or false, got 1",
    );
  });

  it('rejects bad arguments and input, naming them', () => {
    expect(() => new DiscreteAction({ noiseStd: -0.1 })).toThrow(/argument 'noiseStd' must be a finite number >= 0, got -0.1/);
    expect(() => new DiscreteAction({ seed: 0.5 })).toThrow(/argument 'seed' must be a safe integer, got 0.5/);
    const xi = tf.zeros([2, 3], 'int32');
    expect(() => new DiscreteAction({ name: 'da' }).apply(xi)).toThrow(
      /DiscreteAction 'da': simulateDiscreteAction: argument 'x' must be float32, got dtype 'int32'/,
    );
    xi.dispose();
  });
});
