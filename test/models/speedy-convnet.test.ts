import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { expect, it } from 'vitest';
import { fitSpeedyConvNetWhitening, speedyConvNet } from '../../src/models/speedy-convnet.js';
import { predictWithFlipTTA } from '../../src/train/flip-tta.js';
import { seedLoss } from '../../src/ops/loss.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';
import * as lib from '../../src/index.js';

const TINY = { net: { baseDepth: 4 } } as const;

function images(n: number, seed: number): tf.Tensor4D {
  return tf.randomNormal([n, 32, 32, 3], 0, 1, 'float32', seed) as tf.Tensor4D;
}

/** Gradient norms of every trainable weight for one training-mode loss on random data. */
async function gradientNorms(net: ReturnType<typeof speedyConvNet>): Promise<Map<string, number>> {
  const x = images(4, 3);
  const y = tf.cast(tf.oneHot(tf.tensor1d([0, 1, 2, 3], 'int32'), 10), 'float32');
  const vars = net.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => seedLoss(net.model.apply(x, { training: true }) as tf.Tensor, y), vars);
  const norms = new Map<string, number>();
  for (const v of vars) {
    const g = grads[v.name];
    norms.set(v.name, g ? (await tf.norm(g).data())[0]! : 0);
  }
  tf.dispose([x, y, value, ...Object.values(grads)]);
  return norms;
}

const pick = (norms: Map<string, number>, test: (name: string) => boolean) => [...norms].filter(([n]) => test(n));
const inGroup = (g: number) => (n: string) => n.startsWith(`conv_group_${g}/`);

describeEachBackend('speedyConvNet', () => {
  it('builds the seed architecture with state-dict-style names and the seed depths', () => {
    const net = speedyConvNet({ seed: 1, hyp: TINY });
    // originalName: the scoped name before tfjs-layers adds a per-process uniqueness suffix.
    const names = net.model.weights.map((w) => w.originalName);
    expect(names).toContain('initial_block_whiten/weight');
    expect(names).toContain('conv_group_2/state_project/weight');
    expect(names).toContain('conv_group_3/norm2/running_var');
    expect(names).not.toContain('conv_group_3/state_project/weight');
    const shape = (name: string) => net.model.weights.find((w) => w.originalName === name)!.shape;
    // base 4 -> blocks 4 / 16 / 32, whitening 2x2x3 -> 24 channels.
    expect(shape('initial_block_whiten/weight')).toEqual([2, 2, 3, 24]);
    expect(shape('conv_group_1/conv1/weight')).toEqual([3, 3, 24, 4]);
    expect(shape('conv_group_1/state_project/weight')).toEqual([3, 3, 4, 16]);
    expect(shape('conv_group_2/state_project/weight')).toEqual([3, 3, 16, 32]);
    expect(shape('conv_group_3/conv2/weight')).toEqual([3, 3, 32, 32]);
    expect(shape('linear/weight')).toEqual([32, 10]);
    // Frozen: the whitening conv and every batch-norm scale.
    const trainable = new Set(net.model.trainableWeights.map((w) => w.originalName));
    expect(trainable.has('initial_block_whiten/weight')).toBe(false);
    expect([...trainable].filter((n) => n.endsWith('norm1/weight') || n.endsWith('norm2/weight'))).toEqual([]);
    expect(net.discreteActions).toHaveLength(3);
    net.model.dispose();
  });

  it('takes its output width from numClasses (CIFAR-100: 100 fine or 20 coarse classes), 10 by default', async () => {
    const fine = speedyConvNet({ seed: 1, hyp: TINY, numClasses: 100 });
    expect(fine.model.weights.find((w) => w.originalName === 'linear/weight')!.shape).toEqual([32, 100]);
    expect(fine.model.outputs[0]!.shape).toEqual([null, 100]);
    fine.model.dispose();
    // One forward pass (tiny images: software WebGPU is slow) for the width of real logits.
    const coarse = speedyConvNet({ seed: 1, hyp: TINY, numClasses: 20, imageSize: 16 });
    const images = tf.zeros([1, 16, 16, 3]);
    const logits = coarse.model.predict(images) as tf.Tensor;
    expect(logits.shape).toEqual([1, 20]);
    tf.dispose([images, logits]);
    coarse.model.dispose();
    expect(() => speedyConvNet({ numClasses: 1 })).toThrow("speedyConvNet: option 'numClasses' must be an integer >= 2, got 1");
  });

  it('applies the seed dirac init: conv2 of each group is an identity kernel', async () => {
    const net = speedyConvNet({ seed: 2, hyp: TINY });
    const w = (await net.groups[1]!.conv2.weight.read().array()) as number[][][][];
    const c = w[0]![0]!.length;
    for (let i = 0; i < c; i++) for (let o = 0; o < c; o++) expect(w[1]![1]![i]![o]).toBe(i === o ? 1 : 0);
    net.model.dispose();
  });

  it('sends full backprop only where the seed does: groups 1 and 3 learn only through the std term', async () => {
    // With noiseStd 0 the std term vanishes, leaving exactly the paths that bypass the cuts.
    const cut = speedyConvNet({ seed: 3, hyp: { net: { baseDepth: 4, noiseStd: 0 } } });
    const norms = await gradientNorms(cut);
    for (const [name, norm] of pick(norms, (n) => inGroup(1)(n) || inGroup(3)(n))) expect(norm, name).toBe(0);
    for (const [name, norm] of pick(norms, (n) => inGroup(2)(n) || n.startsWith('initial_block_state') || n.startsWith('linear'))) {
      expect(norm, name).toBeGreaterThan(0);
    }
    cut.model.dispose();
    // With the seed's noise, the std scalar carries a gradient into every group.
    const sketch = speedyConvNet({ seed: 3, hyp: TINY });
    for (const [name, norm] of await gradientNorms(sketch)) expect(norm, name).toBeGreaterThan(0);
    sketch.model.dispose();
  });

  it("'backprop' mode has no discrete actions and backpropagates everywhere", async () => {
    const net = speedyConvNet({ seed: 4, hyp: TINY, mode: 'backprop' });
    expect(net.discreteActions).toEqual([]);
    expect(net.model.layers.some((l) => l.getClassName() === 'DiscreteAction')).toBe(false);
    for (const [name, norm] of await gradientNorms(net)) expect(norm, name).toBeGreaterThan(0);
    net.model.dispose();
  });

  it('fits the whitening conv from padded training images and keeps it frozen', async () => {
    const net = speedyConvNet({ seed: 5, hyp: { net: { baseDepth: 4, whiteningChunkSize: 4 } } });
    const before = await net.whitening.weight.read().data();
    const padded = tf.mirrorPad(
      images(8, 6),
      [
        [0, 0],
        [2, 2],
        [2, 2],
        [0, 0],
      ],
      'reflect',
    ) as tf.Tensor4D;
    const fit = await fitSpeedyConvNetWhitening(net, padded, { padAmount: 2, seed: 1 });
    expect(fit.eigenvalues).toHaveLength(12);
    const after = await net.whitening.weight.read().data();
    expect(after).not.toEqual(before);
    // The kernel is [K, -K].
    const k = tf.tidy(() => {
      const w = net.whitening.weight.read();
      return tf.add(tf.slice(w, [0, 0, 0, 0], [2, 2, 3, 12]), tf.slice(w, [0, 0, 0, 12], [2, 2, 3, 12]));
    });
    expect(Math.max(...(await k.data()).map(Math.abs))).toBe(0);
    tf.dispose([padded, k]);
    net.model.dispose();
  });

  it('predicts with flip TTA, noise included, without leaking tensors', async () => {
    const net = speedyConvNet({ seed: 7, hyp: TINY });
    const x = images(3, 8);
    const before = liveTensors();
    const logits = predictWithFlipTTA(net.model, x);
    expect(logits.shape).toEqual([3, 10]);
    logits.dispose();
    expect(liveTensors()).toBe(before);
    // Without noise, TTA of a mirrored batch equals TTA of the batch.
    const quiet = speedyConvNet({ seed: 7, hyp: { net: { baseDepth: 4, noiseStd: 0 } } });
    const a = predictWithFlipTTA(quiet.model, x);
    const b = tf.tidy(() => predictWithFlipTTA(quiet.model, tf.reverse(x, 2)));
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))));
    expect((await diff.data())[0]).toBeLessThan(1e-5);
    tf.dispose([x, a, b, diff]);
    net.model.dispose();
    quiet.model.dispose();
  });

  it('saves and loads as a LayersModel with identical outputs', async () => {
    const net = speedyConvNet({ seed: 9, hyp: { net: { baseDepth: 4, noiseStd: 0 } } });
    let saved: tf.io.ModelArtifacts | undefined;
    await net.model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved!));
    const x = images(2, 10);
    const [a, b] = [net.model.predict(x) as tf.Tensor, loaded.predict(x) as tf.Tensor];
    expect(await b.data()).toEqual(await a.data());
    tf.dispose([x, a, b]);
    net.model.dispose();
    loaded.dispose();
  });

  it("builds every batch norm, the conv groups' included, with hyp.net.batchNormMomentum and batchNormEps", async () => {
    const { BatchNorm } = await import('../../src/layers/batch-norm.js');
    const norms = (net: ReturnType<typeof speedyConvNet>) => [
      ...net.model.layers.filter((l): l is InstanceType<typeof BatchNorm> => l instanceof BatchNorm),
      ...net.groups.flatMap((g) => [g.norm1, g.norm2, ...(g.stateNorm ? [g.stateNorm] : [])]),
    ];
    const seedNet = speedyConvNet({ seed: 1, hyp: TINY });
    expect(norms(seedNet)).toHaveLength(9);
    expect(new Set(norms(seedNet).map((n) => `${n.momentum}/${n.eps}`))).toEqual(new Set(['0.4/1e-12']));
    const net = speedyConvNet({ seed: 1, hyp: { net: { baseDepth: 4, batchNormMomentum: 0.1, batchNormEps: 1e-5 } } });
    expect(norms(net)).toHaveLength(9);
    expect(new Set(norms(net).map((n) => `${n.momentum}/${n.eps}`))).toEqual(new Set(['0.1/0.00001']));
    seedNet.model.dispose();
    net.model.dispose();
  });

  it('fitSpeedyConvNetWhitening refuses a negative padAmount and one that leaves less than the kernel, naming the option (hostile review item 18)', async () => {
    const net = lib.speedyConvNet({ seed: 5, hyp: { net: { baseDepth: 4, whiteningChunkSize: 4 } }, imageSize: 16 });
    const padded = tf.randomNormal([4, 16, 16, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const compact = lib.compactImages(new Uint8Array(4 * 16 * 16 * 3), [4, 16, 16, 3], { mean: [0, 0, 0], std: [1, 1, 1] });
    const before = liveTensors();
    for (const set of [padded, compact]) {
      for (const padAmount of [-1, 8, 1.5]) {
        await expect(lib.fitSpeedyConvNetWhitening(net, set as tf.Tensor4D, { padAmount })).rejects.toThrow(
          `fitSpeedyConvNetWhitening: option 'padAmount' must be an integer in [0, 7] for 16x16 images (the unpadded images keep at least the whitening kernel's 2x2), got ${padAmount}`,
        );
      }
    }
    expect(liveTensors()).toBe(before);
    tf.dispose(padded);
    compact.dispose();
    net.model.dispose();
  });

  it('rejects bad options with messages naming them', () => {
    expect(() => speedyConvNet({ mode: 'hybrid' as never })).toThrow("option 'mode' must be 'sketch' or 'backprop', got 'hybrid'");
    expect(() => speedyConvNet({ hyp: { net: { baseDepth: 0 } } })).toThrow(
      'hyp.net.baseDepth must be an integer in [1, 512] (the last group has 8x as many channels; 512 already makes 4096-channel convs of 600 MB), got 0',
    );
    expect(() => speedyConvNet({ hyp: { opt: { percentStart: 1.5 } } })).toThrow(
      'hyp.opt.percentStart must be a number in (0, 1), got 1.5',
    );
  });
});

it('resolveHyp derives the weight decays from the batch size, as the seed does, unless overridden', async () => {
  const { resolveHyp, SEED_HYP } = await import('../../src/models/hyp.js');
  expect(resolveHyp().opt.nonBiasDecay).toBe(SEED_HYP.opt.nonBiasDecay);
  const half = resolveHyp({ opt: { batchSize: 512 } });
  expect(half.opt.nonBiasDecay).toBeCloseTo(6.687e-4 * 512, 12);
  expect(half.opt.biasDecay).toBeCloseTo((6.687e-4 * 512) / 64, 12);
  expect(resolveHyp({ opt: { batchSize: 512, biasDecay: 0 } }).opt.biasDecay).toBe(0);
});

it("SEED_HYP's dependent values are the seed's expressions, derived from biasScaler and weightDecayPerImage", async () => {
  const { resolveHyp, SEED_HYP } = await import('../../src/models/hyp.js');
  // The seed: bias_lr = 1.525 * bias_scaler / 512, bias_decay = 6.687e-4 * batchsize / bias_scaler, non_bias_decay = 6.687e-4 * batchsize.
  expect(SEED_HYP.opt).toMatchObject({ batchSize: 1024, biasScaler: 64, weightDecayPerImage: 6.687e-4 });
  expect(SEED_HYP.opt.biasLr).toBe((1.525 * 64) / 512);
  expect(SEED_HYP.opt.nonBiasDecay).toBe(6.687e-4 * 1024);
  expect(SEED_HYP.opt.biasDecay).toBe((6.687e-4 * 1024) / 64);
  // Each dependent value follows what it depends on.
  const scaled = resolveHyp({ opt: { biasScaler: 32, nonBiasLr: 0.01, weightDecayPerImage: 1e-3 } });
  expect(scaled.opt).toMatchObject({ biasLr: 0.01 * 32, nonBiasDecay: 1e-3 * 1024, biasDecay: (1e-3 * 1024) / 32 });
  // A full Hyp passes through resolveHyp unchanged, its dependent values kept as they are.
  const custom = { ...structuredClone(SEED_HYP), opt: { ...SEED_HYP.opt, biasLr: 0.5, nonBiasLr: 0.001 } };
  expect(resolveHyp(custom)).toEqual(custom);
  expect(() => resolveHyp({ opt: { biasScaler: 0 } })).toThrow('hyp.opt.biasScaler must be a number > 0, got 0');
});

it('runs each conv group once per forward pass (tfjs-layers asks a two-output layer once per output)', async () => {
  const { KernelCounter } = await import('../../src/backend/counter.js');
  const net = speedyConvNet({ seed: 11, hyp: TINY });
  const x = images(2, 12);
  const forwardConvs = async (fn: () => void) => (await new KernelCounter().measure(fn)).byName[tf.Conv2D] ?? 0;
  // 10 convolutions: whitening, the initial state prediction, 2 per group, 2 state projections.
  expect(
    await forwardConvs(() =>
      tf.tidy(() => {
        net.model.apply(x, { training: true });
      }),
    ),
  ).toBe(10);
  expect(await forwardConvs(() => tf.dispose(net.model.predict(x) as tf.Tensor))).toBe(10);
  expect(await forwardConvs(() => predictWithFlipTTA(net.model, x).dispose())).toBe(10);
  // Each batch norm normalises (and updates its running statistics) once per training pass: 9 of them.
  const { BatchNorm } = await import('../../src/layers/batch-norm.js');
  // Counted where the running mean is written, which the fused kernels' path and the unfused ops' share: each norm's
  // own variable, found by what the layers hold (a composite layer lists its sublayers).
  const norms: InstanceType<typeof BatchNorm>[] = [];
  const visit = (layer: unknown): void => {
    if (layer instanceof BatchNorm) norms.push(layer);
    for (const child of (layer as { sublayers?: unknown[] }).sublayers ?? []) visit(child);
  };
  net.model.layers.forEach(visit);
  expect(norms).toHaveLength(9);
  let trainingCalls = 0;
  const restores = norms.map((norm) => {
    const variable = norm.runningMean;
    const write = variable.write;
    variable.write = function (this: typeof variable, value: tf.Tensor) {
      trainingCalls++;
      return write.call(this, value);
    };
    return () => {
      variable.write = write;
    };
  });
  try {
    tf.tidy(() => {
      net.model.apply(x, { training: true });
    });
  } finally {
    for (const restore of restores) restore();
  }
  expect(trainingCalls).toBe(9);
  tf.dispose(x);
  net.model.dispose();
});
