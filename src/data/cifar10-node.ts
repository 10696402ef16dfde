import { checkDataDir, digestOf, readDataFile, type DataFileRules } from './data-files.js';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import {
  CIFAR10_EVAL_FILES,
  CIFAR10_FILES,
  CIFAR10_RECORDS_PER_FILE,
  CIFAR10_RECORD_BYTES,
  CIFAR10_TRAIN_FILES,
  cifar10Dataset,
  concatCifar10Splits,
  parseCifar10Batch,
  type Cifar10Dataset,
  type Cifar10Split,
} from './cifar10.js';
import { readTar } from './tar.js';

/** The official CIFAR-10 binary release. */
export const CIFAR10_URL = 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz';
/** MD5 of the official binary release, as published on the CIFAR-10 page. */
export const CIFAR10_MD5 = 'c32a1d4ab5d03f1284b67883e8d87530';
/** The folder the archive unpacks to, and the folder name used inside the cache. */
export const CIFAR10_ARCHIVE_DIR = 'cifar-10-batches-bin';

/** Options for {@link loadCifar10}. */
export interface LoadCifar10Options {
  /** Directory holding data_batch_1..5.bin and test_batch.bin; default: the cache, downloading into it if needed. */
  dir?: string;
  /** Cache root for the download; default `$XDG_CACHE_HOME/tfjs-dataflow`, else `~/.cache/tfjs-dataflow`. */
  cacheDir?: string;
  /** Download when `dir` is not given and the cache holds no valid copy; default true. */
  download?: boolean;
  /** Keep only the first N training images (default all 50000). */
  trainLimit?: number;
  /** Keep only the first N evaluation images (default all 10000). */
  evalLimit?: number;
  /** Archive to download; default the official {@link CIFAR10_URL}. */
  url?: string;
  /** Expected MD5 (hex) of the archive; default the official {@link CIFAR10_MD5}. */
  md5?: string;
  /**
   * Give up on a download that receives nothing for this long (connecting included), in
   * milliseconds; default {@link CIFAR10_STALL_TIMEOUT_MS} (30 s). The error says where to put the files instead.
   */
  stallTimeoutMs?: number;
  /** Called as the archive arrives (at most about once a second, and once at the end). */
  onDownloadProgress?: (progress: DownloadProgress) => void;
}

/** How far a download has got. */
export interface DownloadProgress {
  /** The archive's address. */
  url: string;
  /** Bytes received so far. */
  receivedBytes: number;
  /** The size the server announced (content-length), when it did. */
  totalBytes: number | undefined;
  /** Average rate since the download started, bytes per second. */
  bytesPerSecond: number;
  /** True for the last call, once everything arrived. */
  done: boolean;
}

/** Default of {@link LoadCifar10Options.stallTimeoutMs}: a connection silent this long is given up on. */
export const CIFAR10_STALL_TIMEOUT_MS = 30_000;

const FILE_LIST = CIFAR10_FILES.join(', ');
const HOW_TO_GET =
  'Get them from https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version", cifar-10-binary.tar.gz), ' +
  `unpack it (tar xzf cifar-10-binary.tar.gz) and pass its ${CIFAR10_ARCHIVE_DIR} directory as \`dir\` ` +
  '(CLI: --data <dir>), or leave `dir` unset to download it into the cache.';

/**
 * The cache root the download goes to: `$XDG_CACHE_HOME/tfjs-dataflow`, else
 * `~/.cache/tfjs-dataflow`. The data itself lands in its `cifar-10-batches-bin` folder.
 */
export function defaultCacheDir(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'tfjs-dataflow');
}

function checkLimit(name: string, value: number | undefined, max: number): number {
  if (value === undefined) return max;
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`loadCifar10: ${name} must be a positive integer, got ${value}`);
  }
  return Math.min(value, max);
}

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Loads CIFAR-10 from the binary release into host memory: the training split from
 * data_batch_1..5.bin (in that order) and the evaluation split from test_batch.bin, each file
 * validated by {@link parseCifar10Batch}. This replaces the seed's
 * `torchvision.datasets.CIFAR10('cifar10/', download=True, ...)`.
 *
 * With `dir`, the files are read from there; a missing directory or file is an error naming the
 * path, the expected files and how to get them. Without `dir`, the copy in the cache is used, or
 * the official archive is downloaded, MD5-checked, unpacked and moved into the cache in one
 * rename, so an interrupted download never looks like data. `trainLimit` and `evalLimit` keep the
 * first N images of each split (only the files needed are read).
 *
 * @returns host splits (uint8 NCHW images, labels) and `toBackend()`, which puts them on the
 * active tfjs backend as the seed prepares them.
 */
export async function loadCifar10(options: LoadCifar10Options = {}): Promise<Cifar10Dataset> {
  const stall = options.stallTimeoutMs;
  if (stall !== undefined && !(typeof stall === 'number' && stall > 0 && Number.isFinite(stall))) {
    throw new Error(`loadCifar10: stallTimeoutMs must be a positive number of milliseconds, got ${String(stall)}`);
  }
  const trainLimit = checkLimit('trainLimit', options.trainLimit, CIFAR10_TRAIN_FILES.length * CIFAR10_RECORDS_PER_FILE);
  const evalLimit = checkLimit('evalLimit', options.evalLimit, CIFAR10_EVAL_FILES.length * CIFAR10_RECORDS_PER_FILE);
  const dir = options.dir !== undefined ? resolve(options.dir) : await ensureCachedCifar10(options);
  if (options.dir !== undefined) await checkCifar10Dir(dir);
  const train = await readSplit(dir, CIFAR10_TRAIN_FILES, trainLimit);
  const evalSplit = await readSplit(dir, CIFAR10_EVAL_FILES, evalLimit);
  for (const [testFile, testBytes] of evalSplit.files) await refuseCopyOfTrainingFile(dir, testFile, testBytes, train.files);
  const files = [...train.files, ...evalSplit.files].map(([path, bytes]) => digestOf(path, bytes));
  return { ...cifar10Dataset(train.split, evalSplit.split, dir), files };
}

/** Bytes compared first when a training file that was not read is checked against the test file. */
const PREFIX_BYTES = 64 * 1024;

/**
 * Refuses a test file that is a copy of a training file, which would report training accuracy as test accuracy: each
 * data_batch_N.bin in `dir` is compared, whether it was read (`read`, with a `trainLimit` some are not) or not; one
 * that was not is compared by size and first bytes, and read whole only when those match.
 */
async function refuseCopyOfTrainingFile(
  dir: string,
  testFile: string,
  testBytes: Buffer,
  read: readonly [string, Buffer][],
): Promise<void> {
  for (const file of CIFAR10_TRAIN_FILES) {
    const path = join(dir, file);
    const bytes = read.find(([p]) => p === path)?.[1];
    const identical = bytes !== undefined ? bytes.equals(testBytes) : await sameFileBytes(path, testBytes);
    if (identical) {
      throw new Error(
        `CIFAR-10 directory ${dir}: ${basename(testFile)} is byte-identical to ${file}, so the test set would be training images. ` +
          `Restore the real test_batch.bin. ${HOW_TO_GET}`,
      );
    }
  }
}

/** Whether the regular file at `path` holds exactly `bytes` (its size and first bytes first; anything else, or a file that cannot be read, is not). */
async function sameFileBytes(path: string, bytes: Buffer): Promise<boolean> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile() || info.size !== bytes.byteLength) return false;
  const file = await open(path, 'r').catch(() => undefined);
  if (!file) return false;
  try {
    const prefix = Buffer.alloc(Math.min(PREFIX_BYTES, bytes.byteLength));
    const { bytesRead } = await file.read(prefix, 0, prefix.byteLength, 0);
    if (bytesRead !== prefix.byteLength || !prefix.equals(bytes.subarray(0, prefix.byteLength))) return false;
  } finally {
    await file.close();
  }
  return (await readFile(path)).equals(bytes);
}

/** The largest CIFAR-10 binary file: a whole batch of records. */
const MAX_FILE_BYTES = CIFAR10_RECORDS_PER_FILE * CIFAR10_RECORD_BYTES;
const CIFAR10_FILE_RULES = (dir: string): DataFileRules => ({
  dataset: 'CIFAR-10',
  // Short of a whole extra record the parser names the misfit more precisely (records and leftover bytes).
  maxBytes: MAX_FILE_BYTES + CIFAR10_RECORD_BYTES - 1,
  maxDescription: `a CIFAR-10 batch file (${MAX_FILE_BYTES} bytes: ${CIFAR10_RECORDS_PER_FILE} records of ${CIFAR10_RECORD_BYTES})`,
  hint: `Expected in ${dir}: ${FILE_LIST}. ${HOW_TO_GET}`,
});

async function readSplit(
  dir: string,
  files: readonly string[],
  limit: number,
): Promise<{ split: Cifar10Split; files: [string, Buffer][] }> {
  const parts: Cifar10Split[] = [];
  const read: [string, Buffer][] = [];
  let have = 0;
  for (const file of files) {
    if (have >= limit) break;
    const path = join(dir, file);
    const bytes = await readDataFile(path, CIFAR10_FILE_RULES(dir));
    const part = parseCifar10Batch(bytes, path);
    parts.push(part);
    read.push([path, bytes]);
    have += part.count;
  }
  return { split: concatCifar10Splits(parts, limit), files: read };
}

/** Checks that `dir` is a directory holding every CIFAR-10 file, with an error that says how to fix it. */
function checkCifar10Dir(dir: string): Promise<void> {
  return checkDataDir(dir, {
    dataset: 'CIFAR-10',
    files: CIFAR10_FILES,
    archiveDir: CIFAR10_ARCHIVE_DIR,
    howToGet: HOW_TO_GET,
    recognise: (present) => {
      if (present.has('data_batch_1')) return ' It holds the Python (pickle) release; this loader reads the binary release.';
      if (present.has('cifar-10-binary.tar.gz')) return ' It holds cifar-10-binary.tar.gz: unpack it first.';
      return '';
    },
  });
}

/** Why the cached copy at `dataDir` is not usable, or undefined when it is. */
async function cacheProblem(dataDir: string): Promise<string | undefined> {
  const expectedSize = CIFAR10_RECORDS_PER_FILE * CIFAR10_RECORD_BYTES;
  for (const file of CIFAR10_FILES) {
    try {
      const { size } = await stat(join(dataDir, file));
      if (size !== expectedSize) return `${file} has ${size} bytes, expected ${expectedSize}`;
    } catch (e) {
      if (errorCode(e) === 'ENOENT' || errorCode(e) === 'ENOTDIR') return `${file} is missing`;
      throw e;
    }
  }
  return undefined;
}

const TEMP_PREFIX = '.download-';

/** @internal A temporary folder name in the cache, unique to this process (shared with the CIFAR-100 loader). */
export function tempName(): string {
  return `${TEMP_PREFIX}${hostname()}.${process.pid}.${randomBytes(4).toString('hex')}`;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM';
  }
}

/** Removes temporary folders left by downloads on this host whose process is gone (a killed run). @internal */
export async function removeAbandonedDownloads(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const m = /^(.*)\.(\d+)\.[0-9a-f]+$/.exec(name.slice(TEMP_PREFIX.length));
    if (m && m[1] === hostname() && !processAlive(Number(m[2]))) {
      await rm(join(cacheDir, name), { recursive: true, force: true });
    }
  }
}

const CACHE_DIR_HINT =
  'Pass a directory (or a path where one can be made) as `cacheDir` (CLI: --cache-dir DIR), or leave it unset for the default cache.';

/**
 * Refuses a cache directory that is a file, or lies under one, naming it: mkdir would fail with a bare EEXIST or
 * ENOTDIR. A path that does not exist yet is fine (the download creates it).
 */
async function checkCacheDir(cacheDir: string, dataset: string): Promise<void> {
  for (let path = cacheDir; ; path = dirname(path)) {
    const info = await stat(path).catch((e: unknown) => {
      if (errorCode(e) === 'ENOENT' || errorCode(e) === 'ENOTDIR') return undefined;
      throw new Error(
        `The ${dataset} cache directory ${cacheDir} cannot be looked at (${errorCode(e) ?? (e as Error).message}). ${CACHE_DIR_HINT}`,
      );
    });
    if (info?.isDirectory()) return;
    if (info !== undefined) {
      throw new Error(
        path === cacheDir
          ? `The ${dataset} cache directory ${cacheDir} is a file, not a directory. ${CACHE_DIR_HINT}`
          : `The ${dataset} cache directory ${cacheDir} cannot be created: ${path} is a file, not a directory. ${CACHE_DIR_HINT}`,
      );
    }
    if (dirname(path) === path) return;
  }
}

/** A binary release that {@link ensureCachedRelease} keeps in the cache. */
export interface CachedRelease {
  /** The data set, e.g. 'CIFAR-10'. */
  dataset: string;
  /** The folder the archive unpacks to, and the cache folder that holds it. */
  archiveDir: string;
  /** The archive's file name, e.g. 'cifar-10-binary.tar.gz'. */
  archiveName: string;
  /** The files the folder must hold, for messages. */
  fileList: string;
  defaultUrl: string;
  defaultMd5: string;
  /** Why a cached folder is not usable, or undefined when it is. */
  cacheProblem: (dataDir: string) => Promise<string | undefined>;
  /** Unpacks the archive's files (validated) into `outDir`. */
  unpack: (archive: string, outDir: string, url: string) => Promise<void>;
}

/**
 * Returns the cache's folder of a release, downloading, MD5-checking, unpacking and publishing it there first
 * (in one rename) when it is absent or invalid.
 * @internal
 */
export async function ensureCachedRelease(release: CachedRelease, options: LoadCifar10Options): Promise<string> {
  const { dataset, archiveDir, archiveName, fileList } = release;
  const cacheDir = resolve(options.cacheDir ?? defaultCacheDir());
  await checkCacheDir(cacheDir, dataset);
  const dataDir = join(cacheDir, archiveDir);
  const problem = await release.cacheProblem(dataDir);
  if (problem === undefined) return dataDir;
  const url = options.url ?? release.defaultUrl;
  const where =
    `Put ${fileList} in ${dataDir} (the ${archiveDir} folder of ${archiveName} from ` +
    'https://www.cs.toronto.edu/~kriz/cifar.html), or pass `dir` (CLI: --data <dir>) naming a directory that holds them.';
  if (options.download === false) {
    throw new Error(`${dataset} is not in the cache (${dataDir}: ${problem}) and download is disabled. ${where}`);
  }
  try {
    await mkdir(cacheDir, { recursive: true });
  } catch (e) {
    throw new Error(
      `The ${dataset} cache directory ${cacheDir} cannot be created (${errorCode(e) ?? (e as Error).message}). ${CACHE_DIR_HINT}`,
    );
  }
  await removeAbandonedDownloads(cacheDir);
  const temp = join(cacheDir, tempName());
  await mkdir(temp);
  try {
    const archive = join(temp, archiveName);
    const md5 = await downloadTo(
      url,
      archive,
      where,
      options.stallTimeoutMs ?? CIFAR10_STALL_TIMEOUT_MS,
      options.onDownloadProgress,
      dataset,
    );
    const expected = (options.md5 ?? release.defaultMd5).toLowerCase();
    if (md5 !== expected) {
      throw new Error(
        `The archive downloaded from ${url} has MD5 ${md5}, expected ${expected}: it is corrupt or not the ${dataset} binary release. Nothing was cached. ${where}`,
      );
    }
    const unpacked = join(temp, archiveDir);
    await release.unpack(archive, unpacked, url);
    await rm(archive);
    await publish(unpacked, dataDir, temp, release.cacheProblem);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  return dataDir;
}

/** Returns the cache's CIFAR-10 folder, downloading into it first when it is absent or invalid. */
function ensureCachedCifar10(options: LoadCifar10Options): Promise<string> {
  return ensureCachedRelease(
    {
      dataset: 'CIFAR-10',
      archiveDir: CIFAR10_ARCHIVE_DIR,
      archiveName: 'cifar-10-binary.tar.gz',
      fileList: FILE_LIST,
      defaultUrl: CIFAR10_URL,
      defaultMd5: CIFAR10_MD5,
      cacheProblem,
      unpack: unpackCifar10,
    },
    options,
  );
}

/**
 * Streams `url` into `dest` and returns the MD5 of what arrived; network failures become an
 * error that says where to put the files instead. A connection that brings nothing for
 * `stallMs` (while connecting or mid-body) is aborted: undici alone would wait 300 s. Messages call the
 * data `what` (the CIFAR-100 loader shares this). @internal
 */
export async function downloadTo(
  url: string,
  dest: string,
  where: string,
  stallMs: number,
  onProgress?: (p: DownloadProgress) => void,
  what = 'CIFAR-10',
): Promise<string> {
  const abort = new AbortController();
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const armStallTimer = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      abort.abort();
    }, stallMs);
  };
  let received = 0;
  const stalledMessage = () =>
    `The ${what} download from ${url} stalled: nothing arrived for ${formatSeconds(stallMs)} after ${received} bytes. Nothing was cached; run again to retry. ${where}`;
  armStallTimer();
  try {
    let response: Response;
    try {
      response = await fetch(url, { signal: abort.signal });
    } catch (e) {
      if (stalled) throw new Error(stalledMessage());
      const cause = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
      throw new Error(`Cannot download ${what} from ${url} (${cause}): offline or unreachable. ${where}`);
    }
    if (!response.ok || response.body === null) {
      throw new Error(`Cannot download ${what} from ${url}: HTTP ${response.status} ${response.statusText}. ${where}`);
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    const started = performance.now();
    let reported = started;
    const progress = (done: boolean): DownloadProgress => ({
      url,
      receivedBytes: received,
      totalBytes: Number.isFinite(declared) ? declared : undefined,
      bytesPerSecond: received / Math.max(1e-3, (performance.now() - started) / 1000),
      done,
    });
    const hash = createHash('md5');
    const count = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        armStallTimer();
        received += chunk.length;
        hash.update(chunk);
        if (onProgress && performance.now() - reported >= 1000) {
          reported = performance.now();
          onProgress(progress(false));
        }
        done(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), count, createWriteStream(dest));
    } catch (e) {
      if (stalled) throw new Error(stalledMessage());
      const cause = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
      throw new Error(
        `The ${what} download from ${url} was interrupted after ${received} bytes (${cause}). Nothing was cached; run again to retry. ${where}`,
      );
    }
    if (Number.isFinite(declared) && declared !== received) {
      throw new Error(
        `The ${what} download from ${url} ended after ${received} of ${declared} bytes. Nothing was cached; run again to retry. ${where}`,
      );
    }
    onProgress?.(progress(true));
    return hash.digest('hex');
  } finally {
    clearTimeout(timer);
  }
}

function formatSeconds(ms: number): string {
  return ms >= 1000 ? `${+(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

/**
 * Gunzips a downloaded `.tar.gz` next to itself and returns the tar's bytes (the temporary `.tar` removed).
 * @internal
 */
export async function gunzipDownload(archive: string, url: string): Promise<Uint8Array> {
  const tarPath = `${archive}.tar`;
  try {
    await pipeline(createReadStream(archive), createGunzip(), createWriteStream(tarPath));
  } catch (e) {
    throw new Error(`The archive downloaded from ${url} is not a valid gzip file (${(e as Error).message}). Nothing was cached.`);
  }
  const tar = await readFile(tarPath);
  await rm(tarPath);
  return tar;
}

/** Gunzips and untars the archive, writing the six CIFAR-10 files (and nothing else) into `outDir`. */
async function unpackCifar10(archive: string, outDir: string, url: string): Promise<void> {
  const tar = await gunzipDownload(archive, url);
  await mkdir(outDir);
  const wanted = new Set<string>(CIFAR10_FILES);
  const found = new Set<string>();
  for (const entry of readTar(tar, url)) {
    const m = new RegExp(`^(?:\\./)?${CIFAR10_ARCHIVE_DIR}/([^/]+)$`).exec(entry.name);
    // Only the expected names, so an archive cannot write outside the cache.
    if (!m || !wanted.has(m[1]!)) continue;
    parseCifar10Batch(entry.data, `${url}: ${entry.name}`);
    await writeFile(join(outDir, m[1]!), entry.data);
    found.add(m[1]!);
  }
  const missing = CIFAR10_FILES.filter((f) => !found.has(f));
  if (missing.length > 0) {
    throw new Error(
      `The archive downloaded from ${url} lacks ${missing.map((f) => `${CIFAR10_ARCHIVE_DIR}/${f}`).join(', ')}. Nothing was cached.`,
    );
  }
}

/** Moves the verified folder into place with one rename; a stale or invalid copy there (per `problem`) is replaced. @internal */
export async function publish(
  unpacked: string,
  dataDir: string,
  temp: string,
  problem: (dir: string) => Promise<string | undefined> = cacheProblem,
): Promise<void> {
  try {
    await rename(unpacked, dataDir);
    return;
  } catch (e) {
    if (!['EEXIST', 'ENOTEMPTY', 'EISDIR', 'ENOTDIR'].includes(errorCode(e) ?? '')) throw e;
  }
  // Another process may have finished first; its copy is as good as ours.
  if ((await problem(dataDir)) === undefined) return;
  await rename(dataDir, join(temp, 'stale'));
  await rename(unpacked, dataDir);
}
