// initBackend('webgpu', { webgpuConvPrecision: 'float16' }) on this machine's adapter. Without subgroup
// matrices (lavapipe) the f32 kernels must run and say why; with them (a GPU that reports a configuration)
// the tensor-core convolutions must stay within 1e-2 of the f32 kernels (f16 operands) and rerun bit for bit.
// Dawn starts here with the toggle the feature needs, so this file does not use test/helpers/backends.ts.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/backend/node.js';
import type { BackendReport } from '../../../src/backend/init.js';
import { setWebGPUConvPrecision, tensorCoreConfigFor } from '../../../src/backend/kernels/webgpu/subgroup_matrix.js';
import type { WebGPUBackendLike } from '../../../src/backend/kernels/types.js';
import { maxRelativeError, seededUniform } from '../../helpers/assert.js';
import { liveTensors } from '../../helpers/memory.js';

const requested = (process.env['TFJS_DATAFLOW_BACKENDS'] ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const report: BackendReport | string =
  requested.length && !requested.includes('webgpu')
    ? `not in TFJS_DATAFLOW_BACKENDS=${requested.join(',')}`
    : await initBackend('webgpu', { webgpuConvPrecision: 'float16' }).catch((e: Error) => e.message);
const noWebGPU = typeof report === 'string' ? report : undefined;
const onTensorCores = typeof report !== 'string' && report.convPrecision?.startsWith('float16') === true;
const noTensorCores = noWebGPU ?? (onTensorCores ? undefined : (report as BackendReport).convPrecision);

afterAll(() => setWebGPUConvPrecision('float32'));

interface Case {
  name: string;
  x: [number, number, number, number];
  k: [number, number];
  cout: number;
  stride: number;
  pad: 'same' | 'valid';
}
// The seed's convolutions (bench/conv-kernels.ts's shapes) at a small batch, and the awkward ones.
const CASES: Case[] = [
  { name: 'seed 31x31x24->64', x: [4, 31, 31, 24], k: [3, 3], cout: 64, stride: 1, pad: 'same' },
  { name: 'seed 15x15x64->256', x: [4, 15, 15, 64], k: [3, 3], cout: 256, stride: 1, pad: 'same' },
  { name: 'seed 7x7x256->512', x: [4, 7, 7, 256], k: [3, 3], cout: 512, stride: 1, pad: 'same' },
  { name: 'seed 3x3x512->512', x: [4, 3, 3, 512], k: [3, 3], cout: 512, stride: 1, pad: 'same' },
  { name: 'odd sizes', x: [3, 9, 7, 5], k: [3, 3], cout: 6, stride: 1, pad: 'same' },
  { name: 'stride 2, valid', x: [4, 17, 17, 3], k: [3, 3], cout: 5, stride: 2, pad: 'valid' },
  { name: '1x1', x: [2, 6, 6, 8], k: [1, 1], cout: 12, stride: 1, pad: 'valid' },
];

/** Forward, input gradient and filter gradient of case `c` on fixed data, read back. */
async function convs(c: Case): Promise<Float32Array[]> {
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const wShape: [number, number, number, number] = [...c.k, c.x[3], c.cout];
  const outs = tf.tidy(() => {
    const x = tf.tensor4d(seededUniform(size(c.x), 1), c.x);
    const w = tf.tensor4d(seededUniform(size(wShape), 2), wShape);
    const y = tf.conv2d(x, w, c.stride, c.pad);
    const dy = tf.tensor4d(seededUniform(size(y.shape), 3), y.shape);
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
    const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter: w }, { ...attrs, inputShape: c.x } as never) as tf.Tensor;
    const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape: wShape } as never) as tf.Tensor;
    return [y, dx, dw];
  });
  const values = await Promise.all(outs.map((t) => t.data() as Promise<Float32Array>));
  tf.dispose(outs);
  return values;
}

function convShaderKeys(): string[] {
  const cache = (tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache;
  return Object.keys(cache).filter((k) => k.startsWith('dataflowConv'));
}

describe.skipIf(!noTensorCores || noWebGPU)(
  `WebGPU without subgroup matrices: float16 falls back to the f32 kernels${noWebGPU ? ` (skipped: ${noWebGPU})` : ''}`,
  () => {
    it('says so in the report, and runs the f32 kernels: the same bits as precision float32', async () => {
      expect((report as BackendReport).convPrecision).toMatch(/^float32 \(float16 requested, but .+\)$/);
      expect(typeof tensorCoreConfigFor((tf.backend() as unknown as WebGPUBackendLike).device)).toBe('string');
      const before = liveTensors();
      for (const c of CASES.slice(4)) {
        const fallback = await convs(c);
        setWebGPUConvPrecision('float32');
        const f32 = await convs(c);
        setWebGPUConvPrecision('float16');
        for (let i = 0; i < 3; i++)
          expect(Buffer.from(fallback[i]!.buffer).equals(Buffer.from(f32[i]!.buffer)), `${c.name} kernel ${i}`).toBe(true);
      }
      expect(convShaderKeys().length).toBeGreaterThan(0);
      expect(convShaderKeys().every((k) => k.includes('_f32_'))).toBe(true);
      expect(liveTensors()).toBe(before);
    });
  },
);

describe.skipIf(!onTensorCores)(
  `tensor-core convolutions against the f32 kernels${onTensorCores ? '' : ` (skipped: needs a GPU with subgroup matrices; here ${noTensorCores})`}`,
  () => {
    for (const c of CASES) {
      it(`${c.name}: forward and both gradients within 1e-2 of the f32 kernels, bit-identical reruns`, async () => {
        const before = liveTensors();
        setWebGPUConvPrecision('float32');
        const f32 = await convs(c);
        setWebGPUConvPrecision('float16');
        const first = await convs(c);
        const second = await convs(c);
        for (let i = 0; i < 3; i++) {
          expect(maxRelativeError(first[i]!, f32[i]!), `${c.name} kernel ${i}`).toBeLessThanOrEqual(1e-2);
          expect(Buffer.from(second[i]!.buffer).equals(Buffer.from(first[i]!.buffer)), `${c.name} kernel ${i} rerun`).toBe(true);
        }
        expect(convShaderKeys().some((k) => k.includes('_tc'))).toBe(true);
        expect(liveTensors()).toBe(before);
      });
    }
  },
);
