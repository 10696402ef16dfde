// The wasm Conv2DBackpropInput (src/backend/kernels/wasm/Conv2DBackpropInput.ts): at stride 1, dx as a convolution of
// dy with the filter flipped and its channels swapped; strided cases go to tfjs-backend-wasm's own kernel. Against the
// cpu backend and against tfjs-backend-wasm's kernel.
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { conv2dBackpropInputConfig } from '../../../src/backend/kernels/wasm/Conv2DBackpropInput.js';
import { maxRelativeError, seededUniform } from '../../helpers/assert.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { expectRegistered, runTfjsKernel } from '../../helpers/kernels.js';
import { expectWasmMatchesCpu } from '../../helpers/wasm-kernels.js';

interface ConvCase {
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  stride: number;
  pad: 'same' | 'valid';
}

const CASES: ConvCase[] = [
  { x: [2, 8, 8, 3], k: [3, 3], cout: 4, stride: 1, pad: 'same' },
  { x: [2, 7, 7, 5], k: [3, 3], cout: 6, stride: 1, pad: 'valid' },
  { x: [2, 7, 6, 3], k: [3, 2], cout: 4, stride: 1, pad: 'valid' }, // kh != kw
  { x: [2, 5, 5, 8], k: [1, 1], cout: 4, stride: 1, pad: 'same' },
  { x: [2, 9, 9, 3], k: [3, 3], cout: 4, stride: 2, pad: 'same' },
  { x: [1, 9, 8, 2], k: [2, 2], cout: 5, stride: 2, pad: 'valid' },
];

const label = (c: ConvCase) => `x ${c.x.join('x')}, kernel ${c.k.join('x')}, ${c.cout} out, stride ${c.stride}, ${c.pad}`;
const filterShape = (c: ConvCase): [number, number, number, number] => [c.k[0], c.k[1], c.x[3], c.cout];
const outShape = (c: ConvCase) => backend_util.computeConv2DInfo(c.x, filterShape(c), c.stride, 1, c.pad).outShape;

function inputs(c: ConvCase): { dy: tf.Tensor4D; filter: tf.Tensor4D } {
  const dyShape = outShape(c);
  const w = filterShape(c);
  return {
    dy: tf.tensor4d(
      seededUniform(
        dyShape.reduce((a, b) => a * b, 1),
        3,
      ),
      dyShape,
    ),
    filter: tf.tensor4d(
      seededUniform(
        w.reduce((a, b) => a * b, 1),
        4,
      ),
      w,
    ),
  };
}

const attrsOf = (c: ConvCase) => ({ strides: c.stride, pad: c.pad, dataFormat: 'NHWC', inputShape: c.x });

describeOnBackend('wasm', 'wasm Conv2DBackpropInput, against the cpu backend and tfjs-backend-wasm', () => {
  it('is the registered Conv2DBackpropInput once initBackend has run', () => expectRegistered(conv2dBackpropInputConfig));

  for (const c of CASES) {
    it(`${label(c)}: equals cpu (1e-4) and tfjs-backend-wasm's own kernel (1e-5)`, async () => {
      await expectWasmMatchesCpu(
        () => tf.tidy(() => [tf.engine().runKernel('Conv2DBackpropInput', inputs(c), attrsOf(c)) as tf.Tensor]),
        ['dx'],
        1e-4,
      );
      await useBackend('wasm');
      const { dy, filter } = inputs(c);
      const ours = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, attrsOf(c)) as tf.Tensor;
      const tfjs = runTfjsKernel('Conv2DBackpropInput', { dy, filter }, attrsOf(c));
      expect(ours.shape).toEqual(tfjs.shape);
      expect(maxRelativeError(await ours.data(), await tfjs.data())).toBeLessThanOrEqual(1e-5);
      tf.dispose([dy, filter, ours, tfjs]);
    });
  }
});
