import { execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTar } from '../../src/data/tar.js';

function hasTar(): boolean {
  try {
    execFileSync('tar', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const HAVE_TAR = hasTar();

const LONG_DIR = `${'long-directory-name-'.repeat(4)}x`;
const FILES: Record<string, Uint8Array> = {
  'cifar-10-batches-bin/data_batch_1.bin': Uint8Array.from({ length: 3073 * 2 }, (_, i) => (i * 31) & 255),
  'cifar-10-batches-bin/batches.meta.txt': new TextEncoder().encode('airplane\nautomobile\n'),
  'cifar-10-batches-bin/empty.bin': new Uint8Array(0),
  [`${LONG_DIR}/${'f'.repeat(60)}.bin`]: Uint8Array.from({ length: 513 }, (_, i) => i & 255),
};

describe.skipIf(!HAVE_TAR)(`readTar on archives made by the system tar${HAVE_TAR ? '' : ' (skipped: no tar command)'}`, () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'tar-test-'));
    for (const [name, data] of Object.entries(FILES)) {
      await mkdir(join(root, 'src', name, '..'), { recursive: true });
      await writeFile(join(root, 'src', name), data);
    }
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  for (const format of ['gnu', 'ustar', 'pax']) {
    it(`reads every regular file of a ${format} archive, long names included`, async () => {
      const archive = join(root, `${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '-cf', archive, '-C', join(root, 'src'), 'cifar-10-batches-bin', LONG_DIR]);
      const entries = readTar(await readFile(archive), archive);
      const byName = Object.fromEntries(entries.map((e) => [e.name, e.data]));
      expect(Object.keys(byName).sort()).toEqual(Object.keys(FILES).sort());
      for (const [name, data] of Object.entries(FILES)) expect(new Uint8Array(byName[name]!)).toEqual(data);
    });
  }

  it('rejects a truncated archive and a corrupt header', async () => {
    const archive = join(root, 'cut.tar');
    execFileSync('tar', ['--format=gnu', '-cf', archive, '-C', join(root, 'src'), 'cifar-10-batches-bin/data_batch_1.bin']);
    const bytes = await readFile(archive);
    // One 6146-byte entry: cut one byte short of its data.
    expect(() => readTar(bytes.subarray(0, 512 + 6145), 'cut.tar')).toThrow(
      'cut.tar: tar entry at byte 0 declares 6146 bytes but the archive ends after 6145 (truncated archive)',
    );
    // Cut at the block boundary after the entry, before the end-of-archive marker.
    const end = 512 + Math.ceil(6146 / 512) * 512;
    expect(bytes.subarray(end, end + 1024).every((b) => b === 0)).toBe(true);
    expect(() => readTar(bytes.subarray(0, end), 'cut.tar')).toThrow(
      `cut.tar: tar archive ends at byte ${end} without its end-of-archive marker (truncated archive)`,
    );
    const corrupt = Uint8Array.from(bytes);
    corrupt[10]! ^= 0x55;
    expect(() => readTar(corrupt, 'bad.tar')).toThrow('bad.tar: tar header at byte 0 has a bad checksum (corrupt or not a tar archive)');
  });
});

describe('readTar', () => {
  it('rejects bytes that are not a tar archive', () => {
    const gz = Uint8Array.from({ length: 1024 }, (_, i) => (i === 0 ? 0x1f : i === 1 ? 0x8b : 7));
    expect(() => readTar(gz, 'x.tar.gz')).toThrow(/^x\.tar\.gz: tar header at byte 0 has a (bad checksum|checksum that is not octal)/);
  });
});
