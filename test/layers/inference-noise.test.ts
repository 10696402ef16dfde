import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fileHandler } from '../../src/io/file-handler.js';
import { findDiscreteActions } from '../../src/layers/discrete-action.js';
import { withInferenceNoise } from '../../src/layers/inference-noise.js';
import { speedyConvNet } from '../../src/models/speedy-convnet.js';
import { predictWithFlipTTA } from '../../src/train/flip-tta.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

const SIDE = 16;
const HYP = { net: { baseDepth: 4 } };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'inference-noise-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function values(t: tf.Tensor): Promise<Float32Array> {
  const v = (await t.data()) as Float32Array;
  t.dispose();
  return v;
}

const states = (model: tfl.LayersModel) => findDiscreteActions(model).map((a) => a.random.getState());

describeEachBackend('Reproducible inference: seeded or noiseless discrete actions', (backend) => {
  it("two seeded predictions of a saved-and-loaded model are bit-identical (and equal the original's); unseeded ones differ", async () => {
    const net = speedyConvNet({ seed: 3, hyp: HYP, imageSize: SIDE });
    const saved = join(dir, `speedy-${backend}`);
    await net.model.save(fileHandler(saved));
    const loaded = await tfl.loadLayersModel(fileHandler(saved));
    const x = tf.randomNormal([4, SIDE, SIDE, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
    const before = liveTensors();

    const a = await values(predictWithFlipTTA(loaded, x, { seed: 7 }));
    const b = await values(predictWithFlipTTA(loaded, x, { seed: 7 }));
    expect(b).toEqual(a);
    expect(await values(predictWithFlipTTA(net.model, x, { seed: 7 }))).toEqual(a);
    expect(await values(predictWithFlipTTA(loaded, x, { seed: 8 }))).not.toEqual(a);

    // The seed's default: noise from each layer's own stream, which moves on with every call.
    const u1 = await values(predictWithFlipTTA(loaded, x));
    const u2 = await values(predictWithFlipTTA(loaded, x));
    expect(u2).not.toEqual(u1);
    expect(liveTensors()).toBe(before);
    tf.dispose(x);
    net.model.dispose();
    loaded.dispose();
  });

  it("a seeded call leaves every layer's noise stream where it was: the unseeded calls after it are the ones there would have been", async () => {
    const make = () => speedyConvNet({ seed: 4, hyp: HYP, imageSize: SIDE }).model;
    const [plain, interrupted] = [make(), make()];
    const x = tf.randomNormal([2, SIDE, SIDE, 3], 0, 1, 'float32', 12) as tf.Tensor4D;
    const expected = await values(predictWithFlipTTA(plain, x));
    const streams = states(interrupted);
    await values(predictWithFlipTTA(interrupted, x, { seed: 1 }));
    expect(states(interrupted)).toEqual(streams);
    expect(await values(predictWithFlipTTA(interrupted, x))).toEqual(expected);
    // Also when the function throws, or returns a promise (put back once it settles).
    const moved = states(interrupted);
    expect(() =>
      withInferenceNoise(interrupted, { seed: 2 }, () => {
        tf.dispose(interrupted.predict(x) as tf.Tensor);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(states(interrupted)).toEqual(moved);
    const pending = withInferenceNoise(interrupted, { seed: 2, noise: 'off' }, async () => {
      expect(findDiscreteActions(interrupted).every((d) => d.inferenceNoiseOverride === false)).toBe(true);
      return values(interrupted.predict(x) as tf.Tensor);
    });
    await pending;
    expect(states(interrupted)).toEqual(moved);
    expect(findDiscreteActions(interrupted).every((d) => d.inferenceNoiseOverride === undefined)).toBe(true);
    tf.dispose(x);
    plain.dispose();
    interrupted.dispose();
  });

  it("noise: 'off' is deterministic, draws nothing, and is the net with noiseStd 0", async () => {
    const net = speedyConvNet({ seed: 5, hyp: HYP, imageSize: SIDE });
    const quiet = speedyConvNet({ seed: 5, hyp: { net: { ...HYP.net, noiseStd: 0 } }, imageSize: SIDE });
    const x = tf.randomNormal([4, SIDE, SIDE, 3], 0, 1, 'float32', 13) as tf.Tensor4D;
    const streams = states(net.model);
    const a = await values(predictWithFlipTTA(net.model, x, { noise: 'off' }));
    expect(await values(predictWithFlipTTA(net.model, x, { noise: 'off' }))).toEqual(a);
    expect(states(net.model)).toEqual(streams);
    expect(await values(predictWithFlipTTA(quiet.model, x))).toEqual(a);
    // It changes inference only: a training call inside still draws its noise.
    const trained = await values(
      withInferenceNoise(net.model, { noise: 'off' }, () => net.model.apply(x, { training: true }) as tf.Tensor),
    );
    expect(trained.some((v, i) => v !== a[i])).toBe(true);
    tf.dispose(x);
    net.model.dispose();
    quiet.model.dispose();
  });

  it('refuses options it does not know, naming them', () => {
    const net = speedyConvNet({ seed: 6, hyp: HYP, imageSize: SIDE });
    const x = tf.zeros([1, SIDE, SIDE, 3]) as tf.Tensor4D;
    expect(() => predictWithFlipTTA(net.model, x, { seed: 1.5 })).toThrow(
      "withInferenceNoise: option 'seed' must be a safe integer, got 1.5",
    );
    expect(() => predictWithFlipTTA(net.model, x, { noise: 'mean' as never })).toThrow(
      "withInferenceNoise: option 'noise' must be 'sample' or 'off', got 'mean'",
    );
    expect(() => withInferenceNoise(net.model, { sed: 1 } as never, () => 0)).toThrow(
      "withInferenceNoise: unknown option 'sed'; expected seed or noise",
    );
    tf.dispose(x);
    net.model.dispose();
  });
});
