import { engine, type KernelBackend } from '@tensorflow/tfjs-core';

/** What ran and what crossed the host/device boundary while a counter was active. */
export interface KernelCounts {
  /** Kernels run through the engine (ops call these; a backend's internal helpers are not counted). */
  kernels: number;
  /** Kernels run outside any gradient computation. */
  forwardKernels: number;
  /** Kernels run while computing gradients (inside `tf.grads`, `variableGrads`, `optimizer.minimize`). */
  backwardKernels: number;
  /** Kernel counts by kernel name, forward and backward together. */
  byName: Record<string, number>;
  /** Kernel counts by name, backward only. */
  backwardByName: Record<string, number>;
  /** Bytes handed from JavaScript to the backend (tensor creation, host-computed results). */
  uploadBytes: number;
  /** Bytes read back from the backend to JavaScript (`data()`, `dataSync()`, internal reads). */
  readbackBytes: number;
  /** Number of read-backs. */
  readbacks: number;
}

function emptyCounts(): KernelCounts {
  return {
    kernels: 0, forwardKernels: 0, backwardKernels: 0, byName: {}, backwardByName: {},
    uploadBytes: 0, readbackBytes: 0, readbacks: 0,
  };
}

const active = new Set<KernelCounter>();
let engineHooked = false;
const hookedBackends = new WeakSet<object>();
let readDepth = 0;

interface EngineInternals {
  runKernelFunc(params: { kernelName?: string }): unknown;
  state: { scopeStack: Array<{ name: string }>; kernelDepth: number };
  backendName: string;
}

function inBackward(eng: EngineInternals): boolean {
  // The engine computes every gradient inside a tidy scope named 'backward'.
  return eng.state.scopeStack.some((scope) => scope.name === 'backward');
}

function byteSize(values: unknown): number {
  if (values == null) return 0;
  if (ArrayBuffer.isView(values)) return values.byteLength;
  if (Array.isArray(values)) return values.reduce((n: number, v) => n + byteSize(v), 0);
  return 0;
}

function hookEngine(): void {
  if (engineHooked) return;
  const eng = engine() as unknown as EngineInternals;
  const original = eng.runKernelFunc.bind(eng);
  eng.runKernelFunc = (params) => {
    if (active.size > 0 && params.kernelName != null) {
      const backward = inBackward(eng);
      for (const counter of active) counter.recordKernel(params.kernelName, backward);
    }
    return original(params);
  };
  engineHooked = true;
}

function hookBackend(backend: KernelBackend, name: string): void {
  if (hookedBackends.has(backend)) return;
  const eng = engine() as unknown as EngineInternals;
  // The cpu backend's kernels read their inputs through readSync; that memory is already the host's.
  const kernelReadsAreLocal = name === 'cpu';
  const b = backend as unknown as Record<string, (...args: unknown[]) => unknown>;
  const write = b['write']!.bind(backend);
  b['write'] = (values: unknown, ...rest: unknown[]) => {
    const bytes = byteSize(values);
    if (bytes > 0) for (const counter of active) counter.recordUpload(bytes);
    return write(values, ...rest);
  };
  const readSync = b['readSync']!.bind(backend);
  b['readSync'] = (...args: unknown[]) => {
    const out = readSync(...args);
    // wasm's read() calls readSync(); count that transfer once.
    const local = kernelReadsAreLocal && eng.state.kernelDepth > 0;
    if (readDepth === 0 && !local) for (const counter of active) counter.recordReadback(byteSize(out));
    return out;
  };
  const read = b['read']!.bind(backend);
  b['read'] = (...args: unknown[]) => {
    readDepth++;
    let pending: Promise<unknown>;
    try {
      pending = read(...args) as Promise<unknown>;
    } finally {
      readDepth--;
    }
    return pending.then((out) => {
      for (const counter of active) counter.recordReadback(byteSize(out));
      return out;
    });
  };
  hookedBackends.add(backend);
}

/**
 * Counts kernels (split forward/backward) and bytes moved between host and
 * backend while active. Used by tests to prove where work and transfers happen,
 * and by the benchmark to report them per step.
 *
 * @example
 * ```ts
 * const counter = new KernelCounter();
 * const counts = await counter.measure(() => trainStep());
 * console.log(counts.backwardKernels, counts.uploadBytes);
 * ```
 */
export class KernelCounter {
  private counts = emptyCounts();

  /** Starts counting on the current backend (call again after switching backends). */
  start(): this {
    hookEngine();
    hookBackend(engine().backend, (engine() as unknown as EngineInternals).backendName);
    active.add(this);
    return this;
  }

  /** Stops counting and returns what was counted since the last reset. */
  stop(): KernelCounts {
    active.delete(this);
    return this.snapshot();
  }

  reset(): void {
    this.counts = emptyCounts();
  }

  snapshot(): KernelCounts {
    return structuredClone(this.counts);
  }

  /** Resets, runs `fn` (awaiting it if it returns a promise), and returns the counts. */
  async measure(fn: () => unknown): Promise<KernelCounts> {
    this.reset();
    this.start();
    try {
      await fn();
    } finally {
      active.delete(this);
    }
    return this.snapshot();
  }

  /** @internal */
  recordKernel(name: string, backward: boolean): void {
    const c = this.counts;
    c.kernels++;
    c.byName[name] = (c.byName[name] ?? 0) + 1;
    if (backward) {
      c.backwardKernels++;
      c.backwardByName[name] = (c.backwardByName[name] ?? 0) + 1;
    } else {
      c.forwardKernels++;
    }
  }

  /** @internal */
  recordUpload(bytes: number): void {
    this.counts.uploadBytes += bytes;
  }

  /** @internal */
  recordReadback(bytes: number): void {
    this.counts.readbackBytes += bytes;
    this.counts.readbacks++;
  }
}
