import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe } from 'vitest';
import { webgpuTrainingKernelsInstalled } from '../../src/backend/kernels/webgpu/index.js';
import { initBackend } from '../../src/backend/node.js';
import type { ConcreteBackend } from '../../src/backend/init.js';

/** The backends every backend-dependent test runs on. */
export const TEST_BACKENDS = ['cpu', 'wasm', 'webgpu'] as const satisfies readonly ConcreteBackend[];
export type TestBackend = (typeof TEST_BACKENDS)[number];

const requested = (process.env['TFJS_DATAFLOW_BACKENDS'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/** Why each backend cannot run here, probed once per test file (undefined: it runs). */
const unavailable = new Map<TestBackend, string>();
for (const name of TEST_BACKENDS) {
  if (requested.length && !requested.includes(name)) {
    unavailable.set(name, `not in TFJS_DATAFLOW_BACKENDS=${requested.join(',')}`);
    continue;
  }
  try {
    await initBackend(name);
  } catch (e) {
    unavailable.set(name, (e as Error).message);
  }
}

/** Which kernels WebGPU runs in the current suite: the library's (initBackend's default) or tfjs-backend-webgpu's own. */
let webgpuKernels: 'library' | 'tfjs' = 'library';

/** Switches tfjs to `name` (already probed); on WebGPU, with the current suite's kernel set. */
export async function useBackend(name: TestBackend): Promise<void> {
  const wantLibrary = webgpuKernels === 'library';
  const kernelsRight = name !== 'webgpu' || webgpuTrainingKernelsInstalled() === wantLibrary;
  if (tf.getBackend() !== name || !kernelsRight) {
    await initBackend(name, name === 'webgpu' ? { webgpuTrainingKernels: wantLibrary } : {});
  }
}

/**
 * Runs `body` once per backend of `only` (default: all) inside a `describe` titled with the backend.
 * A backend that cannot start here is reported as skipped, with its reason, so a skip always means
 * "cannot run here". Backends left out through `only` are not declared at all; `whyNot` says why, for
 * the reader of the suite.
 */
export function describeEachBackend(
  title: string,
  body: (backend: TestBackend) => void,
  only: readonly TestBackend[] = TEST_BACKENDS,
  whyNot?: string,
): void {
  void whyNot;
  for (const backend of TEST_BACKENDS) {
    if (!only.includes(backend)) continue;
    const reason = unavailable.get(backend);
    if (reason) {
      describe.skip(`${title} [${backend}] (skipped: ${reason})`, () => body(backend));
      continue;
    }
    describe(`${title} [${backend}]`, () => {
      // Registered first so it runs before the body's own hooks.
      beforeAll(() => useBackend(backend));
      body(backend);
    });
  }
}

/** A suite of one backend's own code (its kernels): declared for that backend only, skipped with the reason when it cannot start here. */
export function describeOnBackend(backend: TestBackend, title: string, body: () => void): void {
  describeEachBackend(title, () => body(), [backend]);
}

export function backendAvailable(name: TestBackend): boolean {
  return !unavailable.has(name);
}

/**
 * `describeEachBackend`, then WebGPU once more with tfjs-backend-webgpu's own kernels in place of the
 * library's WebGPU training kernels (which initBackend installs by default): the golden, leak and
 * resume suites must hold with either set.
 */
export function describeEachBackendAndWebGPUKernelSet(
  title: string,
  body: (backend: TestBackend) => void,
  only: readonly TestBackend[] = TEST_BACKENDS,
  whyNot?: string,
): void {
  describeEachBackend(title, body, only, whyNot);
  if (!only.includes('webgpu')) return;
  const variant = `${title} [webgpu, tfjs kernels]`;
  const reason = unavailable.get('webgpu');
  if (reason) {
    describe.skip(`${variant} (skipped: ${reason})`, () => body('webgpu'));
    return;
  }
  describe(variant, () => {
    beforeAll(async () => {
      webgpuKernels = 'tfjs';
      await useBackend('webgpu');
    });
    afterAll(async () => {
      webgpuKernels = 'library';
      if (tf.getBackend() === 'webgpu') await useBackend('webgpu');
    });
    body('webgpu');
  });
}
