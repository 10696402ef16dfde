/**
 * Checkpoints on disk for Node (the `tfjs-dataflow/node` entry): a {@link TrainCheckpoint} as
 * `checkpoint.json` + `tensors.bin`, written so that a crash, a kill or a full disk at any moment
 * leaves a complete checkpoint behind, with the content hash and run identity that tell a
 * checkpoint's files apart from another run's; plus the atomic JSON writes and the directory lock
 * a training run needs. The browser keeps checkpoints in memory (`Trainer.checkpoint()`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { TrainCheckpoint } from '../train/checkpoint.js';

const CHECKPOINT_JSON = 'checkpoint.json';
const CHECKPOINT_BIN = 'tensors.bin';
/** The `format` of checkpoint.json. */
export const CHECKPOINT_FILES_FORMAT = 'tfjs-dataflow-checkpoint';
/** What the CIFAR-10 CLI wrote before the files moved into the library (read, never written). */
const LEGACY_FORMATS = new Set(['tfjs-dataflow-cifar10-checkpoint']);

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** A write error that names the file and, for the usual causes, says what happened. */
function writeError(path: string, e: unknown): Error {
  const code = errorCode(e);
  const why =
    code === 'ENOSPC'
      ? 'the disk is full (ENOSPC)'
      : code === 'EDQUOT'
        ? 'the disk quota is exhausted (EDQUOT)'
        : code === 'EACCES' || code === 'EPERM'
          ? `permission denied (${code})`
          : code === 'EROFS'
            ? 'the file system is read-only (EROFS)'
            : (e as Error).message;
  const error = new Error(`cannot write ${path}: ${why}`) as NodeJS.ErrnoException;
  if (code !== undefined) error.code = code;
  return error;
}

/** Writes a file and flushes it to the disk, so a rename after it never publishes a file the disk does not hold yet. */
async function writeDurably(path: string, data: string | Uint8Array): Promise<void> {
  let file: Awaited<ReturnType<typeof open>> | undefined;
  try {
    file = await open(path, 'w');
    await file.writeFile(data);
    await file.sync();
  } catch (e) {
    throw writeError(path, e);
  } finally {
    await file?.close().catch(() => undefined);
  }
}

/**
 * Writes `data` to `path` through a flushed temporary file (`path.tmp-<pid>`) and a rename, so
 * readers never see half a file. On failure the temporary file is removed and the error names `path`.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}`;
  try {
    await writeDurably(temp, data);
    await rename(temp, path).catch((e: unknown) => {
      throw writeError(path, e);
    });
  } catch (e) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/** {@link writeFileAtomic} of `value` as indented JSON. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** {@link writeJsonAtomic} for the moment the process is about to exit, when nothing asynchronous runs any more. */
export function writeJsonAtomicSync(path: string, value: unknown): void {
  const temp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(temp, 'w');
    try {
      writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
  } catch (e) {
    rmSync(temp, { force: true });
    throw writeError(path, e);
  }
}

/** Reads a JSON file, or undefined when it does not exist; invalid JSON is an error naming the file. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
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

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

// ---------------------------------------------------------------------------------------------
// The directory lock

/** The lock file's name inside the locked directory. */
export const LOCK_FILE = '.lock';
/** A lock file still empty after this long was left by a process killed while taking it. */
const EMPTY_LOCK_STALE_MS = 5_000;

interface LockOwner {
  pid: number;
  host: string;
  since: string;
}

/** Thrown by {@link lockDirectory} when a live process holds the lock. */
export class DirectoryLockedError extends Error {
  constructor(
    readonly dir: string,
    readonly owner: LockOwner | null,
  ) {
    super(
      owner
        ? `${dir} is locked by process ${owner.pid} on ${owner.host} (since ${owner.since}): wait for it to end or stop it first`
        : `${dir} is being locked by another process right now: wait for it to end or stop it first`,
    );
    this.name = 'DirectoryLockedError';
  }
}

/** A held lock; `release` (or the process's exit) removes it. */
export interface DirectoryLock {
  readonly path: string;
  release(): void;
}

function readOwner(path: string): { owner: LockOwner | null; ageMs: number } | undefined {
  let text: string;
  let ageMs: number;
  try {
    ageMs = Date.now() - statSync(path).mtimeMs;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const owner = JSON.parse(text) as LockOwner;
    return { owner: typeof owner?.pid === 'number' && typeof owner.host === 'string' ? owner : null, ageMs };
  } catch {
    return { owner: null, ageMs };
  }
}

/** Creates `path` holding this process's identity, failing with EEXIST when it exists (O_CREAT | O_EXCL, atomic on local file systems). */
function createExclusive(path: string): void {
  const fd = openSync(path, 'wx');
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies LockOwner));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function isStale(found: { owner: LockOwner | null; ageMs: number }): boolean {
  if (found.owner === null) return found.ageMs > EMPTY_LOCK_STALE_MS;
  // A lock of another machine (a shared file system) cannot be checked: it holds.
  return found.owner.host === hostname() && found.owner.pid !== process.pid && !processAlive(found.owner.pid);
}

/**
 * Takes an exclusive lock on directory `dir` (which must exist): `dir/.lock`, created with
 * O_EXCL and holding this process's pid and host, so of two processes started at the same
 * instant exactly one gets it. A lock left by a dead process of this machine (SIGKILL, a power
 * cut) is taken over; breaking it goes through a second O_EXCL file, so two processes that
 * both find it stale cannot both win. Released by `release()` or when the process exits.
 *
 * @throws {DirectoryLockedError} when a live process holds it.
 */
export function lockDirectory(dir: string): DirectoryLock {
  const path = join(dir, LOCK_FILE);
  const breaker = `${path}.break`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      createExclusive(path);
      return heldLock(path);
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') throw writeError(path, e);
    }
    const found = readOwner(path);
    if (found === undefined) continue; // released in between: try again
    if (!isStale(found)) throw new DirectoryLockedError(dir, found.owner);
    try {
      createExclusive(breaker);
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') throw writeError(breaker, e);
      const other = readOwner(breaker);
      // Another process is breaking the stale lock; it then holds the directory.
      if (other === undefined || !isStale(other)) throw new DirectoryLockedError(dir, null);
      rmSync(breaker, { force: true });
      continue;
    }
    try {
      // Checked again under the breaker: the stale lock may have been replaced by a live one.
      const again = readOwner(path);
      if (again !== undefined && isStale(again)) unlinkSync(path);
    } finally {
      rmSync(breaker, { force: true });
    }
  }
  const found = readOwner(path);
  throw new DirectoryLockedError(dir, found?.owner ?? null);
}

function heldLock(path: string): DirectoryLock {
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.removeListener('exit', release);
    // Only our own lock: never one another process took over after us.
    if (readOwner(path)?.owner?.pid === process.pid) rmSync(path, { force: true });
  };
  process.on('exit', release);
  return { path, release };
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

/** What a checkpoint file holds besides the trainer's state. */
export interface CheckpointFilesMeta<C = unknown> {
  /** The configuration the run was trained with (the caller compares it on resume). */
  config: C;
  /** Why it was written, e.g. 'epoch-end' or 'interrupted'. */
  reason: string;
  savedAt: string;
  /** The run this checkpoint belongs to (e.g. a random id made when the run started): a caller that keeps it refuses another run's checkpoint. */
  runId?: string;
}

interface CheckpointJson<C> extends CheckpointFilesMeta<C> {
  format: string;
  trainer: Omit<TrainCheckpoint, 'tensors'>;
  weightSpecs: tf.io.WeightsManifestEntry[];
  /** SHA-256 (hex) of tensors.bin: a tensors file of another checkpoint, even of the same size, is told apart. */
  tensorsSha256?: string;
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes `checkpoint` into directory `dir` (checkpoint.json + tensors.bin, via tf.io.encodeWeights,
 * with tensors.bin's SHA-256 in checkpoint.json): first into `dir.saving-<pid>`, each file flushed
 * to the disk, then the old checkpoint is renamed to `dir.previous-<pid>`, the new one to `dir`,
 * and the old one removed. A crash or kill at any point leaves a complete checkpoint under one of
 * those names ({@link recoverCheckpointFiles} finds it). A failed write (a full disk) removes its
 * partial files, leaves the old checkpoint in place and throws an error naming the file.
 * The caller keeps (and disposes) `checkpoint.tensors`.
 */
export async function writeCheckpointFiles<C>(dir: string, checkpoint: TrainCheckpoint, meta: CheckpointFilesMeta<C>): Promise<void> {
  const { tensors, ...trainer } = checkpoint;
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const bytes = new Uint8Array(data as ArrayBuffer);
  const json: CheckpointJson<C> = { format: CHECKPOINT_FILES_FORMAT, ...meta, trainer, weightSpecs: specs, tensorsSha256: sha256(bytes) };
  const staging = `${dir}.saving-${process.pid}`;
  const previous = `${dir}.previous-${process.pid}`;
  try {
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true }).catch((e: unknown) => {
      throw writeError(staging, e);
    });
    await writeDurably(join(staging, CHECKPOINT_BIN), bytes);
    await writeDurably(join(staging, CHECKPOINT_JSON), `${JSON.stringify(json, null, 1)}\n`);
  } catch (e) {
    // Nothing was replaced yet: the old checkpoint stays, and the partial one goes (it may be what filled the disk).
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
  await rm(previous, { recursive: true, force: true });
  await rename(dir, previous).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw writeError(dir, e);
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

/** checkpoint.json of `dir`, or why it cannot be one. */
async function readCheckpointJson<C>(dir: string): Promise<{ json?: CheckpointJson<C>; problem?: string }> {
  const jsonPath = join(dir, CHECKPOINT_JSON);
  let json: CheckpointJson<C> | undefined;
  try {
    json = await readJsonIfExists<CheckpointJson<C>>(jsonPath);
  } catch (e) {
    return { problem: (e as Error).message };
  }
  if (json === undefined) return { problem: `${jsonPath} is missing` };
  if (typeof json !== 'object' || json === null || (json.format !== CHECKPOINT_FILES_FORMAT && !LEGACY_FORMATS.has(json.format))) {
    return {
      problem: `${jsonPath} is not a tfjs-dataflow checkpoint (format '${String((json as { format?: unknown } | null)?.format)}', expected '${CHECKPOINT_FILES_FORMAT}')`,
    };
  }
  if (!Array.isArray(json.weightSpecs)) return { problem: `${jsonPath} lists no weightSpecs` };
  return { json };
}

/** Why tensors.bin (`bytes`, or its size alone) does not belong to `json`, or undefined. */
function tensorsProblem(dir: string, json: CheckpointJson<unknown>, size: number, bytes?: Uint8Array): string | undefined {
  const jsonPath = join(dir, CHECKPOINT_JSON);
  const binPath = join(dir, CHECKPOINT_BIN);
  const expected = specBytes(json.weightSpecs);
  if (expected !== undefined && size !== expected) {
    return (
      `the checkpoint's tensors file ${binPath} has ${size} bytes, but ${jsonPath} describes ${expected} bytes of tensors: ` +
      `${size < expected ? 'it is truncated (an interrupted copy, or a full disk?)' : 'it is longer than described'} or belongs to another checkpoint`
    );
  }
  if (bytes !== undefined && json.tensorsSha256 !== undefined && sha256(bytes) !== json.tensorsSha256) {
    return (
      `the checkpoint's tensors file ${binPath} does not match the SHA-256 that ${jsonPath} records: ` +
      'it belongs to another checkpoint (files mixed from two runs?) or is damaged'
    );
  }
  return undefined;
}

/**
 * Why the checkpoint in `dir` cannot be read, or undefined when it is complete: both files, valid
 * JSON, a tensors file of the described size whose SHA-256 is the one recorded.
 */
export async function checkpointFilesProblem(dir: string): Promise<string | undefined> {
  const { json, problem } = await readCheckpointJson(dir);
  if (!json) return problem;
  const binPath = join(dir, CHECKPOINT_BIN);
  let bytes: Buffer;
  try {
    const info = await stat(binPath);
    if (!info.isFile()) return `the checkpoint's tensors file ${binPath} is not a regular file`;
    const sizeProblem = tensorsProblem(dir, json, info.size);
    if (sizeProblem) return sizeProblem;
    bytes = await readFile(binPath);
  } catch (e) {
    return `the checkpoint's tensors file ${binPath} cannot be read (${errorCode(e) ?? (e as Error).message})`;
  }
  return tensorsProblem(dir, json, bytes.byteLength, bytes);
}

/**
 * Reads a checkpoint written by {@link writeCheckpointFiles}, or undefined when `dir` holds no
 * checkpoint.json. Its files are checked first (sizes, the recorded SHA-256, the specs): a
 * problem throws, naming the file. The caller disposes `checkpoint.tensors`.
 */
export async function readCheckpointFiles<C>(
  dir: string,
): Promise<{ checkpoint: TrainCheckpoint; meta: CheckpointFilesMeta<C> } | undefined> {
  if (!(await exists(join(dir, CHECKPOINT_JSON)))) return undefined;
  const { json, problem } = await readCheckpointJson<C>(dir);
  const refuse = (why: string) => new Error(`cannot resume from the checkpoint in ${dir}: ${why}`);
  if (!json) throw refuse(problem!);
  const binPath = join(dir, CHECKPOINT_BIN);
  let bytes: Buffer;
  try {
    const info = await stat(binPath);
    if (!info.isFile()) throw new Error('not a regular file');
    const sizeProblem = tensorsProblem(dir, json, info.size);
    if (sizeProblem) throw refuse(sizeProblem);
    bytes = await readFile(binPath);
  } catch (e) {
    if ((e as Error).message.startsWith('cannot resume')) throw e;
    throw refuse(`the checkpoint's tensors file ${binPath} cannot be read (${errorCode(e) ?? (e as Error).message})`);
  }
  const mixed = tensorsProblem(dir, json, bytes.byteLength, bytes);
  if (mixed) throw refuse(mixed);
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let tensors: tf.NamedTensorMap;
  try {
    tensors = tf.io.decodeWeights(data, json.weightSpecs);
  } catch (e) {
    throw refuse(`${binPath} does not decode with the specs in ${join(dir, CHECKPOINT_JSON)} (${(e as Error).message})`);
  }
  const meta: CheckpointFilesMeta<C> = { config: json.config, reason: json.reason, savedAt: json.savedAt };
  if (json.runId !== undefined) meta.runId = json.runId;
  return { checkpoint: { ...json.trainer, tensors }, meta };
}

/**
 * Makes sure `dir` holds the newest complete checkpoint when there is one. A write cut off
 * between its two renames leaves no `dir`, only `dir.saving-<pid>` (the new checkpoint,
 * complete) and `dir.previous-<pid>` (the old one): the complete one with the most steps is
 * renamed to `dir`. Leftovers of a dead process's write are removed: next to an intact `dir`,
 * and an incomplete `dir.saving-<pid>` (a write cut off before its renames, e.g. by a full disk
 * or a kill), which never replaced anything.
 *
 * @returns undefined when there is no checkpoint at all; `{ recoveredFrom }` naming the folder
 * that was moved into place, or `{}` when `dir` was in place already.
 * @throws when only damaged checkpoints are found: starting over silently would throw their steps away.
 */
export async function recoverCheckpointFiles(dir: string): Promise<{ recoveredFrom?: string } | undefined> {
  const parent = dirname(dir);
  const base = basename(dir);
  const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(saving|previous)-(\\d+)$`);
  const halves = (await readdir(parent).catch(() => [] as string[]))
    .map((name) => ({ name, m: pattern.exec(name) }))
    .filter((h): h is { name: string; m: RegExpExecArray } => h.m !== null)
    .filter((h) => Number(h.m[2]) === process.pid || !processAlive(Number(h.m[2])));
  if (await exists(join(dir, CHECKPOINT_JSON))) {
    for (const h of halves) await rm(join(parent, h.name), { recursive: true, force: true });
    return {};
  }
  const candidates: { name: string; kind: string; problem?: string; step: number }[] = [];
  for (const h of halves) {
    const path = join(parent, h.name);
    const problem = await checkpointFilesProblem(path);
    const step = problem ? -1 : Number((await readJsonIfExists<CheckpointJson<unknown>>(join(path, CHECKPOINT_JSON)))?.trainer?.step ?? -1);
    candidates.push(problem ? { name: h.name, kind: h.m[1]!, problem, step } : { name: h.name, kind: h.m[1]!, step });
  }
  const complete = candidates.filter((c) => c.problem === undefined).sort((a, b) => b.step - a.step);
  const best = complete[0];
  if (best) {
    if (await exists(dir)) await rename(dir, `${dir}.damaged-${Date.now()}`);
    await rename(join(parent, best.name), dir);
    for (const c of candidates) if (c !== best) await rm(join(parent, c.name), { recursive: true, force: true });
    return { recoveredFrom: best.name };
  }
  // An incomplete staging folder never replaced anything (the renames come after its files are flushed):
  // with no damaged checkpoint beside it, it is a cut-off write and goes.
  const damagedDir = await exists(dir);
  const damagedPrevious = candidates.filter((c) => c.kind === 'previous');
  if (!damagedDir && damagedPrevious.length === 0) {
    for (const c of candidates) await rm(join(parent, c.name), { recursive: true, force: true });
    return undefined;
  }
  const damaged = [
    ...(damagedDir ? [`${dir} (${await checkpointFilesProblem(dir)})`] : []),
    ...candidates.map((c) => `${join(parent, c.name)} (${c.problem})`),
  ];
  throw new Error(
    `no complete checkpoint to resume from: ${damaged.join('; ')}. Refusing to start over from step 0; ` +
      'restore a copy of the checkpoint, or move these away and start a new run in another directory.',
  );
}
