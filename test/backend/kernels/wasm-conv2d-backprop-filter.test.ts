// The wasm Conv2DBackpropFilter (src/backend/kernels/wasm/Conv2DBackpropFilter.ts), which tfjs-backend-wasm 4.22
// lacks: dW as a convolution of the transposed input with the transposed dy, the stride as its dilation. Against the
// cpu backend, strided and not (there is no tfjs-backend-wasm kernel to hold it to).
import * as tf from '@tensorflow/tfjs-core';
import { backend_util } from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { originalKernel } from '../../../src/backend/kernels/install.js';
import { conv2dBackpropFilterConfig } from '../../../src/backend/kernels/wasm/Conv2DBackpropFilter.js';
import { seededUniform } from '../../helpers/assert.js';
import { describeOnBackend } from '../../helpers/backends.js';
import { expectRegistered } from '../../helpers/kernels.js';
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

describeOnBackend('wasm', 'wasm Conv2DBackpropFilter, against the cpu backend', () => {
  it('is the registered Conv2DBackpropFilter once initBackend has run, where tfjs-backend-wasm 4.22 has none', () => {
    expectRegistered(conv2dBackpropFilterConfig);
    expect(() => originalKernel('Conv2DBackpropFilter', 'wasm')).toThrow(/not registered/);
  });

  for (const c of CASES) {
    it(`${label(c)}: equals cpu (1e-4)`, async () => {
      const x = seededUniform(
        c.x.reduce((a, b) => a * b, 1),
        1,
      );
      const dyShape = outShape(c);
      const dy = seededUniform(
        dyShape.reduce((a, b) => a * b, 1),
        2,
      );
      await expectWasmMatchesCpu(
        () =>
          tf.tidy(() => [
            tf
              .engine()
              .runKernel(
                'Conv2DBackpropFilter',
                { x: tf.tensor4d(x, c.x), dy: tf.tensor4d(dy, dyShape) },
                { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', filterShape: filterShape(c) },
              ) as tf.Tensor,
          ]),
        ['dW'],
        1e-4,
      );
    });
  }
});
