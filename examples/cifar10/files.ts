/** The run directory on disk: JSON written atomically, and checkpoints (JSON + binary tensors) that survive a crash mid-write. */
import * as tf from '@tensorflow/tfjs-core';
import { renameSync, writeFileSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { TrainCheckpoint } from '../../src/node.js';

const CHECKPOINT_JSON = 'checkpoint.json';
const CHECKPOINT_BIN = 'tensors.bin';
const CHECKPOINT_FORMAT = 'tfjs-dataflow-cifar10-checkpoint';

/** Writes `text` to `path` through a temporary file and a rename, so readers never see half a file. */
export async function writeFileAtomic(path: string, text: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, text);
  await rename(temp, path);
}

export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** {@link writeJsonAtomic} for the moment the process is about to exit (a second Ctrl-C), when nothing async runs any more. */
export function writeJsonAtomicSync(path: string, value: unknown): void {
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(temp, path);
}

/** Reads a JSON file, or undefined when it does not exist. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** Whether process `pid` runs on this machine (EPERM: it does, as another user). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM';
  }
}

/** What this machine's processes are called in metrics.json, so another process can tell whether a "running" run still runs. */
export function processInfo(): { pid: number; host: string } {
  return { pid: process.pid, host: hostname() };
}

// ---------------------------------------------------------------------------------------------
// The output directory

/**
 * Makes sure `dir` exists and this process can write there, creating the missing folders one
 * at a time: Node 20's `mkdir(..., { recursive: true })` spins forever where the file system
 * refuses a folder without saying why (procfs: `--out /proc/x`). Returns the folders it
 * created, outermost first, so a run that fails before writing anything can remove them.
 * Throws an Error whose message starts with `describe` (e.g. "--out /x").
 */
export async function ensureWritableDir(dir: string, describe: string): Promise<string[]> {
  const path = resolve(dir);
  const missing: string[] = [];
  let existing = path;
  for (;;) {
    let info;
    try {
      info = await stat(existing);
    } catch (e) {
      const code = errorCode(e);
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        missing.unshift(existing);
        const parent = dirname(existing);
        if (parent === existing) throw new Error(`${describe}: cannot find any existing folder above ${path}`);
        existing = parent;
        continue;
      }
      throw new Error(`${describe}: cannot look at ${existing} (${code ?? (e as Error).message})`);
    }
    if (!info.isDirectory()) {
      throw new Error(existing === path ? `${describe} is a file, not a directory: choose a directory for the run's outputs` : `${describe}: ${existing} is a file, not a folder, so ${path} cannot be created`);
    }
    break;
  }
  const created: string[] = [];
  try {
    for (const folder of missing) {
      try {
        await mkdir(folder);
      } catch (e) {
        const code = errorCode(e);
        const why = code === 'ENOENT'
          ? `the file system at ${dirname(folder)} does not allow new folders there (is it /proc, /sys or another virtual file system?)`
          : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'the file system is read-only' : (e as Error).message;
        throw new Error(`${describe}: cannot create ${folder}: ${why}`);
      }
      created.push(folder);
    }
    // Root passes access() checks that writing then fails, so try it.
    const probe = join(path, `.write-test-${process.pid}`);
    try {
      await writeFile(probe, '');
      await rm(probe, { force: true });
    } catch (e) {
      const code = errorCode(e);
      const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'the file system is read-only' : (e as Error).message;
      throw new Error(`${describe}: cannot write in ${path}: ${why}`);
    }
  } catch (e) {
    await removeEmptyDirs(created);
    throw e;
  }
  return created;
}

/** Removes folders made by {@link ensureWritableDir}, innermost first, as long as they are still empty. */
export async function removeEmptyDirs(created: readonly string[]): Promise<void> {
  for (const folder of [...created].reverse()) await rmdir(folder).catch(() => undefined);
}

/** The name of a run directory's entries this CLI writes: anything else makes the directory someone else's. */
const RUN_ENTRY = /^(config\.json|metrics\.json|curves\.svg|checkpoint|model|run-\d+)((\.(saving|previous|damaged)-\d+)|(\.tmp-\d+))?$/;

/** What an --out directory holds, as far as starting or continuing a run there is concerned. */
export interface RunDirState {
  exists: boolean;
  /** config.json, when it is this CLI's. */
  config: unknown | undefined;
  /** Entries that this CLI does not write (hidden files aside): the directory then belongs to something else. */
  foreign: string[];
  /** Checkpoints (including the halves of an interrupted write) and models: work that --resume continues and a new run must not overwrite. */
  work: string[];
}

/** Looks at `dir` (and its run-N/ folders) without changing anything. */
export async function inspectRunDir(dir: string): Promise<RunDirState> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).filter((e) => !e.startsWith('.'));
  } catch (e) {
    // Not there (or under a file): ensureWritableDir says what is wrong with the path.
    if (errorCode(e) === 'ENOENT' || errorCode(e) === 'ENOTDIR') return { exists: false, config: undefined, foreign: [], work: [] };
    throw e;
  }
  let config: unknown;
  if (entries.includes('config.json')) {
    const json = await readJsonIfExists<{ format?: string; run?: { epochs?: unknown; batchSize?: unknown } }>(join(dir, 'config.json')).catch(() => undefined);
    // Runs from before the format field have the run config alone.
    if (json && (json.format === RUN_CONFIG_FORMAT || (json.format === undefined && typeof json.run?.epochs === 'number' && typeof json.run?.batchSize === 'number'))) config = json;
  }
  const foreign = entries.filter((e) => !RUN_ENTRY.test(e));
  if (config === undefined && entries.length > 0) foreign.push(...entries.filter((e) => RUN_ENTRY.test(e)));
  const isWork = (name: string) => /^(checkpoint|model)(\.(saving|previous)-\d+)?$/.test(name);
  const work = entries.filter(isWork);
  for (const runDir of entries.filter((e) => /^run-\d+$/.test(e))) {
    const names = await readdir(join(dir, runDir)).catch(() => [] as string[]);
    work.push(...names.filter(isWork).map((name) => `${runDir}/${name}`));
  }
  return { exists: true, config, foreign: foreign.sort(), work: work.sort() };
}

/** The `format` of config.json, so a directory holding another program's config.json is not taken for a run. */
export const RUN_CONFIG_FORMAT = 'tfjs-dataflow-cifar10-run';

// ---------------------------------------------------------------------------------------------
// Checkpoints

/** What a checkpoint holds besides the trainer's state: the run's config (resume checks it) and why it was written. */
export interface CheckpointMeta<C> {
  config: C;
  /** 'epoch-end' after each epoch, 'interrupted' on Ctrl-C or SIGTERM (mid-epoch). */
  reason: 'epoch-end' | 'interrupted';
  savedAt: string;
}

interface CheckpointJson<C> extends CheckpointMeta<C> {
  format: typeof CHECKPOINT_FORMAT;
  trainer: Omit<TrainCheckpoint, 'tensors'>;
  weightSpecs: tf.io.WeightsManifestEntry[];
}

/** Writes a file and flushes it to the disk, so a rename after it never publishes a file the disk does not hold yet. */
async function writeDurably(path: string, data: string | Uint8Array): Promise<void> {
  const file = await open(path, 'w');
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
}

/**
 * Writes `checkpoint` into `dir` (checkpoint.json + tensors.bin, via tf.io.encodeWeights):
 * first into `dir.saving-<pid>`, then the old checkpoint is renamed to `dir.previous-<pid>`,
 * the new one to `dir`, and the old one removed. A crash or kill at any point leaves a complete
 * checkpoint under one of those names; {@link recoverCheckpoint} finds it.
 */
export async function writeCheckpoint<C>(dir: string, checkpoint: TrainCheckpoint, meta: CheckpointMeta<C>): Promise<void> {
  const { tensors, ...trainer } = checkpoint;
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const json: CheckpointJson<C> = { format: CHECKPOINT_FORMAT, ...meta, trainer, weightSpecs: specs };
  const staging = `${dir}.saving-${process.pid}`;
  const previous = `${dir}.previous-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  await writeDurably(join(staging, CHECKPOINT_BIN), new Uint8Array(data as ArrayBuffer));
  await writeDurably(join(staging, CHECKPOINT_JSON), `${JSON.stringify(json, null, 1)}\n`);
  await rm(previous, { recursive: true, force: true });
  await rename(dir, previous).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  await rename(staging, dir);
  await rm(previous, { recursive: true, force: true });
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

/** Bytes tf.io.encodeWeights writes for `specs`. */
function specBytes(specs: readonly tf.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const size = DTYPE_BYTES[spec.dtype];
    if (size === undefined || !Array.isArray(spec.shape)) return undefined;
    total += spec.shape.reduce((a, b) => a * b, 1) * size;
  }
  return total;
}

/** Why the checkpoint in `dir` cannot be read, or undefined when it looks complete (both files, valid JSON, sizes that agree). */
export async function checkpointProblem(dir: string): Promise<string | undefined> {
  const jsonPath = join(dir, CHECKPOINT_JSON);
  let json: CheckpointJson<unknown> | undefined;
  try {
    json = await readJsonIfExists<CheckpointJson<unknown>>(jsonPath);
  } catch (e) {
    return (e as Error).message;
  }
  if (json === undefined) return `${jsonPath} is missing`;
  if (json?.format !== CHECKPOINT_FORMAT) return `${jsonPath} is not a CIFAR-10 CLI checkpoint (format '${String(json?.format)}')`;
  if (!Array.isArray(json.weightSpecs)) return `${jsonPath} lists no weightSpecs`;
  const binPath = join(dir, CHECKPOINT_BIN);
  let size: number;
  try {
    size = (await stat(binPath)).size;
  } catch (e) {
    return `the checkpoint's tensors file ${binPath} cannot be read (${errorCode(e) ?? (e as Error).message})`;
  }
  const expected = specBytes(json.weightSpecs);
  if (expected !== undefined && size !== expected) {
    return `the checkpoint's tensors file ${binPath} has ${size} bytes, but ${jsonPath} describes ${expected} bytes of tensors: ` +
      `${size < expected ? 'it is truncated (an interrupted copy, or a full disk?)' : 'it is longer than described'} or belongs to another checkpoint`;
  }
  return undefined;
}

/** Reads a checkpoint written by {@link writeCheckpoint}, or undefined when `dir` holds none. The caller disposes `checkpoint.tensors`. */
export async function readCheckpoint<C>(dir: string): Promise<{ checkpoint: TrainCheckpoint; meta: CheckpointMeta<C> } | undefined> {
  const json = await readJsonIfExists<CheckpointJson<C>>(join(dir, CHECKPOINT_JSON));
  if (json === undefined) return undefined;
  const problem = await checkpointProblem(dir);
  if (problem !== undefined) throw new Error(`cannot resume from the checkpoint in ${dir}: ${problem}`);
  const bytes = await readFile(join(dir, CHECKPOINT_BIN));
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  let tensors: tf.NamedTensorMap;
  try {
    tensors = tf.io.decodeWeights(data, json.weightSpecs);
  } catch (e) {
    throw new Error(`cannot resume from the checkpoint in ${dir}: ${join(dir, CHECKPOINT_BIN)} does not decode with the specs in ${join(dir, CHECKPOINT_JSON)} (${(e as Error).message})`);
  }
  return {
    checkpoint: { ...json.trainer, tensors },
    meta: { config: json.config, reason: json.reason, savedAt: json.savedAt },
  };
}

/**
 * Makes sure `dir` holds the newest complete checkpoint when there is one. A write cut off
 * between its two renames leaves no `dir`, only `dir.saving-<pid>` (the new checkpoint,
 * complete) and `dir.previous-<pid>` (the old one): the complete one with the most steps is
 * renamed to `dir`. Leftovers of a dead process's write next to an intact `dir` are removed.
 *
 * @returns undefined when there is no checkpoint at all; `{ recoveredFrom }` naming the folder
 * that was moved into place, or `{}` when `dir` was in place already.
 * @throws when only damaged or incomplete checkpoints are found: starting over silently would
 * throw their steps away.
 */
export async function recoverCheckpoint(dir: string): Promise<{ recoveredFrom?: string } | undefined> {
  const parent = dirname(dir);
  const base = basename(dir);
  const halves = (await readdir(parent).catch(() => [] as string[]))
    .map((name) => ({ name, m: new RegExp(`^${base}\\.(saving|previous)-(\\d+)$`).exec(name) }))
    .filter((h): h is { name: string; m: RegExpExecArray } => h.m !== null)
    .filter((h) => Number(h.m[2]) === process.pid || !processAlive(Number(h.m[2])));
  if (await exists(join(dir, CHECKPOINT_JSON))) {
    for (const h of halves) await rm(join(parent, h.name), { recursive: true, force: true });
    return {};
  }
  const candidates: { name: string; problem?: string; step: number }[] = [];
  for (const h of halves) {
    const path = join(parent, h.name);
    const problem = await checkpointProblem(path);
    const step = problem ? -1 : Number((await readJsonIfExists<CheckpointJson<unknown>>(join(path, CHECKPOINT_JSON)))?.trainer?.step ?? -1);
    candidates.push(problem ? { name: h.name, problem, step } : { name: h.name, step });
  }
  const complete = candidates.filter((c) => c.problem === undefined).sort((a, b) => b.step - a.step);
  const best = complete[0];
  if (best) {
    if (await exists(dir)) await rename(dir, `${dir}.damaged-${Date.now()}`);
    await rename(join(parent, best.name), dir);
    for (const c of candidates) if (c !== best) await rm(join(parent, c.name), { recursive: true, force: true });
    return { recoveredFrom: best.name };
  }
  const damaged = [...(await exists(dir) ? [`${dir} (${await checkpointProblem(dir)})`] : []), ...candidates.map((c) => `${join(parent, c.name)} (${c.problem})`)];
  if (damaged.length > 0) {
    throw new Error(`no complete checkpoint to resume from: ${damaged.join('; ')}. Refusing to start over from step 0; ` +
      'restore a copy of the checkpoint, or move these away and start a new run with another --out.');
  }
  return undefined;
}
