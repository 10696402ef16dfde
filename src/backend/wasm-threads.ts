import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';

/**
 * Lets tfjs-backend-wasm 4.22 run its threaded SIMD build (XNNPACK with a pthread pool)
 * under Node. Call before the wasm backend is first initialised (before
 * `initBackend('wasm')` / `tf.setBackend('wasm')`); returns the thread count asked for.
 *
 * @remarks
 * tfjs turns threads off under Node (its `WASM_HAS_MULTITHREAD_SUPPORT` flag is false
 * there, tfjs issue 3830) because it hands Emscripten its pthread worker as a `blob:` URL,
 * and the module source to the workers as a `Blob`: Node's `worker_threads` load neither.
 * The Emscripten output itself supports Node workers. So this (1) sets the flag to true,
 * (2) writes the worker script to a temporary file, rewritten to `require()` the threaded
 * module from its file on disk instead of importing the `Blob`, and (3) answers tfjs's one
 * `URL.createObjectURL` call for the worker script with that file's path, and (4) lets the
 * pool have `threads` threads (tfjs sizes it from half the logical cores, at most 4,
 * whatever `setThreadsCount` says). A wasm backend made before the call is dropped and
 * the factory registered again, so the next `setBackend('wasm')` starts the threaded build.
 * Check `getThreadsCount()` after initialisation for the count obtained (at most 4).
 * The pool's workers do not keep Node's event loop alive: a script ends when its own work does.
 */
export async function enableNodeWasmThreads(threads: number): Promise<number> {
  if (!(Number.isInteger(threads) && threads >= 1)) throw new Error(`enableNodeWasmThreads: threads must be a positive integer, got ${threads}`);
  const require = createRequire(import.meta.url);
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const modulePath = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as { wasmWorkerContents: string };
  const blobImport = /if\(typeof e\.data\.urlOrBlob=="string"\)\{importScripts\(e\.data\.urlOrBlob\)\}else\{[^}]*\}/;
  if (!blobImport.test(wasmWorkerContents)) {
    throw new Error('enableNodeWasmThreads: the worker script of this tfjs-backend-wasm version is not the one this was written for (4.22)');
  }
  // The exported template literal turned the script's "\\n" escapes into newlines; tfjs escapes them back the same way.
  const worker = wasmWorkerContents.replace(/\n/g, '\\n').replace(blobImport,
    `self.WasmBackendModuleThreadedSimd=require(${JSON.stringify(modulePath)});`);
  const dir = mkdtempSync(join(os.tmpdir(), 'tfjs-wasm-threads-'));
  const workerPath = join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  writeFileSync(workerPath, worker);

  const createObjectURL = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (obj: Blob) => (obj instanceof Blob && obj.type === 'application/javascript' ? workerPath : createObjectURL(obj));
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);

  // The module sizes its pool when it is instantiated, from Emscripten's logical core count
  // (os.cpus() under Node) halved and clamped to [1, 4]; setThreadsCount does not resize it.
  // So the factory runs with os.cpus() reporting 2 * threads cores, and only then.
  const engine = tf.engine() as unknown as { registry: Record<string, unknown>; registryFactory: Record<string, { factory: () => unknown; priority: number }> };
  const entry = engine.registryFactory['wasm'];
  if (entry == null) throw new Error('enableNodeWasmThreads: the wasm backend is not registered');
  if (engine.registry['wasm'] != null && tf.getBackend() === 'wasm') {
    throw new Error('enableNodeWasmThreads: the wasm backend is already active; call this before initBackend(\'wasm\')');
  }
  const nodeOs = require('node:os') as { cpus(): unknown[] };
  const factory = async () => {
    const cpus = nodeOs.cpus;
    const cores = cpus.call(nodeOs);
    nodeOs.cpus = () => Array.from({ length: 2 * threads }, (_, i) => cores[i % cores.length]);
    let backend: unknown;
    try {
      backend = await entry.factory();
    } finally {
      nodeOs.cpus = cpus;
    }
    releaseWorkersFromEventLoop(backend);
    return backend;
  };
  // Dropping a wasm backend made before this call (single-threaded) and registering again.
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory as never, entry.priority);
  return threads;
}

interface EmscriptenWorker {
  unref(): void;
}

/**
 * XNNPACK's pool threads never finish, and Emscripten keeps a running pthread's worker referenced, so
 * a Node process would never exit by itself. The main thread waits for the pool synchronously inside
 * each kernel, so nothing needs the workers to hold the event loop open: unreference them.
 */
function releaseWorkersFromEventLoop(backend: unknown): void {
  const pthread = (backend as { wasm?: { PThread?: { runningWorkers: EmscriptenWorker[]; unusedWorkers: EmscriptenWorker[] } } }).wasm?.PThread;
  if (pthread == null) throw new Error('enableNodeWasmThreads: the threaded wasm module has no PThread table (not the 4.22 build this was written for)');
  for (const worker of [...pthread.runningWorkers, ...pthread.unusedWorkers]) worker.unref();
}
