// The wasm BatchMatMul and _FusedMatMul overrides (src/backend/kernels/wasm/BatchMatMul.ts): transposed operands are
// transposed explicitly before tfjs-backend-wasm's own kernel, against the cpu backend and against that kernel run
// with the transposes itself. The fused cases multiply single matrices: tfjs-backend-wasm 4.22's _FusedMatMul adds a
// bias wrongly to a batch of more than one (its own kernel as much as through this override, which only transposes).
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { batchMatMulConfig, fusedMatMulConfig } from '../../../src/backend/kernels/wasm/BatchMatMul.js';
import { maxRelativeError, seededUniform } from '../../helpers/assert.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { expectRegistered, runTfjsKernel } from '../../helpers/kernels.js';
import { expectWasmMatchesCpu } from '../../helpers/wasm-kernels.js';

const A = seededUniform(3 * 5 * 4, 6);
const B = seededUniform(3 * 6 * 5, 7);
const BIAS = seededUniform(6, 8);
const TRANSPOSES: Array<[boolean, boolean]> = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

/** a [3, 5, 4] and b [3, 6, 5] laid out so that a · b is [3, 4, 6] under each pair of transposes; `batch` 1: the first matrices. */
function operands(transposeA: boolean, transposeB: boolean, batch = 3): { a: tf.Tensor3D; b: tf.Tensor3D } {
  const a = tf.tensor3d(A.subarray(0, batch * 20), transposeA ? [batch, 5, 4] : [batch, 4, 5]);
  const b = tf.tensor3d(B.subarray(0, batch * 30), transposeB ? [batch, 6, 5] : [batch, 5, 6]);
  return { a, b };
}

describeOnBackend('wasm', 'wasm BatchMatMul and _FusedMatMul (explicit transposes), against the cpu backend and tfjs-backend-wasm', () => {
  it('are the registered BatchMatMul and _FusedMatMul once initBackend has run', () => {
    expectRegistered(batchMatMulConfig);
    expectRegistered(fusedMatMulConfig);
  });

  it('equal cpu (1e-5) under every pair of transposes, fused with a bias and activation too', async () => {
    await expectWasmMatchesCpu(
      () =>
        tf.tidy(() =>
          TRANSPOSES.flatMap(([transposeA, transposeB]) => {
            const { a, b } = operands(transposeA, transposeB);
            const one = operands(transposeA, transposeB, 1);
            const bias = tf.tensor1d(BIAS);
            return [
              tf.matMul(a, b, transposeA, transposeB),
              tf.fused.matMul({ a: one.a, b: one.b, transposeA, transposeB, bias, activation: 'relu' }),
            ];
          }),
        ),
      TRANSPOSES.flatMap(([ta, tb]) => [`matMul ${ta} ${tb}`, `fused matMul ${ta} ${tb}`]),
      1e-5,
    );
  });

  // _FusedMatMul untransposed only: with a transposed a and a bias, tfjs-backend-wasm 4.22's own differs from cpu,
  // which the explicit transposes above match.
  it("equal tfjs-backend-wasm's own kernels given the transposes (1e-5), _FusedMatMul untransposed", async () => {
    await useBackend('wasm');
    for (const [transposeA, transposeB] of TRANSPOSES) {
      const { a, b } = operands(transposeA, transposeB);
      const attrs = { transposeA, transposeB };
      const ours = tf.engine().runKernel('BatchMatMul', { a, b }, attrs) as tf.Tensor;
      const tfjs = runTfjsKernel('BatchMatMul', { a, b }, attrs);
      expect(ours.shape).toEqual(tfjs.shape);
      expect(maxRelativeError(await ours.data(), await tfjs.data()), `${transposeA} ${transposeB}`).toBeLessThanOrEqual(1e-5);
      tf.dispose([a, b, ours, tfjs]);
    }
    const { a, b } = operands(false, false, 1);
    const bias = tf.tensor1d(BIAS);
    const attrs = { transposeA: false, transposeB: false, activation: 'relu', leakyreluAlpha: 0.2 };
    const ours = tf.engine().runKernel('_FusedMatMul', { a, b, bias }, attrs) as tf.Tensor;
    const tfjs = runTfjsKernel('_FusedMatMul', { a, b, bias }, attrs);
    expect(maxRelativeError(await ours.data(), await tfjs.data())).toBeLessThanOrEqual(1e-5);
    tf.dispose([a, b, bias, ours, tfjs]);
  });
});
