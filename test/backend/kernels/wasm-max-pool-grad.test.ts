// The wasm MaxPoolGrad (src/backend/kernels/wasm/MaxPoolGrad.ts): each window's gradient to its first maximum, in
// row-major order as the cpu backend and PyTorch route it. Against the cpu backend; against tfjs-backend-wasm 4.22's
// own kernel only where that one is right, one channel at stride 2 (for more channels it drops part of the gradient,
// and at stride 1 it differs from cpu even for one).
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { maxPoolGradConfig } from '../../../src/backend/kernels/wasm/MaxPoolGrad.js';
import { maxRelativeError, seededUniform } from '../../helpers/assert.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { expectRegistered, runTfjsKernel } from '../../helpers/kernels.js';
import { expectWasmMatchesCpu } from '../../helpers/wasm-kernels.js';

type PoolCase = [shape: [number, number, number, number], size: number, stride: number, pad: 'same' | 'valid'];

const CASES: PoolCase[] = [
  [[2, 6, 6, 5], 2, 2, 'valid'],
  [[2, 7, 7, 3], 2, 2, 'valid'],
  [[1, 7, 6, 4], 3, 2, 'same'],
  [[2, 5, 5, 2], 3, 1, 'same'],
];

/** The gradient of max-pooling x, weighted distinctly per output position and channel so that a misrouted gradient shows. */
function poolGrad([shape, size, stride, pad]: PoolCase, x: Float32Array): tf.Tensor {
  return tf.tidy(() =>
    tf.grad((a: tf.Tensor) => {
      const pooled = tf.maxPool(a as tf.Tensor4D, size, stride, pad);
      return tf.sum(tf.mul(pooled, tf.reshape(tf.range(1, 1 + pooled.size), pooled.shape)));
    })(tf.tensor4d(x, shape)),
  );
}

describeOnBackend('wasm', 'wasm MaxPoolGrad, against the cpu backend and tfjs-backend-wasm', () => {
  it('is the registered MaxPoolGrad once initBackend has run', () => expectRegistered(maxPoolGradConfig));

  for (const c of CASES) {
    it(`${c[0].join('x')} pool ${c[1]} stride ${c[2]} ${c[3]}: routes the gradient as cpu does (1e-6)`, async () => {
      const x = seededUniform(
        c[0].reduce((a, b) => a * b, 1),
        8,
      );
      await expectWasmMatchesCpu(() => [poolGrad(c, x)], ['dx'], 1e-6);
    });
  }

  it("equals tfjs-backend-wasm's own kernel for one channel at stride 2", async () => {
    await useBackend('wasm');
    for (const [shape, size, stride, pad] of CASES.filter((c) => c[2] === 2)) {
      const one: [number, number, number, number] = [shape[0], shape[1], shape[2], 1];
      const input = tf.tensor4d(
        seededUniform(
          one.reduce((a, b) => a * b, 1),
          9,
        ),
        one,
      );
      const output = tf.maxPool(input, size, stride, pad);
      const dy = tf.tensor4d(seededUniform(output.size, 10), output.shape);
      const attrs = { filterSize: size, strides: stride, pad };
      const ours = tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, attrs) as tf.Tensor;
      const tfjs = runTfjsKernel('MaxPoolGrad', { dy, input, output }, attrs);
      expect(maxRelativeError(await ours.data(), await tfjs.data()), `${one} pool ${size} stride ${stride} ${pad}`).toBeLessThanOrEqual(
        1e-6,
      );
      tf.dispose([input, output, dy, ours, tfjs]);
    }
  });
});
