/**
 * SIGINT (Ctrl-C), SIGTERM (kill, systemd, docker stop, CI), SIGHUP (a dropped SSH session, a closed
 * terminal) and SIGQUIT (Ctrl-\) during `train`: the first asks the trainer to stop after the current
 * step, which then writes a checkpoint; a second, later one quits at once.
 */
import type { Trainer } from '../../src/node.js';
import { SIGNAL_EXIT_CODES, exitWith, type StopSignal } from './exit.js';
import type { Progress, TextOut } from './progress.js';

/**
 * A repeat of the stop signal this soon after the first is the same request, not a second Ctrl-C:
 * `npm run` forwards the terminal's SIGINT (and a SIGTERM) to a process that already got it.
 */
const REPEAT_GRACE_MS = 1000;

export class StopRequests {
  /** The signal that asked for the stop, once one did. */
  signal: StopSignal | null = null;
  private receivedAt = 0;
  private trainer: Trainer | null = null;
  private progress: Progress | null = null;
  private readonly listeners = new Map<StopSignal, () => void>();

  /** `beforeQuit` runs (synchronously) when a second signal ends the process at once. */
  constructor(
    private readonly stderr: TextOut,
    private readonly beforeQuit: (signal: StopSignal) => void,
  ) {}

  install(): void {
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as StopSignal[]) {
      const listener = () => this.receive(signal);
      this.listeners.set(signal, listener);
      process.on(signal, listener);
    }
  }

  uninstall(): void {
    for (const [signal, listener] of this.listeners) process.off(signal, listener);
    this.listeners.clear();
  }

  /** The trainer a stop applies to, and its progress line (cleared before a message); a stop asked for before it existed applies as soon as it does. */
  watch(trainer: Trainer | null, progress: Progress | null): void {
    this.trainer = trainer;
    this.progress = progress;
    if (trainer && this.signal) trainer.requestStop();
  }

  private receive(signal: StopSignal): void {
    const now = performance.now();
    const name = signal === 'SIGINT' ? 'Ctrl-C' : signal;
    if (this.signal === null) {
      this.signal = signal;
      this.receivedAt = now;
      if (signal === 'SIGHUP') ignoreWriteErrors();
      this.progress?.clear();
      this.stderr.write(
        `\n${name}: stopping after this step and writing a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again to quit at once)\n`,
      );
      this.trainer?.requestStop();
      return;
    }
    if (now - this.receivedAt < REPEAT_GRACE_MS) return;
    this.progress?.clear();
    this.stderr.write(`\nSecond ${name}: quitting at once, without a checkpoint of this step (the last epoch's checkpoint stays)\n`);
    this.beforeQuit(signal);
    exitWith(SIGNAL_EXIT_CODES[signal]);
  }
}

/**
 * After a hang-up the terminal is gone, and writing to it fails (EIO): an unhandled stream error would end the
 * process before its checkpoint, so the messages still written are dropped instead.
 */
function ignoreWriteErrors(): void {
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
}

/**
 * Resolves after one whole turn of Node's event loop, its poll phase included, where a signal that arrived during a
 * synchronous stretch (a training step on wasm or cpu) is handled.
 *
 * @remarks
 * One `setImmediate` is not enough: awaited from the poll phase (a run that began in an I/O callback), it resolves in
 * the same turn's check phase, before the next poll, so a signal sent during step N would stop the run after step N+1.
 */
export async function letSignalsThrough(): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise((done) => setImmediate(done));
}
