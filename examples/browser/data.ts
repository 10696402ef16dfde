// CIFAR-10 or CIFAR-100 in the browser: the official binary tar.gz or its files picked from disk,
// or the files served at a URL (the dev server's /cifar10/ from CIFAR10_DIR, /cifar100/ from CIFAR100_DIR).
import {
  CIFAR100_CLASS_COUNTS,
  CIFAR100_LABEL_NAME_FILES,
  CIFAR100_RECORDS,
  CIFAR100_RECORD_BYTES,
  CIFAR10_EVAL_FILES,
  CIFAR10_RECORD_BYTES,
  CIFAR10_RECORDS_PER_FILE,
  CIFAR10_TRAIN_FILES,
  cifar10Dataset,
  concatCifar10Splits,
  firstCifar100Images,
  parseCifar100Batch,
  parseCifar100LabelNames,
  parseCifar10Batch,
  type Cifar100LabelKind,
  type Cifar10Dataset,
  type Cifar10Split,
} from 'tfjs-dataflow';
// The library's tar reader is internal (not exported); the example, inside this repository, uses it directly.
import { readTar } from '../../src/data/tar.js';

/** Which release a source holds. */
export type DatasetName = 'cifar10' | 'cifar100';

/**
 * Where the files come from: CIFAR-10's six batch files or CIFAR-100's train.bin, test.bin and label-name
 * files. `get` parses a CIFAR-10 batch file on first use, `bytes` returns a file as it is; both return
 * undefined when the file is absent.
 */
export interface Cifar10Source {
  /** Shown to the user, e.g. "cifar-10-binary.tar.gz" or "/cifar10/". */
  label: string;
  dataset: DatasetName;
  get(file: string): Promise<Cifar10Split | undefined>;
  bytes(file: string): Promise<Uint8Array | undefined>;
}

/**
 * Parses a batch file. A local subset (a whole number of records, fewer than the official 10000)
 * is accepted, so a small copy of the data trains too; labels and record size are still checked.
 */
function parseBatch(bytes: Uint8Array, name: string): Cifar10Split {
  const records = bytes.length / CIFAR10_RECORD_BYTES;
  const subset = Number.isInteger(records) && records > 0 && records < CIFAR10_RECORDS_PER_FILE;
  return parseCifar10Batch(bytes, name, subset ? { expectedRecords: records } : {});
}

function baseName(path: string): string {
  return path.split('/').pop() ?? path;
}

function cached(label: string, dataset: DatasetName, load: (file: string) => Promise<Uint8Array | undefined>): Cifar10Source {
  const parsed = new Map<string, Promise<Cifar10Split | undefined>>();
  return {
    label,
    dataset,
    get(file) {
      if (!parsed.has(file))
        parsed.set(
          file,
          load(file).then((bytes) => (bytes ? parseBatch(bytes, file) : undefined)),
        );
      return parsed.get(file)!;
    },
    bytes: load,
  };
}

/** The files served under `baseUrl` (e.g. `/cifar10/`, or `/cifar100/` with dataset 'cifar100'), fetched only when needed. */
export function urlSource(baseUrl: string, dataset: DatasetName = 'cifar10'): Cifar10Source {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return cached(base, dataset, async (file) => {
    const response = await fetch(base + file);
    if (response.status === 404) return undefined;
    if (!response.ok) throw new Error(`fetching ${base}${file}: HTTP ${response.status} ${response.statusText}`);
    return new Uint8Array(await response.arrayBuffer());
  });
}

async function gunzip(file: File): Promise<Uint8Array> {
  const stream = file.stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Files picked by the user: the official `cifar-10-binary.tar.gz` or `cifar-100-binary.tar.gz`
 * (gunzipped with the browser's DecompressionStream), an uncompressed `.tar`, or the `.bin` (and, for
 * CIFAR-100, `.txt` label-name) files. CIFAR-100 is recognised by its train.bin / test.bin.
 */
export async function filesSource(files: readonly File[]): Promise<Cifar10Source> {
  const byName = new Map<string, Uint8Array | File>();
  for (const file of files) {
    if (/\.(tar\.gz|tgz|tar)$/i.test(file.name)) {
      const tar = /\.tar$/i.test(file.name) ? new Uint8Array(await file.arrayBuffer()) : await gunzip(file);
      for (const entry of readTar(tar, file.name)) byName.set(baseName(entry.name), entry.data);
    } else {
      byName.set(file.name, file);
    }
  }
  const isCifar100 = byName.has('train.bin') || byName.has('test.bin');
  const found = [...CIFAR10_TRAIN_FILES, ...CIFAR10_EVAL_FILES].filter((f) => byName.has(f));
  if (found.length === 0 && !isCifar100) {
    throw new Error(
      `none of the picked files (${files.map((f) => f.name).join(', ')}) is a CIFAR-10 or CIFAR-100 file: pick cifar-10-binary.tar.gz ` +
        'or data_batch_N.bin / test_batch.bin, or cifar-100-binary.tar.gz or train.bin, test.bin and the two *_label_names.txt',
    );
  }
  return cached(files.map((f) => f.name).join(', '), isCifar100 ? 'cifar100' : 'cifar10', async (name) => {
    const item = byName.get(name);
    return item instanceof File ? new Uint8Array(await item.arrayBuffer()) : item;
  });
}

/**
 * A CIFAR-100 file, validated; a local subset (a whole number of records, fewer than the official
 * count) is accepted as for CIFAR-10.
 */
function parseCifar100File(bytes: Uint8Array, name: 'train.bin' | 'test.bin', labels: Cifar100LabelKind) {
  const records = bytes.length / CIFAR100_RECORD_BYTES;
  const subset = Number.isInteger(records) && records > 0 && records < CIFAR100_RECORDS[name];
  return parseCifar100Batch(bytes, name, { labels, ...(subset ? { expectedRecords: records } : {}) });
}

async function loadCifar100Dataset(
  source: Cifar10Source,
  trainLimit: number,
  evalLimit: number,
  labels: Cifar100LabelKind,
): Promise<Cifar10Dataset> {
  const namesFile = CIFAR100_LABEL_NAME_FILES[labels];
  const [train, test, names] = await Promise.all([source.bytes('train.bin'), source.bytes('test.bin'), source.bytes(namesFile)]);
  const missing = [
    ['train.bin', train],
    ['test.bin', test],
    [namesFile, names],
  ]
    .filter(([, b]) => b === undefined)
    .map(([n]) => n);
  if (missing.length > 0) throw new Error(`${source.label}: CIFAR-100 needs ${missing.join(', ')}`);
  const classNames = parseCifar100LabelNames(new TextDecoder().decode(names!), namesFile, CIFAR100_CLASS_COUNTS[labels]);
  return cifar10Dataset(
    firstCifar100Images(parseCifar100File(train!, 'train.bin', labels), trainLimit),
    firstCifar100Images(parseCifar100File(test!, 'test.bin', labels), evalLimit),
    source.label,
    classNames,
  );
}

/**
 * The first `trainLimit` training images (data_batch_1, 2, ... in order, as the seed concatenates
 * them; CIFAR-100's train.bin) and the first `evalLimit` test images, CIFAR-100 with its fine or coarse
 * `labels`. Reads only the files it needs.
 */
export async function loadDataset(
  source: Cifar10Source,
  trainLimit: number,
  evalLimit: number,
  labels: Cifar100LabelKind = 'fine',
): Promise<Cifar10Dataset> {
  if (source.dataset === 'cifar100') return loadCifar100Dataset(source, trainLimit, evalLimit, labels);
  const trainSplits: Cifar10Split[] = [];
  let have = 0;
  for (const file of CIFAR10_TRAIN_FILES) {
    if (have >= trainLimit) break;
    const split = await source.get(file);
    if (!split) break;
    trainSplits.push(split);
    have += split.count;
  }
  if (trainSplits.length === 0) throw new Error(`${source.label}: data_batch_1.bin is missing`);
  const test = await source.get(CIFAR10_EVAL_FILES[0]);
  if (!test) throw new Error(`${source.label}: test_batch.bin is missing`);
  return cifar10Dataset(concatCifar10Splits(trainSplits, trainLimit), concatCifar10Splits([test], evalLimit), source.label);
}
