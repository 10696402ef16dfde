/**
 * The runs of one `train` (--runs N: the seed's battery of runs with consecutive seeds) and
 * metrics.json, their record: every run so far with its epochs and status, rewritten after each
 * epoch, and the battery's mean and variance over the runs that completed.
 */
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { meanAndVariance, type EpochRecord } from '../../src/node.js';
import { SIGNAL_EXIT_CODES, type StopSignal } from './exit.js';
import { processInfo, readJsonIfExists, writeFileAtomic, writeFileInPlace, writeJsonAtomic, writeJsonAtomicSync } from './files.js';
import { curves } from './report.js';
import type { RunConfig } from './run-dir.js';

/**
 * Where a run stands, as metrics.json says at the moment it was written: `running` (also what a
 * process killed with SIGKILL, or by a power cut, leaves behind: `process` names it),
 * `interrupted` (stopped by a signal, checkpoint written), `failed` (with the message) or `completed`.
 */
export type RunStatus = 'running' | 'interrupted' | 'failed' | 'completed';

/** Per-run results kept in metrics.json. */
export interface RunSummary {
  run: number;
  seed: number;
  dir: string;
  stopReason: RunStatus;
  /** Why the run failed or how it was interrupted. */
  message?: string;
  epochs: EpochRecord[];
  /** Training loops only (evaluation excluded), as the seed's total_time_seconds. */
  trainingSeconds: number;
  /** Wall time of this process's part of the run (data excluded; whitening, training, evaluation, saving included). */
  wallSeconds: number;
  finalValAcc: number | null;
  finalEmaValAcc: number | null;
}

/** Trains run `r` in `runDir` (with what metrics.json said of it before, when resuming) and returns how it ended. */
export type TrainRun = (r: number, runDir: string, earlier: RunSummary | undefined) => Promise<RunSummary>;

/**
 * What the metrics.json of the run in `out` says of its runs, for --resume. A damaged one (not JSON, or without a list
 * of runs) does not block the resume: the checkpoints are the source of truth (they hold each run's epochs), so it is
 * moved aside to metrics.json.damaged-<time>, kept for inspection, and the runs continue from their checkpoints, as
 * `warn` says; metrics.json is then written anew.
 */
export async function readEarlierRuns(out: string, warn: (line: string) => void): Promise<RunSummary[]> {
  const path = join(out, 'metrics.json');
  let problem: string;
  try {
    const doc = await readJsonIfExists<{ runs?: unknown }>(path);
    if (doc === undefined) return [];
    const runs = typeof doc === 'object' && doc !== null ? doc.runs : undefined;
    if (runs === undefined) return [];
    if (Array.isArray(runs) && runs.every(isRunSummary)) return runs;
    problem = `${path} holds no list of runs as this program writes it`;
  } catch (e) {
    problem = (e as Error).message;
  }
  const aside = `${path}.damaged-${Date.now()}`;
  await rename(path, aside).catch((e: unknown) => {
    throw new Error(
      `${problem}, and it cannot be moved aside (${(e as Error).message}): move it away, and --resume continues from the checkpoint`,
    );
  });
  warn(
    `${problem}. Moved it to ${aside}: the checkpoint is the source of truth (it holds the epochs so far), ` +
      'so the run continues from it and metrics.json is written anew.',
  );
  return [];
}

function isRunSummary(value: unknown): value is RunSummary {
  const s = value as RunSummary | null;
  return typeof s === 'object' && s !== null && Number.isInteger(s.run) && typeof s.stopReason === 'string' && Array.isArray(s.epochs);
}

export class Battery {
  private readonly summaries: RunSummary[] = [];
  /** metrics.json as last written with a run in progress, for a quit that cannot wait for anything asynchronous. */
  private latest: { doc: Record<string, unknown>; current: RunSummary } | null = null;
  private finalStatus: RunStatus | null = null;

  /** `common`: what metrics.json says of every run (versions, backend, config, hyp, data). */
  constructor(
    private readonly out: string,
    private readonly run: RunConfig,
    private readonly common: Record<string, unknown>,
  ) {}

  /**
   * Trains the runs in order with `trainRun`, skipping those a resumed battery already completed
   * (`earlierRuns`, from {@link readEarlierRuns}), until one fails or a stop signal arrives; writes the
   * final metrics.json and returns the exit code (0, 1 for a failed run, 129, 130, 131 or 143 for a signal).
   */
  async runAll(
    earlierRuns: readonly RunSummary[],
    stopSignal: () => StopSignal | null,
    say: (line: string) => void,
    trainRun: TrainRun,
  ): Promise<number> {
    let exitCode = 0;
    for (let r = 1; r <= this.run.runs && exitCode === 0; r++) {
      const signal = stopSignal();
      if (signal) {
        exitCode = SIGNAL_EXIT_CODES[signal];
        break;
      }
      const runDir = this.run.runs > 1 ? join(this.out, `run-${r}`) : this.out;
      const earlier = earlierRuns.find((s) => s.run === r);
      if (
        earlier?.stopReason === 'completed' &&
        (await readJsonIfExists(join(runDir, 'model', 'model.json')).catch(() => undefined)) !== undefined
      ) {
        say(`Run ${r}/${this.run.runs}: already complete (final accuracy ${earlier.finalEmaValAcc ?? earlier.finalValAcc})`);
        this.summaries.push(earlier);
        continue;
      }
      const summary = await trainRun(r, runDir, earlier);
      this.summaries.push(summary);
      if (summary.stopReason === 'interrupted') exitCode = SIGNAL_EXIT_CODES[stopSignal() ?? 'SIGINT'];
      if (summary.stopReason === 'failed') exitCode = 1;
    }
    if (exitCode !== 0 && exitCode !== 1) this.finalStatus = 'interrupted';
    await this.record(null);
    return exitCode;
  }

  /** A new run's record (continuing a checkpoint's epochs when resumed); `update` and `end` keep metrics.json in step with it. */
  startRun(r: number, seed: number, dir: string, resumed?: { records: EpochRecord[]; totalTimeSeconds: number }): RunRecord {
    return new RunRecord(this, {
      run: r,
      seed,
      dir,
      stopReason: 'running',
      epochs: resumed ? [...resumed.records] : [],
      trainingSeconds: resumed?.totalTimeSeconds ?? 0,
      wallSeconds: 0,
      finalValAcc: null,
      finalEmaValAcc: null,
    });
  }

  /**
   * Writes metrics.json with the runs so far plus `current`, the run in progress (and, with several runs, its own metrics.json).
   * `inPlaceIfFull`: when the disk is too full for the atomic write (which needs room for a second copy), overwrite the file in place.
   */
  async record(current: RunSummary | null, inPlaceIfFull = false): Promise<void> {
    const runs = current ? [...this.summaries, current] : [...this.summaries];
    const doc = {
      ...this.common,
      status: this.statusOf(runs),
      process: processInfo(),
      plannedRuns: this.run.runs,
      runs,
      summary: batterySummary(runs),
      updatedAt: new Date().toISOString(),
    };
    if (current) this.latest = { doc, current };
    const write = inPlaceIfFull ? writeJsonAtomicOrInPlace : writeJsonAtomic;
    await write(join(this.out, 'metrics.json'), doc);
    if (this.run.runs > 1 && current) {
      await write(join(current.dir, 'metrics.json'), {
        ...this.common,
        status: current.stopReason,
        process: processInfo(),
        run: current,
        updatedAt: doc.updatedAt,
      });
    }
  }

  /** On a second signal, as the process quits at once: metrics.json marks the run in progress interrupted (synchronously). */
  recordQuit(signal: StopSignal): void {
    if (!this.latest) return;
    const message = `quit at once by a second ${signal}; the checkpoint holds the last finished epoch`;
    Object.assign(this.latest.current, { stopReason: 'interrupted', message });
    try {
      writeJsonAtomicSync(join(this.out, 'metrics.json'), {
        ...this.latest.doc,
        status: 'interrupted',
        runs: this.latest.doc['runs'],
        updatedAt: new Date().toISOString(),
      });
    } catch {
      // Quitting matters more than the record; metrics.json then says "running", with this process's id.
    }
  }

  /**
   * The closing line: the final test accuracy (flip TTA) of each run that has one, saying whose it is (the EMA
   * net's, as the seed reports, or the live net's in a run too short for the EMA to start). Several runs get the
   * seed's (mean, variance) tuple; one run gets its accuracy, as one run has no variance. Null before any run.
   */
  summaryLine(): string | null {
    const finals = this.summaries.map(finalAccuracyOf).filter((a): a is number => a !== null);
    if (finals.length === 0) return null;
    const whose = accuracyKind(this.summaries);
    if (finals.length === 1) {
      return `Final test accuracy: ${finals[0]!.toFixed(4)} (${whose}, flip TTA). One run, so no variance: --runs N reports the mean and variance over N seeds.`;
    }
    const { mean, variance } = meanAndVariance(finals);
    return `Mean and variance of the final test accuracy (${whose}, flip TTA): (${mean.toFixed(4)}, ${variance.toExponential(4)}) over ${finals.length} runs`;
  }

  private statusOf(runs: readonly RunSummary[]): RunStatus {
    if (this.finalStatus) return this.finalStatus;
    if (runs.some((s) => s.stopReason === 'failed')) return 'failed';
    if (runs.some((s) => s.stopReason === 'interrupted')) return 'interrupted';
    return runs.filter((s) => s.stopReason === 'completed').length === this.run.runs ? 'completed' : 'running';
  }
}

/** One run's entry in metrics.json while it trains, with its curves.svg. */
export class RunRecord {
  private readonly started = performance.now();
  /** The run's learning rate per step for curves.svg (report.ts's lrCurve), once the trainer is made. */
  lrCurve: Array<[number, number]> | undefined;

  constructor(
    private readonly battery: Battery,
    readonly summary: RunSummary,
  ) {}

  /** The epochs so far; with `write`, metrics.json and curves.svg are rewritten. */
  async update(records: readonly EpochRecord[], totalTimeSeconds: number, write = true): Promise<void> {
    Object.assign(this.summary, {
      epochs: [...records],
      trainingSeconds: totalTimeSeconds,
      wallSeconds: this.wallSeconds(),
      finalValAcc: records.at(-1)?.valAcc ?? null,
      finalEmaValAcc: records.at(-1)?.emaValAcc ?? null,
    });
    if (write) await this.write();
  }

  /** Writes the run's current state to metrics.json only (before its first epoch ends). */
  async save(): Promise<void> {
    await this.battery.record(this.summary);
  }

  /** How the run ended (and why, when it did not complete); writes metrics.json and curves.svg. */
  async end(status: Exclude<RunStatus, 'running'>, message?: string): Promise<RunSummary> {
    this.summary.stopReason = status;
    if (message !== undefined) this.summary.message = message;
    this.summary.wallSeconds = this.wallSeconds();
    await this.write();
    return this.summary;
  }

  /**
   * Whatever went wrong, metrics.json says so rather than "running" (best effort: the error itself matters more),
   * on a full disk too (a checkpoint that did not fit, say), by overwriting it in place.
   */
  async fail(error: Error): Promise<void> {
    Object.assign(this.summary, { stopReason: 'failed', message: error.message, wallSeconds: this.wallSeconds() });
    await this.battery.record(this.summary, true).catch(() => undefined);
  }

  private wallSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  private async write(): Promise<void> {
    await this.battery.record(this.summary);
    await writeFileAtomic(join(this.summary.dir, 'curves.svg'), curves(this.summary.epochs, this.lrCurve));
  }
}

/**
 * writeJsonAtomic, or, where the disk is full (ENOSPC, EDQUOT), the existing file rewritten in place when the new
 * text fits its blocks (a record that grew by less than a block). Not atomic (a crash in that write would cut the file
 * off), but only used for the record of a failure, which would otherwise say "running" for a run that failed.
 */
async function writeJsonAtomicOrInPlace(path: string, value: unknown): Promise<void> {
  try {
    await writeJsonAtomic(path, value);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if ((code !== 'ENOSPC' && code !== 'EDQUOT') || !(await writeFileInPlace(path, `${JSON.stringify(value, null, 2)}\n`))) throw e;
  }
}

/** A run's final test accuracy: the EMA net's, else (the EMA never started) the live net's; null before an evaluation. */
function finalAccuracyOf(s: RunSummary): number | null {
  return s.finalEmaValAcc ?? s.finalValAcc;
}

/** Whose accuracy {@link finalAccuracyOf} gives for these runs, in words. */
function accuracyKind(runs: readonly RunSummary[]): string {
  const measured = runs.filter((s) => finalAccuracyOf(s) !== null);
  const ema = measured.filter((s) => s.finalEmaValAcc !== null).length;
  if (ema === measured.length) return 'EMA net';
  const why = 'the run ended before the EMA started';
  return ema === 0 ? `live net: ${why}` : `EMA net, or the live net where ${why}`;
}

/** Mean and (unbiased) variance of the completed runs' final accuracies, or null before any completed. */
function batterySummary(runs: readonly RunSummary[]) {
  const completed = runs.filter((s) => s.stopReason === 'completed');
  const finals = completed.map(finalAccuracyOf).filter((a): a is number => a !== null);
  if (finals.length === 0) return null;
  // One run has no variance: meanAndVariance says NaN, written to JSON as null.
  return { metric: `final val_acc (${accuracyKind(completed)}, flip TTA)`, ...meanAndVariance(finals) };
}
