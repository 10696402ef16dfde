import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { KernelCounter } from '../../src/backend/counter.js';
import { describeEachBackend } from '../helpers/backends.js';
import { liveTensors } from '../helpers/memory.js';

/** A two-conv net on 8x8 images, trained with plain SGD: enough to exercise every conv gradient. */
function tinyConvNet(seed: number) {
  const w1 = tf.variable(tf.randomNormal([3, 3, 3, 8], 0, 0.3, 'float32', seed), true, `tiny${seed}/conv1`);
  const w2 = tf.variable(tf.randomNormal([3, 3, 8, 8], 0, 0.2, 'float32', seed + 1), true, `tiny${seed}/conv2`);
  const head = tf.variable(tf.randomNormal([8, 4], 0, 0.3, 'float32', seed + 2), true, `tiny${seed}/head`);
  const x = tf.randomNormal([8, 8, 8, 3], 0, 1, 'float32', seed + 3) as tf.Tensor4D;
  const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 0, 1, 2, 3], 'int32'), 4);
  const loss = () =>
    tf.tidy(() => {
      const h1 = tf.relu(tf.conv2d(x, w1 as tf.Tensor4D, 1, 'same'));
      const h2 = tf.relu(tf.conv2d(tf.maxPool(h1, 2, 2, 'valid'), w2 as tf.Tensor4D, 1, 'same'));
      const logits = tf.matMul(tf.max(h2, [1, 2]), head);
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    });
  const vars = [w1, w2, head];
  return { loss, vars, dispose: () => tf.dispose([...vars, x, labels]) };
}

function sgdStep(net: ReturnType<typeof tinyConvNet>, lr: number): tf.Scalar {
  const { value, grads } = tf.variableGrads(net.loss, net.vars);
  tf.tidy(() => {
    for (const v of net.vars) v.assign(tf.sub(v, tf.mul(grads[v.name]!, lr)));
  });
  tf.dispose(grads);
  return value;
}

describeEachBackend('a tiny conv net', (backend) => {
  it('trains: loss decreases over 20 SGD steps, with no tensor left behind', async () => {
    const net = tinyConvNet(backend.length);
    const before = liveTensors();
    const losses: number[] = [];
    for (let step = 0; step < 20; step++) {
      const loss = sgdStep(net, 0.1);
      losses.push((await loss.data())[0]!);
      loss.dispose();
    }
    expect(liveTensors()).toBe(before);
    net.dispose();
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[19]!).toBeLessThan(0.7 * losses[0]!);
  });

  it('counts forward and backward kernels of a step, and no uploads once data is on the backend', async () => {
    const net = tinyConvNet(7);
    sgdStep(net, 0.01).dispose(); // warm-up: constants created by the first step are not per-step work
    const counts = await new KernelCounter().measure(() => sgdStep(net, 0.01).dispose());
    net.dispose();
    expect(counts.byName[tf.Conv2D]).toBe(2);
    expect(counts.backwardByName[tf.Conv2DBackpropFilter]).toBe(2);
    // The first conv's input is data: it needs no input gradient.
    expect(counts.backwardByName[tf.Conv2DBackpropInput]).toBe(1);
    expect(counts.forwardKernels + counts.backwardKernels).toBe(counts.kernels);
    expect(counts.backwardKernels).toBeGreaterThan(0);
    expect(counts.readbackBytes).toBe(0);
  });
});

describeEachBackend('KernelCounter transfers', () => {
  it('counts bytes uploaded and read back', async () => {
    const counter = new KernelCounter();
    const counts = await counter.measure(async () => {
      const t = tf.tensor1d(new Float32Array(256));
      await t.data();
      t.dispose();
    });
    expect(counts.uploadBytes).toBe(1024);
    expect(counts.readbackBytes).toBe(1024);
    expect(counts.readbacks).toBe(1);
  });
});
