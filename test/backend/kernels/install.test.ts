import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { uninstallLibraryKernels } from '../../../src/backend/kernels/index.js';
import { LIBRARY_GRADIENTS } from '../../../src/backend/kernels/gradients.js';
import {
  gradientsInstalled,
  installGradients,
  installOverrides,
  originalKernel,
  overridesInstalled,
  uninstallGradients,
  uninstallOverrides,
} from '../../../src/backend/kernels/install.js';
import { RANDOM_KERNEL } from '../../../src/backend/kernels/names.js';
import { wasmTrainingKernelsInstalled, WASM_TRAINING_KERNELS } from '../../../src/backend/kernels/wasm/index.js';
import { DeviceRandom, drawOnHost } from '../../../src/ops/random.js';
import {
  installWebGPUTrainingKernels,
  uninstallWebGPUTrainingKernels,
  webgpuTrainingKernelsInstalled,
  WEBGPU_TRAINING_KERNELS,
} from '../../../src/backend/kernels/webgpu/index.js';
import { hasChannelMomentsKernel } from '../../../src/ops/moments.js';
import { initBackend } from '../../../src/backend/node.js';
import { describeEachBackend, describeOnBackend, useBackend } from '../../helpers/backends.js';

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

  it('uninstalls only the kernels named, when given names', () => {
    const a: tf.KernelFunc = () => ({ dataId: {}, shape: [1], dtype: 'float32' });
    installOverrides(backend, { A: a, B: a });
    expect(overridesInstalled(backend, ['A', 'B'])).toBe(true);
    uninstallOverrides(backend, ['A']);
    expect(tf.getKernel('A', backend)).toBeUndefined();
    expect(tf.getKernel('B', backend)!.kernelFunc).toBe(a);
    expect(overridesInstalled(backend, ['A'])).toBe(false);
    expect(overridesInstalled(backend)).toBe(true);
    uninstallOverrides(backend, ['B']);
    expect(overridesInstalled(backend)).toBe(false);
  });
});

describe('installGradients', () => {
  it('keeps the gradients it replaces and puts them back (removing one it added)', () => {
    const name = 'DataflowInstallTestOp';
    const mine: tf.GradConfig = { kernelName: 'Sum', gradFunc: () => ({}) };
    const added: tf.GradConfig = { kernelName: name, gradFunc: () => ({}) };
    const wasInstalled = gradientsInstalled();
    uninstallGradients();
    const tfjsSum = tf.getGradient('Sum');
    try {
      installGradients([mine, added]);
      expect(tf.getGradient('Sum')).toBe(mine);
      expect(tf.getGradient(name)).toBe(added);
      installGradients([{ kernelName: 'Sum', gradFunc: () => ({}) }]); // idempotent
      expect(tf.getGradient('Sum')).toBe(mine);
      uninstallGradients();
      expect(tf.getGradient('Sum')).toBe(tfjsSum);
      expect(tf.getGradient(name)).toBeUndefined();
    } finally {
      if (wasInstalled) installGradients(LIBRARY_GRADIENTS);
    }
  });
});

describeEachBackend("The library's kernels", (backend) => {
  it('initBackend installs its random kernel and gradients; uninstallLibraryKernels puts tfjs back and the ops fall back to the same numbers', async () => {
    const libraryRandom = tf.getKernel(RANDOM_KERNEL, backend);
    expect(libraryRandom).toBeDefined();
    for (const g of LIBRARY_GRADIENTS) expect(tf.getGradient(g.kernelName)).toBe(g);
    if (backend === 'wasm') expect(wasmTrainingKernelsInstalled()).toBe(true);
    uninstallLibraryKernels();
    try {
      expect(tf.getKernel(RANDOM_KERNEL, backend)).toBeUndefined();
      for (const g of LIBRARY_GRADIENTS) expect(tf.getGradient(g.kernelName)).not.toBe(g);
      if (backend === 'wasm') {
        for (const k of WASM_TRAINING_KERNELS) expect(tf.getKernel(k.kernelName, 'wasm')?.kernelFunc).not.toBe(k.kernelFunc);
      }
      if (backend === 'webgpu') expect(hasChannelMomentsKernel()).toBe(false);
      const drawn = new DeviceRandom(5).uniform([6]);
      expect([...(await drawn.data())]).toEqual([...drawOnHost(5, 0, [6], 'uniform')]);
      drawn.dispose();
      // tfjs's own Sum gradient still differentiates.
      const x = tf.ones([2, 3]);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(t))(x);
      expect([...(await dx.data())]).toEqual([1, 1, 1, 1, 1, 1]);
      tf.dispose([x, dx]);
    } finally {
      await initBackend(backend);
    }
    expect(tf.getKernel(RANDOM_KERNEL, backend)?.kernelFunc).toBe(libraryRandom!.kernelFunc);
    for (const g of LIBRARY_GRADIENTS) expect(tf.getGradient(g.kernelName)).toBe(g);
  });
});

describeOnBackend('webgpu', 'WebGPU training kernels', () => {
  it("initBackend installs them; uninstall restores tfjs-backend-webgpu's own and the ops fall back; install again", async () => {
    await useBackend('webgpu');
    expect(webgpuTrainingKernelsInstalled()).toBe(true);
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
});
