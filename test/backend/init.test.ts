import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';
import { initBackend as initBrowserBackend } from '../../src/backend/browser.js';
import { BackendUnavailableError, describeAdapter, initBackendOn, type Platform } from '../../src/backend/init.js';
import { initBackend } from '../../src/backend/node.js';
import { backendAvailable } from '../helpers/backends.js';

describe('initBackend', () => {
  it('rejects an unknown name, listing the valid ones', async () => {
    await expect(initBackend('webgl' as never)).rejects.toThrow(
      "initBackend: unknown backend 'webgl'; expected one of 'auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'",
    );
  });

  it("explains how to get 'tensorflow' when tfjs-node is not installed", async () => {
    const error = await initBackend('tensorflow').catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/npm install @tensorflow\/tfjs-node-gpu/);
    expect((error as Error).message).toMatch(/@tensorflow\/tfjs-node\b/);
  });

  it("says 'tensorflow' is Node-only from the browser entry", async () => {
    await expect(initBrowserBackend('tensorflow')).rejects.toThrow(/runs only in Node.*tfjs-dataflow\/node/);
  });

  it('says how to get WebGPU in Node from the browser entry', async () => {
    const g = globalThis as { navigator?: { gpu?: unknown } };
    const saved = g.navigator?.gpu;
    if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: undefined, configurable: true });
    try {
      const error = await initBrowserBackend('webgpu').catch((e: Error) => e);
      expect(error).toBeInstanceOf(BackendUnavailableError);
      expect((error as Error).message).toMatch(/import initBackend from 'tfjs-dataflow\/node'/);
    } finally {
      if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: saved, configurable: true });
    }
  });

  it('sets cpu when asked, without a warning', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const report = await initBackend('cpu');
      expect(report.backend).toBe('cpu');
      expect(tf.getBackend()).toBe('cpu');
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it.skipIf(!backendAvailable('wasm'))('sets wasm with its thread count', async () => {
    const report = await initBackend('wasm');
    expect(report).toMatchObject({ backend: 'wasm' });
    expect(report.wasmThreads).toBeGreaterThanOrEqual(1);
    expect(tf.getBackend()).toBe('wasm');
  });

  it.skipIf(!backendAvailable('webgpu'))('sets webgpu and describes the adapter', async () => {
    const report = await initBackend('webgpu');
    expect(report.backend).toBe('webgpu');
    expect(report.adapter).toBeDefined();
    expect(report.reason).toContain(report.adapter!.isSoftware ? 'software adapter' : 'GPU');
  });

  it('auto passes over a software WebGPU adapter and says why', async () => {
    const report = await initBackend('auto');
    const adapter = backendAvailable('webgpu') ? (await initBackend('webgpu')).adapter : undefined;
    await initBackend(report.backend);
    if (adapter && !adapter.isSoftware) {
      expect(report.backend).toBe('webgpu');
    } else {
      // No tfjs-node here, so wasm is next; the reason names what was passed over.
      expect(report.backend).toBe('wasm');
      expect(report.reason).toMatch(/passed over: webgpu: .*tensorflow: /);
    }
  });
});

describe("'auto' where wasm is not installed", () => {
  // A Node machine with neither a GPU nor tfjs-node, and no @tensorflow/tfjs-backend-wasm: the newcomer.
  const bare: Platform = {
    name: 'node',
    gpu: async () => 'no WebGPU in this test',
    loadTensorflow: async () => {
      throw new Error('no tfjs-node in this test');
    },
  };

  it('falls back to cpu only with a console warning and a reason that say it is too slow to train on and to install wasm', async () => {
    vi.doMock('@tensorflow/tfjs-backend-wasm', () => {
      throw new Error("Cannot find package '@tensorflow/tfjs-backend-wasm'");
    });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const report = await initBackendOn(bare, 'auto');
      expect(report.backend).toBe('cpu');
      expect(tf.getBackend()).toBe('cpu');
      expect(report.reason).toMatch(/^cpu, the last resort, far too slow to train on \(.*\): install the wasm backend/);
      expect(report.reason).toContain('install the wasm backend (npm install @tensorflow/tfjs-backend-wasm@4.22.0)');
      expect(report.reason).toContain("or ask for initBackend('cpu') to choose cpu knowingly");
      expect(report.reason).toMatch(
        /passed over: webgpu: no WebGPU in this test; tensorflow: no tfjs-node in this test; wasm: backend 'wasm' needs/,
      );
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![0]).toBe(`tfjs-dataflow: initBackend('auto') fell back to ${report.reason}`);
    } finally {
      warn.mockRestore();
      vi.doUnmock('@tensorflow/tfjs-backend-wasm');
    }
  });

  it('in a browser where wasm is installed but cannot start, says to serve its .wasm files rather than to install it', async () => {
    // The wasm module loads, but starting it fails (here: setWasmPaths refuses the location it is given).
    vi.doMock('@tensorflow/tfjs-backend-wasm', () => ({
      setWasmPaths: () => {
        throw new Error("no .wasm files at '/nowhere/'");
      },
    }));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const report = await initBackendOn({ ...bare, name: 'browser' }, 'auto', { wasmPaths: '/nowhere/' });
      expect(report.backend).toBe('cpu');
      expect(report.reason).toContain("make wasm start (serve tfjs-backend-wasm's .wasm files and pass their URL as wasmPaths)");
      expect(report.reason).not.toContain('npm install');
      expect(report.reason).toMatch(/passed over: webgpu: no WebGPU in this test; wasm: no \.wasm files at '\/nowhere\/'\)$/);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
      vi.doUnmock('@tensorflow/tfjs-backend-wasm');
    }
  });

  it.skipIf(!backendAvailable('wasm'))('takes wasm when it is installed, without a warning', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const report = await initBackendOn(bare, 'auto');
      expect(report.backend).toBe('wasm');
      expect(report.reason).toMatch(/^WebAssembly SIMD with \d+ threads? \(passed over: webgpu: .*; tensorflow: .*\)$/);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});

describe('describeAdapter', () => {
  const adapter = (info: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean }) => ({ info }) as unknown as GPUAdapter;
  it('recognises software adapters', () => {
    expect(describeAdapter(adapter({ vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa 25' })).isSoftware).toBe(true);
    expect(describeAdapter(adapter({ vendor: 'google', description: 'SwiftShader Device (Subzero)' })).isSoftware).toBe(true);
    expect(describeAdapter(adapter({ vendor: 'x', isFallbackAdapter: true })).isSoftware).toBe(true);
  });
  it('recognises hardware adapters', () => {
    expect(describeAdapter(adapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100' })).isSoftware).toBe(false);
  });
});
