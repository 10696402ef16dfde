import { checkDataDir, digestOf, readDataFile, type DataFileRules } from './data-files.js';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { cifar10Dataset, type Cifar10Dataset } from './cifar10.js';
import { ensureCachedRelease, gunzipDownload, type LoadCifar10Options } from './cifar10-node.js';
import {
  CIFAR100_CLASS_COUNTS,
  CIFAR100_EVAL_FILES,
  CIFAR100_FILES,
  CIFAR100_LABEL_NAME_FILES,
  CIFAR100_RECORDS,
  CIFAR100_RECORD_BYTES,
  CIFAR100_TRAIN_FILES,
  checkLabelKind,
  firstCifar100Images,
  parseCifar100Batch,
  parseCifar100LabelNames,
  type Cifar100LabelKind,
  type Cifar100Split,
} from './cifar100.js';
import { readTar } from './tar.js';

/** The official CIFAR-100 binary release. */
export const CIFAR100_URL = 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz';
/** MD5 of the official binary release (168,513,733 bytes), as published on the CIFAR page. */
export const CIFAR100_MD5 = '03b5dce01913d631647c71ecec9e9cb8';
/** The folder the archive unpacks to, and the folder name used inside the cache. */
export const CIFAR100_ARCHIVE_DIR = 'cifar-100-binary';

/** Options for {@link loadCifar100}: those of `loadCifar10`, for the CIFAR-100 files, plus which labels. */
export interface LoadCifar100Options extends LoadCifar10Options {
  /** Directory holding train.bin, test.bin, coarse_label_names.txt and fine_label_names.txt; default: the cache, downloading into it if needed. */
  dir?: string;
  /** Archive to download; default the official {@link CIFAR100_URL}. */
  url?: string;
  /** Expected MD5 (hex) of the archive; default the official {@link CIFAR100_MD5}. */
  md5?: string;
  /** The labels the splits' `labels` hold: 'fine' (100 classes, the default) or 'coarse' (20 superclasses). */
  labels?: Cifar100LabelKind;
}

/** CIFAR-100 on the host: a {@link Cifar10Dataset} (same images, same `toBackend`) whose labels are fine or coarse. */
export interface Cifar100Dataset extends Cifar10Dataset {
  train: Cifar100Split;
  eval: Cifar100Split;
  /** Which labels `train.labels`, `eval.labels` and `classNames` are. */
  labels: Cifar100LabelKind;
}

const FILE_LIST = CIFAR100_FILES.join(', ');
const HOW_TO_GET =
  'Get them from https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-100 binary version", cifar-100-binary.tar.gz), ' +
  `unpack it (tar xzf cifar-100-binary.tar.gz) and pass its ${CIFAR100_ARCHIVE_DIR} directory as \`dir\` ` +
  '(CLI: --dataset cifar100 --data <dir>), or leave `dir` unset to download it into the cache.';

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function checkLimit(name: string, value: number | undefined, max: number): number {
  if (value === undefined) return max;
  if (!Number.isInteger(value) || value < 1) throw new Error(`loadCifar100: ${name} must be a positive integer, got ${value}`);
  return Math.min(value, max);
}

/**
 * Loads CIFAR-100 from the binary release into host memory: the training split from train.bin, the
 * evaluation split from test.bin, with the fine (100 classes, default) or coarse (20 superclasses)
 * labels as `labels` and both kinds kept, and the class names from fine_label_names.txt or
 * coarse_label_names.txt. Each file is validated by {@link parseCifar100Batch} and
 * {@link parseCifar100LabelNames}. The seed's `torchvision.datasets.CIFAR100` counterpart.
 *
 * Like `loadCifar10`: with `dir` the files are read from there (a missing directory or file is an error
 * naming the path, the expected files and how to get them); without it, the cached copy is used or the
 * official archive is downloaded, MD5-checked, unpacked and moved into the cache (its `cifar-100-binary`
 * folder) in one rename. `trainLimit` and `evalLimit` keep the first N images. `toBackend()` makes
 * one-hot targets as wide as the class count (100 or 20).
 */
export async function loadCifar100(options: LoadCifar100Options = {}): Promise<Cifar100Dataset> {
  const labels = checkLabelKind(options.labels ?? 'fine', 'loadCifar100');
  const stall = options.stallTimeoutMs;
  if (stall !== undefined && !(typeof stall === 'number' && stall > 0 && Number.isFinite(stall))) {
    throw new Error(`loadCifar100: stallTimeoutMs must be a positive number of milliseconds, got ${String(stall)}`);
  }
  const trainLimit = checkLimit('trainLimit', options.trainLimit, CIFAR100_RECORDS['train.bin']);
  const evalLimit = checkLimit('evalLimit', options.evalLimit, CIFAR100_RECORDS['test.bin']);
  const dir = options.dir !== undefined ? resolve(options.dir) : await ensureCachedCifar100(options);
  if (options.dir !== undefined) await checkCifar100Dir(dir);
  const classNames = parseCifar100LabelNames(
    await readNamed(dir, CIFAR100_LABEL_NAME_FILES[labels], 'utf8'),
    join(dir, CIFAR100_LABEL_NAME_FILES[labels]),
    CIFAR100_CLASS_COUNTS[labels],
  );
  const trainBytes = await readNamed(dir, CIFAR100_TRAIN_FILES[0]);
  const train = firstCifar100Images(parseCifar100Batch(trainBytes, join(dir, CIFAR100_TRAIN_FILES[0]), { labels }), trainLimit);
  const evalBytes = await readNamed(dir, CIFAR100_EVAL_FILES[0]);
  const evalSplit = firstCifar100Images(parseCifar100Batch(evalBytes, join(dir, CIFAR100_EVAL_FILES[0]), { labels }), evalLimit);
  const files = [digestOf(join(dir, CIFAR100_TRAIN_FILES[0]), trainBytes), digestOf(join(dir, CIFAR100_EVAL_FILES[0]), evalBytes)];
  return { ...cifar10Dataset(train, evalSplit, dir, classNames), train, eval: evalSplit, labels, files };
}

// The largest CIFAR-100 file is train.bin; the label-name files are far smaller.
const MAX_FILE_BYTES = CIFAR100_RECORDS['train.bin'] * CIFAR100_RECORD_BYTES;

function readNamed(dir: string, file: string): Promise<Uint8Array>;
function readNamed(dir: string, file: string, encoding: 'utf8'): Promise<string>;
function readNamed(dir: string, file: string, encoding?: 'utf8'): Promise<Uint8Array | string> {
  const rules: DataFileRules = {
    dataset: 'CIFAR-100',
    maxBytes: MAX_FILE_BYTES + CIFAR100_RECORD_BYTES - 1, // short of a whole extra record, the parser names the misfit
    maxDescription: `CIFAR-100's train.bin (${MAX_FILE_BYTES} bytes)`,
    hint: `Expected in ${dir}: ${FILE_LIST}. ${HOW_TO_GET}`,
  };
  return encoding ? readDataFile(join(dir, file), rules, encoding) : readDataFile(join(dir, file), rules);
}

/** Checks that `dir` is a directory holding every CIFAR-100 file, with an error that says how to fix it. */
function checkCifar100Dir(dir: string): Promise<void> {
  return checkDataDir(dir, {
    dataset: 'CIFAR-100',
    files: CIFAR100_FILES,
    archiveDir: CIFAR100_ARCHIVE_DIR,
    howToGet: HOW_TO_GET,
    recognise: (present) => {
      if (present.has('train') && present.has('meta'))
        return ' It holds the Python (pickle) release; this loader reads the binary release.';
      if (present.has('cifar-100-binary.tar.gz')) return ' It holds cifar-100-binary.tar.gz: unpack it first.';
      if (present.has('data_batch_1.bin'))
        return ' It holds CIFAR-10 (data_batch_1.bin): load it with loadCifar10 (CLI: --dataset cifar10).';
      return '';
    },
  });
}

/** Why the cached copy at `dataDir` is not usable, or undefined when it is. */
async function cacheProblem(dataDir: string): Promise<string | undefined> {
  for (const file of CIFAR100_FILES) {
    try {
      const { size } = await stat(join(dataDir, file));
      const records = CIFAR100_RECORDS[file as keyof typeof CIFAR100_RECORDS] as number | undefined;
      if (records !== undefined && size !== records * CIFAR100_RECORD_BYTES)
        return `${file} has ${size} bytes, expected ${records * CIFAR100_RECORD_BYTES}`;
      if (size === 0) return `${file} is empty`;
    } catch (e) {
      if (errorCode(e) === 'ENOENT' || errorCode(e) === 'ENOTDIR') return `${file} is missing`;
      throw e;
    }
  }
  return undefined;
}

/** Returns the cache's CIFAR-100 folder, downloading into it first when it is absent or invalid. */
function ensureCachedCifar100(options: LoadCifar100Options): Promise<string> {
  return ensureCachedRelease(
    {
      dataset: 'CIFAR-100',
      archiveDir: CIFAR100_ARCHIVE_DIR,
      archiveName: 'cifar-100-binary.tar.gz',
      fileList: FILE_LIST,
      defaultUrl: CIFAR100_URL,
      defaultMd5: CIFAR100_MD5,
      cacheProblem,
      unpack: unpackCifar100,
    },
    options,
  );
}

/** Gunzips and untars the archive, writing the four CIFAR-100 files (and nothing else) into `outDir`, each validated first. */
async function unpackCifar100(archive: string, outDir: string, url: string): Promise<void> {
  const tar = await gunzipDownload(archive, url);
  await mkdir(outDir);
  const wanted = new Set<string>(CIFAR100_FILES);
  const found = new Set<string>();
  for (const entry of readTar(tar, url)) {
    const m = new RegExp(`^(?:\\./)?${CIFAR100_ARCHIVE_DIR}/([^/]+)$`).exec(entry.name);
    // Only the expected names, so an archive cannot write outside the cache.
    if (!m || !wanted.has(m[1]!)) continue;
    const name = m[1]!;
    const where = `${url}: ${entry.name}`;
    if (name === CIFAR100_LABEL_NAME_FILES.fine)
      parseCifar100LabelNames(new TextDecoder().decode(entry.data), where, CIFAR100_CLASS_COUNTS.fine);
    else if (name === CIFAR100_LABEL_NAME_FILES.coarse)
      parseCifar100LabelNames(new TextDecoder().decode(entry.data), where, CIFAR100_CLASS_COUNTS.coarse);
    else parseCifar100Batch(entry.data, where);
    await writeFile(join(outDir, name), entry.data);
    found.add(name);
  }
  const missing = CIFAR100_FILES.filter((f) => !found.has(f));
  if (missing.length > 0) {
    throw new Error(
      `The archive downloaded from ${url} lacks ${missing.map((f) => `${CIFAR100_ARCHIVE_DIR}/${f}`).join(', ')}. Nothing was cached.`,
    );
  }
}
