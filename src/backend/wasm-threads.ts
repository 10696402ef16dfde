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
 * Called again with the count already registered, it does nothing (a running backend and its tensors stay).
 * Check `getThreadsCount()` after initialisation for the count obtained (at most 4).
 * The pool's workers do not keep Node's event loop alive: a script ends when its own work does.
 */
export async function enableNodeWasmThreads(threads: number): Promise<number> {
  if (!(Number.isInteger(threads) && threads >= 1))
    throw new Error(`enableNodeWasmThreads: threads must be a positive integer, got ${threads}`);
  // Asked again for the pool already registered: nothing to do (re-registering would drop a live backend and its tensors).
  if (threaded !== undefined && threaded.threads === threads && registeredFactory() === threaded.factory) return threads;
  const require = createRequire(import.meta.url);
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const modulePath = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js') as {
    wasmWorkerContents: string;
  };
  const blobImport = /if\(typeof e\.data\.urlOrBlob=="string"\)\{importScripts\(e\.data\.urlOrBlob\)\}else\{[^}]*\}/;
  if (!blobImport.test(wasmWorkerContents)) {
    throw new Error(
      'enableNodeWasmThreads: the worker script of this tfjs-backend-wasm version is not the one this was written for (4.22)',
    );
  }
  // The exported template literal turned the script's "\\n" escapes into newlines; tfjs escapes them back the same way.
  const worker = wasmWorkerContents
    .replace(/\n/g, '\\n')
    .replace(blobImport, `self.WasmBackendModuleThreadedSimd=require(${JSON.stringify(modulePath)});`);
  // Checked before anything is changed, so a refused call leaves tfjs as it was.
  const engine = wasmEngine();
  const entry = engine.registryFactory['wasm'];
  if (entry == null) throw new Error('enableNodeWasmThreads: the wasm backend is not registered');
  if (engine.registry['wasm'] != null && tf.getBackend() === 'wasm') {
    throw new Error("enableNodeWasmThreads: the wasm backend is already active; call this before initBackend('wasm')");
  }
  // tfjs's own factory and URL.createObjectURL, kept from the first call: a later call (another count)
  // wraps them again, not the previous call's wrappers.
  original ??= { factory: entry.factory, priority: entry.priority, createObjectURL: URL.createObjectURL };
  const base = original;
  const dir = mkdtempSync(join(os.tmpdir(), 'tfjs-wasm-threads-'));
  const workerPath = join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  writeFileSync(workerPath, worker);

  URL.createObjectURL = (obj: Blob) =>
    obj instanceof Blob && obj.type === 'application/javascript' ? workerPath : base.createObjectURL.call(URL, obj);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);

  // The module sizes its pool when it is instantiated, from Emscripten's logical core count
  // (os.cpus() under Node) halved and clamped to [1, 4]; setThreadsCount does not resize it.
  // So the factory runs with os.cpus() reporting 2 * threads cores, and only then.
  const nodeOs = require('node:os') as { cpus(): unknown[] };
  const factory = async () => {
    const cpus = nodeOs.cpus;
    const cores = cpus.call(nodeOs);
    nodeOs.cpus = () => Array.from({ length: 2 * threads }, (_, i) => cores[i % cores.length]);
    let backend: unknown;
    try {
      backend = await base.factory();
    } finally {
      nodeOs.cpus = cpus;
    }
    releaseWorkersFromEventLoop(backend);
    return backend;
  };
  // Dropping a wasm backend made before this call (single-threaded or another count) and registering again.
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', factory as never, base.priority);
  threaded = { threads, factory };
  return threads;
}

/** tfjs's own wasm factory and URL.createObjectURL, kept by the first enableNodeWasmThreads call (so the one-thread build can come back). */
let original: { factory: () => unknown; priority: number; createObjectURL: typeof URL.createObjectURL } | undefined;
/** The threaded factory enableNodeWasmThreads registered last, and its pool size. */
let threaded: { threads: number; factory: () => unknown } | undefined;

function wasmEngine(): {
  registry: Record<string, unknown>;
  registryFactory: Record<string, { factory: () => unknown; priority: number } | undefined>;
} {
  return tf.engine() as never;
}

function registeredFactory(): (() => unknown) | undefined {
  return wasmEngine().registryFactory['wasm']?.factory;
}

/**
 * The wasm thread count `initBackend` uses under Node when none is given: one per logical core
 * (`os.availableParallelism()`), at most 4, the cap tfjs-backend-wasm puts on its XNNPACK pool; 1 on a
 * one-core machine (the single-threaded SIMD build).
 */
export function defaultWasmThreads(cores: number = os.availableParallelism()): number {
  return Math.max(1, Math.min(4, Math.floor(cores)));
}

/** The threads of the wasm backend once started (1 for the single-threaded build), or undefined while none is. */
export async function startedWasmThreads(): Promise<number | undefined> {
  if (wasmEngine().registry['wasm'] == null) return undefined;
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  return wasm.getThreadsCount();
}

/**
 * Undoes {@link enableNodeWasmThreads}: tfjs's single-threaded SIMD factory is registered again, so the next
 * `setBackend('wasm')` starts the one-thread build. A threaded backend made before is dropped; refused while
 * it is the active backend. Does nothing when threads were never enabled.
 * @internal
 */
export function disableNodeWasmThreads(): void {
  if (original === undefined || registeredFactory() !== threaded?.factory) return;
  if (wasmEngine().registry['wasm'] != null && tf.getBackend() === 'wasm') {
    throw new Error('disableNodeWasmThreads: the threaded wasm backend is the active backend; switch to another backend first');
  }
  URL.createObjectURL = original.createObjectURL;
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  tf.removeBackend('wasm');
  tf.registerBackend('wasm', original.factory as never, original.priority);
  threaded = undefined;
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
  const pthread = (backend as { wasm?: { PThread?: { runningWorkers: EmscriptenWorker[]; unusedWorkers: EmscriptenWorker[] } } }).wasm
    ?.PThread;
  if (pthread == null)
    throw new Error('enableNodeWasmThreads: the threaded wasm module has no PThread table (not the 4.22 build this was written for)');
  for (const worker of [...pthread.runningWorkers, ...pthread.unusedWorkers]) worker.unref();
}
