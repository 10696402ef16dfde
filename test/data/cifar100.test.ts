import * as tf from '@tensorflow/tfjs-core';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_IMAGE_BYTES, cifar10ToBackend } from '../../src/data/cifar10.js';
import {
  CIFAR100_FILES,
  CIFAR100_RECORD_BYTES,
  firstCifar100Images,
  parseCifar100Batch,
  parseCifar100LabelNames,
} from '../../src/data/cifar100.js';
import { CIFAR100_MD5, CIFAR100_URL, loadCifar100 } from '../../src/data/cifar100-node.js';
import { initBackend } from '../../src/backend/node.js';
import { COARSE_NAMES, FINE_NAMES, nameFile, syntheticCifar100, syntheticCifar100Files } from '../helpers/cifar100.js';
import { ustar } from '../helpers/tar.js';

async function messageOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, none was thrown');
}

describe('parseCifar100Batch', () => {
  it('splits 3074-byte records into coarse label, fine label and NCHW image, exactly as stored', async () => {
    const bytes = syntheticCifar100(7, 11);
    const fine = parseCifar100Batch(bytes, 'x.bin');
    expect(fine.count).toBe(7);
    expect(Array.from(fine.fineLabels)).toEqual([11, 12, 13, 14, 15, 16, 17]);
    expect(Array.from(fine.coarseLabels)).toEqual([2, 2, 2, 2, 3, 3, 3]);
    expect(fine.labels).toBe(fine.fineLabels);
    for (let r = 0; r < 7; r++) {
      expect(fine.images.subarray(r * CIFAR10_IMAGE_BYTES, (r + 1) * CIFAR10_IMAGE_BYTES)).toEqual(
        bytes.subarray(r * CIFAR100_RECORD_BYTES + 2, (r + 1) * CIFAR100_RECORD_BYTES),
      );
    }
    const coarse = parseCifar100Batch(bytes, 'x.bin', { labels: 'coarse' });
    expect(coarse.labels).toBe(coarse.coarseLabels);
    expect(coarse.images).toEqual(fine.images);
    await expect(messageOf(() => parseCifar100Batch(bytes, 'x.bin', { labels: 'medium' as never }))).resolves.toBe(
      "parseCifar100Batch(x.bin): labels must be 'fine' or 'coarse', got \"medium\"",
    );
  });

  it('refuses a truncated file, extra bytes and an empty file, naming the file', async () => {
    const bytes = syntheticCifar100(3);
    expect(await messageOf(() => parseCifar100Batch(bytes.subarray(0, 3 * 3074 - 5), 'd/part.bin'))).toBe(
      'd/part.bin: 9217 bytes is not a whole number of 3074-byte CIFAR-100 records (1 coarse label byte + 1 fine label byte + ' +
        '3072 pixel bytes): 2 records and 3069 bytes left over; the file is truncated or has extra bytes',
    );
    const extra = new Uint8Array(3 * 3074 + 1);
    extra.set(bytes);
    expect(await messageOf(() => parseCifar100Batch(extra, 'part.bin'))).toMatch(
      /^part\.bin: 9223 bytes is not a whole number of 3074-byte CIFAR-100 records .* 3 records and 1 bytes left over/,
    );
    expect(await messageOf(() => parseCifar100Batch(new Uint8Array(0), 'empty.bin'))).toBe(
      'empty.bin: the file is empty; expected CIFAR-100 records of 3074 bytes',
    );
    // A CIFAR-10 batch (3073-byte records) is not a whole number of CIFAR-100 records.
    expect(await messageOf(() => parseCifar100Batch(new Uint8Array(2 * 3073), 'c10.bin'))).toMatch(
      /6146 bytes is not a whole number of 3074-byte CIFAR-100 records/,
    );
  });

  it('requires 50000 records in train.bin and 10000 in test.bin, any count elsewhere unless asked', async () => {
    const bytes = syntheticCifar100(4);
    expect(await messageOf(() => parseCifar100Batch(bytes, '/data/train.bin'))).toBe(
      '/data/train.bin: expected 50000 CIFAR-100 records (153700000 bytes), got 4 records (12296 bytes); the file is truncated',
    );
    expect(await messageOf(() => parseCifar100Batch(bytes, 'test.bin'))).toBe(
      'test.bin: expected 10000 CIFAR-100 records (30740000 bytes), got 4 records (12296 bytes); the file is truncated',
    );
    expect(await messageOf(() => parseCifar100Batch(bytes, 'sub.bin', { expectedRecords: 3 }))).toMatch(
      /expected 3 CIFAR-100 records .* the file is too long$/,
    );
    expect(parseCifar100Batch(bytes, 'test.bin', { expectedRecords: 4 }).count).toBe(4);
  });

  it('refuses labels out of range, and a fine class in two superclasses, naming the record', async () => {
    const coarse = syntheticCifar100(3);
    coarse[2 * CIFAR100_RECORD_BYTES] = 20;
    expect(await messageOf(() => parseCifar100Batch(coarse, 'a.bin'))).toBe(
      'a.bin: record 2 (byte 6148) has coarse label 20; CIFAR-100 coarse labels are 0..19',
    );
    const fine = syntheticCifar100(3);
    fine[CIFAR100_RECORD_BYTES + 1] = 100;
    expect(await messageOf(() => parseCifar100Batch(fine, 'b.bin'))).toBe(
      'b.bin: record 1 (byte 3075) has fine label 100; CIFAR-100 fine labels are 0..99',
    );
    const torn = syntheticCifar100(102);
    torn[101 * CIFAR100_RECORD_BYTES] = 7; // record 101 has fine label 1, whose superclass is 0
    expect(await messageOf(() => parseCifar100Batch(torn, 'c.bin'))).toBe(
      'c.bin: record 101 puts fine class 1 in superclass 7, record 1 in superclass 0; in CIFAR-100 each fine class has one superclass ' +
        '(are the coarse and fine label bytes swapped?)',
    );
  });

  it('keeps the first N images with both label kinds', () => {
    const split = parseCifar100Batch(syntheticCifar100(10), 'x.bin', { labels: 'coarse' });
    const first = firstCifar100Images(split, 4);
    expect(first.count).toBe(4);
    expect(Array.from(first.labels)).toEqual([0, 0, 0, 0]);
    expect(Array.from(first.fineLabels)).toEqual([0, 1, 2, 3]);
    expect(first.images).toEqual(split.images.subarray(0, 4 * CIFAR10_IMAGE_BYTES));
    expect(firstCifar100Images(split, 99)).toBe(split);
  });
});

describe('parseCifar100LabelNames', () => {
  it('reads one name a line, ignoring blank lines and \\r, and refuses a wrong count or a repeat', async () => {
    expect(parseCifar100LabelNames('apple\r\naquarium_fish\r\n\r\n', 'n.txt', 2)).toEqual(['apple', 'aquarium_fish']);
    expect(await messageOf(() => parseCifar100LabelNames('a\nb\n', 'fine_label_names.txt', 100))).toBe(
      'fine_label_names.txt: expected 100 class names, one a line, got 2',
    );
    expect(await messageOf(() => parseCifar100LabelNames('a\nb\na\n', 'n.txt', 3))).toBe("n.txt: class name 'a' (name 3) is repeated");
  });
});

describe('loadCifar100 from a directory', () => {
  let root: string;
  let full: string;
  const files = syntheticCifar100Files();

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cifar100-'));
    full = join(root, 'cifar-100-binary');
    await mkdir(full);
    for (const [name, data] of Object.entries(files)) await writeFile(join(full, name), data);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function dirWith(name: string, changes: Record<string, Uint8Array | null>): Promise<string> {
    const dir = join(root, name);
    await mkdir(dir);
    for (const [file, data] of Object.entries({ ...files, ...changes })) if (data !== null) await writeFile(join(dir, file), data);
    return dir;
  }

  it('loads fine or coarse labels with their class names, and applies the limits', async () => {
    const fine = await loadCifar100({ dir: full, trainLimit: 300, evalLimit: 5 });
    expect(fine.labels).toBe('fine');
    expect(fine.classNames).toEqual(FINE_NAMES);
    expect(fine.source).toBe(full);
    expect([fine.train.count, fine.eval.count]).toEqual([300, 5]);
    expect(Array.from(fine.eval.labels)).toEqual([3, 4, 5, 6, 7]);
    expect(fine.train.images).toEqual(parseCifar100Batch(files['train.bin']!.subarray(0, 300 * CIFAR100_RECORD_BYTES), 'x.bin').images);
    const coarse = await loadCifar100({ dir: full, labels: 'coarse', evalLimit: 5 });
    expect(coarse.classNames).toEqual(COARSE_NAMES);
    expect(coarse.train.count).toBe(50_000);
    expect(Array.from(coarse.eval.labels)).toEqual([0, 0, 1, 1, 1]);
    expect(await messageOf(loadCifar100({ dir: full, labels: 'both' as never }))).toBe(
      "loadCifar100: labels must be 'fine' or 'coarse', got \"both\"",
    );
    expect(await messageOf(loadCifar100({ dir: full, trainLimit: 0 }))).toBe('loadCifar100: trainLimit must be a positive integer, got 0');
  });

  it('toBackend makes one-hot targets as wide as the class count: 100 fine, 20 coarse', async () => {
    await initBackend('cpu');
    for (const [labels, width] of [
      ['fine', 100],
      ['coarse', 20],
    ] as const) {
      const data = await loadCifar100({ dir: full, labels, trainLimit: 8, evalLimit: 6 });
      const before = tf.memory().numTensors;
      const onBackend = data.toBackend();
      expect(onBackend.train.targets.shape).toEqual([8, width]);
      expect(onBackend.eval.targets.shape).toEqual([6, width]);
      const argMax = tf.argMax(onBackend.eval.targets, 1);
      expect(Array.from(await argMax.data())).toEqual(Array.from(data.eval.labels));
      tf.dispose([argMax, onBackend.train.images, onBackend.train.targets, onBackend.eval.images, onBackend.eval.targets]);
      expect(tf.memory().numTensors).toBe(before);
    }
    // A label past numClasses would be a row of zeros: refused.
    const split = parseCifar100Batch(syntheticCifar100(12), 'x.bin');
    expect(await messageOf(() => cifar10ToBackend(split, split, { numClasses: 10 }))).toBe(
      'cifar10ToBackend: train image 10 has label 10, outside 0..9 for numClasses 10',
    );
  });

  it('refuses wrong sizes, truncated files, bad labels and missing files with named messages', async () => {
    const truncated = await dirWith('truncated', { 'test.bin': files['test.bin']!.subarray(0, 10_000 * 3074 - 1000) });
    expect(await messageOf(loadCifar100({ dir: truncated }))).toMatch(
      new RegExp(
        `^${join(truncated, 'test.bin')}: 30739000 bytes is not a whole number of 3074-byte CIFAR-100 records .* 9999 records and 2074 bytes left over; the file is truncated or has extra bytes$`,
      ),
    );
    const short = await dirWith('short', { 'train.bin': files['train.bin']!.subarray(0, 100 * 3074) });
    expect(await messageOf(loadCifar100({ dir: short }))).toBe(
      `${join(short, 'train.bin')}: expected 50000 CIFAR-100 records (153700000 bytes), got 100 records (307400 bytes); the file is truncated`,
    );
    const badLabel = syntheticCifar100(10_000, 3);
    badLabel[77 * 3074 + 1] = 200;
    const labels = await dirWith('labels', { 'test.bin': badLabel });
    expect(await messageOf(loadCifar100({ dir: labels }))).toBe(
      `${join(labels, 'test.bin')}: record 77 (byte 236699) has fine label 200; CIFAR-100 fine labels are 0..99`,
    );
    const names = await dirWith('names', { 'coarse_label_names.txt': nameFile(COARSE_NAMES.slice(0, 19)) });
    expect(await messageOf(loadCifar100({ dir: names, labels: 'coarse' }))).toBe(
      `${join(names, 'coarse_label_names.txt')}: expected 20 class names, one a line, got 19`,
    );
    const missing = await dirWith('missing', { 'fine_label_names.txt': null });
    expect(await messageOf(loadCifar100({ dir: missing }))).toMatch(
      new RegExp(
        `^CIFAR-100 directory ${missing} is missing fine_label_names\\.txt\\. Expected all of train\\.bin, test\\.bin, coarse_label_names\\.txt, fine_label_names\\.txt\\. Get them from https://www\\.cs\\.toronto\\.edu/~kriz/cifar\\.html`,
      ),
    );
    expect(await messageOf(loadCifar100({ dir: join(root, 'nope') }))).toMatch(
      /^CIFAR-100 directory .*nope does not exist\. Expected a directory holding train\.bin/,
    );
    expect(await messageOf(loadCifar100({ dir: root }))).toMatch(
      /is not a CIFAR-100 directory: none of .* is there\. It contains cifar-100-binary\/: pass .*cifar-100-binary instead\./,
    );
  });
  it('refuses special files (a FIFO, a device link) and oversized files before reading them, naming the file', async () => {
    const fifo = await dirWith('fifo', { 'test.bin': null });
    execFileSync('mkfifo', [join(fifo, 'test.bin')]);
    expect(await messageOf(loadCifar100({ dir: fifo }))).toMatch(
      new RegExp(`^CIFAR-100 file ${join(fifo, 'test.bin')} is a FIFO \\(named pipe\\), not a regular file\\. Expected in `),
    );
    const device = await dirWith('device', { 'fine_label_names.txt': null });
    await symlink('/dev/zero', join(device, 'fine_label_names.txt'));
    expect(await messageOf(loadCifar100({ dir: device }))).toContain(
      `CIFAR-100 file ${join(device, 'fine_label_names.txt')} is a device, not a regular file`,
    );
    const huge = await dirWith('huge', { 'train.bin': null });
    await writeFile(join(huge, 'train.bin'), '');
    execFileSync('truncate', ['-s', '2G', join(huge, 'train.bin')]); // sparse: only the size matters
    expect(await messageOf(loadCifar100({ dir: huge }))).toContain(
      `CIFAR-100 file ${join(huge, 'train.bin')} has 2147483648 bytes, more than CIFAR-100's train.bin (153700000 bytes)`,
    );
  });
});

describe('loadCifar100 download into the cache', () => {
  let server: Server;
  let url: string;
  let archive: Buffer;
  let md5: string;
  let root: string;
  let requests = 0;

  beforeAll(async () => {
    const files = syntheticCifar100Files();
    archive = gzipSync(
      ustar([{ name: 'cifar-100-binary/' }, ...CIFAR100_FILES.map((name) => ({ name: `cifar-100-binary/${name}`, data: files[name]! }))]),
      { level: 1 },
    );
    md5 = createHash('md5').update(archive).digest('hex');
    root = await mkdtemp(join(tmpdir(), 'cifar100-download-'));
    server = createServer((req, res) => {
      requests++;
      if (req.url !== '/cifar-100-binary.tar.gz') return void res.writeHead(404, 'Not Found').end();
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': String(archive.length) }).end(archive);
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cifar-100-binary.tar.gz`;
  });
  afterAll(async () => {
    await new Promise((ok) => server.close(ok));
    await rm(root, { recursive: true, force: true });
  });

  it('has the official URL and MD5 of cifar-100-binary.tar.gz', () => {
    expect(CIFAR100_URL).toBe('https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz');
    expect(CIFAR100_MD5).toBe('03b5dce01913d631647c71ecec9e9cb8');
  });

  it('downloads, checks the MD5, unpacks into cifar-100-binary/ and reuses the cache; a wrong MD5 caches nothing', async () => {
    const bad = join(root, 'bad');
    expect(await messageOf(loadCifar100({ cacheDir: bad, url, md5: '0'.repeat(32) }))).toMatch(
      new RegExp(
        `^The archive downloaded from ${url.replace(/\./g, '\\.')} has MD5 ${md5}, expected 0{32}: it is corrupt or not the CIFAR-100 binary release\\. Nothing was cached\\.`,
      ),
    );
    expect(await readdir(bad)).toEqual([]);

    const cacheDir = join(root, 'cache');
    const before = requests;
    const data = await loadCifar100({ cacheDir, url, md5, trainLimit: 3, evalLimit: 3, labels: 'coarse' });
    expect(data.source).toBe(join(cacheDir, 'cifar-100-binary'));
    expect((await readdir(data.source)).sort()).toEqual([...CIFAR100_FILES].sort());
    expect(await readdir(cacheDir)).toEqual(['cifar-100-binary']);
    expect(Array.from(data.eval.fineLabels)).toEqual([3, 4, 5]);
    const offline = await loadCifar100({ cacheDir, download: false, trainLimit: 3, evalLimit: 3 });
    expect(requests - before).toBe(1);
    expect(offline.train.images).toEqual(data.train.images);
    expect(await messageOf(loadCifar100({ cacheDir: join(root, 'empty'), download: false }))).toMatch(
      /^CIFAR-100 is not in the cache \(.*cifar-100-binary: train\.bin is missing\) and download is disabled\. Put train\.bin, test\.bin/,
    );
  }, 120_000);
});
