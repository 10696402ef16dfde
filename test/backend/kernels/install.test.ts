import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { installOverrides, originalKernel, overridesInstalled, uninstallOverrides } from '../../../src/backend/kernels/install.js';
import { installWebGPUTrainingKernels, uninstallWebGPUTrainingKernels, WEBGPU_TRAINING_KERNELS } from '../../../src/backend/kernels/webgpu/index.js';
import { hasChannelMomentsKernel } from '../../../src/ops/moments.js';
import { describeEachBackend, useBackend } from '../../helpers/backends.js';

describe('installOverrides', () => {
  const backend = 'dataflow-install-test';
  const ownKernel: tf.KernelFunc = () => ({ dataId: {}, shape: [], dtype: 'float32' });
  const setupFunc = () => undefined;

  it('keeps the originals (with their setup), falls back to them, and uninstall restores them exactly', () => {
    tf.registerKernel({ kernelName: 'Own', backendName: backend, kernelFunc: ownKernel, setupFunc });
    const original = tf.getKernel('Own', backend)!;
    const override: tf.KernelFunc = () => ({ dataId: {}, shape: [1], dtype: 'float32' });
    const added: tf.KernelFunc = () => ({ dataId: {}, shape: [2], dtype: 'float32' });
    installOverrides(backend, { Own: override, Added: added });
    expect(overridesInstalled(backend)).toBe(true);
    expect(tf.getKernel('Own', backend)!.kernelFunc).toBe(override);
    expect(tf.getKernel('Own', backend)!.setupFunc).toBe(setupFunc);
    expect(tf.getKernel('Added', backend)!.kernelFunc).toBe(added);
    expect(originalKernel('Own', backend)).toBe(original);
    expect(() => originalKernel('Added', backend)).toThrow(`${backend} kernel 'Added' is not registered`);
    // A second install changes nothing that is already overridden.
    installOverrides(backend, { Own: added });
    expect(tf.getKernel('Own', backend)!.kernelFunc).toBe(override);
    uninstallOverrides(backend);
    expect(overridesInstalled(backend)).toBe(false);
    expect(tf.getKernel('Own', backend)).toBe(original);
    expect(tf.getKernel('Added', backend)).toBeUndefined();
    uninstallOverrides(backend); // idempotent
    tf.unregisterKernel('Own', backend);
  });
});

describeEachBackend('WebGPU training kernels', () => {
  it('initBackend installs them; uninstall restores tfjs-backend-webgpu\'s own and the ops fall back; install again', async () => {
    await useBackend('webgpu');
    expect(overridesInstalled('webgpu')).toBe(true);
    const tfjsConv = originalKernel('Conv2D', 'webgpu');
    expect(tf.getKernel('Conv2D', 'webgpu')).not.toBe(tfjsConv);
    expect(hasChannelMomentsKernel()).toBe(true);
    uninstallWebGPUTrainingKernels();
    try {
      expect(tf.getKernel('Conv2D', 'webgpu')).toBe(tfjsConv);
      expect(hasChannelMomentsKernel()).toBe(false);
      for (const k of WEBGPU_TRAINING_KERNELS) expect(tf.getKernel(k.kernelName, 'webgpu')?.kernelFunc).not.toBe(k.kernelFunc);
    } finally {
      installWebGPUTrainingKernels();
    }
    for (const k of WEBGPU_TRAINING_KERNELS) expect(tf.getKernel(k.kernelName, 'webgpu')!.kernelFunc).toBe(k.kernelFunc);
  });
}, ['webgpu'], 'the WebGPU kernel set');
