import * as tfl from '@tensorflow/tfjs-layers';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine, UsageError } from '../../examples/cifar10/args.js';
import { main, type CliIO } from '../../examples/cifar10/main.js';
import { loadData } from '../../examples/cifar10/training.js';
import { fileHandler } from '../../src/node.js';
import { syntheticCifar100Files } from '../helpers/cifar100.js';

async function run(argv: string[]) {
  let out = '';
  let err = '';
  const io: CliIO = { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) } };
  const code = await main(argv, io);
  return { code, out, err };
}

describe('CIFAR-100 CLI: arguments', () => {
  it('--dataset cifar100 takes fine labels unless --labels coarse, and its directory from $CIFAR100_DIR', () => {
    const env = { CIFAR10_DIR: '/data/c10', CIFAR100_DIR: '/data/c100' };
    const fine = parseCommandLine(['train', '--dataset', 'cifar100'], env);
    expect(fine.command === 'train' && fine.config).toMatchObject({
      dataset: 'cifar100',
      labels: 'fine',
      data: '/data/c100',
      dataFrom: 'env',
    });
    const coarse = parseCommandLine(['evaluate', '--model', 'm', '--dataset', 'cifar100', '--labels', 'coarse'], env);
    expect(coarse.command === 'evaluate' && coarse.config).toMatchObject({ dataset: 'cifar100', labels: 'coarse', data: '/data/c100' });
    const cifar10 = parseCommandLine(['train'], env);
    expect(cifar10.command === 'train' && cifar10.config).toMatchObject({ dataset: 'cifar10', labels: null, data: '/data/c10' });
  });

  it.each([
    [['train', '--dataset', 'imagenet'], "--dataset must be one of cifar10, cifar100, got 'imagenet'"],
    [['train', '--dataset', 'cifar100', '--labels', 'medium'], "--labels must be one of fine, coarse, got 'medium'"],
    [['train', '--labels', 'coarse'], "--labels applies to CIFAR-100: use it with --dataset cifar100, not 'cifar10'"],
    [['evaluate', '--model', 'm', '--labels', 'fine', '--dataset', 'cifar10'], '--labels applies to CIFAR-100'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseCommandLine(argv, {})).toThrow(UsageError);
    expect(() => parseCommandLine(argv, {})).toThrow(message);
  });

  it('names CIFAR-100 in its download progress', async () => {
    // A local server stands in for the release: the bytes arrive (with their progress), then fail the MD5 check.
    const server = createServer((_req, res) => res.end(Buffer.alloc(64 * 1024)));
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const cacheDir = await mkdtemp(join(tmpdir(), 'cifar100-download-'));
    let log = '';
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cifar-100-binary.tar.gz`;
      await expect(
        loadData({ cacheDir, download: true, url } as Parameters<typeof loadData>[0], {
          dataset: 'cifar100',
          progress: { write: (t: string) => (log += t) },
        }),
      ).rejects.toThrow(/MD5/);
      expect(log).toMatch(/^Downloading CIFAR-100: 0\.1 MB at [\d.]+ MB\/s, done\n$|^Downloading CIFAR-100: 0\.1 of 0\.1 MB/);
      expect(log).not.toContain('CIFAR-10:');
    } finally {
      server.close();
      await rm(cacheDir, { recursive: true, force: true });
    }
  });
});

describe('CIFAR-100 CLI: a tiny run end to end on files in the official format', () => {
  let root: string;
  let data: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cifar100-cli-'));
    data = join(root, 'cifar-100-binary');
    await mkdir(data);
    for (const [name, bytes] of Object.entries(syntheticCifar100Files())) await writeFile(join(data, name), bytes);
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('trains a 100-class net on the fine labels, saves it, evaluates it, and refuses to evaluate it on the 20 coarse labels', async () => {
    const out = join(root, 'run');
    const trained = await run([
      'train',
      '--dataset',
      'cifar100',
      '--data',
      data,
      '--backend',
      'wasm',
      '--train-limit',
      '256',
      '--eval-limit',
      '100',
      '--base-depth',
      '8',
      '--batch-size',
      '128',
      '--epochs',
      '2',
      '--seed',
      '3',
      '--out',
      out,
    ]);
    expect(trained.err).not.toContain('tfjs-dataflow-cifar10:');
    expect(trained.code).toBe(0);
    expect(trained.out).toContain(`Data: CIFAR-100, fine labels (100 classes), 256 training and 100 test images from ${data}`);
    const model = await tfl.loadLayersModel(fileHandler(join(out, 'model')));
    try {
      expect(model.outputs[0]!.shape).toEqual([null, 100]);
      expect(
        (model.getUserDefinedMetadata() as { tfjsDataflowCifar10: { dataset: string; labels: string } }).tfjsDataflowCifar10,
      ).toMatchObject({ dataset: 'cifar100', labels: 'fine' });
    } finally {
      model.dispose();
    }

    const evaluated = await run([
      'evaluate',
      '--model',
      join(out, 'model'),
      '--dataset',
      'cifar100',
      '--data',
      data,
      '--backend',
      'wasm',
      '--eval-limit',
      '100',
    ]);
    expect(evaluated.err).toBe('');
    expect(evaluated.code).toBe(0);
    const accuracy = Number(/Test accuracy \(flip TTA\): (\d\.\d{4}) on 100 images/.exec(evaluated.out)?.[1]);
    expect(accuracy).toBeGreaterThanOrEqual(0);
    expect(accuracy).toBeLessThanOrEqual(1);

    const coarse = await run([
      'evaluate',
      '--model',
      join(out, 'model'),
      '--dataset',
      'cifar100',
      '--labels',
      'coarse',
      '--data',
      data,
      '--backend',
      'wasm',
      '--eval-limit',
      '100',
    ]);
    expect(coarse.code).toBe(2);
    expect(coarse.err).toContain(
      `--model ${join(out, 'model')} outputs 100 classes, but CIFAR-100, coarse labels (20 classes) has 20: pass the --dataset and --labels it was trained on`,
    );

    // Another class count is refused before the data is read: --data names nothing, and the message is about the classes.
    const cifar10 = await run([
      'evaluate',
      '--model',
      join(out, 'model'),
      '--dataset',
      'cifar10',
      '--data',
      '/nonexistent/cifar10',
      '--backend',
      'wasm',
    ]);
    expect(cifar10.code).toBe(2);
    expect(cifar10.err).toContain(
      `--model ${join(out, 'model')} outputs 100 classes, but CIFAR-10 (10 classes) has 10: pass the --dataset it was trained on`,
    );
    expect(cifar10.out).not.toContain('Test accuracy');
  }, 600_000);

  it('trains on the 20 coarse labels, and --resume refuses another --labels', async () => {
    const out = join(root, 'coarse');
    const trained = await run([
      'train',
      '--dataset',
      'cifar100',
      '--labels',
      'coarse',
      '--data',
      data,
      '--backend',
      'wasm',
      '--train-limit',
      '128',
      '--eval-limit',
      '50',
      '--base-depth',
      '8',
      '--batch-size',
      '128',
      '--epochs',
      '1',
      '--seed',
      '4',
      '--out',
      out,
    ]);
    expect(trained.code).toBe(0);
    expect(trained.out).toContain('Data: CIFAR-100, coarse labels (20 classes), 128 training and 50 test images');
    const model = await tfl.loadLayersModel(fileHandler(join(out, 'model')));
    expect(model.outputs[0]!.shape).toEqual([null, 20]);
    model.dispose();
    const asFine = await run([
      'evaluate',
      '--model',
      join(out, 'model'),
      '--dataset',
      'cifar100',
      '--data',
      '/nonexistent/cifar100',
      '--backend',
      'wasm',
    ]);
    expect(asFine.code).toBe(2);
    expect(asFine.err).toContain(
      `--model ${join(out, 'model')} outputs 20 classes, but CIFAR-100, fine labels (100 classes) has 100: pass the --dataset and --labels it was trained on`,
    );
    const asCifar10 = await run(['evaluate', '--model', join(out, 'model'), '--data', '/nonexistent/cifar10', '--backend', 'wasm']);
    expect(asCifar10.code).toBe(2);
    expect(asCifar10.err).toContain(
      `--model ${join(out, 'model')} outputs 20 classes, but CIFAR-10 (10 classes) has 10: pass the --dataset it was trained on`,
    );
    const resumed = await run(['train', '--resume', '--out', out, '--dataset', 'cifar100', '--labels', 'fine']);
    expect(resumed.code).toBe(2);
    expect(resumed.err).toContain('--labels "fine" (the run has "coarse")');
  }, 600_000);
});
