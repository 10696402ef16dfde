// The CLI's per-step yield: a signal that arrives while a step computes (synchronously, on wasm and cpu) is handled
// before the next step starts, so the run stops after the step the signal landed in.
import { readFile } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { letSignalsThrough } from '../../examples/cifar10/stop-requests.js';

const busy = (ms: number) => {
  const end = Date.now() + ms;
  while (Date.now() < end);
};

describe('letSignalsThrough', () => {
  it('lets a signal received during a synchronous stretch be handled, from the poll phase too (a run begun in an I/O callback)', async () => {
    const handled: string[] = [];
    const listener = () => handled.push('SIGUSR2');
    process.on('SIGUSR2', listener);
    try {
      const seen = await new Promise<string[]>((resolve, reject) =>
        // An fs callback runs in the poll phase: one setImmediate from here resolves before the next poll.
        readFile(__filename, () => {
          process.kill(process.pid, 'SIGUSR2');
          busy(200); // the step, computing while the signal waits in libuv's pipe
          letSignalsThrough().then(() => resolve([...handled]), reject);
        }),
      );
      expect(seen).toEqual(['SIGUSR2']);
    } finally {
      process.off('SIGUSR2', listener);
    }
  });
});
