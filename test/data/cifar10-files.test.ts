/**
 * loadCifar10 on hostile data directories (issue 20): special files are refused before anything is
 * read (a FIFO would block forever, a link to a device read until memory runs out), and a test
 * file that is a copy of a training file is refused.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_FILES, CIFAR10_IMAGE_BYTES, CIFAR10_RECORD_BYTES } from '../../src/data/cifar10.js';
import { loadCifar10 } from '../../src/data/cifar10-node.js';

function syntheticBatch(records: number, fileSalt: number): Uint8Array {
  const bytes = new Uint8Array(records * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < records; r++) {
    const start = r * CIFAR10_RECORD_BYTES;
    bytes[start] = (fileSalt + r) % 10;
    for (let j = 0; j < CIFAR10_IMAGE_BYTES; j++) bytes[start + 1 + j] = (fileSalt * 7 + r * 3 + j) & 255;
  }
  return bytes;
}

let root: string;

/** A CIFAR-10 directory of 4-record files (each its own content), with `replace` making one file something else. */
async function dataDir(name: string, replace?: (path: string) => Promise<void>, replaced = 'data_batch_1.bin'): Promise<string> {
  const dir = join(root, name);
  execFileSync('mkdir', ['-p', dir]);
  for (const [i, file] of CIFAR10_FILES.entries()) {
    if (file === replaced && replace) await replace(join(dir, file));
    else await writeFile(join(dir, file), syntheticBatch(4, i));
  }
  return dir;
}

async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected an error, none was thrown');
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'cifar10-files-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('loadCifar10: special and misplaced files', () => {
  it('refuses a FIFO at once (it would block forever), naming the file and what it is', async () => {
    const dir = await dataDir('fifo', async (path) => {
      execFileSync('mkfifo', [path]);
    });
    const message = await messageOf(loadCifar10({ dir, trainLimit: 4 }));
    expect(message).toContain(`CIFAR-10 file ${join(dir, 'data_batch_1.bin')} is a FIFO (named pipe), not a regular file`);
  });

  it.skipIf(!existsSync('/dev/zero'))('refuses a link to a device (it would read until memory runs out)', async () => {
    const dir = await dataDir('device', (path) => symlink('/dev/zero', path));
    const message = await messageOf(loadCifar10({ dir, trainLimit: 4 }));
    expect(message).toContain(`CIFAR-10 file ${join(dir, 'data_batch_1.bin')} is a device, not a regular file`);
  });

  it('refuses a file far larger than a batch file before reading it', async () => {
    const dir = await dataDir('huge', async (path) => {
      // Sparse: the size is what matters, nothing is written.
      await writeFile(path, '');
      execFileSync('truncate', ['-s', '2G', path]);
    });
    const message = await messageOf(loadCifar10({ dir, trainLimit: 4 }));
    expect(message).toContain(
      `CIFAR-10 file ${join(dir, 'data_batch_1.bin')} has 2147483648 bytes, more than a CIFAR-10 batch file (30730000 bytes`,
    );
  });

  it('refuses a test_batch.bin that is a copy of a training file', async () => {
    // Whole batch files (the loader reads only those): data_batch_1 and a copy of it as the test file.
    const full = syntheticBatch(10_000, 1);
    const dir = await dataDir('copied-test', (path) => writeFile(path, full), 'data_batch_1.bin');
    await writeFile(join(dir, 'test_batch.bin'), full);
    const message = await messageOf(loadCifar10({ dir, trainLimit: 10_000, evalLimit: 4 }));
    expect(message).toContain('test_batch.bin is byte-identical to data_batch_1.bin, so the test set would be training images');
    // A real test file loads.
    await writeFile(join(dir, 'test_batch.bin'), syntheticBatch(10_000, 9));
    const dataset = await loadCifar10({ dir, trainLimit: 10_000, evalLimit: 4 });
    expect(dataset.eval.count).toBe(4);
  });

  /** A whole batch file (the loader reads only those) of black images of class 0 but for one pixel, which tells files apart. */
  function blackBatch(salt: number): Buffer {
    const bytes = Buffer.alloc(10_000 * CIFAR10_RECORD_BYTES);
    bytes[1] = salt;
    return bytes;
  }

  it('refuses a test_batch.bin copied from a training file that a trainLimit leaves unread (evaluate reads one training file)', async () => {
    const dir = await dataDir('copied-unread');
    await writeFile(join(dir, 'data_batch_1.bin'), blackBatch(1));
    await writeFile(join(dir, 'data_batch_4.bin'), blackBatch(4));
    await writeFile(join(dir, 'test_batch.bin'), blackBatch(4));
    const message = await messageOf(loadCifar10({ dir, trainLimit: 1, evalLimit: 4 }));
    expect(message).toContain(
      `CIFAR-10 directory ${dir}: test_batch.bin is byte-identical to data_batch_4.bin, so the test set would be training images`,
    );
    // Same size and first bytes as a training file, but not a copy of it: loads.
    const almost = blackBatch(4);
    almost[almost.length - 1] = 1;
    await writeFile(join(dir, 'test_batch.bin'), almost);
    expect((await loadCifar10({ dir, trainLimit: 1, evalLimit: 4 })).eval.count).toBe(4);
  });

  it('lists the files it read with their size and SHA-256, so that a run can record what it trained on', async () => {
    const dir = await dataDir('digests');
    for (const [salt, file] of ['data_batch_1.bin', 'data_batch_2.bin', 'test_batch.bin'].entries())
      await writeFile(join(dir, file), blackBatch(salt + 1));
    const dataset = await loadCifar10({ dir, trainLimit: 10_001, evalLimit: 2 });
    const digest = async (file: string) => ({
      file,
      bytes: 10_000 * CIFAR10_RECORD_BYTES,
      sha256: createHash('sha256')
        .update(await readFile(join(dir, file)))
        .digest('hex'),
    });
    expect(dataset.files).toEqual([await digest('data_batch_1.bin'), await digest('data_batch_2.bin'), await digest('test_batch.bin')]);
  });
});
