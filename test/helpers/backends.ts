import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe } from 'vitest';
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

/** Switches tfjs to `name` (already probed) and returns it. */
export async function useBackend(name: TestBackend): Promise<void> {
  if (tf.getBackend() !== name) await initBackend(name);
}

/**
 * Runs `body` once per backend inside a `describe` titled with the backend.
 * A backend that cannot start here is reported as skipped, with its reason; so is
 * a backend left out through `only`, with `whyNot` as the reason.
 */
export function describeEachBackend(
  title: string,
  body: (backend: TestBackend) => void,
  only: readonly TestBackend[] = TEST_BACKENDS,
  whyNot = 'not selected for this suite',
): void {
  for (const backend of TEST_BACKENDS) {
    const reason = only.includes(backend) ? unavailable.get(backend) : whyNot;
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

export function backendAvailable(name: TestBackend): boolean {
  return !unavailable.has(name);
}
