import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { customBlockNet, evaluateCustomBlockNet, initCustomBlockNet, syntheticDataset, trainCustomBlockNet } from '../../examples/custom-block/model.js';
import { ResidualBlock } from '../../examples/custom-block/residual-block.js';
import { maxRelativeError } from '../helpers/assert.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

// Tiny shapes: 16x16 images (the smallest the three pooling blocks allow), 4/8/8 channels, 4 classes.
const tiny = { imageSize: 16, widths: [4, 8, 8] as [number, number, number], classes: 4, seed: 3 };

describeEachBackend('custom-block example', () => {
  it('trains (loss decreases), saves and loads back, and leaks no tensors', async () => {
    const before = liveTensors();
    const data = syntheticDataset(32, 8, 16, 4, 1);
    const net = customBlockNet(tiny);
    await initCustomBlockNet(net, data.train.images, 0);

    // The blocks report their sublayers' weights under unique, scoped names.
    const names = net.model.weights.map((w) => w.originalName);
    expect(names).toContain('residual_block_2/conv1/weight');
    expect(names).toContain('residual_block_2/shortcut/weight');
    expect(names).toContain('residual_block_2/state_norm/running_var');
    expect(names).toContain('residual_block_3/norm2/bias');
    expect(names.some((n) => n.startsWith('residual_block_3/state'))).toBe(false);
    expect(new Set(names).size).toBe(names.length);
    const trainable = net.model.trainableWeights.map((w) => w.originalName);
    expect(trainable).toContain('residual_block_2/norm1/bias');
    expect(trainable).not.toContain('residual_block_2/norm1/weight'); // frozen at 1, as the seed's
    expect(trainable).not.toContain('initial_block_whiten/weight');

    const block2Before = await net.blocks[0].conv1.weight.read().data();
    const losses = await trainCustomBlockNet(net, data.train, { steps: 16, batchSize: 8, seed: 5 });
    expect(losses).toHaveLength(16);
    expect(losses.every(Number.isFinite)).toBe(true);
    // Noisy by design (the discrete actions' noise matches the activations' std): compare 3-step means.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-3)), `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`).toBeLessThan(0.9 * mean(losses.slice(0, 3)));
    // The custom block learned (through its state prediction and the discrete action's std).
    expect(maxRelativeError(await net.blocks[0].conv1.weight.read().data(), block2Before)).toBeGreaterThan(1e-4);
    const acc = await evaluateCustomBlockNet(net, data.eval);
    expect(acc).toBeGreaterThanOrEqual(0);
    expect(acc).toBeLessThanOrEqual(1);

    let saved: tf.io.ModelArtifacts | undefined;
    await net.model.save(tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    expect(saved!.weightSpecs!.map((s) => s.name).sort()).toEqual([...names].sort());
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const loadedBlock = loaded.getLayer('residual_block_2');
    expect(loadedBlock).toBeInstanceOf(ResidualBlock);
    expect((loadedBlock as ResidualBlock).statePredDim).toBe(8);
    const byName = new Map(loaded.weights.map((w) => [w.originalName, w]));
    for (const w of net.model.weights) {
      expect(Array.from(await byName.get(w.originalName)!.read().data()), w.originalName).toEqual(Array.from(await w.read().data()));
    }
    // A loaded discrete action restarts its noise stream at its seed; put the original's there too, then outputs agree.
    for (const [i, action] of net.discreteActions.entries()) {
      const twin = loaded.getLayer(`discrete_action_${i + 1}`) as typeof action;
      action.random.setState(twin.random.getState());
    }
    const x = tf.slice(data.eval.images, 0, 4);
    const a = net.model.predict(x) as tf.Tensor;
    const b = loaded.predict(x) as tf.Tensor;
    expect(maxRelativeError(await b.data(), await a.data())).toBeLessThanOrEqual(1e-5);

    tf.dispose([x, a, b, data.train.images, data.train.targets, data.eval.images, data.eval.targets]);
    loaded.dispose();
    net.model.dispose();
    expect(liveTensors()).toBe(before);
  });

  it('rejects a block too small to pool, naming the argument', () => {
    const block = new ResidualBlock({ name: 'too_small', channelsOut: 4, statePredDim: 4 });
    expect(() => block.apply(tfl.input({ shape: [3, 3, 2] }))).toThrow(/too_small.*at least 4x4.*\[null,3,3,2\]/);
    expect(() => new ResidualBlock({ channelsOut: 0 })).toThrow(/'channelsOut' must be a positive integer, got 0/);
  });
});
