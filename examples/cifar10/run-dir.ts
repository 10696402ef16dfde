/**
 * The run directory (--out) of `train`: whose it is, whether a run may start or continue there
 * (--resume), the configuration it records, and the checkpoint a resumed run continues from.
 */
import * as tf from '@tensorflow/tfjs-core';
import { join, resolve } from 'node:path';
import type { StopSignal } from './exit.js';
import type { ConvPrecision, DataFileDigest, TrainResult, Trainer } from '../../src/node.js';
import { UsageError, type RunSettings, type TrainConfig } from './args.js';
import { rm, stat } from 'node:fs/promises';
import { DirectoryLockedError, LOCK_FILE, lockDirectory, type DirectoryLock, type ProcessRecord } from '../../src/io/checkpoint-files.js';
import {
  RUN_CONFIG_FORMAT,
  ensureWritableDir,
  inspectRunDir,
  processInfo,
  readCheckpoint,
  readJsonIfExists,
  recordedProcessRuns,
  recoverCheckpoint,
  removeEmptyDirs,
  writeCheckpoint,
  writeJsonAtomic,
  type RunDirState,
} from './files.js';
import type { TextOut } from './progress.js';

/** The part of the config a run's numbers depend on, batch sizes decided; a checkpoint records it and --resume must match it. */
export interface RunConfig extends Omit<RunSettings, 'microBatch'> {
  /** Images per forward/backward pass: --micro-batch, else the batch size, or a size that fits the wasm heap. */
  microBatch: number;
  /** Images per evaluation batch: --hyp misc.evalBatchSize, else 2500, or less on wasm. */
  evalBatch: number;
}

/** out/config.json: the run config plus how the run was started. */
export interface SavedConfig {
  /** Marks the directory as this CLI's run (absent in runs from before it was added). */
  format?: typeof RUN_CONFIG_FORMAT;
  run: RunConfig;
  backend: TrainConfig['backend'];
  /** --conv-precision of a WebGPU run; --resume keeps it (absent: float32, or not WebGPU). */
  convPrecision?: ConvPrecision;
  data: string | undefined;
  /**
   * The data files the run read, each with its size and SHA-256: --resume refuses other images (absent in runs from
   * before it was recorded, which continue unchecked). The images used within them are `run.trainLimit` and `run.evalLimit`.
   */
  dataFiles?: DataFileDigest[];
  /** A random id made when the run started; each checkpoint records it, so another run's checkpoint is never resumed (absent in older runs). */
  runId?: string;
}

/** The flag behind each RunConfig field, for resume's mismatch messages. */
const RUN_FLAGS: Record<keyof RunConfig, string> = {
  epochs: 'epochs',
  batchSize: 'batch-size',
  microBatch: 'micro-batch',
  evalBatch: 'hyp',
  baseDepth: 'base-depth',
  trainLimit: 'train-limit',
  evalLimit: 'eval-limit',
  mode: 'mode',
  whiteningSigns: 'whitening-signs',
  runs: 'runs',
  seed: 'seed',
  hyp: 'hyp',
  dataset: 'dataset',
  labels: 'labels',
};

/** An --out directory this process may write: a new run's, or the run --resume continues. */
export interface RunDir {
  out: string;
  /** The run's config.json, when continuing it (--resume). */
  saved: SavedConfig | undefined;
  /** A run was started there before but never finished an epoch, so this one starts afresh in it. */
  reusing: boolean;
  /** It holds checkpoints or models (work --resume continues). */
  hasWork: boolean;
  /** Directories made for it; removed again if the run fails before writing anything. */
  created: string[];
  /** The lock on `out`, held until the run ends. */
  lock: DirectoryLock;
}

/**
 * Checks the --out directory before anything is loaded: a new run never overwrites another run's
 * work or another program's files, --resume finds a run of this program there, and no other
 * process is training in it: the directory is locked (out/.lock, taken with O_EXCL, so of two
 * runs started at the same instant one wins and the other is refused) and checked again under the
 * lock. Creates it and the lock; nothing else is written. The caller releases `lock`.
 */
export async function claimRunDir(config: TrainConfig, defaultOut: string): Promise<RunDir> {
  const out = resolve(config.out ?? defaultOut);
  // Checked before anything is created, so a refused --out leaves no folder; again under the lock.
  decideClaim(config, out, await inspectRunDir(out));
  let created: string[];
  try {
    created = await ensureWritableDir(out, `--out ${out}`);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let lock: DirectoryLock;
  try {
    lock = lockDirectory(out);
  } catch (e) {
    await removeEmptyDirs(created);
    if (e instanceof DirectoryLockedError) {
      const who = e.owner
        ? `process ${e.owner.pid} on ${e.owner.host === processInfo().host ? 'this machine' : e.owner.host}`
        : 'another process';
      throw new UsageError(
        `--out ${out}: ${who} is training this run right now (it holds ${join(out, LOCK_FILE)}); wait for it to end or stop it first`,
      );
    }
    throw new UsageError(`--out ${out}: cannot lock the directory: ${(e as Error).message}`);
  }
  try {
    const state = await inspectRunDir(out);
    const { saved, reusing } = decideClaim(config, out, state);
    const owner = await runningElsewhere(out);
    if (owner !== undefined)
      throw new UsageError(
        `--out ${out}: process ${owner} on this machine is training this run right now; wait for it to end or stop it first`,
      );
    // Leftovers of a dead process's cut-off writes go, so that they can neither be resumed nor block a new run.
    for (const name of state.debris) await rm(join(out, name), { recursive: true, force: true });
    return { out, saved: config.resume ? saved : undefined, reusing, hasWork: state.work.length > 0, created, lock };
  } catch (e) {
    lock.release();
    await removeEmptyDirs(created);
    throw e;
  }
}

/** Whether a run may start (or continue, --resume) in `out` as `state` finds it; throws the refusal. */
function decideClaim(config: TrainConfig, out: string, state: RunDirState): { saved: SavedConfig | undefined; reusing: boolean } {
  const saved = state.config as SavedConfig | undefined;
  const list = (names: string[]) => (names.length > 6 ? [...names.slice(0, 6), `and ${names.length - 6} more`] : names).join(', ');
  // A config.json that cannot be read is a damaged run record, not another program's file: say so, rather than that none is there.
  if (saved === undefined && state.configProblem !== undefined) {
    throw new UsageError(
      config.resume
        ? `--resume: cannot continue the run in ${out}: its configuration is damaged (${state.configProblem}). ` +
            'config.json records the flags the run was started with: restore it from a copy, or start a new run with another --out.'
        : `--out ${out} holds a run whose configuration is damaged (${state.configProblem}); ` +
            'restore config.json and continue with --resume, or choose another --out, so that nothing there is overwritten',
    );
  }
  if (config.resume && saved === undefined) {
    if (!state.exists) throw new UsageError(`--resume: ${out} holds no run to continue (no such directory)`);
    if (state.foreign.length > 0)
      throw new UsageError(
        `--resume: ${out} holds no run of this program to continue (no config.json of its own, but ${list(state.foreign)})`,
      );
    throw new UsageError(`--resume: ${out} holds no run to continue (no config.json); start one with --out ${out} and no --resume`);
  }
  let reusing = false;
  if (!config.resume) {
    if (saved && state.work.length > 0) {
      throw new UsageError(`--out ${out} already holds a run (${list(state.work)}); continue it with --resume, or choose another --out`);
    }
    if (saved) reusing = true;
    else if (state.foreign.length > 0) {
      throw new UsageError(
        `--out ${out} holds files that are not a run of this program (${list(state.foreign)}); choose an empty or new directory, so that nothing there is overwritten`,
      );
    }
  }
  return { saved, reusing };
}

/**
 * The process that is training in `out` right now, according to its metrics.json, if it is not this one: a "running"
 * record of a process that is gone, or whose pid now belongs to another process, is a run killed at once.
 */
async function runningElsewhere(out: string): Promise<number | undefined> {
  const path = join(out, 'metrics.json');
  const metrics = await readJsonIfExists<{ status?: string; process?: ProcessRecord }>(path).catch(() => undefined);
  const owner = metrics?.process;
  if (metrics?.status !== 'running' || !owner || owner.host !== processInfo().host || owner.pid === process.pid) return undefined;
  const writtenAtMs = await stat(path).then(
    (info) => info.mtimeMs,
    () => undefined,
  );
  return recordedProcessRuns(owner, writtenAtMs) ? owner.pid : undefined;
}

/** Records a new run's configuration in out/config.json, which --resume reads. */
export async function writeRunConfig(out: string, config: Omit<SavedConfig, 'format'>): Promise<void> {
  await writeJsonAtomic(join(out, 'config.json'), { format: RUN_CONFIG_FORMAT, ...config } satisfies SavedConfig);
}

/** Merges a resumed run's saved config with the flags typed now; a typed value that differs is an error. */
export function resumeConfig(out: string, saved: SavedConfig, config: TrainConfig, wanted: RunSettings): RunConfig {
  // Runs recorded before --dataset existed trained on CIFAR-10.
  const savedRun: RunConfig = { ...saved.run, dataset: saved.run.dataset ?? 'cifar10', labels: saved.run.labels ?? null };
  const mismatches: string[] = [];
  for (const key of Object.keys(RUN_FLAGS) as (keyof RunConfig)[]) {
    if (key === 'evalBatch') continue;
    const flag = RUN_FLAGS[key];
    if (!config.explicit.has(flag)) continue;
    const now = JSON.stringify(wanted[key]);
    const then = JSON.stringify(savedRun[key]);
    if (now !== then) mismatches.push(`--${flag} ${now} (the run has ${then})`);
  }
  if (mismatches.length > 0) {
    throw new UsageError(
      `--resume: the run in ${out} was started with a different configuration: ${mismatches.join('; ')}. ` +
        'Drop these flags to continue it as it was started, or start a new run with another --out.',
    );
  }
  return savedRun;
}

/**
 * Refuses to continue the run in `out` on other images than it was trained on: `files` (what was read now, from
 * `source`) must be the files, sizes and SHA-256s that config.json records. Runs from before the record continue unchecked.
 */
export function checkResumedData(out: string, saved: SavedConfig, files: readonly DataFileDigest[] | undefined, source: string): void {
  if (saved.dataFiles === undefined || files === undefined) return;
  const short = (f: DataFileDigest) => `${f.bytes} bytes, SHA-256 ${f.sha256.slice(0, 16)}...`;
  const differences: string[] = [];
  for (const then of saved.dataFiles) {
    const now = files.find((f) => f.file === then.file);
    if (now === undefined) differences.push(`${then.file} is not read now`);
    else if (now.bytes !== then.bytes || now.sha256 !== then.sha256)
      differences.push(`${join(source, now.file)} (${short(now)}) is not the ${then.file} it was trained on (${short(then)})`);
  }
  for (const now of files) if (!saved.dataFiles.some((f) => f.file === now.file)) differences.push(`${now.file} was not read by the run`);
  if (differences.length === 0) return;
  throw new UsageError(
    `--resume: the run in ${out} was trained on other data: ${differences.join('; ')}. ` +
      `Continuing its checkpoint on these images would mix two data sets: pass --data naming the data it was trained on ` +
      `(${join(out, 'config.json')} records ${saved.data ?? 'the download cache'}), or start a new run with another --out.`,
  );
}

/** Which run of which battery a checkpoint belongs to. */
export interface RunIdentity {
  /** config.json's runId (undefined for runs started before it was recorded). */
  runId: string | undefined;
  /** The run's number in the battery (--runs), from 1. */
  run: number;
  /** The config.json that records the run, for messages. */
  configPath: string;
}

/** The id a checkpoint of run `identity.run` records. */
function checkpointRunId(identity: RunIdentity): string | undefined {
  return identity.runId === undefined ? undefined : `${identity.runId}/run-${identity.run}`;
}

/** A run's checkpoint, as readCheckpoint returns it. */
export type RunCheckpoint = NonNullable<Awaited<ReturnType<typeof readCheckpoint<RunConfig>>>>;

/**
 * The checkpoint in `runDir/checkpoint` that --resume continues, or undefined when the run never
 * finished an epoch. A write cut off between its two renames is recovered, or refused: a checkpoint
 * is never silently dropped, and one of another configuration is never mixed in.
 */
export async function readRunCheckpoint(
  runDir: string,
  run: RunConfig,
  identity: RunIdentity,
  earlier: { run: number; finishedEpochs: number },
  stderr: TextOut,
): Promise<RunCheckpoint | undefined> {
  const dir = join(runDir, 'checkpoint');
  let found: Awaited<ReturnType<typeof recoverCheckpoint>>;
  try {
    found = await recoverCheckpoint(dir);
  } catch (e) {
    throw new Error(`--resume: ${(e as Error).message}`);
  }
  if (found?.recoveredFrom)
    stderr.write(`Recovered the checkpoint from ${join(runDir, found.recoveredFrom)}: its write had been cut off between two renames\n`);
  const resumed = found ? await readCheckpoint<RunConfig>(dir) : undefined;
  if (!resumed && earlier.finishedEpochs > 0) {
    throw new Error(
      `--resume: metrics.json records ${earlier.finishedEpochs} finished epoch(s) of run ${earlier.run}, but ${dir} holds no checkpoint. ` +
        'Refusing to start over from step 0: restore the checkpoint, or start a new run with another --out.',
    );
  }
  if (resumed && JSON.stringify(resumed.meta.config) !== JSON.stringify(run)) {
    tf.dispose(Object.values(resumed.checkpoint.tensors));
    throw new UsageError(
      `--resume: the checkpoint in ${dir} was written with another configuration than ${identity.configPath} records; refusing to mix them`,
    );
  }
  const expected = checkpointRunId(identity);
  if (resumed && expected !== undefined && resumed.meta.runId !== expected) {
    tf.dispose(Object.values(resumed.checkpoint.tensors));
    throw new UsageError(
      `--resume: the checkpoint in ${dir} belongs to another run (run id ${resumed.meta.runId ?? 'none'}, ` +
        `while ${identity.configPath} records run id ${identity.runId}${identity.run > 1 || run.runs > 1 ? `, run ${identity.run}` : ''}): ` +
        "a checkpoint copied from another run directory is never resumed. Restore this run's own checkpoint, or start a new run with another --out.",
    );
  }
  return resumed;
}

/** Writes the trainer's checkpoint of this step into `runDir/checkpoint` (atomically), with the run's config. */
export async function saveRunCheckpoint(
  runDir: string,
  trainer: Trainer,
  run: RunConfig,
  identity: RunIdentity,
  reason: 'epoch-end' | 'interrupted',
): Promise<{ epoch: number; epochStep: number; step: number }> {
  const checkpoint = trainer.checkpoint();
  try {
    const runId = checkpointRunId(identity);
    await writeCheckpoint(join(runDir, 'checkpoint'), checkpoint, {
      config: run,
      reason,
      savedAt: new Date().toISOString(),
      ...(runId !== undefined ? { runId } : {}),
    });
  } finally {
    tf.dispose(Object.values(checkpoint.tensors));
  }
  return { epoch: checkpoint.epoch, epochStep: checkpoint.epochStep, step: checkpoint.step };
}

/** Continues `trainer` from `resumed` (whose tensors it then frees). */
export function restoreRun(trainer: Trainer, resumed: RunCheckpoint): void {
  try {
    trainer.restore(resumed.checkpoint);
  } finally {
    tf.dispose(Object.values(resumed.checkpoint.tensors));
  }
}

/**
 * A run that ended before completing. Stopped by a signal: a checkpoint of its step is written and
 * the way to continue printed. A non-finite loss: what was kept is said (the last epoch's
 * checkpoint, never the diverged net). Returns the status and message metrics.json records.
 */
export async function concludeStoppedRun(
  result: TrainResult,
  trainer: Trainer,
  {
    runDir,
    run,
    identity,
    signal,
    stderr,
  }: { runDir: string; run: RunConfig; identity: RunIdentity; signal: StopSignal | null; stderr: TextOut },
): Promise<{ status: 'interrupted' | 'failed'; message: string }> {
  const checkpointDir = join(runDir, 'checkpoint');
  if (result.stopReason === 'stopped') {
    const at = await saveRunCheckpoint(runDir, trainer, run, identity, 'interrupted');
    stderr.write(
      `Interrupted at step ${at.step}/${trainer.totalSteps} (epoch ${at.epoch + 1}, step ${at.epochStep} of ${trainer.epochSteps[at.epoch] ?? 0}). ` +
        `Checkpoint written to ${checkpointDir}; continue with: --resume --out ${resolve(runDir, run.runs > 1 ? '..' : '.')}\n`,
    );
    return {
      status: 'interrupted',
      message: `stopped by ${signal ?? 'a stop request'} at step ${at.step}/${trainer.totalSteps}; the checkpoint holds that step`,
    };
  }
  const kept =
    (await readJsonIfExists(join(checkpointDir, 'checkpoint.json')).catch(() => undefined)) !== undefined
      ? `The last epoch's checkpoint in ${checkpointDir} is untouched`
      : 'No checkpoint was written (no epoch ended with a finite loss)';
  stderr.write(
    `Stopped: ${result.message}. ${kept}; a lower learning rate (--hyp opt.nonBiasLr=..., opt.biasLr=...) or a smaller batch may help.\n`,
  );
  return { status: 'failed', message: result.message ?? 'the loss became NaN or infinite' };
}
