import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CIFAR10_FILES,
  CIFAR10_IMAGE_BYTES,
  CIFAR10_RECORD_BYTES,
  cifar10Stats,
  concatCifar10Splits,
  parseCifar10Batch,
} from '../../src/data/cifar10.js';
import { loadCifar10 } from '../../src/data/cifar10-node.js';

const REAL_DIR = '/work/shared/data/cifar10';
const HAVE_REAL = CIFAR10_FILES.every((f) => existsSync(join(REAL_DIR, f)));
const REAL_REASON = HAVE_REAL ? '' : ` (skipped: no CIFAR-10 binary release in ${REAL_DIR})`;

const FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/data/cifar10-prep.json', import.meta.url), 'utf8'));

const FILE_LIST = 'data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, test_batch.bin';
const HOW_TO_GET =
  'Get them from https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 binary version", cifar-10-binary.tar.gz), ' +
  'unpack it (tar xzf cifar-10-binary.tar.gz) and pass its cifar-10-batches-bin directory as `dir` ' +
  '(CLI: --data <dir>), or leave `dir` unset to download it into the cache.';

/** `records` records: label (fileSalt + r) % 10, pixel j of record r = (fileSalt * 7 + r * 3 + j) & 255. */
function syntheticBatch(records: number, fileSalt = 0): Uint8Array {
  const bytes = new Uint8Array(records * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < records; r++) {
    const start = r * CIFAR10_RECORD_BYTES;
    bytes[start] = (fileSalt + r) % 10;
    for (let j = 0; j < CIFAR10_IMAGE_BYTES; j++) bytes[start + 1 + j] = (fileSalt * 7 + r * 3 + j) & 255;
  }
  return bytes;
}

async function messageOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, none was thrown');
}

describe('parseCifar10Batch', () => {
  it('splits records into labels and NCHW images, exactly as stored', () => {
    const bytes = syntheticBatch(4, 3);
    const split = parseCifar10Batch(bytes, 'custom.bin');
    expect(split.count).toBe(4);
    expect(Array.from(split.labels)).toEqual([3, 4, 5, 6]);
    for (let r = 0; r < 4; r++) {
      const start = r * CIFAR10_RECORD_BYTES + 1;
      expect(split.images.subarray(r * CIFAR10_IMAGE_BYTES, (r + 1) * CIFAR10_IMAGE_BYTES)).toEqual(
        bytes.subarray(start, start + CIFAR10_IMAGE_BYTES),
      );
    }
  });

  it('rejects a size that is not a whole number of records (truncated or extra bytes)', async () => {
    const bytes = syntheticBatch(3);
    expect(await messageOf(() => parseCifar10Batch(bytes.subarray(0, bytes.length - 10), 'custom.bin'))).toBe(
      'custom.bin: 9209 bytes is not a whole number of 3073-byte CIFAR-10 records (1 label byte + 3072 pixel bytes): ' +
        '2 records and 3063 bytes left over; the file is truncated or has extra bytes',
    );
    const extra = new Uint8Array(bytes.length + 1);
    extra.set(bytes);
    expect(await messageOf(() => parseCifar10Batch(extra, 'custom.bin'))).toBe(
      'custom.bin: 9220 bytes is not a whole number of 3073-byte CIFAR-10 records (1 label byte + 3072 pixel bytes): ' +
        '3 records and 1 bytes left over; the file is truncated or has extra bytes',
    );
  });

  it('requires 10000 records in the official files, any count elsewhere unless asked', async () => {
    const bytes = syntheticBatch(3);
    expect(parseCifar10Batch(bytes, 'mine.bin').count).toBe(3);
    expect(await messageOf(() => parseCifar10Batch(bytes, '/data/cifar/data_batch_2.bin'))).toBe(
      '/data/cifar/data_batch_2.bin: expected 10000 records (30730000 bytes), got 3 records (9219 bytes); the file is truncated',
    );
    expect(await messageOf(() => parseCifar10Batch(bytes, 'mine.bin', { expectedRecords: 2 }))).toBe(
      'mine.bin: expected 2 records (6146 bytes), got 3 records (9219 bytes); the file is too long',
    );
    expect(parseCifar10Batch(bytes, 'test_batch.bin', { expectedRecords: 3 }).count).toBe(3);
    expect(await messageOf(() => parseCifar10Batch(new Uint8Array(0), 'mine.bin'))).toBe(
      'mine.bin: the file is empty; expected CIFAR-10 records of 3073 bytes',
    );
  });

  it('rejects a label outside 0..9, naming the record', async () => {
    const bytes = syntheticBatch(3);
    bytes[2 * CIFAR10_RECORD_BYTES] = 10;
    expect(await messageOf(() => parseCifar10Batch(bytes, 'custom.bin'))).toBe(
      'custom.bin: record 2 (byte 6146) has label 10; CIFAR-10 labels are 0..9',
    );
  });
});

describe('concatCifar10Splits and cifar10Stats', () => {
  it('concatenates in order and keeps the first N', () => {
    const a = parseCifar10Batch(syntheticBatch(3, 0), 'a.bin');
    const b = parseCifar10Batch(syntheticBatch(2, 5), 'b.bin');
    const joined = concatCifar10Splits([a, b], 4);
    expect(joined.count).toBe(4);
    expect(Array.from(joined.labels)).toEqual([0, 1, 2, 5]);
    expect(joined.images.subarray(3 * CIFAR10_IMAGE_BYTES)).toEqual(b.images.subarray(0, CIFAR10_IMAGE_BYTES));
  });

  it('match torch.std_mean (unbiased) on the synthetic fixture', () => {
    const s = FIXTURE.synthetic;
    const train = parseCifar10Batch(Buffer.from(s.trainBase64, 'base64'), 'fixture-train.bin');
    const stats = cifar10Stats(train);
    for (let c = 0; c < 3; c++) {
      expect(Math.abs(stats.mean[c]! - s.mean[c]) / s.mean[c]).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(stats.std[c]! - s.std[c]) / s.std[c]).toBeLessThanOrEqual(1e-6);
    }
    // The biased std would differ by sqrt(n / (n - 1)) - 1 = 1.6e-4 here: far outside the tolerance.
    const n = train.count * 1024;
    expect(Math.sqrt(n / (n - 1)) - 1).toBeGreaterThan(1e-4);
  });
});

describe('loadCifar10 from a directory: errors', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cifar10-errors-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** A directory with every official name present; `files` overrides some contents. */
  async function makeDir(name: string, files: Record<string, Uint8Array | null> = {}): Promise<string> {
    const dir = join(root, name);
    await mkdir(dir);
    for (const f of CIFAR10_FILES) {
      const content = f in files ? files[f] : new Uint8Array(0);
      if (content !== null) await writeFile(join(dir, f), content!);
    }
    return dir;
  }

  it('names a directory that does not exist, the expected files and how to get them', async () => {
    const dir = join(root, 'nowhere');
    expect(await messageOf(loadCifar10({ dir }))).toBe(
      `CIFAR-10 directory ${dir} does not exist. Expected a directory holding ${FILE_LIST}. ${HOW_TO_GET}`,
    );
  });

  it('names a path that is a file', async () => {
    const file = join(root, 'a-file');
    await writeFile(file, 'x');
    expect(await messageOf(loadCifar10({ dir: file }))).toBe(
      `CIFAR-10 directory ${file} is not a directory. Expected a directory holding ${FILE_LIST}. ${HOW_TO_GET}`,
    );
  });

  it('recognises the wrong directory and hints at the right one', async () => {
    const parent = join(root, 'parent');
    await mkdir(join(parent, 'cifar-10-batches-bin'), { recursive: true });
    expect(await messageOf(loadCifar10({ dir: parent }))).toBe(
      `${parent} is not a CIFAR-10 directory: none of ${FILE_LIST} is there. ` +
        `It contains cifar-10-batches-bin/: pass ${join(parent, 'cifar-10-batches-bin')} instead. ${HOW_TO_GET}`,
    );
    const pickle = join(root, 'pickle');
    await mkdir(pickle);
    await writeFile(join(pickle, 'data_batch_1'), 'x');
    expect(await messageOf(loadCifar10({ dir: pickle }))).toBe(
      `${pickle} is not a CIFAR-10 directory: none of ${FILE_LIST} is there. ` +
        `It holds the Python (pickle) release; this loader reads the binary release. ${HOW_TO_GET}`,
    );
    const empty = join(root, 'empty');
    await mkdir(empty);
    expect(await messageOf(loadCifar10({ dir: empty }))).toBe(
      `${empty} is not a CIFAR-10 directory: none of ${FILE_LIST} is there. ${HOW_TO_GET}`,
    );
  });

  it('names a missing file', async () => {
    const dir = await makeDir('missing', { 'data_batch_3.bin': null, 'test_batch.bin': null });
    expect(await messageOf(loadCifar10({ dir }))).toBe(
      `CIFAR-10 directory ${dir} is missing data_batch_3.bin, test_batch.bin. Expected all of ${FILE_LIST}. ${HOW_TO_GET}`,
    );
  });

  it('names a truncated file', async () => {
    const dir = await makeDir('truncated', { 'data_batch_1.bin': syntheticBatch(10_000).subarray(0, 30_000_000) });
    expect(await messageOf(loadCifar10({ dir, trainLimit: 8 }))).toBe(
      `${join(dir, 'data_batch_1.bin')}: 30000000 bytes is not a whole number of 3073-byte CIFAR-10 records ` +
        '(1 label byte + 3072 pixel bytes): 9762 records and 1374 bytes left over; the file is truncated or has extra bytes',
    );
    const short = await makeDir('short', { 'data_batch_1.bin': syntheticBatch(9_999) });
    expect(await messageOf(loadCifar10({ dir: short, trainLimit: 8 }))).toBe(
      `${join(short, 'data_batch_1.bin')}: expected 10000 records (30730000 bytes), got 9999 records (30726927 bytes); the file is truncated`,
    );
  });

  it('names a file with extra bytes', async () => {
    const full = syntheticBatch(10_000);
    const extra = new Uint8Array(full.length + 7);
    extra.set(full);
    const dir = await makeDir('extra', { 'data_batch_1.bin': extra });
    expect(await messageOf(loadCifar10({ dir, trainLimit: 8 }))).toBe(
      `${join(dir, 'data_batch_1.bin')}: 30730007 bytes is not a whole number of 3073-byte CIFAR-10 records ` +
        '(1 label byte + 3072 pixel bytes): 10000 records and 7 bytes left over; the file is truncated or has extra bytes',
    );
  });

  it('names a bad label', async () => {
    const good = syntheticBatch(10_000);
    const bad = good.slice();
    bad[1234 * CIFAR10_RECORD_BYTES] = 200;
    const dir = await makeDir('label', { 'data_batch_1.bin': good, 'test_batch.bin': bad });
    expect(await messageOf(loadCifar10({ dir, trainLimit: 8 }))).toBe(
      `${join(dir, 'test_batch.bin')}: record 1234 (byte ${1234 * CIFAR10_RECORD_BYTES}) has label 200; CIFAR-10 labels are 0..9`,
    );
  });

  it('validates the limits', async () => {
    expect(await messageOf(loadCifar10({ dir: root, trainLimit: 0 }))).toBe('loadCifar10: trainLimit must be a positive integer, got 0');
    expect(await messageOf(loadCifar10({ dir: root, evalLimit: 2.5 }))).toBe('loadCifar10: evalLimit must be a positive integer, got 2.5');
  });
});

describe('loadCifar10 from a synthetic directory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cifar10-synthetic-'));
    for (const [i, f] of CIFAR10_FILES.entries()) await writeFile(join(dir, f), syntheticBatch(10_000, i));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('concatenates data_batch_1..5 in order and applies the limits', async () => {
    const data = await loadCifar10({ dir, trainLimit: 10_003, evalLimit: 5 });
    expect(data.source).toBe(dir);
    expect(data.train.count).toBe(10_003);
    expect(data.eval.count).toBe(5);
    // Record 10_001 of the training split is record 1 of data_batch_2 (salt 1).
    const expected = parseCifar10Batch(syntheticBatch(2, 1), 'x.bin');
    expect(data.train.labels[10_001]).toBe(expected.labels[1]);
    expect(data.train.images.subarray(10_001 * CIFAR10_IMAGE_BYTES, 10_002 * CIFAR10_IMAGE_BYTES)).toEqual(
      expected.images.subarray(CIFAR10_IMAGE_BYTES),
    );
    // The evaluation split comes from test_batch.bin (salt 5).
    expect(Array.from(data.eval.labels)).toEqual([5, 6, 7, 8, 9]);
  });

  it('loads everything without limits', async () => {
    const data = await loadCifar10({ dir });
    expect(data.train.count).toBe(50_000);
    expect(data.eval.count).toBe(10_000);
    expect(data.train.images.length).toBe(50_000 * CIFAR10_IMAGE_BYTES);
  });
});

describe.skipIf(!HAVE_REAL)(`the real CIFAR-10 binary release${REAL_REASON}`, () => {
  it('parses data_batch_1.bin into the bytes of its records', () => {
    const raw = readFileSync(join(REAL_DIR, 'data_batch_1.bin'));
    const split = parseCifar10Batch(raw, 'data_batch_1.bin');
    expect(split.count).toBe(10_000);
    // The first byte of the file is the first label; the next 3072 are its R, G, B planes.
    expect(split.labels[0]).toBe(raw[0]);
    expect(split.images.subarray(0, CIFAR10_IMAGE_BYTES)).toEqual(new Uint8Array(raw.subarray(1, CIFAR10_RECORD_BYTES)));
    const last = 9_999 * CIFAR10_RECORD_BYTES;
    expect(split.labels[9_999]).toBe(raw[last]);
    expect(split.images.subarray(9_999 * CIFAR10_IMAGE_BYTES)).toEqual(new Uint8Array(raw.subarray(last + 1)));
  });

  it('has exactly 1000 test images and 5000 training images per class', async () => {
    const data = await loadCifar10({ dir: REAL_DIR });
    const count = (labels: Uint8Array) => {
      const c = new Array(10).fill(0);
      for (const l of labels) c[l]++;
      return c;
    };
    expect(count(data.eval.labels)).toEqual(new Array(10).fill(1000));
    expect(count(data.train.labels)).toEqual(new Array(10).fill(5000));
    // Statistics of the full training set match PyTorch's float32 torch.std_mean.
    const stats = cifar10Stats(data.train);
    const ref = FIXTURE.real?.full;
    if (ref) {
      for (let c = 0; c < 3; c++) {
        expect(Math.abs(stats.mean[c]! - ref.mean[c]) / ref.mean[c]).toBeLessThanOrEqual(1e-6);
        expect(Math.abs(stats.std[c]! - ref.std[c]) / ref.std[c]).toBeLessThanOrEqual(1e-6);
      }
    }
    // The widely quoted CIFAR-10 statistics, as an independent sanity check.
    expect(stats.mean.map((v) => +v.toFixed(4))).toEqual([0.4914, 0.4822, 0.4465]);
    expect(stats.std.map((v) => +v.toFixed(4))).toEqual([0.247, 0.2435, 0.2616]);
  });

  it('first 256 training images: statistics match PyTorch', async () => {
    const ref = FIXTURE.real?.first256;
    expect(ref, 'fixture made without the real data: rerun tools/reference/data_fixtures.py').toBeDefined();
    const data = await loadCifar10({ dir: REAL_DIR, trainLimit: 256, evalLimit: 1 });
    const stats = cifar10Stats(data.train);
    for (let c = 0; c < 3; c++) {
      expect(Math.abs(stats.mean[c]! - ref.mean[c]) / ref.mean[c]).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(stats.std[c]! - ref.std[c]) / ref.std[c]).toBeLessThanOrEqual(1e-6);
    }
  });
});
