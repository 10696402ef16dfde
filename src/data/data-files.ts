import { readFile, stat } from 'node:fs/promises';

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
