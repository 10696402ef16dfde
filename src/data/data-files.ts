import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { DataFileDigest } from './cifar10.js';

/**
 * The name, size and SHA-256 of a data file's bytes as read.
 * @internal
 */
export function digestOf(path: string, bytes: Uint8Array): DataFileDigest {
  return { file: basename(path), bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** How a data set's loader names itself and its files in the errors of {@link readDataFile}. */
export interface DataFileRules {
  /** The data set, e.g. 'CIFAR-10'. */
  dataset: string;
  /** Largest size a file of the set can have; a larger one is refused before it is read. */
  maxBytes: number;
  /** What a file of that size is, e.g. 'a CIFAR-10 batch file (30730000 bytes: 10000 records of 3073)'. */
  maxDescription: string;
  /** Appended to every error: where the files belong and how to get them. */
  hint: string;
}

function kindOf(info: Awaited<ReturnType<typeof stat>>): string {
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isDirectory()) return 'a directory';
  if (info.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Reads one file of a data set after checking that it is a regular file no larger than the set's
 * largest: a FIFO would block forever and a link to a device would read until memory runs out.
 * @internal
 */
export async function readDataFile(path: string, rules: DataFileRules): Promise<Buffer>;
export async function readDataFile(path: string, rules: DataFileRules, encoding: 'utf8'): Promise<string>;
export async function readDataFile(path: string, rules: DataFileRules, encoding?: 'utf8'): Promise<Buffer | string> {
  const { dataset, maxBytes, maxDescription, hint } = rules;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (e) {
    throw new Error(`${dataset} file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). ${hint}`);
  }
  if (!info.isFile()) throw new Error(`${dataset} file ${path} is ${kindOf(info)}, not a regular file. ${hint}`);
  if (info.size > maxBytes) throw new Error(`${dataset} file ${path} has ${info.size} bytes, more than ${maxDescription}. ${hint}`);
  try {
    return encoding ? await readFile(path, encoding) : await readFile(path);
  } catch (e) {
    throw new Error(`${dataset} file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). ${hint}`);
  }
}

/** What {@link checkDataDir} needs to know of a data set's directory. */
export interface DataDirRules {
  /** The data set, e.g. 'CIFAR-10'. */
  dataset: string;
  /** Every file the directory must hold. */
  files: readonly string[];
  /** The folder the official archive unpacks to, which users often pass the parent of. */
  archiveDir: string;
  /** Why a directory holding none of `files` is not the set, from what it does hold ('' when nothing is recognised). */
  recognise: (present: ReadonlySet<string>) => string;
  /** Appended to every error: how to get the files. */
  howToGet: string;
}

/**
 * Checks that `dir` is a directory holding every file of a data set, with an error that says how to fix it.
 * @internal
 */
export async function checkDataDir(dir: string, rules: DataDirRules): Promise<void> {
  const { dataset, files, archiveDir, recognise, howToGet } = rules;
  const list = files.join(', ');
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${dataset} directory ${dir} does not exist. Expected a directory holding ${list}. ${howToGet}`);
    }
    throw e;
  }
  if (!info.isDirectory())
    throw new Error(`${dataset} directory ${dir} is not a directory. Expected a directory holding ${list}. ${howToGet}`);
  const present = new Set(await readdir(dir));
  const missing = files.filter((f) => !present.has(f));
  if (missing.length === 0) return;
  if (missing.length === files.length) {
    const hint = present.has(archiveDir) ? ` It contains ${archiveDir}/: pass ${join(dir, archiveDir)} instead.` : recognise(present);
    throw new Error(`${dir} is not a ${dataset} directory: none of ${list} is there.${hint} ${howToGet}`);
  }
  throw new Error(`${dataset} directory ${dir} is missing ${missing.join(', ')}. Expected all of ${list}. ${howToGet}`);
}
