import {
  engine,
  type BackendValues,
  type DataId,
  type DataType,
  type KernelBackend,
  type NamedAttrMap,
  type NamedTensorMap,
  type Tensor,
} from '@tensorflow/tfjs-core';

/** What ran and what crossed the host/device boundary while a counter was active. */
export interface KernelCounts {
  /** Kernels run through the engine (ops call these; a backend's internal helpers are not counted). */
  kernels: number;
  /** Kernels run outside any gradient computation. */
  forwardKernels: number;
  /** Kernels run while computing gradients (inside `tf.grads`, `variableGrads`, `optimizer.minimize`). */
  backwardKernels: number;
  /** Kernel counts by kernel name (tfjs-core's constants: `byName[tf.Conv2D]`), forward and backward together. */
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
    kernels: 0,
    forwardKernels: 0,
    backwardKernels: 0,
    byName: {},
    backwardByName: {},
    uploadBytes: 0,
    readbackBytes: 0,
    readbacks: 0,
  };
}

const active = new Set<KernelCounter>();
let engineHooked = false;
const hookedBackends = new WeakSet<object>();
let readDepth = 0;

type Engine = ReturnType<typeof engine>;

function inBackward(eng: Engine): boolean {
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
  const eng = engine();
  // Every op runs its kernel through the engine's public runKernel, by tfjs-core's kernel-name constant
  // (Conv2D, Sum, ...); a custom gradient's forward function has no kernel name and is not a kernel.
  const runKernel = eng.runKernel.bind(eng);
  eng.runKernel = <T extends Tensor | Tensor[]>(kernelName: string, inputs: NamedTensorMap, attrs?: NamedAttrMap): T => {
    if (active.size > 0) {
      const backward = inBackward(eng);
      for (const counter of active) counter.recordKernel(kernelName, backward);
    }
    return runKernel<T>(kernelName, inputs, attrs);
  };
  engineHooked = true;
}

function hookBackend(backend: KernelBackend, name: string): void {
  if (hookedBackends.has(backend)) return;
  const eng = engine();
  // The cpu backend's kernels read their inputs through readSync; that memory is already the host's.
  const kernelReadsAreLocal = name === 'cpu';
  const write = backend.write.bind(backend);
  backend.write = (values: BackendValues, shape: number[], dtype: DataType): DataId => {
    const bytes = byteSize(values);
    if (bytes > 0) for (const counter of active) counter.recordUpload(bytes);
    return write(values, shape, dtype);
  };
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId: DataId): BackendValues => {
    const out = readSync(dataId);
    // wasm's read() calls readSync(); count that transfer once.
    const local = kernelReadsAreLocal && eng.state.kernelDepth > 0;
    if (readDepth === 0 && !local) for (const counter of active) counter.recordReadback(byteSize(out));
    return out;
  };
  const read = backend.read.bind(backend);
  backend.read = (dataId: DataId): Promise<BackendValues> => {
    readDepth++;
    let pending: Promise<BackendValues>;
    try {
      pending = read(dataId);
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
 * import * as tf from '@tensorflow/tfjs-core';
 * import { KernelCounter, initBackend } from 'tfjs-dataflow';
 *
 * await initBackend('cpu');
 * const counter = new KernelCounter();
 * const counts = await counter.measure(() => tf.dispose(tf.add(tf.ones([4]), tf.ones([4]))));
 * console.log(counts.forwardKernels, counts.uploadBytes);
 * ```
 */
export class KernelCounter {
  private counts = emptyCounts();

  /** Starts counting on the current backend (call again after switching backends). */
  start(): this {
    hookEngine();
    hookBackend(engine().backend, engine().backendName);
    active.add(this);
    return this;
  }

  /** Stops counting and returns what was counted since the last reset. */
  stop(): KernelCounts {
    active.delete(this);
    return this.snapshot();
  }

  /** Clears the counts; counting goes on. */
  reset(): void {
    this.counts = emptyCounts();
  }

  /** A copy of the counts since the last reset; counting goes on. */
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
