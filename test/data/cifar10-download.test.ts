import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CIFAR10_FILES, CIFAR10_IMAGE_BYTES, CIFAR10_RECORD_BYTES, parseCifar10Batch } from '../../src/data/cifar10.js';
import { CIFAR10_MD5, CIFAR10_STALL_TIMEOUT_MS, CIFAR10_URL, defaultCacheDir, loadCifar10, type DownloadProgress } from '../../src/node.js';
import { ustar } from '../helpers/tar.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FILE_LIST = CIFAR10_FILES.join(', ');

/** `records` records: label (salt + r) % 10, pixel j of record r = (salt * 7 + r * 3 + j) & 255. */
function syntheticBatch(records: number, salt: number): Uint8Array {
  const bytes = new Uint8Array(records * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < records; r++) {
    const start = r * CIFAR10_RECORD_BYTES;
    bytes[start] = (salt + r) % 10;
    for (let j = 0; j < CIFAR10_IMAGE_BYTES; j++) bytes[start + 1 + j] = (salt * 7 + r * 3 + j) & 255;
  }
  return bytes;
}

type Mode = 'ok' | 'cut' | 'stall' | 'silent' | 'missing';

describe('loadCifar10 download into the cache', () => {
  let archive: Buffer;
  let md5: string;
  let server: Server;
  let url: string;
  let mode: Mode = 'ok';
  let requests = 0;
  let root: string;
  let stalled: (() => void) | undefined;

  beforeAll(async () => {
    const files = CIFAR10_FILES.map((name, i) => ({ name: `cifar-10-batches-bin/${name}`, data: syntheticBatch(10_000, i) }));
    archive = gzipSync(
      ustar([
        { name: 'cifar-10-batches-bin/' },
        { name: 'cifar-10-batches-bin/batches.meta.txt', data: new TextEncoder().encode('airplane\n') },
        ...files,
      ]),
      { level: 1 },
    );
    md5 = createHash('md5').update(archive).digest('hex');
    root = await mkdtemp(join(tmpdir(), 'cifar10-download-'));
    server = createServer((req, res: ServerResponse) => {
      requests++;
      if (mode === 'silent') return; // accepts the connection, never answers
      if (mode === 'missing' || req.url !== '/cifar-10-binary.tar.gz') {
        res.writeHead(404, 'Not Found').end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': String(archive.length) });
      const half = archive.subarray(0, archive.length >> 1);
      if (mode === 'ok') res.end(archive);
      else if (mode === 'cut') res.write(half, () => res.destroy());
      else res.write(half, () => stalled?.());
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cifar-10-binary.tar.gz`;
  });
  afterEach(() => {
    mode = 'ok';
    server.closeAllConnections();
  });
  afterAll(async () => {
    await new Promise((ok) => server.close(ok));
    await rm(root, { recursive: true, force: true });
  });

  let n = 0;
  async function freshCache(): Promise<string> {
    const dir = join(root, `cache-${n++}`);
    await mkdir(dir);
    return dir;
  }

  function where(cacheDir: string): string {
    return (
      `Put ${FILE_LIST} in ${join(cacheDir, 'cifar-10-batches-bin')} (the cifar-10-batches-bin folder of cifar-10-binary.tar.gz from ` +
      'https://www.cs.toronto.edu/~kriz/cifar.html), or pass `dir` (CLI: --data <dir>) naming a directory that holds them.'
    );
  }

  async function messageOf(p: Promise<unknown>): Promise<string> {
    try {
      await p;
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected an error, none was thrown');
  }

  it('downloads, checks the MD5, unpacks atomically and reuses the cache', async () => {
    const cacheDir = await freshCache();
    const before = requests;
    const progress: DownloadProgress[] = [];
    const data = await loadCifar10({ cacheDir, url, md5, trainLimit: 10_002, evalLimit: 3, onDownloadProgress: (p) => progress.push(p) });
    expect(requests - before).toBe(1);
    // At least the final report: every byte, of the size announced, at a rate.
    expect(progress.at(-1)).toMatchObject({ url, receivedBytes: archive.length, totalBytes: archive.length, done: true });
    expect(progress.at(-1)!.bytesPerSecond).toBeGreaterThan(0);
    expect(progress.slice(0, -1).every((p) => !p.done && p.receivedBytes < archive.length)).toBe(true);
    const dataDir = join(cacheDir, 'cifar-10-batches-bin');
    expect(data.source).toBe(dataDir);
    // Only the six files, at full size, and no temporary folder left behind.
    expect((await readdir(dataDir)).sort()).toEqual([...CIFAR10_FILES].sort());
    for (const f of CIFAR10_FILES) expect((await stat(join(dataDir, f))).size).toBe(30_730_000);
    expect(await readdir(cacheDir)).toEqual(['cifar-10-batches-bin']);
    // The content is what was served: record 1 of data_batch_2.bin is training image 10_001.
    const batch2 = parseCifar10Batch(syntheticBatch(2, 1), 'x.bin');
    expect(data.train.count).toBe(10_002);
    expect(data.train.labels[10_001]).toBe(batch2.labels[1]);
    expect(data.train.images.subarray(10_001 * CIFAR10_IMAGE_BYTES)).toEqual(batch2.images.subarray(CIFAR10_IMAGE_BYTES));
    expect(Array.from(data.eval.labels)).toEqual([5, 6, 7]);

    const again = await loadCifar10({ cacheDir, url, md5, trainLimit: 4, evalLimit: 4 });
    const offline = await loadCifar10({ cacheDir, download: false, trainLimit: 4, evalLimit: 4 });
    expect(requests - before).toBe(1);
    expect(again.train.images).toEqual(data.train.images.subarray(0, 4 * CIFAR10_IMAGE_BYTES));
    expect(Array.from(offline.eval.labels)).toEqual([5, 6, 7, 8]);
    expect(offline.train.images).toEqual(again.train.images);
  });

  it('refuses an archive with the wrong MD5 and caches nothing', async () => {
    const cacheDir = await freshCache();
    expect(await messageOf(loadCifar10({ cacheDir, url, trainLimit: 1, evalLimit: 1 }))).toBe(
      `The archive downloaded from ${url} has MD5 ${md5}, expected ${CIFAR10_MD5}: it is corrupt or not the CIFAR-10 binary release. ` +
        `Nothing was cached. ${where(cacheDir)}`,
    );
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('an interrupted connection leaves no cache that could be mistaken for data', async () => {
    const cacheDir = await freshCache();
    mode = 'cut';
    const message = await messageOf(loadCifar10({ cacheDir, url, md5 }));
    expect(message).toMatch(
      new RegExp(
        `^The CIFAR-10 download from ${url.replace(/\./g, '\\.')} was interrupted after \\d+ bytes \\(.+\\)\\. Nothing was cached; run again to retry\\. `,
      ),
    );
    expect(message.endsWith(where(cacheDir))).toBe(true);
    expect(await readdir(cacheDir)).toEqual([]);
    expect(await messageOf(loadCifar10({ cacheDir, download: false }))).toBe(
      `CIFAR-10 is not in the cache (${join(cacheDir, 'cifar-10-batches-bin')}: data_batch_1.bin is missing) and download is disabled. ${where(cacheDir)}`,
    );
  });

  it('gives up on a connection that stalls mid-body or never answers, saying where to put the files', async () => {
    expect(CIFAR10_STALL_TIMEOUT_MS).toBe(30_000);
    const cacheDir = await freshCache();
    mode = 'stall';
    const midBody = await messageOf(loadCifar10({ cacheDir, url, md5, stallTimeoutMs: 1500 }));
    expect(midBody).toBe(
      `The CIFAR-10 download from ${url} stalled: nothing arrived for 1.5 s after ${archive.length >> 1} bytes. ` +
        `Nothing was cached; run again to retry. ${where(cacheDir)}`,
    );
    expect(await readdir(cacheDir)).toEqual([]);
    server.closeAllConnections();
    mode = 'silent';
    const silent = await messageOf(loadCifar10({ cacheDir, url, md5, stallTimeoutMs: 500 }));
    expect(silent).toBe(
      `The CIFAR-10 download from ${url} stalled: nothing arrived for 500 ms after 0 bytes. Nothing was cached; run again to retry. ${where(cacheDir)}`,
    );
    expect(await readdir(cacheDir)).toEqual([]);
    expect(await messageOf(loadCifar10({ cacheDir, url, stallTimeoutMs: 0 }))).toBe(
      'loadCifar10: stallTimeoutMs must be a positive number of milliseconds, got 0',
    );
  });

  it('a process killed mid-download leaves only a temporary folder, never used and later removed', async () => {
    const cacheDir = await freshCache();
    mode = 'stall';
    // .mts: an ES module, so the child may await at top level.
    const script = join(root, 'child.mts');
    await writeFile(
      script,
      [
        `import { loadCifar10 } from ${JSON.stringify(join(REPO, 'src/data/cifar10-node.ts'))};`,
        `await loadCifar10({ cacheDir: ${JSON.stringify(cacheDir)}, url: ${JSON.stringify(url)}, md5: ${JSON.stringify(md5)} });`,
      ].join('\n'),
    );
    const halfSent = new Promise<void>((ok) => {
      stalled = ok;
    });
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((ok) => child.on('exit', ok));
    const early = exited.then((code) => {
      throw new Error(`the child exited (${code}) before its download stalled: ${stderr}`);
    });
    await Promise.race([halfSent, early]);
    early.catch(() => undefined);
    // Wait until the child has written part of the archive into its temporary folder.
    const deadline = Date.now() + 20_000;
    let temp: string | undefined;
    for (;;) {
      temp = (await readdir(cacheDir)).find((f) => f.startsWith('.download-'));
      if (
        temp &&
        existsSync(join(cacheDir, temp, 'cifar-10-binary.tar.gz')) &&
        (await stat(join(cacheDir, temp, 'cifar-10-binary.tar.gz'))).size > 0
      )
        break;
      if (Date.now() > deadline) throw new Error('the child never started writing its download');
      await new Promise((ok) => setTimeout(ok, 50));
    }
    child.kill('SIGKILL');
    await exited;
    stalled = undefined;
    expect(await readdir(cacheDir)).toEqual([temp]);
    expect(await messageOf(loadCifar10({ cacheDir, download: false }))).toBe(
      `CIFAR-10 is not in the cache (${join(cacheDir, 'cifar-10-batches-bin')}: data_batch_1.bin is missing) and download is disabled. ${where(cacheDir)}`,
    );
    server.closeAllConnections();
    mode = 'ok';
    const data = await loadCifar10({ cacheDir, url, md5, trainLimit: 1, evalLimit: 1 });
    expect(data.train.count).toBe(1);
    expect(await readdir(cacheDir)).toEqual(['cifar-10-batches-bin']);
  });

  it('replaces an invalid cached copy (a truncated file) by a fresh download', async () => {
    const cacheDir = await freshCache();
    const dataDir = join(cacheDir, 'cifar-10-batches-bin');
    await mkdir(dataDir);
    for (const f of CIFAR10_FILES) await writeFile(join(dataDir, f), new Uint8Array(f === 'test_batch.bin' ? 3073 : 0));
    expect(await messageOf(loadCifar10({ cacheDir, download: false }))).toBe(
      `CIFAR-10 is not in the cache (${dataDir}: data_batch_1.bin has 0 bytes, expected 30730000) and download is disabled. ${where(cacheDir)}`,
    );
    const data = await loadCifar10({ cacheDir, url, md5, trainLimit: 1, evalLimit: 2 });
    expect(Array.from(data.eval.labels)).toEqual([5, 6]);
    for (const f of CIFAR10_FILES) expect((await stat(join(dataDir, f))).size).toBe(30_730_000);
    expect(await readdir(cacheDir)).toEqual(['cifar-10-batches-bin']);
  });

  it('refuses a download that is not gzip (its MD5 given as expected) and caches nothing', async () => {
    const cacheDir = await freshCache();
    const garbage = Buffer.from('not a gzip archive at all');
    const plain = createServer((_req, res) => res.end(garbage));
    await new Promise<void>((ok) => plain.listen(0, '127.0.0.1', ok));
    const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/cifar-10-binary.tar.gz`;
    try {
      const message = await messageOf(loadCifar10({ cacheDir, url: plainUrl, md5: createHash('md5').update(garbage).digest('hex') }));
      expect(message).toMatch(
        new RegExp(
          `^The archive downloaded from ${plainUrl.replace(/[.]/g, '\\.')} is not a valid gzip file \\(.+\\)\\. Nothing was cached\\.$`,
        ),
      );
      expect(await readdir(cacheDir)).toEqual([]);
    } finally {
      await new Promise((ok) => plain.close(ok));
    }
  });

  it('says where to put the files when the server is unreachable or the file is missing', async () => {
    const cacheDir = await freshCache();
    const closed = createServer();
    await new Promise<void>((ok) => closed.listen(0, '127.0.0.1', ok));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((ok) => closed.close(ok));
    const offlineUrl = `http://127.0.0.1:${port}/cifar-10-binary.tar.gz`;
    expect(await messageOf(loadCifar10({ cacheDir, url: offlineUrl }))).toBe(
      `Cannot download CIFAR-10 from ${offlineUrl} (connect ECONNREFUSED 127.0.0.1:${port}): offline or unreachable. ${where(cacheDir)}`,
    );
    mode = 'missing';
    expect(await messageOf(loadCifar10({ cacheDir, url }))).toBe(
      `Cannot download CIFAR-10 from ${url}: HTTP 404 Not Found. ${where(cacheDir)}`,
    );
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('defaults to the official URL and $XDG_CACHE_HOME/tfjs-dataflow or ~/.cache/tfjs-dataflow', () => {
    expect(CIFAR10_URL).toBe('https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz');
    expect(CIFAR10_MD5).toBe('c32a1d4ab5d03f1284b67883e8d87530');
    const saved = process.env['XDG_CACHE_HOME'];
    try {
      process.env['XDG_CACHE_HOME'] = '/some/cache';
      expect(defaultCacheDir()).toBe('/some/cache/tfjs-dataflow');
      delete process.env['XDG_CACHE_HOME'];
      expect(defaultCacheDir()).toBe(join(homedir(), '.cache', 'tfjs-dataflow'));
    } finally {
      if (saved === undefined) delete process.env['XDG_CACHE_HOME'];
      else process.env['XDG_CACHE_HOME'] = saved;
    }
  });
});
