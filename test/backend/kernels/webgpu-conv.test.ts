// The library's WebGPU convolution kernels (src/backend/kernels/webgpu/Conv2D*.ts): each against the cpu
// backend and against tfjs-backend-webgpu's own kernel, on the seed's layer shapes and the awkward ones.
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, expect, it } from 'vitest';
import { originalKernel } from '../../../src/backend/kernels/install.js';
import { planSplits, splitTuning } from '../../../src/backend/kernels/webgpu/conv_gemm.js';
import { maxRelativeError, seededUniform } from '../../helpers/assert.js';
import { describeOnBackend, useBackend } from '../../helpers/backends.js';
import { liveTensors } from '../../helpers/memory.js';

type Pad = 'same' | 'valid';
interface Case {
  name: string;
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  stride: number;
  pad: Pad;
}

const CASES: Case[] = [
  // The seed's 3x3 'same' convolutions at base depth 64, batch 2.
  { name: 'seed conv group 1', x: [2, 31, 31, 24], k: [3, 3], cout: 64, stride: 1, pad: 'same' },
  { name: 'seed conv group 2', x: [2, 15, 15, 64], k: [3, 3], cout: 256, stride: 1, pad: 'same' },
  { name: 'seed conv group 3', x: [2, 7, 7, 256], k: [3, 3], cout: 512, stride: 1, pad: 'same' },
  { name: 'seed conv group 3, second conv', x: [2, 3, 3, 512], k: [3, 3], cout: 512, stride: 1, pad: 'same' },
  { name: 'seed whitening conv (2x2 valid)', x: [2, 32, 32, 3], k: [2, 2], cout: 24, stride: 1, pad: 'valid' },
  { name: 'odd sizes', x: [3, 9, 7, 5], k: [3, 3], cout: 6, stride: 1, pad: 'same' },
  { name: 'stride 2, same', x: [2, 10, 9, 3], k: [3, 3], cout: 4, stride: 2, pad: 'same' },
  { name: 'stride 2, valid', x: [4, 17, 17, 3], k: [3, 3], cout: 5, stride: 2, pad: 'valid' },
  { name: '1x1', x: [2, 6, 6, 8], k: [1, 1], cout: 12, stride: 1, pad: 'valid' },
  { name: '5x5', x: [2, 8, 8, 3], k: [5, 5], cout: 7, stride: 1, pad: 'same' },
  { name: '3x2 kernel', x: [2, 7, 6, 4], k: [3, 2], cout: 4, stride: 1, pad: 'valid' },
];

const KERNELS = ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'] as const;
type KernelName = (typeof KERNELS)[number];

function seeded(shape: number[], seed: number): Float32Array {
  return seededUniform(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );
}

function outShape(c: Case): number[] {
  return tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros([...c.k, c.x[3], c.cout]) as tf.Tensor4D, c.stride, c.pad).shape);
}

interface Data {
  x: Float32Array;
  w: Float32Array;
  dy: Float32Array;
  dyShape: number[];
}

function inputsFor(kernel: KernelName, c: Case, d: Data): { inputs: tf.NamedTensorMap; attrs: object } {
  const x = tf.tensor4d(d.x, c.x);
  const filter = tf.tensor4d(d.w, [...c.k, c.x[3], c.cout]);
  const dy = tf.tensor(d.dy, d.dyShape);
  const common = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dilations: 1 };
  switch (kernel) {
    case 'Conv2D':
      tf.dispose(dy);
      return { inputs: { x, filter }, attrs: common };
    case 'Conv2DBackpropInput':
      tf.dispose(x);
      return { inputs: { dy, filter }, attrs: { ...common, inputShape: c.x } };
    case 'Conv2DBackpropFilter':
      tf.dispose(filter);
      return { inputs: { x, dy }, attrs: { ...common, filterShape: [...c.k, c.x[3], c.cout] } };
  }
}

/** Runs the registered kernel (or, with `original`, the backend's own one) and returns its values. */
async function run(kernel: KernelName, c: Case, d: Data, original = false): Promise<Float32Array> {
  const { inputs, attrs } = inputsFor(kernel, c, d);
  const out = original
    ? tf.engine().makeTensorFromTensorInfo(
        originalKernel(kernel, tf.getBackend()).kernelFunc({
          inputs,
          attrs: attrs as tf.NamedAttrMap,
          backend: tf.backend(),
        }) as tf.TensorInfo,
      )
    : (tf.engine().runKernel(kernel, inputs, attrs as tf.NamedAttrMap) as tf.Tensor);
  const values = (await out.data()) as Float32Array;
  tf.dispose([out, ...Object.values(inputs)]);
  return values;
}

async function dataFor(c: Case): Promise<Data> {
  const dyShape = outShape(c);
  return { x: seeded(c.x, 1), w: seeded([...c.k, c.x[3], c.cout], 2), dy: seeded(dyShape, 3), dyShape };
}

const defaults = { ...splitTuning };
afterEach(() => Object.assign(splitTuning, defaults));

describeOnBackend('webgpu', 'WebGPU implicit-GEMM convolution kernels', () => {
  for (const c of CASES) {
    it(`${c.name}: x ${c.x.join('x')}, kernel ${c.k.join('x')}, ${c.cout} out, stride ${c.stride}, ${c.pad}: forward and both gradients equal cpu and tfjs's kernels (1e-4)`, async () => {
      await useBackend('cpu');
      const d = await dataFor(c);
      const expected = await Promise.all(KERNELS.map((k) => run(k, c, d)));
      await useBackend('webgpu');
      const before = liveTensors();
      for (let i = 0; i < KERNELS.length; i++) {
        const ours = await run(KERNELS[i]!, c, d);
        const tfjs = await run(KERNELS[i]!, c, d, true);
        expect(maxRelativeError(ours, expected[i]!), `${KERNELS[i]} against cpu`).toBeLessThanOrEqual(1e-4);
        expect(maxRelativeError(ours, tfjs), `${KERNELS[i]} against tfjs's webgpu kernel`).toBeLessThanOrEqual(1e-4);
      }
      expect(liveTensors()).toBe(before);
    });
  }

  it('splits a long K over several workgroups and sums the splits in a fixed order: equal to cpu, bit-identical run to run', async () => {
    // The seed's first filter gradient has K = 1024*31*31; at batch 4 and with small splits forced, K = 3844 crosses 16 splits.
    const c: Case = { name: 'long K', x: [4, 31, 31, 24], k: [3, 3], cout: 64, stride: 1, pad: 'same' };
    Object.assign(splitTuning, { targetWorkgroups: 64, minStepsPerSplit: 1 });
    expect(planSplits(3 * 3 * 24, 64, 4 * 31 * 31).splits).toBeGreaterThanOrEqual(16);
    await useBackend('cpu');
    const d = await dataFor(c);
    const expected = await run('Conv2DBackpropFilter', c, d);
    await useBackend('webgpu');
    const first = await run('Conv2DBackpropFilter', c, d);
    const second = await run('Conv2DBackpropFilter', c, d);
    expect(maxRelativeError(first, expected)).toBeLessThanOrEqual(1e-4);
    expect(Buffer.from(second.buffer).equals(Buffer.from(first.buffer))).toBe(true);
  });

  it('gives bit-identical results on repeated runs, for every kernel', async () => {
    const c = CASES[1]!;
    await useBackend('webgpu');
    const d = await dataFor(c);
    for (const k of KERNELS) {
      const a = await run(k, c, d);
      const b = await run(k, c, d);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), k).toBe(true);
    }
  });

  it("passes what it does not handle to tfjs's kernel: dilated forward convolutions", async () => {
    const x = seeded([2, 9, 9, 3], 4);
    const w = seeded([3, 3, 3, 4], 5);
    const conv = () => tf.tidy(() => tf.conv2d(tf.tensor4d(x, [2, 9, 9, 3]), tf.tensor4d(w, [3, 3, 3, 4]), 1, 'same', 'NHWC', 2));
    const values = async () => {
      const t = conv();
      const v = await t.data();
      t.dispose();
      return v;
    };
    await useBackend('cpu');
    const expected = await values();
    await useBackend('webgpu');
    expect(maxRelativeError(await values(), expected)).toBeLessThanOrEqual(1e-4);
  });
});
