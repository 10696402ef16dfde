// The device initBackend('webgpu') runs on. tfjs-backend-webgpu registers its own 'webgpu' factory when it is first
// imported where navigator.gpu exists, and that factory asks for timestamp queries only: a backend it made must
// not be what initBackend activates, or float16 convolutions would never reach the subgroup-matrix feature. This
// file imports tfjs-backend-webgpu itself (after Dawn is installed), so it does not use test/helpers/backends.ts.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { libraryDeviceFeatures } from '../../src/backend/init.js';
import { initBackend, installNodeWebGPU } from '../../src/backend/node.js';

const requested = (process.env['TFJS_DATAFLOW_BACKENDS'] ?? '').split(',').filter(Boolean);
const gpu: GPU | string =
  requested.length && !requested.includes('webgpu') ? `not in TFJS_DATAFLOW_BACKENDS=${requested.join(',')}` : await installNodeWebGPU();
const adapter = typeof gpu === 'string' ? null : await gpu.requestAdapter({ powerPreference: 'high-performance' });
const unavailable = typeof gpu === 'string' ? gpu : adapter == null ? 'WebGPU found no adapter' : undefined;
type Factories = Record<string, { factory: () => tf.KernelBackend | Promise<tf.KernelBackend>; priority: number }>;
const factories = () => (tf.engine() as unknown as { registryFactory: Factories }).registryFactory;
if (!unavailable) await import('@tensorflow/tfjs-backend-webgpu');
const tfjsFactory = unavailable ? undefined : factories()['webgpu'];
const deviceOf = () => (tf.backend() as unknown as { device: GPUDevice }).device;

describe.skipIf(unavailable)(
  `initBackend('webgpu') and tfjs-backend-webgpu's own factory${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    it('replaces a backend made by tfjs-backend-webgpu that holds no tensor with one on a device with every feature asked for', async () => {
      expect(tfjsFactory).toBeDefined();
      expect(await tf.setBackend('webgpu')).toBe(true);
      const wanted = libraryDeviceFeatures(adapter!);
      // tfjs's device lacks some of them (shader-f16 and subgroups on lavapipe, and on most GPUs), or this proves nothing.
      expect(wanted.filter((f) => !deviceOf().features.has(f)).length).toBeGreaterThan(0);
      const report = await initBackend('webgpu');
      expect(tf.getBackend()).toBe('webgpu');
      expect(wanted.filter((f) => !deviceOf().features.has(f))).toEqual([]);
      expect(report.convPrecision).toBe('float32');
      // A second call keeps the backend it made.
      const device = deviceOf();
      await initBackend('webgpu');
      expect(deviceOf()).toBe(device);
    });

    it("keeps a backend that holds the caller's tensors, and says why float16 cannot run on it", async () => {
      tf.removeBackend('webgpu');
      tf.registerBackend('webgpu', tfjsFactory!.factory, tfjsFactory!.priority);
      await tf.setBackend('webgpu');
      const kept = tf.tensor1d([1, 2, 3]);
      const device = deviceOf();
      const report = await initBackend('webgpu', { webgpuConvPrecision: 'float16' });
      expect(deviceOf()).toBe(device);
      expect(report.convPrecision).toMatch(
        /^float32 \(float16 requested, but the WebGPU backend already running lacks .+ and holds 1 tensor \(call initBackend before creating tensors\)\)$/,
      );
      expect(Array.from(await kept.data())).toEqual([1, 2, 3]);
      kept.dispose();
      // Without tensors it is replaced.
      await initBackend('webgpu', { webgpuConvPrecision: 'float16' });
      expect(deviceOf()).not.toBe(device);
    });

    it('says to read with data() when dataSync() meets a GPU tensor in Node, and still returns values on the CPU', async () => {
      await initBackend('webgpu');
      expect((globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas).toBeUndefined();
      const before = tf.memory().numTensors;
      const onCpu = tf.tensor1d([1, 2, 3]);
      expect(Array.from(onCpu.dataSync())).toEqual([1, 2, 3]);
      // Large enough that tfjs-backend-webgpu does not hand the add to its CPU path (1,000 values or fewer).
      const onGpu = tf.tidy(() => tf.add(tf.tile(onCpu, [1000]), 1));
      expect(() => onGpu.dataSync()).toThrow(/cannot read a WebGPU tensor in Node.*await tensor\.data\(\)/);
      expect(() => onGpu.arraySync()).toThrow(/await tensor\.array\(\)/);
      expect(Array.from((await onGpu.data()).slice(0, 4))).toEqual([2, 3, 4, 2]);
      // Once read, its values are on the CPU too.
      expect(Array.from(onGpu.dataSync().slice(0, 4))).toEqual([2, 3, 4, 2]);
      tf.dispose([onCpu, onGpu]);
      expect(tf.memory().numTensors).toBe(before);
    });
  },
);
