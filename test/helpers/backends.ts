import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe } from 'vitest';
import { webgpuTrainingKernelsInstalled } from '../../src/backend/kernels/webgpu/index.js';
import { initBackend } from '../../src/backend/node.js';
import { F16_OPERAND_TOLERANCE } from './f16.js';
import { CONV_PRECISIONS, type ConvPrecision } from '../../src/backend/kernels/webgpu/conv_precision.js';
import type { ConcreteBackend } from '../../src/backend/init.js';

/** The backends every backend-dependent test runs on. */
export const TEST_BACKENDS = ['cpu', 'wasm', 'webgpu'] as const satisfies readonly ConcreteBackend[];
export type TestBackend = (typeof TEST_BACKENDS)[number];

const requested = (process.env['TFJS_DATAFLOW_BACKENDS'] ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);

/**
 * Threads of the wasm backend in the suites: TFJS_DATAFLOW_WASM_THREADS=N (1 to 4) runs every wasm test on the
 * threaded build; unset, one thread (the single-threaded SIMD build, as on a one-core machine), so that the
 * suites' wasm results do not depend on the machine's core count. initBackend's own default is threads.
 */
export const TEST_WASM_THREADS = parseWasmThreads(process.env['TFJS_DATAFLOW_WASM_THREADS']);

function parseWasmThreads(text: string | undefined): number {
  if (text === undefined || text.trim() === '') return 1;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 4) throw new Error(`TFJS_DATAFLOW_WASM_THREADS must be an integer from 1 to 4, got '${text}'`);
  return n;
}

/** The backend as suite titles name it: a threaded wasm run says so. */
function backendLabel(name: TestBackend): string {
  return name === 'wasm' && TEST_WASM_THREADS > 1 ? `wasm, ${TEST_WASM_THREADS} threads` : name;
}

/**
 * How the WebGPU suites' convolutions multiply: TFJS_DATAFLOW_CONV_PRECISION=float16 runs them on subgroup
 * matrices (tensor cores) where the adapter has them (tools/tensor-cores/test.sh does, on Mesa 26's lavapipe).
 */
export const TEST_CONV_PRECISION = parseConvPrecision(process.env['TFJS_DATAFLOW_CONV_PRECISION']);

function parseConvPrecision(text: string | undefined): ConvPrecision {
  if (text === undefined || text.trim() === '') return 'float32';
  if (!(CONV_PRECISIONS as readonly string[]).includes(text)) {
    throw new Error(`TFJS_DATAFLOW_CONV_PRECISION must be one of ${CONV_PRECISIONS.join(', ')}, got '${text}'`);
  }
  return text as ConvPrecision;
}

/** initBackend's options for a test backend: the suite's wasm thread count, and WebGPU's kernel set and precision. */
function backendOptions(name: TestBackend, webgpuTrainingKernels = true) {
  if (name === 'wasm') return { wasmThreads: TEST_WASM_THREADS };
  return name === 'webgpu' ? { webgpuTrainingKernels, webgpuConvPrecision: TEST_CONV_PRECISION } : {};
}

let precisionMissing: string | undefined;
/** Why each backend cannot run here, probed once per test file (undefined: it runs). */
const unavailable = new Map<TestBackend, string>();
for (const name of TEST_BACKENDS) {
  if (requested.length && !requested.includes(name)) {
    unavailable.set(name, `not in TFJS_DATAFLOW_BACKENDS=${requested.join(',')}`);
    continue;
  }
  try {
    const report = await initBackend(name, backendOptions(name));
    // A threaded suite that silently ran on one thread would prove nothing.
    if (name === 'wasm' && report.wasmThreads !== TEST_WASM_THREADS) {
      throw new Error(`TFJS_DATAFLOW_WASM_THREADS=${TEST_WASM_THREADS}, but the wasm backend runs ${report.wasmThreads} thread(s)`);
    }
    // Nor would a float16 suite on the f32 kernels: that fails the file rather than skip it.
    if (name === 'webgpu' && TEST_CONV_PRECISION === 'float16' && !report.convPrecision?.startsWith('float16')) {
      precisionMissing = `TFJS_DATAFLOW_CONV_PRECISION=float16, but WebGPU's convolutions run ${report.convPrecision}`;
    }
  } catch (e) {
    unavailable.set(name, (e as Error).message);
  }
}
if (precisionMissing) throw new Error(precisionMissing);

/**
 * The tolerance of a result that passes through the active backend's convolutions: `f32` (the suite's own), or
 * where the library's WebGPU convolutions run at float16 (TFJS_DATAFLOW_CONV_PRECISION=float16) the larger one that
 * f16 operands allow: F16_OPERAND_TOLERANCE (test/helpers/f16.ts derives it) for one convolution, and for a result
 * on a path through `convolutions` of them (forward and backward) that times its square root, as independent
 * errors add in quadrature.
 */
export function convTolerance(f32: number, convolutions = 1): number {
  const onTensorCores = tf.getBackend() === 'webgpu' && webgpuKernels === 'library' && TEST_CONV_PRECISION === 'float16';
  return onTensorCores ? Math.max(f32, F16_OPERAND_TOLERANCE * Math.sqrt(convolutions)) : f32;
}

/** Which kernels WebGPU runs in the current suite: the library's (initBackend's default) or tfjs-backend-webgpu's own. */
let webgpuKernels: 'library' | 'tfjs' = 'library';

/** Switches tfjs to `name` (already probed); on WebGPU, with the current suite's kernel set. */
export async function useBackend(name: TestBackend): Promise<void> {
  const wantLibrary = webgpuKernels === 'library';
  const kernelsRight = name !== 'webgpu' || webgpuTrainingKernelsInstalled() === wantLibrary;
  if (tf.getBackend() !== name || !kernelsRight) {
    await initBackend(name, backendOptions(name, wantLibrary));
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
    describe(`${title} [${backendLabel(backend)}]`, () => {
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
