/**
 * Checkpoint files in the library's Node entry (issue 21 item 4; issue 20's hostile inputs):
 * content hash and run identity, recovery of cut-off writes, a full disk, and the directory lock
 * against processes started at the same instant.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, lockDirectory } from '../../src/io/checkpoint-files.js';
import { checkpointFilesProblem, readCheckpointFiles, recoverCheckpointFiles, writeCheckpointFiles } from '../../src/node.js';
import type { TrainCheckpoint } from '../../src/train/checkpoint.js';

const REPO = resolve(__dirname, '../..');
const CHILD = join(REPO, 'test/helpers/checkpoint-files-child.ts');
let root: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'checkpoint-files-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function checkpointOf(values: number[], step: number): TrainCheckpoint {
  return {
    version: 1,
    epoch: 0,
    epochStep: step,
    step,
    dataRandomAtEpochStart: { seed: 1, offset: 0 } as never,
    modelRandom: [],
    records: [],
    totalTimeSeconds: 0,
    sgd: { step, scheduleSteps: [] },
    emaActive: false,
    tensors: { 'weights/w': tf.tensor1d(values) },
  };
}

async function write(dir: string, values: number[], step: number, runId?: string): Promise<void> {
  const checkpoint = checkpointOf(values, step);
  try {
    await writeCheckpointFiles(dir, checkpoint, {
      config: { batch: 4 },
      reason: 'epoch-end',
      savedAt: `step ${step}`,
      ...(runId ? { runId } : {}),
    });
  } finally {
    tf.dispose(Object.values(checkpoint.tensors));
  }
}

/** A process that has exited, so its pid is dead. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid!;
}

describe('checkpoint files', () => {
  it('round-trips a checkpoint with its run id, leaving no staging folders and no tensors', async () => {
    const dir = join(root, 'round-trip', 'checkpoint');
    const before = tf.memory().numTensors;
    await write(dir, [1, 2, 3], 5, 'run-a');
    await write(dir, [4, 5, 6], 6, 'run-a');
    expect(await readdir(join(root, 'round-trip'))).toEqual(['checkpoint']);
    const read = (await readCheckpointFiles<{ batch: number }>(dir))!;
    expect(read.meta).toEqual({ config: { batch: 4 }, reason: 'epoch-end', savedAt: 'step 6', runId: 'run-a' });
    expect(read.checkpoint.step).toBe(6);
    expect(Array.from(await read.checkpoint.tensors['weights/w']!.data())).toEqual([4, 5, 6]);
    tf.dispose(Object.values(read.checkpoint.tensors));
    expect(tf.memory().numTensors).toBe(before);
    expect(JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8')).tensorsSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('writes into a directory holding other files and leaves them alone', async () => {
    const dir = join(root, 'shared-dir');
    await mkdir(join(dir, 'notes'), { recursive: true });
    await writeFile(join(dir, 'results.csv'), 'epoch,acc\n1,0.5\n');
    await writeFile(join(dir, 'notes', 'todo.txt'), 'keep me');
    await write(dir, [1, 2, 3], 1);
    await write(dir, [4, 5, 6], 2);
    expect((await readdir(dir)).sort()).toEqual(['checkpoint.json', 'notes', 'results.csv', 'tensors.bin']);
    expect(await readFile(join(dir, 'results.csv'), 'utf8')).toBe('epoch,acc\n1,0.5\n');
    expect(await readFile(join(dir, 'notes', 'todo.txt'), 'utf8')).toBe('keep me');
    expect(await recoverCheckpointFiles(dir)).toEqual({});
    const read = (await readCheckpointFiles(dir))!;
    expect(read.checkpoint.step).toBe(2);
    tf.dispose(Object.values(read.checkpoint.tensors));
    expect((await readdir(dir)).sort()).toEqual(['checkpoint.json', 'notes', 'results.csv', 'tensors.bin']);
  });

  it('rolls a write cut off between its two renames (the new tensors.bin, the old checkpoint.json) forward; a cut-off first write leaves nothing', async () => {
    const parent = join(root, 'in-place');
    const dir = join(parent, 'checkpoint');
    const newer = join(root, 'in-place-newer');
    await write(dir, [1, 2, 3], 1);
    await write(newer, [4, 5, 6], 2);
    await writeFile(join(dir, 'notes.txt'), 'mine');
    // tensors.bin renamed into place, checkpoint.json not yet: its flushed temporary copy is there.
    const dead = deadPid();
    await cp(join(newer, 'tensors.bin'), join(dir, 'tensors.bin'));
    await cp(join(newer, 'checkpoint.json'), join(dir, `checkpoint.json.tmp-${dead}`));
    expect(await recoverCheckpointFiles(dir)).toEqual({ recoveredFrom: `checkpoint/checkpoint.json.tmp-${dead}` });
    const read = (await readCheckpointFiles(dir))!;
    expect(read.checkpoint.step).toBe(2);
    tf.dispose(Object.values(read.checkpoint.tensors));
    expect((await readdir(dir)).sort()).toEqual(['checkpoint.json', 'notes.txt', 'tensors.bin']);

    // A first write killed before its renames: temporary files only, which go; the rest stays.
    const first = join(root, 'in-place-first');
    await mkdir(first);
    await writeFile(join(first, 'notes.txt'), 'mine');
    await writeFile(join(first, `tensors.bin.tmp-${dead}`), new Uint8Array(5));
    await writeFile(join(first, `checkpoint.json.tmp-${dead}`), '{"format": "tfjs-da');
    expect(await recoverCheckpointFiles(first)).toBeUndefined();
    expect(await readdir(first)).toEqual(['notes.txt']);
  });

  it('refuses a tensors.bin of another checkpoint of the same size (files mixed from two runs), naming the file', async () => {
    const a = join(root, 'mixed-a', 'checkpoint');
    const b = join(root, 'mixed-b', 'checkpoint');
    await write(a, [1, 2, 3], 1);
    await write(b, [7, 8, 9], 1);
    await cp(join(b, 'tensors.bin'), join(a, 'tensors.bin'));
    const why = `the checkpoint's tensors file ${join(a, 'tensors.bin')} does not match the SHA-256 that ${join(a, 'checkpoint.json')} records`;
    expect(await checkpointFilesProblem(a)).toContain(why);
    await expect(readCheckpointFiles(a)).rejects.toThrow(`cannot resume from the checkpoint in ${a}: ${why}`);
  });

  it('a first write cut off before its renames (a kill, a full disk) leaves nothing to resume and nothing in the way', async () => {
    const parent = join(root, 'cut-off');
    const staging = join(parent, `checkpoint.saving-${deadPid()}`);
    await mkdir(staging, { recursive: true });
    await writeFile(join(staging, 'tensors.bin'), new Uint8Array(5));
    expect(await recoverCheckpointFiles(join(parent, 'checkpoint'))).toBeUndefined();
    expect(await readdir(parent)).toEqual([]);
  });

  it('recovers the newest complete half of a write cut off between its renames, and refuses when only damaged ones are left', async () => {
    const parent = join(root, 'halves');
    const dir = join(parent, 'checkpoint');
    const pid = deadPid();
    await write(join(parent, `checkpoint.previous-${pid}`), [1], 1);
    await write(join(parent, `checkpoint.saving-${pid}`), [2], 2);
    expect(await recoverCheckpointFiles(dir)).toEqual({ recoveredFrom: `checkpoint.saving-${pid}` });
    const read = (await readCheckpointFiles(dir))!;
    expect(read.checkpoint.step).toBe(2);
    tf.dispose(Object.values(read.checkpoint.tensors));
    expect(await readdir(parent)).toEqual(['checkpoint']);
    await writeFile(join(dir, 'tensors.bin'), new Uint8Array(1));
    await expect(recoverCheckpointFiles(dir)).resolves.toEqual({});
    await rm(join(dir, 'checkpoint.json'));
    await write(join(parent, `checkpoint.previous-${pid}`), [3], 3);
    await writeFile(join(parent, `checkpoint.previous-${pid}`, 'tensors.bin'), new Uint8Array(2));
    await expect(recoverCheckpointFiles(dir)).rejects.toThrow(
      /no complete checkpoint to resume from: .*checkpoint\.previous-\d+ \(the checkpoint's tensors file .* has 2 bytes, but .* describes 4 bytes/,
    );
  });

  const canMount = spawnSync('unshare', ['-rm', 'true']).status === 0;
  it.skipIf(!canMount)(
    `a full disk: the error names the file, partial files go, the old checkpoint stays${canMount ? '' : ' (skipped: no user namespaces to mount a small tmpfs)'}`,
    async () => {
      const dir = join(root, 'full');
      await mkdir(dir);
      const script = `mount -t tmpfs -o size=256k none '${dir}' && exec '${process.execPath}' --import tsx '${CHILD}' fill '${dir}'`;
      const result = spawnSync('unshare', ['-rm', 'sh', '-c', script], { cwd: REPO, encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as {
        checkpointError: string;
        jsonError: string;
        afterCheckpoint: string[];
        inCheckpoint: string[];
        afterJson: string[];
        keptStep: number;
      };
      expect(report.checkpointError).toMatch(
        new RegExp(`^cannot write ${dir}/checkpoint/tensors\\.bin\\.tmp-\\d+: the disk is full \\(ENOSPC\\)$`),
      );
      expect(report.afterCheckpoint).toEqual(['checkpoint']);
      expect(report.inCheckpoint).toEqual(['checkpoint.json', 'tensors.bin']);
      expect(report.keptStep).toBe(1);
      expect(report.jsonError).toBe(
        `cannot write ${dir}/metrics.json.tmp-${/tmp-(\d+)/.exec(report.checkpointError)![1]}: the disk is full (ENOSPC)`,
      );
      expect(report.afterJson).toEqual(['checkpoint']);
    },
  );
});

describe('lockDirectory', () => {
  /** `node CHILD lock dir holdMs` for each of `count` children spawned in the same tick. */
  async function raceFor(dir: string, count: number): Promise<string[]> {
    const children = Array.from({ length: count }, () =>
      spawn(process.execPath, ['--import', 'tsx', CHILD, 'lock', dir, '1500'], { cwd: REPO }),
    );
    return Promise.all(
      children.map(
        (child) =>
          new Promise<string>((done) => {
            let out = '';
            child.stdout.on('data', (d: Buffer) => (out += d.toString()));
            child.on('close', () => done(out.trim()));
          }),
      ),
    );
  }

  it('of processes started at the same instant, exactly one gets the lock; the others are told who holds it', async () => {
    for (let round = 0; round < 2; round++) {
      const dir = join(root, `race-${round}`);
      await mkdir(dir);
      const results = await raceFor(dir, 3);
      expect(results.filter((r) => r === 'locked')).toHaveLength(1);
      for (const r of results.filter((x) => x !== 'locked'))
        expect(r).toMatch(
          new RegExp(
            `^refused: ${dir} is (locked by process \\d+ on .* \\(since .*\\)|being locked by another process right now): wait for it to end or stop it first$`,
          ),
        );
      // Released at the holder's exit.
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('takes over a lock left by a dead process, refuses one of a live process, and releases only its own', async () => {
    const dir = join(root, 'stale');
    await mkdir(dir);
    await writeFile(join(dir, LOCK_FILE), JSON.stringify({ pid: deadPid(), host: (await import('node:os')).hostname(), since: 'earlier' }));
    const lock = lockDirectory(dir);
    expect(JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    const [other] = await raceFor(dir, 1);
    expect(other).toMatch(`refused: ${dir} is locked by process ${process.pid}`);
    lock.release();
    expect(await readdir(dir)).toEqual([]);
    execFileSync('true');
  });

  it('takes over a lock whose pid now belongs to another live process, or to this very process (a restarted PID 1), but not one it holds', async () => {
    const host = (await import('node:os')).hostname();
    const dir = join(root, 'recycled');
    await mkdir(dir);
    const lockPath = join(dir, LOCK_FILE);
    // The lock of an earlier process that had this process's id (a container's PID 1, killed and restarted).
    await writeFile(lockPath, JSON.stringify({ pid: process.pid, host, since: 'before the restart' }));
    const own = lockDirectory(dir);
    expect(() => lockDirectory(dir)).toThrow(`${dir} is locked by process ${process.pid}`);
    own.release();

    // A live process that started after the lock was written cannot be its holder: its pid was reused.
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await new Promise((done) => sleeper.on('spawn', done));
      await writeFile(lockPath, JSON.stringify({ pid: sleeper.pid, host, since: 'an hour ago' }));
      const anHourAgo = new Date(Date.now() - 3_600_000);
      await utimes(lockPath, anHourAgo, anHourAgo);
      lockDirectory(dir).release();
      // A lock recording another start time (or another boot) of that pid is stale too.
      await writeFile(lockPath, JSON.stringify({ pid: sleeper.pid, host, since: 'now', startTicks: 1 }));
      lockDirectory(dir).release();
      await writeFile(lockPath, JSON.stringify({ pid: sleeper.pid, host, since: 'now', bootId: 'another-boot' }));
      lockDirectory(dir).release();
      // Written just now for that process: it holds.
      await writeFile(lockPath, JSON.stringify({ pid: sleeper.pid, host, since: 'now' }));
      expect(() => lockDirectory(dir)).toThrow(`${dir} is locked by process ${sleeper.pid}`);
    } finally {
      sleeper.kill();
    }
  });
});
