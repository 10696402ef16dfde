import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { BatchNorm } from '../../src/layers/batch-norm.js';
import { Conv } from '../../src/layers/conv.js';
import { ConvGroup } from '../../src/layers/conv-group.js';
import { Linear } from '../../src/layers/linear.js';
import { WhiteningConv } from '../../src/layers/whitening.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError, seededUniform } from '../helpers/assert.js';

function smallModel(): tfl.LayersModel {
  const input = tfl.input({ shape: [10, 10, 3] });
  const w = new WhiteningConv({ seed: 1 }).apply(input) as tfl.SymbolicTensor;
  const c = new Conv({ filters: 6, seed: 2, temperature: 0.5, lrMult: 2 }).apply(w) as tfl.SymbolicTensor;
  const n = new BatchNorm().apply(c) as tfl.SymbolicTensor;
  const [x, state] = new ConvGroup({ name: 'conv_group_1', channelsOut: 4, statePredDim: 5, seed: 3 }).apply(n) as tfl.SymbolicTensor[];
  const pooled = tfl.layers.globalMaxPooling2d({}).apply(x!) as tfl.SymbolicTensor;
  const logits = new Linear({ units: 3, temperature: 1 / 12, seed: 4 }).apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: [logits, state!] });
}

describeEachBackend('save / load round trip', () => {
  it('a model using every layer saves to memory and loads back with identical weights and outputs', async () => {
    const model = smallModel();
    const x = tf.randomNormal([2, 10, 10, 3], 0, 1, 'float32', 9);
    // Make the running statistics non-trivial before saving.
    tf.dispose(model.apply(x, { training: true }) as tf.Tensor[]);
    // Every layer is seeded, so a model built again from the saved config starts with the same weights: move every
    // weight (trainable or not) off its initial value, so that only a load that restores it can match.
    model.weights.forEach((w, i) => {
      const moved = tf.tidy(() => tf.add(w.read(), tf.tensor(seededUniform(w.read().size, 100 + i, 0.1, 0.5), w.read().shape)));
      w.write(moved);
      moved.dispose();
    });
    const fresh = smallModel();
    for (const [i, w] of fresh.weights.entries()) {
      const [a, b] = [await w.read().data(), await model.weights[i]!.read().data()];
      expect(
        a.every((v, j) => v !== b[j]),
        `${w.originalName} differs from a fresh model's`,
      ).toBe(true);
    }
    fresh.dispose();
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const names = saved!.weightSpecs!.map((s) => s.name);
    expect(names).toContain('conv_group_1/conv1/weight');
    expect(names).toContain('conv_group_1/state_norm/running_var');
    expect(new Set(names).size).toBe(names.length);
    expect(names).toHaveLength(model.weights.length);
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const a = model.predict(x) as tf.Tensor[];
    const b = loaded.predict(x) as tf.Tensor[];
    // Weights are bit-identical; outputs too, up to kernel scheduling on WebGPU (1 ulp seen).
    const byName = new Map(loaded.weights.map((w) => [w.originalName, w]));
    for (const w of model.weights)
      expect(Array.from(await byName.get(w.originalName)!.read().data())).toEqual(Array.from(await w.read().data()));
    for (let i = 0; i < a.length; i++) expect(maxRelativeError(await b[i]!.data(), await a[i]!.data())).toBeLessThanOrEqual(1e-6);
    expect(loaded.trainableWeights.map((w) => w.originalName).sort()).toEqual(model.trainableWeights.map((w) => w.originalName).sort());
    tf.dispose([x, ...a, ...b]);
    model.dispose();
    loaded.dispose();
  });
});
