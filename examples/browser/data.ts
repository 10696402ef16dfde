// CIFAR-10 in the browser: the official binary tar.gz or its .bin files picked from disk,
// or the files served at a URL (the dev server's /cifar10/ from CIFAR10_DIR).
import {
  CIFAR10_EVAL_FILES,
  CIFAR10_RECORD_BYTES,
  CIFAR10_RECORDS_PER_FILE,
  CIFAR10_TRAIN_FILES,
  cifar10Dataset,
  concatCifar10Splits,
  parseCifar10Batch,
  readTar,
  type Cifar10Dataset,
  type Cifar10Split,
} from 'tfjs-dataflow';

/** Where the six batch files come from; `get` parses a file on first use and returns undefined when it is absent. */
export interface Cifar10Source {
  /** Shown to the user, e.g. "cifar-10-binary.tar.gz" or "/cifar10/". */
  label: string;
  get(file: string): Promise<Cifar10Split | undefined>;
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

function cached(label: string, load: (file: string) => Promise<Uint8Array | undefined>): Cifar10Source {
  const parsed = new Map<string, Promise<Cifar10Split | undefined>>();
  return {
    label,
    get(file) {
      if (!parsed.has(file)) parsed.set(file, load(file).then((bytes) => (bytes ? parseBatch(bytes, file) : undefined)));
      return parsed.get(file)!;
    },
  };
}

/** The files served under `baseUrl` (e.g. `/cifar10/`), fetched only when needed. */
export function urlSource(baseUrl: string): Cifar10Source {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return cached(base, async (file) => {
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
 * Files picked by the user: the official `cifar-10-binary.tar.gz` (gunzipped with the browser's
 * DecompressionStream), an uncompressed `.tar`, or any of the `.bin` batch files.
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
  const found = [...CIFAR10_TRAIN_FILES, ...CIFAR10_EVAL_FILES].filter((f) => byName.has(f));
  if (found.length === 0) {
    throw new Error(`none of the picked files (${files.map((f) => f.name).join(', ')}) is a CIFAR-10 batch file: pick cifar-10-binary.tar.gz or data_batch_N.bin / test_batch.bin`);
  }
  return cached(files.map((f) => f.name).join(', '), async (name) => {
    const item = byName.get(name);
    return item instanceof File ? new Uint8Array(await item.arrayBuffer()) : item;
  });
}

/**
 * The first `trainLimit` training images (data_batch_1, 2, ... in order, as the seed concatenates
 * them) and the first `evalLimit` test images. Reads only the files it needs.
 */
export async function loadDataset(source: Cifar10Source, trainLimit: number, evalLimit: number): Promise<Cifar10Dataset> {
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
