import * as tf from '@tensorflow/tfjs-core';

/** Kernel calls by name, through the engine's runKernel, while `fn` runs (awaited when it returns a promise). */
export async function kernelsRun(fn: () => unknown): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const engine = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
  const run = engine.runKernel.bind(engine);
  engine.runKernel = (name: string, ...rest: unknown[]) => {
    counts.set(name, (counts.get(name) ?? 0) + 1);
    return run(name, ...rest);
  };
  try {
    await fn();
  } finally {
    engine.runKernel = run;
  }
  return counts;
}
