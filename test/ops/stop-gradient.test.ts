import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { stopGradient } from '../../src/ops/stop-gradient.js';
import { KernelCounter } from '../../src/backend/counter.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

function seeded(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform(shape, -1, 1, 'float32', seed);
}

describeEachBackend('stopGradient', () => {
  it("returns x's values without a copy kernel", async () => {
    const x = seeded([2, 3, 4], 1);
    const counter = new KernelCounter();
    let y: tf.Tensor | undefined;
    const counts = await counter.measure(() => {
      y = stopGradient(x);
    });
    expect(Object.keys(counts.byName)).toEqual([tf.Reshape]);
    expect(y!.shape).toEqual([2, 3, 4]);
    expect([...(await y!.data())]).toEqual([...(await x.data())]);
    tf.dispose([x, y!]);
  });

  it('cuts the tape: upstream variables get no gradient and upstream ops run no backward kernel', async () => {
    const before = liveTensors();
    const x = seeded([2, 6, 6, 3], 2);
    const w = tf.tidy(() => tf.variable(seeded([3, 3, 3, 4], 3), true, 'stopgrad_upstream_w'));
    const v = tf.tidy(() => tf.variable(seeded([1, 1, 1, 4], 4), true, 'stopgrad_downstream_v'));
    const loss = (cut: (t: tf.Tensor) => tf.Tensor) => () =>
      tf.sum(tf.square(tf.mul(cut(tf.relu(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'))), v))) as tf.Scalar;

    const counter = new KernelCounter();
    let cutGrads: tf.NamedTensorMap = {};
    const cut = await counter.measure(() => {
      const { value, grads } = tf.variableGrads(loss(stopGradient));
      value.dispose();
      cutGrads = grads;
    });
    expect(Object.keys(cutGrads)).toEqual([v.name]);
    expect(cut.backwardByName[tf.Conv2DBackpropFilter]).toBeUndefined();
    expect(cut.backwardByName[tf.Conv2DBackpropInput]).toBeUndefined();
    expect(cut.backwardByName[tf.Step]).toBeUndefined(); // relu's gradient
    expect(cut.backwardKernels).toBeGreaterThan(0); // the downstream part did run

    // Control: a customGrad taking x as an input returns zeros but still backpropagates through the conv.
    const zeroGrad = (t: tf.Tensor) =>
      tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
        value: tf.reshape(args[0] as tf.Tensor, (args[0] as tf.Tensor).shape),
        gradFunc: (dy: tf.Tensor) => [tf.zerosLike(dy)],
      }))(t);
    let zeroGrads: tf.NamedTensorMap = {};
    const zeros = await counter.measure(() => {
      const { value, grads } = tf.variableGrads(loss(zeroGrad));
      value.dispose();
      zeroGrads = grads;
    });
    expect(Object.keys(zeroGrads).sort()).toEqual([v.name, w.name].sort());
    expect(zeros.backwardByName[tf.Conv2DBackpropFilter]).toBe(1);

    // The downstream gradient is the same either way.
    const a = await cutGrads[v.name]!.data();
    const b = await zeroGrads[v.name]!.data();
    for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 5);
    tf.dispose([x, w, v, ...Object.values(cutGrads), ...Object.values(zeroGrads)]);
    expect(liveTensors()).toBe(before);
  });

  it('leaves other paths to x alone: d/dx sum(cut(x) * x) = cut(x)', async () => {
    const x = seeded([5], 5);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(stopGradient(t), t)))(x);
    expect([...(await g.data())]).toEqual([...(await x.data())]);
    tf.dispose([x, g]);
  });

  it('rejects a non-tensor, naming the argument', () => {
    expect(() => stopGradient([1, 2] as unknown as tf.Tensor)).toThrow(/stopGradient: argument 'x' must be a tf.Tensor/);
  });
});
