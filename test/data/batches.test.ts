import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { epochBatches, epochExamples, epochFraction, seedSchedule, stepsInEpoch } from '../../src/data/batches.js';
import { compactImages } from '../../src/data/compact.js';
import { DeviceRandom } from '../../src/ops/random.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

describe("the seed's schedule numbers", () => {
  it('50000 images, batch 1024, 12.1 epochs: 48 per epoch, 581 total, last epoch 5', () => {
    const s = seedSchedule(50000, 1024, 12.1);
    expect(s.stepsPerEpoch).toBe(48);
    expect(s.totalSteps).toBe(581);
    expect(s.epochSteps).toEqual([...Array(12).fill(48), 5]);
    expect(s.epochSteps.reduce((a, b) => a + b, 0)).toBe(581);
    // Python: 12.1 % 1 == 0.09999999999999964
    expect(s.epochFractions[12]).toBe(0.09999999999999964);
    expect(s.epochFractions.slice(0, 12)).toEqual(Array(12).fill(1));
  });

  it("rounds like Python's round (half to even), not Math.round", () => {
    // 0.5 * 20 / 4 = 2.5 -> 2 batches (Math.round: 3); 0.7 * 10 / 4 = 1.75 -> 2; 0.5 * 28 / 4 = 3.5 -> 4.
    expect(epochExamples(20, 4, 0.5)).toBe(8);
    expect(epochExamples(10, 4, 0.7)).toBe(8);
    expect(epochExamples(28, 4, 0.5)).toBe(16);
    expect(epochExamples(20, 8, 0.2)).toBe(0); // 0.5 -> 0
    expect(epochExamples(20, 8, 0.6)).toBe(16); // 1.5 -> 2
    expect(epochExamples(10, 4, 0.99)).toBe(8); // 9.9 / 4 = 2.475 -> 2
    expect(stepsInEpoch(50000, 1024)).toBe(48);
    expect(stepsInEpoch(50000, 1024, 0.999)).toBe(48); // round(48.78) * 1024 exceeds n: capped, as slicing is
  });

  it('epochFraction follows the seed, including the empty last epoch for whole-number epochs', () => {
    expect(epochFraction(0, 12.1)).toBe(1);
    expect(epochFraction(11, 12.1)).toBe(1);
    expect(epochFraction(12, 12.1)).toBeCloseTo(0.1, 12);
    expect(epochFraction(9, 10)).toBe(0);
    expect(seedSchedule(50000, 1024, 10).epochSteps.at(-1)).toBe(0);
    expect(() => epochFraction(-1, 10)).toThrow(/epoch must be a non-negative integer/);
    expect(() => seedSchedule(50000, 0, 10)).toThrow(/batchSize must be a positive integer, got 0/);
  });
});

/** n images of 6x6x2, image i constant i; one-hot targets. */
function labelled(n: number, classes = n) {
  return tf.tidy(() => ({
    images: tf.mul(tf.ones([n, 6, 6, 2]), tf.reshape(tf.range(0, n), [n, 1, 1, 1])) as tf.Tensor4D,
    targets: tf.cast(tf.oneHot(tf.range(0, n, 1, 'int32'), classes), 'float32') as tf.Tensor2D,
  }));
}

describeEachBackend('epochBatches', () => {
  it('augments once per epoch and yields shuffled full batches, each example at most once', async () => {
    const data = labelled(10);
    const before = liveTensors();
    const rng = new DeviceRandom(4);
    const seen: number[] = [];
    const counters: number[] = [];
    for (const batch of epochBatches(data, { batchSize: 3, random: rng, cropSize: 4 })) {
      counters.push(rng.getState().counter);
      expect(batch.inputs.shape).toEqual([3, 4, 4, 2]);
      expect(batch.targets.shape).toEqual([3, 10]);
      const imgs = (await batch.inputs.array()) as number[][][][];
      const argmax = tf.argMax(batch.targets, -1);
      const labels = (await argmax.array()) as number[];
      argmax.dispose();
      imgs.forEach((img, k) => {
        // The image travelled with its label through crop, flip and shuffle.
        expect(new Set(img.flat(3)).size).toBe(1);
        expect(img[0]![0]![0]).toBe(labels[k]);
      });
      seen.push(...labels);
      tf.dispose([batch.inputs, batch.targets]);
    }
    expect(seen).toHaveLength(9); // 10 // 3 batches, the partial one dropped
    expect(new Set(seen).size).toBe(9);
    // Draws happen once, before the first batch: shuffle, crop rows and columns, flip.
    expect(counters).toEqual([4, 4, 4]);
    expect(liveTensors()).toBe(before);
    tf.dispose(data);
  });

  it("a fractional epoch uses the seed's rounding; cutmix mixes labels; eval does not augment", async () => {
    const data = labelled(10);
    const before = liveTensors();
    const partial = [...epochBatches(data, { batchSize: 3, random: new DeviceRandom(1), epochFraction: 0.5, cropSize: 4 })];
    expect(partial).toHaveLength(2); // 3 * round(1.67) = 6 examples
    tf.dispose(partial.map((b) => [b.inputs, b.targets]));
    const mixed = [...epochBatches(data, { batchSize: 5, random: new DeviceRandom(2), cropSize: 4, cutmixSize: 2 })];
    let mixedRows = 0;
    for (const b of mixed) {
      for (const row of (await b.targets.array()) as number[][]) {
        expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 6);
        if (row.filter((v) => v > 0).length === 2) {
          mixedRows++;
          expect(Math.min(...row.filter((v) => v > 0))).toBeCloseTo(4 / 16, 6);
        }
      }
    }
    expect(mixedRows).toBeGreaterThan(5);
    tf.dispose(mixed.map((b) => [b.inputs, b.targets]));
    const evalBatches = [...epochBatches(data, { batchSize: 5, random: new DeviceRandom(3), train: false })];
    const all = await Promise.all(
      evalBatches.map(async (b) => [(await b.inputs.array()) as number[][][][], (await b.targets.array()) as number[][]] as const),
    );
    for (const [imgs, rows] of all) imgs.forEach((img, k) => expect(rows[k]![img[0]![0]![0]!]).toBe(1));
    const labels = all.flatMap(([imgs]) => imgs.map((img) => img[0]![0]![0]!));
    expect([...labels].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(all[0]![0][0]!.length).toBe(6); // not cropped
    tf.dispose(evalBatches.map((b) => [b.inputs, b.targets]));
    expect(liveTensors()).toBe(before);
    tf.dispose(data);
  });

  it('refuses a cutmix patch that does not fit the crops before allocating or drawing anything, on float and compact images', () => {
    const data = labelled(8);
    const compact = {
      images: compactImages(
        new Uint8Array(8 * 6 * 6 * 3).map((_, i) => i % 251),
        [8, 6, 6, 3],
        { mean: [0, 0, 0], std: [1, 1, 1] },
      ),
      targets: data.targets,
    };
    const before = liveTensors();
    const random = new DeviceRandom(6);
    const stateBefore = random.getState();
    for (const set of [data, compact]) {
      for (const cutmixSize of [5, 4]) {
        expect(() => epochBatches(set, { batchSize: 2, random, cropSize: 4, cutmixSize })).toThrow(
          `epochBatches: cutmixSize ${cutmixSize} does not fit the 4x4 crops; it must be at most 3 (the seed's square masks need a spare row for an even side; 0 turns cutmix off)`,
        );
      }
      expect(() => epochBatches(set, { batchSize: 2, random, cropSize: 5, cutmixSize: 6 })).toThrow('it must be at most 5');
      expect(liveTensors()).toBe(before);
    }
    // Nothing was drawn either: the generator is where the batches of a refused call would have come from.
    expect(random.getState()).toEqual(stateBefore);
    // The largest patch that fits is allowed, and an odd crop's own side.
    for (const [cropSize, cutmixSize] of [
      [4, 3],
      [5, 5],
    ] as const) {
      const largest = [...epochBatches(data, { batchSize: 4, random, cropSize, cutmixSize })];
      expect(largest.map((b) => b.inputs.shape)).toEqual([
        [4, cropSize, cropSize, 2],
        [4, cropSize, cropSize, 2],
      ]);
      tf.dispose(largest.map((b) => [b.inputs, b.targets]));
    }
    expect(liveTensors()).toBe(before);
    compact.images.dispose();
    tf.dispose(data);
  });

  it('holds no augmented copy of a float32 set: the plan, and each batch for its caller', () => {
    const n = 256;
    const data = labelled(n);
    const args = { batchSize: 8, cropSize: 4, cutmixSize: 2 };
    // A first epoch makes the device scalars cutmix's targets use, which stay.
    for (const b of epochBatches(data, { ...args, random: new DeviceRandom(6) })) tf.dispose([b.inputs, b.targets]);
    const start = tf.memory().numBytes;
    const epoch = epochBatches(data, { ...args, random: new DeviceRandom(7) });
    const first = epoch.next().value as { inputs: tf.Tensor; targets: tf.Tensor };
    const held = tf.memory().numBytes - start - (first.inputs.size + first.targets.size) * 4;
    // The plan: an order, crop corners, flips, partners and square corners, a few int32 per image; an augmented
    // copy of the set would be 4x4x2 float32 per image more.
    expect(held).toBeLessThan(n * 4 * 8);
    expect(held).toBeGreaterThan(0);
    epoch.return();
    tf.dispose([first.inputs, first.targets]);
    expect(tf.memory().numBytes).toBe(start);
    tf.dispose(data);
  });

  it('frees the epoch plan when the loop breaks early, even inside tf.tidy', () => {
    const data = labelled(8);
    const before = liveTensors();
    tf.tidy(() => {
      for (const b of epochBatches(data, { batchSize: 2, random: new DeviceRandom(5), cropSize: 4 })) {
        expect(b.inputs.isDisposed).toBe(false);
        break;
      }
    });
    const gen = epochBatches(data, { batchSize: 2, random: new DeviceRandom(5), cropSize: 4 });
    const first = tf.tidy(() => gen.next().value as { inputs: tf.Tensor; targets: tf.Tensor });
    // The epoch plan survived the tidy the first batch was made in.
    const second = gen.next().value as { inputs: tf.Tensor; targets: tf.Tensor };
    expect(second.inputs.shape).toEqual([2, 4, 4, 2]);
    gen.return();
    tf.dispose([first.inputs, first.targets, second.inputs, second.targets]);
    expect(liveTensors()).toBe(before);
    expect(() => epochBatches(data, { batchSize: 2, random: new DeviceRandom(1), cropSize: 7 })).toThrow(
      /cropSize must be an integer in \[1, 6\]/,
    );
    expect(() =>
      epochBatches({ images: data.targets as never, targets: data.targets }, { batchSize: 2, random: new DeviceRandom(1) }),
    ).toThrow(/NHWC/);
    tf.dispose(data);
  });
});
