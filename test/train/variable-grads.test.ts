import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { KernelCounter } from '../../src/backend/counter.js';
import { deviceScalar } from '../../src/ops/constants.js';
import { variableGrads } from '../../src/train/variable-grads.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

describeEachBackend('variableGrads', (backend) => {
  it("gives tf.variableGrads' value and gradients, skipping frozen variables, and writes nothing to the backend", async () => {
    const w = tf.variable(
      tf.tensor2d([
        [0.5, -1],
        [2, 0.25],
      ]),
      true,
      'vg_w',
    );
    const b = tf.variable(tf.tensor1d([0.1, -0.3]), true, 'vg_b');
    const frozen = tf.variable(tf.tensor1d([3, 4]), false, 'vg_frozen');
    const x = tf.tensor2d([
      [1, 2],
      [3, -1],
    ]);
    const loss = () => tf.sum(tf.square(tf.add(tf.matMul(x, w), tf.mul(b, frozen)))) as tf.Scalar;
    const expected = tf.variableGrads(loss, [w, b, frozen]);
    const before = liveTensors();
    const actual = variableGrads(loss, [w, b, frozen]);
    expect(Object.keys(actual.grads).sort()).toEqual(['vg_b', 'vg_w']);
    expect(await actual.value.data()).toEqual(await expected.value.data());
    for (const name of ['vg_w', 'vg_b']) expect(await actual.grads[name]!.data()).toEqual(await expected.grads[name]!.data());
    tf.dispose([actual.value, ...Object.values(actual.grads)]);
    expect(liveTensors()).toBe(before);
    // tf.variableGrads writes its ones() seed on every call; this writes nothing once its scalar exists.
    const counts = await new KernelCounter().measure(() => {
      const again = variableGrads(loss, [w, b]);
      tf.dispose([again.value, ...Object.values(again.grads)]);
    });
    if (backend !== 'cpu') expect(counts.uploadBytes).toBe(0);
    tf.dispose([expected.value, ...Object.values(expected.grads).filter((g): g is tf.Tensor => g != null), w, b, frozen, x]);
  });

  it('hands out a copy, never the kept seed, when the loss is a variable itself', async () => {
    const v = tf.variable(tf.scalar(2), true, 'vg_scalar');
    const { value, grads } = variableGrads(() => v as unknown as tf.Scalar, [v]);
    expect(grads['vg_scalar']).not.toBe(deviceScalar(1));
    expect(await grads['vg_scalar']!.data()).toEqual(new Float32Array([1]));
    tf.dispose([value, grads['vg_scalar']!, v]);
    expect(deviceScalar(1).isDisposed).toBe(false);
  });

  it('refuses a non-scalar loss, no trainable variable, and a loss that does not use the variables', () => {
    const v = tf.variable(tf.tensor1d([1, 2]), true, 'vg_vec');
    const frozen = tf.variable(tf.tensor1d([1, 2]), false, 'vg_frozen2');
    expect(() => variableGrads(() => tf.mul(v, 2) as never, [v])).toThrow(/f must return a scalar tensor, got shape \[2\]/);
    expect(() => variableGrads(() => tf.sum(frozen) as tf.Scalar, [frozen])).toThrow(/none of the 1 variables is trainable/);
    expect(() => variableGrads(() => tf.sum(tf.ones([2])) as tf.Scalar, [v])).toThrow(/does not depend on any of the variables/);
    expect(() => variableGrads(() => tf.sum(v) as tf.Scalar, ['not a variable' as never])).toThrow(/must be an array of tf.Variable/);
    tf.dispose([v, frozen]);
  });
});
