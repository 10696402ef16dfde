/**
 * The run directory on disk: whose it is, and its checkpoints. The checkpoint files that survive a crash or a full
 * disk are the library's Node entry's; the helpers beneath them (atomic JSON, process records, the directory lock)
 * are the library's internals, imported from their module (src/io/checkpoint-files.ts); this module adds what is
 * the CLI's own.
 */
import { mkdir, open, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describeProcess, processAlive, readJsonIfExists, type ProcessRecord } from '../../src/io/checkpoint-files.js';
import {
  checkpointFilesProblem,
  readCheckpointFiles,
  recoverCheckpointFiles,
  writeCheckpointFiles,
  type CheckpointFilesMeta,
  type TrainCheckpoint,
} from '../../src/node.js';

export {
  processAlive,
  readJsonIfExists,
  recordedProcessRuns,
  writeFileAtomic,
  writeJsonAtomic,
  writeJsonAtomicSync,
} from '../../src/io/checkpoint-files.js';

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * What this process is called in metrics.json, so another process can tell whether a "running" run still runs: its
 * pid and host, and where /proc says, its start time and boot id (a pid alone may have been reused since).
 */
export function processInfo(): ProcessRecord {
  return describeProcess();
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
    let info: Awaited<ReturnType<typeof stat>>;
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
      throw new Error(
        existing === path
          ? `${describe} is a file, not a directory: choose a directory for the run's outputs`
          : `${describe}: ${existing} is a file, not a folder, so ${path} cannot be created`,
      );
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
        const why =
          code === 'ENOENT'
            ? `the file system at ${dirname(folder)} does not allow new folders there (is it /proc, /sys or another virtual file system?)`
            : code === 'EACCES' || code === 'EPERM'
              ? 'permission denied'
              : code === 'EROFS'
                ? 'the file system is read-only'
                : (e as Error).message;
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
      const why =
        code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EROFS'
            ? 'the file system is read-only'
            : (e as Error).message;
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

/**
 * Overwrites the existing file `path` in place (truncated first, so its blocks are free for the new text) and flushes
 * it: for a record that must be written when the disk has no room for the temporary copy an atomic write needs. Only
 * where the text fits the blocks the file already holds, so that a full disk never leaves it cut off; returns whether
 * it wrote. Errors name the file.
 */
export async function writeFileInPlace(path: string, data: string): Promise<boolean> {
  const held = await stat(path).then(
    (s) => (s.isFile() ? s.blocks * 512 : -1),
    () => -1,
  );
  if (Buffer.byteLength(data) > held) return false;
  let file: Awaited<ReturnType<typeof open>> | undefined;
  try {
    file = await open(path, 'r+');
    await file.truncate(0);
    await file.writeFile(data);
    await file.sync();
  } catch (e) {
    const code = errorCode(e);
    throw new Error(`cannot write ${path}${code === 'ENOSPC' ? ': the disk is full (ENOSPC)' : `: ${(e as Error).message}`}`);
  } finally {
    await file?.close().catch(() => undefined);
  }
  return true;
}

/** The name of a run directory's entries this CLI writes: anything else makes the directory someone else's. */
const RUN_ENTRY = /^(config\.json|metrics\.json|curves\.svg|checkpoint|model|run-\d+)((\.(saving|previous|damaged)-\d+)|(\.tmp-\d+))?$/;

/** What an --out directory holds, as far as starting or continuing a run there is concerned. */
export interface RunDirState {
  exists: boolean;
  /** config.json, when it is this CLI's. */
  config: unknown | undefined;
  /** Why config.json, present, could not be read (not valid JSON, a folder), naming it: the run's record is damaged, not absent. */
  configProblem: string | undefined;
  /** Entries that this CLI does not write (hidden files aside): the directory then belongs to something else. */
  foreign: string[];
  /** Checkpoints (including the halves of an interrupted write) and models: work that --resume continues and a new run must not overwrite. */
  work: string[];
  /** Leftovers of a dead process's writes that never completed (temporary files, a cut-off first checkpoint): removed by the next run. */
  debris: string[];
}

/** Looks at `dir` (and its run-N/ folders) without changing anything. */
export async function inspectRunDir(dir: string): Promise<RunDirState> {
  let entries: string[];
  try {
    entries = (await readdir(dir)).filter((e) => !e.startsWith('.'));
  } catch (e) {
    // Not there (or under a file): ensureWritableDir says what is wrong with the path.
    if (errorCode(e) === 'ENOENT' || errorCode(e) === 'ENOTDIR')
      return { exists: false, config: undefined, configProblem: undefined, foreign: [], work: [], debris: [] };
    throw e;
  }
  let config: unknown;
  let configProblem: string | undefined;
  if (entries.includes('config.json')) {
    const path = join(dir, 'config.json');
    const json = await readJsonIfExists<{ format?: string; run?: { epochs?: unknown; batchSize?: unknown } }>(path).catch((e: unknown) => {
      const message = (e as Error).message;
      configProblem = message.includes(path) ? message : `${path} cannot be read: ${message}`;
      return undefined;
    });
    // Runs from before the format field have the run config alone.
    if (
      json &&
      (json.format === RUN_CONFIG_FORMAT ||
        (json.format === undefined && typeof json.run?.epochs === 'number' && typeof json.run?.batchSize === 'number'))
    )
      config = json;
  }
  const foreign = entries.filter((e) => !RUN_ENTRY.test(e));
  if (config === undefined && entries.length > 0) foreign.push(...entries.filter((e) => RUN_ENTRY.test(e)));
  const isWork = (name: string) => /^(checkpoint|model)(\.(saving|previous)-\d+)?$/.test(name);
  const deadPid = (pid: number) => pid !== process.pid && !processAlive(pid);
  const work: string[] = [];
  const debris: string[] = [];
  const sort = async (folder: string, names: string[], prefix: string) => {
    for (const name of names) {
      // A dead process's leftovers: temporary files, a checkpoint write cut off before its renames
      // (a full disk, a kill), which never replaced anything, and the folders of a model save of
      // earlier versions (the model is saved again from the checkpoint). They are no work to continue.
      const leftover = /\.(tmp|saving|previous)-(\d+)$/.exec(name);
      const dead = leftover !== null && deadPid(Number(leftover[2]));
      if (
        dead &&
        (leftover[1] === 'tmp' ||
          /^model\./.test(name) ||
          (leftover[1] === 'saving' && (await checkpointFilesProblem(join(folder, name))) !== undefined))
      ) {
        debris.push(`${prefix}${name}`);
      } else if (name === 'checkpoint' || name === 'model') {
        // Written in place: work when it holds a file of a checkpoint or a model (recoverCheckpointFiles
        // finishes or refuses a cut-off checkpoint), else only the temporary files of a cut-off first write.
        const inside = await readdir(join(folder, name)).catch(() => [] as string[]);
        const holdsWork = inside.some((n) => ['checkpoint.json', 'tensors.bin', 'model.json', 'weights.bin'].includes(n));
        if (holdsWork) work.push(`${prefix}${name}`);
        if (name === 'model' || !holdsWork) {
          for (const n of inside) {
            const temp = /\.tmp-(\d+)$/.exec(n);
            if (temp && deadPid(Number(temp[1]))) debris.push(`${prefix}${name}/${n}`);
          }
        }
      } else if (isWork(name)) {
        work.push(`${prefix}${name}`);
      }
    }
  };
  await sort(dir, entries, '');
  for (const runDir of entries.filter((e) => /^run-\d+$/.test(e))) {
    const names = await readdir(join(dir, runDir)).catch(() => [] as string[]);
    await sort(join(dir, runDir), names, `${runDir}/`);
  }
  return { exists: true, config, configProblem, foreign: foreign.sort(), work: work.sort(), debris: debris.sort() };
}

/** The `format` of config.json, so a directory holding another program's config.json is not taken for a run. */
export const RUN_CONFIG_FORMAT = 'tfjs-dataflow-cifar10-run';

// ---------------------------------------------------------------------------------------------
// Checkpoints: the library's (tfjs-dataflow/node), with the CLI's metadata.

/** What a checkpoint holds besides the trainer's state: the run's config and identity (resume checks both) and why it was written. */
export interface CheckpointMeta<C> extends CheckpointFilesMeta<C> {
  /** 'epoch-end' after each epoch, 'interrupted' on Ctrl-C, SIGHUP, SIGQUIT or SIGTERM (mid-epoch). */
  reason: 'epoch-end' | 'interrupted';
}

export const writeCheckpoint: <C>(dir: string, checkpoint: TrainCheckpoint, meta: CheckpointMeta<C>) => Promise<void> =
  writeCheckpointFiles;
export const readCheckpoint = readCheckpointFiles as <C>(
  dir: string,
) => Promise<{ checkpoint: TrainCheckpoint; meta: CheckpointMeta<C> } | undefined>;
export const checkpointProblem = checkpointFilesProblem;
export const recoverCheckpoint = recoverCheckpointFiles;
