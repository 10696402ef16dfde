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
import { lstat, mkdir, open, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
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

/** The temporary copy a write of `path` goes through: in the same folder, so that renaming it over `path` is atomic. */
function tempPathOf(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

/**
 * Flushes folder `dir`, so that the renames made in it reach the disk in the order they were made. Best effort: some
 * file systems refuse to flush a folder (EISDIR, EINVAL), and each rename is atomic all the same.
 */
async function syncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // See above: the order of the renames is then the file system's.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Removes the folders a failed write created (`created`, the outermost, down to `dir`), innermost first, as long as they are empty. */
async function removeCreatedDirs(dir: string, created: string | undefined): Promise<void> {
  if (created === undefined) return;
  for (let folder = dir; ; folder = dirname(folder)) {
    if (
      !(await rmdir(folder).then(
        () => true,
        () => false,
      ))
    )
      return;
    if (folder === created || dirname(folder) === folder) return;
  }
}

/**
 * Writes `files` into folder `dir` (created if missing), each through a flushed temporary copy in `dir`
 * (`name.tmp-<pid>`) renamed over it, the renames in the order given and only once every copy is on the disk; nothing
 * else in `dir` is touched. A reader finds each file whole, the old or the new one. A failure before the renames (a full
 * disk) removes the temporary copies and the folders it created, and throws an error naming the file; a failure after
 * the first rename keeps the remaining copies, which complete the set.
 * @internal
 */
export async function writeFilesAtomic(dir: string, files: readonly (readonly [name: string, data: string | Uint8Array])[]): Promise<void> {
  let created: string | undefined;
  try {
    created = await mkdir(dir, { recursive: true });
  } catch (e) {
    throw writeError(dir, e);
  }
  const temps = files.map(([name]) => tempPathOf(join(dir, name)));
  try {
    for (const [i, [, data]] of files.entries()) await writeDurably(temps[i]!, data);
  } catch (e) {
    // Nothing was replaced: the partial copies go (they may be what filled the disk), and so do the folders made for them.
    for (const temp of temps) await rm(temp, { force: true }).catch(() => undefined);
    await removeCreatedDirs(dir, created);
    throw e;
  }
  for (const [i, [name]] of files.entries()) {
    try {
      await rename(temps[i]!, join(dir, name));
    } catch (e) {
      if (i === 0) for (const temp of temps) await rm(temp, { force: true }).catch(() => undefined);
      throw writeError(join(dir, name), e);
    }
    await syncDir(dir);
  }
}

/**
 * Writes `data` to `path` through a flushed temporary file (`path.tmp-<pid>`) and a rename, so
 * readers never see half a file. On failure the temporary file is removed and the error names it.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeFilesAtomic(dirname(path), [[basename(path), data]]);
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

/**
 * What tells a process of this machine apart from an earlier one that had the same id: its start time (`startTicks`,
 * clock ticks after boot, from /proc/<pid>/stat) and the boot it runs in (`bootId`, /proc/sys/kernel/random/boot_id).
 * Both are absent where /proc does not say (not Linux).
 */
export interface ProcessRecord {
  pid: number;
  host: string;
  startTicks?: number;
  bootId?: string;
}

/** Process `pid`'s start time in clock ticks after boot (field 22 of /proc/<pid>/stat), or undefined. */
function processStartTicks(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields after it follow its last ')'.
  const ticks = Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[22 - 3]);
  return Number.isSafeInteger(ticks) ? ticks : undefined;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** This boot's id, or undefined where there is none to read. */
function bootId(): string | undefined {
  return readProc('/proc/sys/kernel/random/boot_id')?.trim() || undefined;
}

/**
 * When process `pid` started, in ms since the epoch, from its start ticks and the boot time (/proc/stat's btime, whole
 * seconds: up to a second early). /proc reports ticks in USER_HZ, 100 a second on every Linux.
 */
function processStartedAtMs(pid: number): number | undefined {
  const ticks = processStartTicks(pid);
  const btime = Number(/^btime (\d+)$/m.exec(readProc('/proc/stat') ?? '')?.[1]);
  return ticks === undefined || !Number.isFinite(btime) ? undefined : btime * 1000 + ticks * 10;
}

/** This process, as {@link recordedProcessRuns} recognises it later. */
export function describeProcess(): ProcessRecord {
  const startTicks = processStartTicks(process.pid);
  const boot = bootId();
  return {
    pid: process.pid,
    host: hostname(),
    ...(startTicks !== undefined ? { startTicks } : {}),
    ...(boot !== undefined ? { bootId: boot } : {}),
  };
}

/**
 * Whether the process that wrote `record` (of this machine, another than this one) at `writtenAtMs` still runs: not
 * when the machine has restarted since (another boot id), nor when its pid is free or belongs now to a process that
 * started at another time; a record without a start time (written before it was recorded) is not of a process that
 * started after the record was written. Where /proc does not say, a live pid counts as its writer.
 */
export function recordedProcessRuns(record: Omit<ProcessRecord, 'host'>, writtenAtMs?: number): boolean {
  const boot = bootId();
  if (record.bootId !== undefined && boot !== undefined && record.bootId !== boot) return false;
  if (!processAlive(record.pid)) return false;
  if (record.startTicks !== undefined) {
    const now = processStartTicks(record.pid);
    return now === undefined || now === record.startTicks;
  }
  const started = processStartedAtMs(record.pid);
  return writtenAtMs === undefined || started === undefined || started <= writtenAtMs + 1000;
}

/** Whether the process `pid` that left a temporary file (modified at `mtimeMs`) is gone: it is no writer of it any more. */
function writerGone(pid: number, mtimeMs: number): boolean {
  return pid === process.pid || !recordedProcessRuns({ pid }, mtimeMs);
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

interface LockOwner extends ProcessRecord {
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

/** The lock files this process holds, so that a lock naming this process's id is told from one an earlier process with that id left. */
const heldLocks = new Set<string>();

interface FoundLock {
  owner: LockOwner | null;
  ageMs: number;
  mtimeMs: number;
}

function readOwner(path: string): FoundLock | undefined {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errorCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  const ageMs = Date.now() - mtimeMs;
  try {
    const owner = JSON.parse(text) as LockOwner;
    return { owner: typeof owner?.pid === 'number' && typeof owner.host === 'string' ? owner : null, ageMs, mtimeMs };
  } catch {
    return { owner: null, ageMs, mtimeMs };
  }
}

/** Creates `path` holding this process's identity, failing with EEXIST when it exists (O_CREAT | O_EXCL, atomic on local file systems). */
function createExclusive(path: string): void {
  const fd = openSync(path, 'wx');
  try {
    writeSync(fd, JSON.stringify({ ...describeProcess(), since: new Date().toISOString() } satisfies LockOwner));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function isStale(path: string, found: FoundLock): boolean {
  const { owner } = found;
  if (owner === null) return found.ageMs > EMPTY_LOCK_STALE_MS;
  // A lock of another machine (a shared file system) cannot be checked: it holds.
  if (owner.host !== hostname()) return false;
  // This process's id but not its lock: an earlier process had the id (a container's PID 1, killed and restarted).
  if (owner.pid === process.pid) return !heldLocks.has(resolve(path));
  // A live pid is its holder only if that process is the one that wrote the lock (pids are reused).
  return !recordedProcessRuns(owner, found.mtimeMs);
}

/**
 * Takes an exclusive lock on directory `dir` (which must exist): `dir/.lock`, created with
 * O_EXCL and holding this process's pid, host, start time and boot id, so of two processes started
 * at the same instant exactly one gets it. A lock left by a process of this machine that is gone
 * (SIGKILL, a power cut) is taken over, also when its pid now belongs to another process (one that
 * started at another time, or in another boot) or to this one (a restarted container's PID 1) while
 * this process does not hold it; breaking it goes through a second O_EXCL file, so two processes
 * that both find it stale cannot both win. Released by `release()` or when the process exits.
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
    if (!isStale(path, found)) throw new DirectoryLockedError(dir, found.owner);
    try {
      createExclusive(breaker);
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') throw writeError(breaker, e);
      const other = readOwner(breaker);
      // Another process is breaking the stale lock; it then holds the directory.
      if (other === undefined || !isStale(breaker, other)) throw new DirectoryLockedError(dir, null);
      rmSync(breaker, { force: true });
      continue;
    }
    try {
      // Checked again under the breaker: the stale lock may have been replaced by a live one.
      const again = readOwner(path);
      if (again !== undefined && isStale(path, again)) unlinkSync(path);
    } finally {
      rmSync(breaker, { force: true });
    }
  }
  const found = readOwner(path);
  throw new DirectoryLockedError(dir, found?.owner ?? null);
}

function heldLock(path: string): DirectoryLock {
  let held = true;
  heldLocks.add(resolve(path));
  const release = () => {
    if (!held) return;
    held = false;
    heldLocks.delete(resolve(path));
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
  /** When it was written, as an ISO 8601 date and time. */
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
 * with tensors.bin's SHA-256 in checkpoint.json), leaving anything else there alone: each file is
 * written to a temporary copy in `dir`, flushed to the disk, and only then renamed over the old one,
 * tensors.bin first and checkpoint.json last. A crash or kill at any point leaves a complete
 * checkpoint: the old one, or, cut off between the two renames, the new tensors.bin with the old
 * checkpoint.json (whose SHA-256 tells them apart, so they are never read as one) and the new
 * checkpoint.json flushed beside them, which {@link recoverCheckpointFiles} moves into place. A failed
 * write (a full disk) removes its partial files, leaves the old checkpoint in place and throws an
 * error naming the file. The caller keeps (and disposes) `checkpoint.tensors`.
 */
export async function writeCheckpointFiles<C>(dir: string, checkpoint: TrainCheckpoint, meta: CheckpointFilesMeta<C>): Promise<void> {
  const { tensors, ...trainer } = checkpoint;
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const bytes = new Uint8Array(data as ArrayBuffer);
  const json: CheckpointJson<C> = { format: CHECKPOINT_FILES_FORMAT, ...meta, trainer, weightSpecs: specs, tensorsSha256: sha256(bytes) };
  await writeFilesAtomic(dir, [
    [CHECKPOINT_BIN, bytes],
    [CHECKPOINT_JSON, `${JSON.stringify(json, null, 1)}\n`],
  ]);
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

/** checkpoint.json of `dir` (or the file `jsonName` there that would become it), or why it cannot be one. */
async function readCheckpointJson<C>(dir: string, jsonName = CHECKPOINT_JSON): Promise<{ json?: CheckpointJson<C>; problem?: string }> {
  const jsonPath = join(dir, jsonName);
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
export function checkpointFilesProblem(dir: string): Promise<string | undefined> {
  return checkpointProblem(dir, CHECKPOINT_JSON);
}

/** {@link checkpointFilesProblem} with the file `jsonName` of `dir` as checkpoint.json. */
async function checkpointProblem(dir: string, jsonName: string): Promise<string | undefined> {
  const { json, problem } = await readCheckpointJson(dir, jsonName);
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
export async function readCheckpointFiles<C>(dir: string): Promise<
  | {
      /** The trainer's state, for `Trainer.restore`. */
      checkpoint: TrainCheckpoint;
      /** What was written beside it. */
      meta: CheckpointFilesMeta<C>;
    }
  | undefined
> {
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

/** A temporary copy of a checkpoint file, as {@link writeCheckpointFiles} writes it. */
const CHECKPOINT_TEMP = /^(checkpoint\.json|tensors\.bin)\.tmp-(\d+)$/;

/**
 * Completes a write into `dir` cut off between its two renames: tensors.bin is the new one, while
 * checkpoint.json is still the old one (or absent, on the first write) and the new one waits, flushed,
 * as checkpoint.json.tmp-<pid>; it is moved into place when it describes tensors.bin. The other
 * temporary files of processes that are gone (a write cut off before its renames) are removed.
 * Returns the name of the file moved into place, if any.
 */
async function completeCutOffWrite(dir: string): Promise<string | undefined> {
  const temps: { name: string; file: string }[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = CHECKPOINT_TEMP.exec(name);
    const mtimeMs = m
      ? await lstat(join(dir, name)).then(
          (info) => info.mtimeMs,
          () => undefined,
        )
      : undefined;
    if (m && mtimeMs !== undefined && writerGone(Number(m[2]), mtimeMs)) temps.push({ name, file: m[1]! });
  }
  let completed: string | undefined;
  if (temps.some((t) => t.file === CHECKPOINT_JSON) && (await checkpointFilesProblem(dir)) !== undefined) {
    for (const t of temps.filter((x) => x.file === CHECKPOINT_JSON)) {
      if ((await checkpointProblem(dir, t.name)) !== undefined) continue;
      await rename(join(dir, t.name), join(dir, CHECKPOINT_JSON));
      await syncDir(dir);
      completed = t.name;
      break;
    }
  }
  for (const t of temps) if (t.name !== completed) await rm(join(dir, t.name), { force: true });
  return completed;
}

/**
 * Makes sure `dir` holds the newest complete checkpoint when there is one. A write cut off between
 * its two renames leaves the new tensors.bin beside the old checkpoint.json, with the new
 * checkpoint.json flushed as checkpoint.json.tmp-<pid>: it is moved into place. Temporary files of a
 * write cut off before its renames (a full disk, a kill) never replaced anything and are removed;
 * nothing else in `dir` is touched. Checkpoints of versions that wrote a whole folder and swapped it
 * in are recovered too: a write cut off between those renames left no `dir`, only `dir.saving-<pid>`
 * (the new checkpoint, complete) and `dir.previous-<pid>` (the old one), and the complete one with
 * the most steps is renamed to `dir`; leftovers of a dead process's write are removed.
 *
 * @returns undefined when there is no checkpoint at all; `{ recoveredFrom }` naming the file or folder
 * that was moved into place (relative to `dir`'s parent), or `{}` when `dir` was in place already.
 * @throws when only damaged checkpoints are found: starting over silently would throw their steps away.
 */
export async function recoverCheckpointFiles(dir: string): Promise<
  | {
      /** The file or folder moved into place, relative to `dir`'s parent; absent when `dir` was in place already. */
      recoveredFrom?: string;
    }
  | undefined
> {
  const parent = dirname(dir);
  const base = basename(dir);
  const completed = await completeCutOffWrite(dir);
  const pattern = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(saving|previous)-(\\d+)$`);
  const halves = (await readdir(parent).catch(() => [] as string[]))
    .map((name) => ({ name, m: pattern.exec(name) }))
    .filter((h): h is { name: string; m: RegExpExecArray } => h.m !== null)
    .filter((h) => Number(h.m[2]) === process.pid || !processAlive(Number(h.m[2])));
  if (await exists(join(dir, CHECKPOINT_JSON))) {
    for (const h of halves) await rm(join(parent, h.name), { recursive: true, force: true });
    return completed !== undefined ? { recoveredFrom: join(base, completed) } : {};
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
  // with no damaged checkpoint beside it, it is a cut-off write and goes. A tensors.bin without its
  // checkpoint.json is such a damaged checkpoint.
  const damagedDir = await exists(join(dir, CHECKPOINT_BIN));
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
