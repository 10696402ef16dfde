import * as tf from '@tensorflow/tfjs-core';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/backend/node.js';
import { defaultWasmThreads, enableNodeWasmThreads } from '../../src/backend/wasm-threads.js';
import { maxRelativeError } from '../helpers/assert.js';

// Not through describeEachBackend: this file starts the threaded wasm build itself.
describe('enableNodeWasmThreads (bench --wasm-threads)', () => {
  /** Runs the child script (its flags in `args`) and returns its exit code and output. */
  const runChild = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const script = fileURLToPath(new URL('../fixtures/backend/wasm-threads-exit.ts', import.meta.url));
      // Before the fix, the pool's workers held the event loop open and the child ran into this timeout.
      const child = execFile(process.execPath, ['--import', 'tsx', script, ...args], { timeout: 45_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      });
      child.stdin?.end();
    });

  it('lets a Node process that used the threads exit by itself when its work is done', async () => {
    const result = await runChild(['2']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // A 3x3 window of ones over 4 channels of ones, away from the border: 36.
    expect(JSON.parse(result.stdout)).toEqual({ threads: 2, centre: 36 });
  }, 60_000);

  it('gives a fresh process one wasm thread per core, at most 4, when initBackend is not told a count', async () => {
    const result = await runChild([]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ threads: defaultWasmThreads(), centre: 36 });
  }, 60_000);

  it("defaultWasmThreads: one per logical core, capped at tfjs's 4; the single-threaded build on one core", () => {
    expect([1, 2, 3, 4, 16, 128].map((cores) => defaultWasmThreads(cores))).toEqual([1, 2, 3, 4, 4, 4]);
  });

  it('runs tfjs-backend-wasm with 2 XNNPACK threads under Node, with the results of the cpu backend', async () => {
    const conv = async () => {
      const x = tf.tensor4d(
        Array.from({ length: 4 * 9 * 9 * 6 }, (_, i) => Math.sin(i * 0.37)),
        [4, 9, 9, 6],
      );
      const w = tf.tensor4d(
        Array.from({ length: 3 * 3 * 6 * 8 }, (_, i) => Math.cos(i * 0.11) * 0.3),
        [3, 3, 6, 8],
      );
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same'))),
      )([x, w]);
      const y = tf.conv2d(x, w, 1, 'same');
      const out = [await y.data(), await dx!.data(), await dw!.data()];
      tf.dispose([x, w, dx!, dw!, y]);
      return out;
    };
    await initBackend('cpu');
    const expected = await conv();
    expect(await enableNodeWasmThreads(2)).toBe(2);
    const report = await initBackend('wasm');
    expect(report.wasmThreads).toBe(2);
    expect(report.reason).toMatch(/2 threads/);
    const actual = await conv();
    // float32 sums in another order (XNNPACK tiles, split over threads): a few ulps of the sum.
    actual.forEach((a, i) => expect(maxRelativeError(a, expected[i]!)).toBeLessThan(5e-5));
  }, 60_000);

  it('refuses a bad thread count, and another count while wasm is the active backend', async () => {
    await expect(enableNodeWasmThreads(0)).rejects.toThrow(/threads must be a positive integer, got 0/);
    await expect(initBackend('wasm', { wasmThreads: 1.5 })).rejects.toThrow(/wasmThreads must be a positive integer, got 1.5/);
    await initBackend('wasm');
    await expect(enableNodeWasmThreads(3)).rejects.toThrow(/already active; call this before initBackend/);
    await expect(initBackend('wasm', { wasmThreads: 1 })).rejects.toThrow(
      /threaded wasm backend is the active backend; switch to another backend first/,
    );
  });

  it('keeps the running wasm backend (and its tensors) when asked again, and goes back to one thread on request', async () => {
    await initBackend('wasm', { wasmThreads: 2 });
    const kept = tf.tensor1d([1, 2, 3]);
    // The same count again, or no count: the backend is not replaced, so its tensors stay readable.
    expect(await enableNodeWasmThreads(2)).toBe(2);
    expect((await initBackend('wasm')).wasmThreads).toBe(2);
    expect((await initBackend('wasm', { wasmThreads: 2 })).wasmThreads).toBe(2);
    expect(Array.from(await kept.data())).toEqual([1, 2, 3]);
    kept.dispose();
    // --wasm-threads 1: the single-threaded SIMD build again, then threads once more.
    await initBackend('cpu');
    const single = await initBackend('wasm', { wasmThreads: 1 });
    expect(single.wasmThreads).toBe(1);
    expect(single.reason).toBe('WebAssembly SIMD with 1 thread');
    expect(tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT')).toBe(false);
    const y = tf.conv2d(tf.ones([1, 5, 5, 2]) as tf.Tensor4D, tf.ones([3, 3, 2, 1]) as tf.Tensor4D, 1, 'same');
    expect((await y.data())[2 * 5 + 2]).toBe(18);
    tf.dispose(y);
    await initBackend('cpu');
    expect((await initBackend('wasm', { wasmThreads: 2 })).wasmThreads).toBe(2);
  }, 60_000);
});
