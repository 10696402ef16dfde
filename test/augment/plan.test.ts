// The epoch plan executed for a batch's rows (applyEpochPlanRows, the float path's batches) against the plan executed
// on the whole set (applyEpochPlan, the seed's batch_crop -> batch_flip_lr -> batch_cutmix): the same values.
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { applyEpochPlan, applyEpochPlanRows, disposeEpochPlan, drawEpochPlan } from '../../src/augment/plan.js';
import { DeviceRandom } from '../../src/ops/random.js';
import { seededUniform } from '../helpers/assert.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

const N = 24;
const SIDE = 10;
const CROP = 8;

describeEachBackend('applyEpochPlanRows', () => {
  for (const cutmixSize of [0, 3]) {
    it(`gives rows of the whole-set execution bit for bit: crop, flip${cutmixSize ? ' and cutmix (partners outside the rows)' : ''}`, async () => {
      const images = tf.tensor4d(seededUniform(N * SIDE * SIDE * 3, 11), [N, SIDE, SIDE, 3]);
      const labels = tf.tensor1d(
        Array.from({ length: N }, (_, i) => i % 5),
        'int32',
      );
      const targets = tf.tidy(() => tf.cast(tf.oneHot(labels, 5), 'float32') as tf.Tensor2D);
      labels.dispose();
      const before = liveTensors();
      const plan = drawEpochPlan([N, SIDE, SIDE], { augment: true, cropSize: CROP, cutmixSize }, new DeviceRandom(4));
      const whole = applyEpochPlan(images, targets, plan);
      const [wholeImages, wholeTargets] = await Promise.all([whole.images.array(), whole.targets.array()]);
      const order = (await plan.order.array()) as number[];
      for (let start = 0; start < N; start += 5) {
        const ids = order.slice(start, start + 5);
        const idTensor = tf.tensor1d(ids, 'int32');
        const rows = applyEpochPlanRows(images, targets, plan, idTensor);
        expect(rows.images.shape).toEqual([ids.length, CROP, CROP, 3]);
        expect(await rows.images.array()).toEqual(ids.map((i) => wholeImages[i]));
        expect(await rows.targets.array()).toEqual(ids.map((i) => wholeTargets[i]));
        tf.dispose([rows.images, rows.targets, idTensor]);
      }
      tf.dispose([whole.images, whole.targets]);
      disposeEpochPlan(plan);
      expect(liveTensors()).toBe(before);
      tf.dispose([images, targets]);
    });
  }
});
