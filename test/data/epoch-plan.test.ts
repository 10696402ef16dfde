import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { reflectPad } from '../../src/augment/pad.js';
import { epochBatches, type AnyLabelledImages, type Batch, type BatchAugmentation, type EpochBatchesArgs } from '../../src/data/batches.js';
import { CIFAR10_IMAGE_BYTES, type Cifar10Dataset } from '../../src/data/cifar10.js';
import { loadCifar10 } from '../../src/data/cifar10-node.js';
import { compactImages, normalisationTable } from '../../src/data/compact.js';
import { DeviceRandom } from '../../src/ops/random.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

// The epoch's batches with the seed's settings (CIFAR-10's normalisation, reflect pad 2, 32x32 crops, flips,
// cutmix where asked), held to digests recorded from the composition before the augmentations were drawn as
// one plan (commit 70683d7: batchCrop -> batchFlipLR -> batchCutmix on the float set, compactPlan + a whole-set
// decode for compact sets). The float images are normalised on the host with the compact set's table, so the
// float and the compact path start from the same values on every backend and every case has one digest.

const MEAN = [0.4913996458, 0.4821584821, 0.446630913];
const STD = [0.2470322251, 0.2434851378, 0.2615878284];
const COUNT = 96;
const CLASSES = 10;

/** `count` CIFAR-sized images of bytes from a fixed LCG, and labels. */
function randomBytes(count: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  return {
    images: Uint8Array.from({ length: count * CIFAR10_IMAGE_BYTES }, next),
    labels: Uint8Array.from({ length: count }, () => next() % CLASSES),
  };
}

const bytes = randomBytes(COUNT, 7);

function oneHot(): tf.Tensor2D {
  return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(bytes.labels, 'int32'), CLASSES), 'float32') as tf.Tensor2D);
}

/** The float set: normalised on the host by the compact table, reflect-padded by 2 on the backend (a copy, exact). */
function floatSet(): AnyLabelledImages {
  const lut = normalisationTable(MEAN, STD);
  const values = Float32Array.from(bytes.images, (v, i) => lut[(i % 3) * 256 + v]!);
  const images = tf.tidy(() => reflectPad(tf.tensor4d(values, [COUNT, 32, 32, 3]), 2));
  return { images, targets: oneHot() };
}

function compactSet(maxPartBytes?: number): AnyLabelledImages {
  const images = compactImages(bytes.images, [COUNT, 32, 32, 3], { mean: MEAN, std: STD, pad: 2, maxPartBytes });
  return { images, targets: oneHot() };
}

function disposeSet(set: AnyLabelledImages): void {
  set.images.dispose();
  set.targets.dispose();
}

/** sha256 of every batch's inputs and targets (their float32 bits), the batch count, and the generator's counter after the epoch. */
async function epochDigest(set: AnyLabelledImages, seed: number, args: Omit<EpochBatchesArgs, 'random'>) {
  const random = new DeviceRandom(seed);
  const hash = createHash('sha256');
  let batches = 0;
  for (const batch of epochBatches(set, { ...args, random })) {
    const [x, y] = await Promise.all([batch.inputs.data(), batch.targets.data()]);
    hash.update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    hash.update(new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
    tf.dispose([batch.inputs, batch.targets]);
    batches++;
  }
  return { digest: hash.digest('hex').slice(0, 32), batches, counter: random.getState().counter };
}

interface Case {
  name: string;
  seed: number;
  args: Omit<EpochBatchesArgs, 'random'>;
  digest: string;
  batches: number;
  counter: number;
}

// Recorded with `RECORD_EPOCH_DIGESTS=1 npx vitest run test/data/epoch-plan.test.ts` at 70683d7 (cpu, wasm and
// WebGPU on lavapipe printed the same values for both paths).
const CASES: Case[] = [
  { name: 'crop and flip', seed: 1, args: { batchSize: 16 }, digest: '9160094bf26ece74ed3095be03d2b16a', batches: 6, counter: 4 },
  {
    name: 'half an epoch',
    seed: 2,
    args: { batchSize: 16, epochFraction: 0.5 },
    digest: '5e217f9be2801c747ce5af17d8ad05cc',
    batches: 3,
    counter: 4,
  },
  { name: 'cutmix 5', seed: 3, args: { batchSize: 16, cutmixSize: 5 }, digest: '08a24189849518e0be1de84fffbadee8', batches: 6, counter: 7 },
  {
    name: 'cutmix 6 (even)',
    seed: 4,
    args: { batchSize: 32, cutmixSize: 6 },
    digest: 'a96a8c79b6a5e7475d9f90730e85b912',
    batches: 3,
    counter: 7,
  },
  {
    name: 'crop 30, cutmix 29',
    seed: 5,
    args: { batchSize: 24, cropSize: 30, cutmixSize: 29 },
    digest: '609238b631a4596a2f29c02fd421b04e',
    batches: 4,
    counter: 7,
  },
  {
    name: 'no augmentation (train: false)',
    seed: 6,
    args: { batchSize: 16, train: false },
    digest: 'be1b23ac4bbadf4e04fcd4daa5af13e0',
    batches: 6,
    counter: 1,
  },
];

const record = process.env['RECORD_EPOCH_DIGESTS'] === '1';

describeEachBackend("an epoch's batches equal the recorded ones (the seed's settings)", (backend) => {
  for (const path of ['float', 'compact', 'compact in parts'] as const) {
    it(`${path} path`, async () => {
      const before = liveTensors();
      const set = path === 'float' ? floatSet() : compactSet(path === 'compact' ? undefined : 37 * CIFAR10_IMAGE_BYTES);
      const got: Record<string, unknown> = {};
      for (const c of CASES) {
        const d = await epochDigest(set, c.seed, c.args);
        got[c.name] = d;
        if (!record) expect({ case: c.name, ...d }).toEqual({ case: c.name, digest: c.digest, batches: c.batches, counter: c.counter });
      }
      if (record) console.log(`[${backend}] ${path}: ${JSON.stringify(got, null, 1)}`);
      disposeSet(set);
      expect(liveTensors()).toBe(before);
    });
  }
});

/** The docs' example (docs/extending.md): each image's brightness shifted by up to ±amount. */
const brightnessJitter =
  (amount: number): BatchAugmentation =>
  ({ inputs, targets }, random) => {
    const shift = tf.mul(tf.sub(random.uniform([inputs.shape[0], 1, 1, 1]), 0.5), 2 * amount);
    return { inputs: tf.add(inputs, shift) as tf.Tensor4D, targets };
  };

/** Every batch of an epoch, read back. */
async function epochValues(set: AnyLabelledImages, random: DeviceRandom, args: Omit<EpochBatchesArgs, 'random'>) {
  const out: Array<{ x: Float32Array; y: Float32Array }> = [];
  for (const batch of epochBatches(set, { ...args, random })) {
    out.push({ x: (await batch.inputs.data()) as Float32Array, y: (await batch.targets.data()) as Float32Array });
    tf.dispose([batch.inputs, batch.targets]);
  }
  return out;
}

describeEachBackend('an augmentation of your own (EpochBatchesArgs.augment)', () => {
  it("runs on every training batch after the plan, on the float and the compact path alike, drawing from the epoch's generator in batch order", async () => {
    const before = liveTensors();
    const float = floatSet();
    const compact = compactSet(37 * CIFAR10_IMAGE_BYTES);
    for (const args of [{ batchSize: 16 }, { batchSize: 32, cutmixSize: 5 }]) {
      const planDraws = args.cutmixSize ? 7 : 4;
      const withJitter = { ...args, augment: brightnessJitter(0.2) };
      const fromFloat = await epochValues(float, new DeviceRandom(8), withJitter);
      const fromCompact = await epochValues(compact, new DeviceRandom(8), withJitter);
      // What it must be: the plan's batches, each shifted by the draw that follows the plan's and the batches' before it.
      const plain = await epochValues(float, new DeviceRandom(8), args);
      expect(fromFloat.length).toBe(COUNT / args.batchSize);
      for (let b = 0; b < plain.length; b++) {
        const random = new DeviceRandom(8);
        random.setState({ seed: 8, counter: planDraws + b });
        const expected = tf.tidy(() => {
          const batch: Batch = {
            inputs: tf.tensor4d(plain[b]!.x, [args.batchSize, 32, 32, 3]),
            targets: tf.tensor2d(plain[b]!.y, [args.batchSize, CLASSES]),
          };
          return brightnessJitter(0.2)(batch, random).inputs;
        });
        const want = (await expected.data()) as Float32Array;
        expected.dispose();
        expect(Buffer.from(fromFloat[b]!.x.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        expect(Buffer.from(fromCompact[b]!.x.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        expect(fromCompact[b]!.y).toEqual(plain[b]!.y);
        expect(fromFloat[b]!.y).toEqual(plain[b]!.y);
      }
    }
    disposeSet(float);
    disposeSet(compact);
    expect(liveTensors()).toBe(before);
  });

  it('is left out when train is false, and a result that is not a batch is refused, saying what was expected', async () => {
    const before = liveTensors();
    const set = compactSet();
    let calls = 0;
    const counting: BatchAugmentation = (batch) => {
      calls++;
      return batch;
    };
    const evalBatches = await epochValues(set, new DeviceRandom(1), { batchSize: 16, train: false, augment: counting });
    expect(evalBatches).toHaveLength(6);
    expect(calls).toBe(0);
    await epochValues(set, new DeviceRandom(1), { batchSize: 16, augment: counting });
    expect(calls).toBe(6);
    const halves: BatchAugmentation = ({ inputs, targets }) => ({ inputs: tf.slice(inputs, 0, 8), targets });
    expect(() => epochBatches(set, { batchSize: 16, random: new DeviceRandom(1), augment: halves }).next()).toThrow(
      'epochBatches: args.augment must return a batch { inputs: [16, height, width, channels], targets: [16, classes] }, got inputs [8,32,32,3] and targets [16,10]',
    );
    expect(() => epochBatches(set, { batchSize: 16, augment: 'brightness' as never })).toThrow(
      'epochBatches: args.augment must be a function (batch, random) => batch, got string',
    );
    disposeSet(set);
    expect(liveTensors()).toBe(before);
  });
});

// CI checks the repo out next to a copy of shared/; $CIFAR10_DIR (as the CLI reads it) elsewhere.
const CIFAR_DIR = process.env['CIFAR10_DIR'] ?? resolve(__dirname, '../../../shared/data/cifar10');
const haveCifar = existsSync(`${CIFAR_DIR}/data_batch_1.bin`);

// The first 1024 CIFAR-10 training images as the CLI puts them on the backend (statistics of those images, pad 2).
// The compact path decodes by a host table, so it is one digest everywhere; the float path normalises on the
// backend, which on WebGPU may round a division differently in the last place, so it is held on cpu and wasm.
const REAL_CASES: Case[] = [
  { name: 'crop and flip', seed: 11, args: { batchSize: 256 }, digest: '63974f06ef8974d04be5f35a74f2d5ba', batches: 4, counter: 4 },
  {
    name: 'cutmix 11',
    seed: 12,
    args: { batchSize: 256, cutmixSize: 11 },
    digest: 'be76d6cb4fd57df70d3151915bed3db7',
    batches: 4,
    counter: 7,
  },
];

describeEachBackend(
  `the first 1024 CIFAR-10 training images${haveCifar ? '' : ` (skipped: no CIFAR-10 at ${CIFAR_DIR}; set CIFAR10_DIR)`}`,
  (backend) => {
    let dataset: Cifar10Dataset;
    for (const path of ['float', 'compact'] as const) {
      it.skipIf(!haveCifar || (path === 'float' && backend === 'webgpu'))(`${path} path`, async () => {
        dataset ??= await loadCifar10({ dir: CIFAR_DIR, trainLimit: 1024, evalLimit: 8 });
        const before = liveTensors();
        const onBackend = path === 'float' ? dataset.toBackend() : dataset.toCompactBackend();
        const got: Record<string, unknown> = {};
        for (const c of REAL_CASES) {
          const d = await epochDigest(onBackend.train, c.seed, c.args);
          got[c.name] = d;
          if (!record) expect({ case: c.name, ...d }).toEqual({ case: c.name, digest: c.digest, batches: c.batches, counter: c.counter });
        }
        if (record) console.log(`[${backend}] CIFAR-10 ${path}: ${JSON.stringify(got, null, 1)}`);
        disposeSet(onBackend.train);
        disposeSet(onBackend.eval);
        expect(liveTensors()).toBe(before);
      });
    }
  },
);
