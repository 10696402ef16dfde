/**
 * Runs that survive interruption and bad input (issue 14), through the CLI's public surface: the
 * README's `npm run train` in a child process with real signals, and `main()` for the rest.
 */
import * as tf from '@tensorflow/tfjs-core';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, truncate, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../examples/cifar10/files.js';
import { main, type CliIO } from '../../examples/cifar10/main.js';
import { downloadProgress } from '../../examples/cifar10/progress.js';

const REPO = resolve(__dirname, '../..');
// CI checks the repo out next to a copy of shared/.
// A worktree under /work/wt/ has no ../shared next to it; the machine's copy is then used.
const DATA =
  [resolve(REPO, '../shared/data/cifar10'), '/work/shared/data/cifar10'].find((d) => existsSync(join(d, 'test_batch.bin'))) ??
  resolve(REPO, '../shared/data/cifar10');
const HAS_DATA = existsSync(join(DATA, 'data_batch_1.bin')) && existsSync(join(DATA, 'test_batch.bin'));
// 512 images at batch 64: 8 steps an epoch, 24 in all; seconds per epoch on wasm.
const TINY = [
  '--backend',
  'wasm',
  '--data',
  DATA,
  '--train-limit',
  '512',
  '--eval-limit',
  '100',
  '--base-depth',
  '8',
  '--batch-size',
  '64',
  '--epochs',
  '3',
  '--seed',
  '2',
];
const LONG = 600_000;
/** TINY with another --epochs (a flag given twice is refused). */
const tinyWith = (epochs: string) => TINY.map((arg, i) => (TINY[i - 1] === '--epochs' ? epochs : arg));

function captureIO(): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) }, out: () => out, err: () => err };
}

async function run(argv: string[]) {
  const io = captureIO();
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

interface Metrics {
  status: string;
  process: { pid: number; host: string };
  runs: Array<{ stopReason: string; message?: string; epochs: Array<{ epoch: number }> }>;
  summary: { mean: number } | null;
}

const readMetrics = async (dir: string) => JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')) as Metrics;

/** A child in a process group of its own (as a terminal's foreground job is), with its output collected. */
interface Child {
  process: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once it has exited and closed its output. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: boolean;
}

const children: Child[] = [];

function start(command: string, args: string[]): Child {
  const child = spawn(command, args, {
    cwd: REPO,
    detached: true,
    env: { ...process.env, npm_config_update_notifier: 'false', XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? tmpdir() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const handle: Child = {
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    closed: new Promise((done) =>
      child.on('close', (code, signal) => {
        handle.done = true;
        done({ code, signal });
      }),
    ),
    done: false,
  };
  children.push(handle);
  return handle;
}

/** Waits (polling) until `ready()`, failing with the child's output if it ends first. */
async function until(child: Child, what: string, ready: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await ready())) {
    if (child.done) throw new Error(`the child ended before ${what}:\n${child.stdout()}\n${child.stderr()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The first epoch's row is printed and its checkpoint is on disk: the run is in its second epoch. */
async function inSecondEpoch(child: Child, out: string): Promise<void> {
  await until(
    child,
    'the first epoch ended',
    () => /\|\s+0\s+\|/.test(child.stdout()) && existsSync(join(out, 'checkpoint', 'checkpoint.json')),
  );
}

afterEach(() => {
  // A test that failed half-way must not leave its run going.
  for (const child of children.splice(0)) {
    if (!child.done && child.process.pid) {
      try {
        process.kill(-child.process.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

const npmTrain = (out: string, extra: string[] = []) => start('npm', ['run', 'train', '--', ...TINY, ...extra, '--out', out]);

describe('CIFAR-10 CLI: the output directory is checked before anything loads', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'cifar10-out-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });
  // --data names nothing: were the data read first, the message would be about it.
  const args = ['train', '--backend', 'cpu', '--data', '/nonexistent/cifar'];

  it.skipIf(!existsSync('/proc/self'))(
    "--out /proc/x is refused at once, naming it (Node 20's recursive mkdir spins forever there)",
    async () => {
      const { code, err } = await run([...args, '--out', '/proc/x']);
      expect(code).toBe(2);
      expect(err).toContain('--out /proc/x: cannot create /proc/x: the file system at /proc does not allow new folders there');
    },
  );

  it("refuses a file, a path through a file, and a directory holding another program's files (which stay untouched)", async () => {
    const file = join(root, 'notes.txt');
    await writeFile(file, 'mine');
    expect((await run([...args, '--out', file])).err).toContain(`--out ${file} is a file, not a directory`);
    expect((await run([...args, '--out', join(file, 'run')])).err).toContain(`--out ${join(file, 'run')}: ${file} is a file, not a folder`);
    const theirs = join(root, 'theirs');
    await mkdir(join(theirs, 'model'), { recursive: true });
    await writeFile(join(theirs, 'metrics.json'), '{"mine": true}');
    await writeFile(join(theirs, 'model', 'model.json'), '{}');
    const refused = await run([...args, '--out', theirs]);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain(
      `--out ${theirs} holds files that are not a run of this program (metrics.json, model); choose an empty or new directory`,
    );
    expect(await readFile(join(theirs, 'metrics.json'), 'utf8')).toBe('{"mine": true}');
    expect((await readdir(theirs)).sort()).toEqual(['metrics.json', 'model']);
  });

  it("a run whose config.json is damaged is refused as damaged (not as another program's), for --resume and for a new run, and left untouched", async () => {
    const damaged = join(root, 'damaged-config');
    await mkdir(join(damaged, 'checkpoint'), { recursive: true });
    const configPath = join(damaged, 'config.json');
    const cutOff = '{"format":"tfjs-dataflow-cifar10-run","run":{"epochs":2,"batchSize":';
    await writeFile(configPath, cutOff);
    await writeFile(join(damaged, 'checkpoint', 'checkpoint.json'), '{}');
    const resume = await run(['train', '--resume', '--out', damaged]);
    expect(resume.code).toBe(2);
    expect(resume.err).toContain(
      `--resume: cannot continue the run in ${damaged}: its configuration is damaged (${configPath} is not valid JSON: `,
    );
    expect(resume.err).toContain(
      'config.json records the flags the run was started with: restore it from a copy, or start a new run with another --out.',
    );
    expect(resume.err).not.toContain('no config.json');
    const fresh = await run([...args, '--out', damaged]);
    expect(fresh.code).toBe(2);
    expect(fresh.err).toContain(`--out ${damaged} holds a run whose configuration is damaged (${configPath} is not valid JSON: `);
    expect(fresh.err).not.toContain('not a run of this program');
    // A config.json that is a folder is named too.
    const folder = join(root, 'config-folder');
    await mkdir(join(folder, 'config.json'), { recursive: true });
    const notFile = await run(['train', '--resume', '--out', folder]);
    expect(notFile.code).toBe(2);
    expect(notFile.err).toContain(
      `--resume: cannot continue the run in ${folder}: its configuration is damaged (${join(folder, 'config.json')} cannot be read: EISDIR`,
    );
    expect(await readFile(configPath, 'utf8')).toBe(cutOff);
    expect((await readdir(damaged)).sort()).toEqual(['checkpoint', 'config.json']);
  });

  it('a failure before training leaves no directory it created', async () => {
    const out = join(root, 'a', 'b');
    const { code, err } = await run([...args, '--out', out]);
    expect(code).toBe(1);
    expect(err).toContain('CIFAR-10 directory /nonexistent/cifar does not exist');
    expect(existsSync(join(root, 'a'))).toBe(false);
  });

  it('names $CIFAR10_DIR when the directory it names does not work', async () => {
    const saved = process.env['CIFAR10_DIR'];
    process.env['CIFAR10_DIR'] = '/nowhere';
    try {
      const train = await run(['train', '--backend', 'cpu', '--out', join(root, 'env')]);
      expect(train.code).toBe(1);
      expect(train.err).toContain('$CIFAR10_DIR is set to /nowhere, and that does not work: CIFAR-10 directory /nowhere does not exist.');
      expect(train.err).toContain(
        'Point $CIFAR10_DIR at the CIFAR-10 binary directory, unset it to use the download cache, or pass --data DIR.',
      );
      // --data wins over the variable, and is not blamed on it.
      const flag = await run(['train', '--backend', 'cpu', '--data', '/elsewhere', '--out', join(root, 'env')]);
      expect(flag.err).toContain('CIFAR-10 directory /elsewhere does not exist');
      expect(flag.err).not.toContain('$CIFAR10_DIR');
    } finally {
      if (saved === undefined) delete process.env['CIFAR10_DIR'];
      else process.env['CIFAR10_DIR'] = saved;
    }
  });

  it('--cache-dir naming a file, or a path through one, is refused naming it (not a bare EEXIST from mkdir)', async () => {
    const file = join(root, 'cache-file');
    await writeFile(file, 'not a folder');
    const saved = process.env['CIFAR10_DIR'];
    delete process.env['CIFAR10_DIR'];
    try {
      for (const [cacheDir, why] of [
        [file, `The CIFAR-10 cache directory ${file} is a file, not a directory.`],
        [join(file, 'sub'), `The CIFAR-10 cache directory ${join(file, 'sub')} cannot be created: ${file} is a file, not a directory.`],
      ] as const) {
        const { code, err } = await run(['train', '--backend', 'cpu', '--download', '--cache-dir', cacheDir, '--out', join(root, 'cache')]);
        expect(code).toBe(1);
        expect(err).toContain(`${why} Pass a directory (or a path where one can be made) as \`cacheDir\` (CLI: --cache-dir DIR)`);
        expect(err).not.toMatch(/EEXIST|ENOTDIR/);
      }
    } finally {
      if (saved !== undefined) process.env['CIFAR10_DIR'] = saved;
    }
    expect(await readFile(file, 'utf8')).toBe('not a folder');
    expect(existsSync(join(root, 'cache'))).toBe(false);
  });

  it("npm run train and evaluate from a subdirectory take relative paths from there (npm's INIT_CWD), not from the package root", () => {
    const sub = join(REPO, 'examples', 'cifar10');
    const npm = (args: string[]) =>
      spawnSync('npm', ['run', ...args], {
        cwd: sub,
        encoding: 'utf8',
        timeout: LONG,
        env: { ...process.env, npm_config_update_notifier: 'false', CIFAR10_DIR: '' },
      });
    const resume = npm(['train', '--', '--backend', 'cpu', '--resume', '--out', 'no-such-run']);
    expect(resume.stderr).toContain(`--resume: ${join(sub, 'no-such-run')} holds no run to continue (no such directory)`);
    const data = npm(['train', '--', '--backend', 'cpu', '--data', 'no-such-data', '--out', 'no-such-run']);
    expect(data.stderr).toContain(`CIFAR-10 directory ${join(sub, 'no-such-data')} does not exist`);
    const evaluate = npm(['evaluate', '--', '--backend', 'cpu', '--model', 'no-such-model']);
    expect(evaluate.stderr).toContain(`cannot read ${join(sub, 'no-such-model', 'model.json')}`);
    // Nothing was made, there or in the package root.
    expect(existsSync(join(sub, 'no-such-run'))).toBe(false);
    expect(existsSync(join(REPO, 'no-such-run'))).toBe(false);
  });

  it('shows download progress with bytes and rate: redrawn on a terminal, periodic lines in a log', () => {
    const progress = (receivedBytes: number, done = false) => ({
      url: 'u',
      receivedBytes,
      totalBytes: 162_000_000,
      bytesPerSecond: 2_500_000,
      done,
    });
    let tty = '';
    const bar = downloadProgress({ write: (t: string) => (tty += t), isTTY: true });
    bar(progress(40_500_000));
    expect(tty).toBe('\rDownloading CIFAR-10: 40.5 of 162.0 MB (25%) at 2.5 MB/s\x1b[K');
    let log = '';
    const lines = downloadProgress({ write: (t: string) => (log += t) }, 60_000);
    lines(progress(1_000_000));
    lines(progress(2_000_000));
    lines(progress(162_000_000, true));
    expect(log).toBe(
      'Downloading CIFAR-10: 1.0 of 162.0 MB (0%) at 2.5 MB/s\nDownloading CIFAR-10: 162.0 of 162.0 MB (100%) at 2.5 MB/s, done\n',
    );
  });
});

describe.skipIf(!HAS_DATA)(
  HAS_DATA
    ? 'CIFAR-10 CLI: interruptions and bad input, on wasm with the real data'
    : `CIFAR-10 CLI reliability: SKIPPED, no CIFAR-10 binaries at ${DATA} (CI provides ../shared/data/cifar10)`,
  () => {
    let root: string;
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'cifar10-reliability-'));
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    /** The interrupted checkpoint: mid-run, after the first epoch's. */
    async function interruptedCheckpoint(out: string) {
      const saved = await readCheckpoint<unknown>(join(out, 'checkpoint'));
      expect(saved).toBeDefined();
      const { checkpoint, meta } = saved!;
      tf.dispose(Object.values(checkpoint.tensors));
      expect(meta.reason).toBe('interrupted');
      expect(checkpoint.step).toBeGreaterThanOrEqual(8);
      expect(checkpoint.step).toBe(8 * checkpoint.epoch + checkpoint.epochStep);
      return { checkpoint, meta };
    }

    it(
      "npm run train (the README's command): Ctrl-C to its process group checkpoints the current step, metrics.json says interrupted, --resume finishes",
      async () => {
        const out = join(root, 'ctrl-c');
        const child = npmTrain(out);
        await inSecondEpoch(child, out);
        // What a terminal does on Ctrl-C: SIGINT to every process of the foreground group (npm, and node under it).
        process.kill(-child.process.pid!, 'SIGINT');
        const { code, signal } = await child.closed;
        const stderr = child.stderr();
        // npm forwards the signal node already got: still one request, not a second Ctrl-C.
        expect(stderr.match(/Ctrl-C: stopping after this step and writing a checkpoint/g)).toHaveLength(1);
        expect(stderr).not.toContain('Second Ctrl-C');
        expect(signal === 'SIGINT' || code === 130).toBe(true);
        const { checkpoint, meta } = await interruptedCheckpoint(out);
        expect(stderr).toContain(`Interrupted at step ${checkpoint.step}/24`);
        const metrics = await readMetrics(out);
        expect(metrics.status).toBe('interrupted');
        expect(metrics.runs[0]).toMatchObject({
          stopReason: 'interrupted',
          message: `stopped by SIGINT at step ${checkpoint.step}/24; the checkpoint holds that step`,
        });
        expect(metrics.summary).toBeNull();

        const resumed = await run(['train', '--resume', '--out', out]);
        expect(resumed.code).toBe(0);
        expect(resumed.err).toContain(
          `Resumed from the checkpoint of ${meta.savedAt} (interrupted): epoch ${checkpoint.epoch + 1}, step ${checkpoint.epochStep} of the epoch, ${checkpoint.step}/24 in all`,
        );
        const final = await readMetrics(out);
        expect(final.status).toBe('completed');
        expect(final.runs[0]!.stopReason).toBe('completed');
        expect(final.runs[0]!.epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
      },
      LONG,
    );

    it.each([
      ['the npm process, as kill and docker stop send it', 'npm'],
      ['the process group, as systemd sends it', 'group'],
    ])(
      'npm run train: SIGTERM (to %s) stops like Ctrl-C, with a checkpoint of the current step',
      async (_, target) => {
        const out = join(root, `sigterm-${target}`);
        const child = npmTrain(out);
        await inSecondEpoch(child, out);
        process.kill(target === 'group' ? -child.process.pid! : child.process.pid!, 'SIGTERM');
        const { code, signal } = await child.closed;
        const stderr = child.stderr();
        expect(stderr.match(/SIGTERM: stopping after this step and writing a checkpoint/g)).toHaveLength(1);
        expect(signal === 'SIGTERM' || code === 143).toBe(true);
        const { checkpoint } = await interruptedCheckpoint(out);
        expect(stderr).toContain(`Interrupted at step ${checkpoint.step}/24`);
        const metrics = await readMetrics(out);
        expect(metrics.status).toBe('interrupted');
        expect(metrics.runs[0]!.message).toBe(`stopped by SIGTERM at step ${checkpoint.step}/24; the checkpoint holds that step`);
      },
      LONG,
    );

    it.each([
      ['SIGHUP', 'a dropped SSH session or a closed terminal', 129],
      ['SIGQUIT', 'Ctrl-\\', 131],
    ] as const)(
      'npm run train: %s (%s, to the process group) stops like SIGTERM, with a checkpoint of the current step',
      async (name, _, exitCode) => {
        const out = join(root, name.toLowerCase());
        const child = npmTrain(out);
        await inSecondEpoch(child, out);
        process.kill(-child.process.pid!, name);
        const { code, signal } = await child.closed;
        const stderr = child.stderr();
        expect(stderr.match(new RegExp(`${name}: stopping after this step and writing a checkpoint`, 'g'))).toHaveLength(1);
        // npm dies of the signal at once (it forwards only SIGINT and SIGTERM); node finishes the step first.
        expect(signal === name || code === exitCode).toBe(true);
        const { checkpoint } = await interruptedCheckpoint(out);
        expect(stderr).toContain(`Interrupted at step ${checkpoint.step}/24`);
        const metrics = await readMetrics(out);
        expect(metrics.status).toBe('interrupted');
        expect(metrics.runs[0]!.message).toBe(`stopped by ${name} at step ${checkpoint.step}/24; the checkpoint holds that step`);
      },
      LONG,
    );

    it(
      'metrics.json says "running" while a run runs and after SIGKILL, never "completed"; --resume continues from the last epoch',
      async () => {
        const out = join(root, 'killed');
        const child = start(process.execPath, ['--import', 'tsx', 'examples/cifar10/cli.ts', 'train', ...tinyWith('4'), '--out', out]);
        await until(
          child,
          'the first epoch was recorded',
          async () => existsSync(join(out, 'metrics.json')) && (await readMetrics(out)).runs[0]!.epochs.length >= 1,
        );
        // Frozen, so what metrics.json says is what a kill at this moment leaves.
        process.kill(-child.process.pid!, 'SIGSTOP');
        const running = await readMetrics(out);
        expect(running.status).toBe('running');
        expect(running.runs[0]!.stopReason).toBe('running');
        expect(running.process.pid).toBe(child.process.pid);
        expect(running.summary).toBeNull();
        const epochsDone = running.runs[0]!.epochs.length;
        process.kill(-child.process.pid!, 'SIGKILL');
        expect((await child.closed).signal).toBe('SIGKILL');
        const killed = await readMetrics(out);
        expect(killed.status).toBe('running');
        expect(killed.runs[0]!.epochs).toHaveLength(epochsDone);
        expect(killed.summary).toBeNull();

        const resumed = await run(['train', '--resume', '--out', out]);
        expect(resumed.code).toBe(0);
        expect(resumed.err).toContain(`(epoch-end): epoch ${epochsDone + 1}, step 0 of the epoch, ${8 * epochsDone}/32 in all`);
        const final = await readMetrics(out);
        expect(final.status).toBe('completed');
        expect(final.runs[0]!.epochs).toHaveLength(4);
      },
      LONG,
    );

    it(
      'a run that fails reports "failed" with the message',
      async () => {
        const out = join(root, 'nan');
        const { code, err } = await run(['train', ...TINY, '--hyp', 'opt.nonBiasLr=1e30', '--hyp', 'opt.biasLr=1e30', '--out', out]);
        expect(code).toBe(1);
        const metrics = await readMetrics(out);
        expect(metrics.status).toBe('failed');
        expect(metrics.runs[0]!.stopReason).toBe('failed');
        expect(err).toContain(`Stopped: ${metrics.runs[0]!.message}`);
        expect(metrics.runs[0]!.message).toMatch(/loss became (NaN|-?Infinity)/);
      },
      LONG,
    );

    it(
      'a bad hyperparameter fails before anything is written, and a run directory that never finished an epoch is reused',
      async () => {
        const out = join(root, 'early-failure');
        const bad = await run(['train', ...TINY, '--hyp', 'net.whiteningKernelSize=0', '--out', out]);
        expect(bad.code).toBe(2);
        expect(bad.err).toContain('--hyp net.whiteningKernelSize must be a positive integer, got 0');
        expect(existsSync(out)).toBe(false);
        const zeroLoss = await run(['train', ...TINY, '--hyp', 'opt.lossBatchSize=0', '--out', out]);
        expect(zeroLoss.code).toBe(2);
        expect(zeroLoss.err).toContain('--hyp opt.lossBatchSize must be a number > 0');
        const noStep = await run(['train', ...tinyWith('0.001'), '--out', out]);
        expect(noStep.code).toBe(2);
        expect(noStep.err).toContain(
          '--epochs 0.001: 0.001 epochs of 512 examples make no training step (an epoch is 8 steps of 64 examples',
        );
        expect(noStep.out).not.toContain('Saved');
        expect(existsSync(out)).toBe(false);

        // What the earlier version left after such a failure: config.json alone.
        await mkdir(out);
        const run1 = {
          epochs: 3,
          batchSize: 64,
          microBatch: 64,
          evalBatch: 2500,
          baseDepth: 8,
          trainLimit: 512,
          evalLimit: 100,
          mode: 'sketch',
          whiteningSigns: 'raw',
          runs: 1,
          seed: 2,
          hyp: { net: { whiteningKernelSize: 0 } },
        };
        await writeFile(join(out, 'config.json'), JSON.stringify({ run: run1, backend: 'wasm', data: DATA }));
        const resume = await run(['train', '--resume', '--out', out]);
        expect(resume.code).toBe(2);
        expect(resume.err).toContain(
          `--resume: the run in ${out} was started with a configuration that is refused now: hyp.net.whiteningKernelSize must be a positive integer, got 0. ` +
            'It never finished an epoch, so start it afresh: the same --out without --resume.',
        );
        const fresh = await run(['train', ...tinyWith('1'), '--out', out]);
        expect(fresh.err).not.toContain('tfjs-dataflow-cifar10:');
        expect(fresh.code).toBe(0);
        expect(fresh.out).toContain(`Output: ${out} (reused: the run there never finished an epoch, so there was nothing to continue)`);
        expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).run.hyp).toEqual({});
        expect((await readMetrics(out)).status).toBe('completed');
        // Now it holds a finished run: a new one is refused.
        const again = await run(['train', ...TINY, '--out', out]);
        expect(again.code).toBe(2);
        expect(again.err).toContain(
          `--out ${out} already holds a run (checkpoint, model); continue it with --resume, or choose another --out`,
        );
      },
      LONG,
    );

    it(
      '--resume recovers a checkpoint write cut off between its renames, and refuses (never restarts silently) when nothing complete is left',
      async () => {
        const interrupted = join(root, 'sigterm-npm');
        const dead = await deadPid();
        const { checkpoint } = await interruptedCheckpoint(interrupted);

        // The old checkpoint moved aside and the new one not yet in place: only checkpoint.previous-<pid> is left.
        const recoverable = join(root, 'recoverable');
        await cp(interrupted, recoverable, { recursive: true });
        await rename(join(recoverable, 'checkpoint'), join(recoverable, `checkpoint.previous-${dead}`));
        const recovered = await run(['train', '--resume', '--out', recoverable]);
        expect(recovered.code).toBe(0);
        expect(recovered.err).toContain(
          `Recovered the checkpoint from ${join(recoverable, `checkpoint.previous-${dead}`)}: its write had been cut off between two renames`,
        );
        expect(recovered.err).toContain(
          `(interrupted): epoch ${checkpoint.epoch + 1}, step ${checkpoint.epochStep} of the epoch, ${checkpoint.step}/24 in all`,
        );
        expect((await readdir(recoverable)).filter((f) => f.startsWith('checkpoint'))).toEqual(['checkpoint']);
        expect((await readMetrics(recoverable)).status).toBe('completed');

        // The only copy left is damaged: refused, nothing trained, metrics.json as it was.
        const damaged = join(root, 'damaged');
        await cp(interrupted, damaged, { recursive: true });
        const half = join(damaged, `checkpoint.previous-${dead}`);
        await rename(join(damaged, 'checkpoint'), half);
        await truncate(join(half, 'tensors.bin'), 1000);
        const refused = await run(['train', '--resume', '--out', damaged]);
        expect(refused.code).toBe(1);
        expect(refused.err).toContain(
          `--resume: no complete checkpoint to resume from: ${half} (the checkpoint's tensors file ${join(half, 'tensors.bin')} has 1000 bytes, but`,
        );
        expect(refused.err).toContain('Refusing to start over from step 0');
        expect(refused.out).not.toContain('| epoch');
        expect((await readMetrics(damaged)).status).toBe('interrupted');

        // No checkpoint at all, though metrics.json records finished epochs: refused too.
        const lost = join(root, 'lost');
        await cp(interrupted, lost, { recursive: true });
        await rm(join(lost, 'checkpoint'), { recursive: true });
        const nothing = await run(['train', '--resume', '--out', lost]);
        expect(nothing.code).toBe(1);
        expect(nothing.err).toContain(
          `--resume: metrics.json records 1 finished epoch(s) of run 1, but ${join(lost, 'checkpoint')} holds no checkpoint. Refusing to start over from step 0`,
        );
      },
      LONG,
    );

    it(
      "names the file when a checkpoint's tensors or a model's weights are truncated, and points from a run directory to its model",
      async () => {
        const truncatedRun = join(root, 'truncated');
        await cp(join(root, 'sigterm-group'), truncatedRun, { recursive: true });
        const tensors = join(truncatedRun, 'checkpoint', 'tensors.bin');
        await truncate(tensors, 13_384);
        const resume = await run(['train', '--resume', '--out', truncatedRun]);
        expect(resume.code).toBe(1);
        expect(resume.err).toMatch(
          new RegExp(
            `cannot resume from the checkpoint in .*: the checkpoint's tensors file ${tensors.replace(/[.]/g, '\\.')} has 13384 bytes, but .*checkpoint\\.json describes \\d+ bytes of tensors: it is truncated`,
          ),
        );
        expect(resume.err).not.toContain('Based on the provided shape');

        const completed = join(root, 'ctrl-c');
        const model = join(root, 'model-copy');
        await cp(join(completed, 'model'), model, { recursive: true });
        await truncate(join(model, 'weights.bin'), 13_384);
        const evaluate = await run(['evaluate', '--model', model, '--backend', 'wasm', '--data', DATA, '--eval-limit', '100']);
        expect(evaluate.code).toBe(1);
        expect(evaluate.err).toContain(
          `the weights file ${join(model, 'weights.bin')} has 13384 bytes, but ${join(model, 'model.json')} describes`,
        );
        expect(evaluate.err).not.toContain('Based on the provided shape');

        const runDir = await run(['evaluate', '--model', completed, '--backend', 'wasm', '--data', DATA]);
        expect(runDir.code).toBe(2);
        expect(runDir.err).toContain(
          `--model ${completed} is a run directory, not a model: did you mean --model ${join(completed, 'model')}?`,
        );
      },
      LONG,
    );

    it(
      'evaluate says the sketch keeps noise at inference, and --draws K reports the mean and spread of K draws',
      async () => {
        const model = join(root, 'ctrl-c', 'model');
        const one = await run(['evaluate', '--model', model, '--backend', 'wasm', '--data', DATA, '--eval-limit', '100']);
        expect(one.code).toBe(0);
        expect(one.out).toMatch(/Test accuracy \(flip TTA\): \d\.\d{4} on 100 images/);
        expect(one.out).toContain(
          'the sketch keeps its discrete-action noise at inference, so this is one random draw; --draws K reports the mean and spread of K',
        );
        const many = await run(['evaluate', '--model', model, '--backend', 'wasm', '--data', DATA, '--eval-limit', '100', '--draws', '4']);
        expect(many.err).toBe('');
        expect(many.code).toBe(0);
        const summary = /over 4 draws: mean (\S+), std (\S+), min (\S+), max (\S+) on 100 images/.exec(many.out);
        expect(summary).not.toBeNull();
        const draws = /Draws: (.*)/.exec(many.out)![1]!.split(' ').map(Number);
        expect(draws).toHaveLength(4);
        const [mean, std, min, max] = summary!.slice(1).map(Number);
        const m = draws.reduce((a, b) => a + b, 0) / 4;
        expect(mean).toBeCloseTo(m, 4);
        expect(std).toBeCloseTo(Math.sqrt(draws.reduce((a, b) => a + (b - m) ** 2, 0) / 3), 4);
        expect([min, max]).toEqual([Math.min(...draws), Math.max(...draws)]);
        // The first draw is the one-draw evaluation: the noise streams restart with the loaded model.
        expect(draws[0]).toBe(Number(/Test accuracy \(flip TTA\): (\d\.\d{4})/.exec(one.out)![1]));
        expect(many.out).toContain(
          'The sketch keeps its discrete-action noise at inference: each draw runs the test set with fresh noise.',
        );
      },
      LONG,
    );

    it(
      'of two runs started at the same instant on one --out, one trains and the other is refused before writing anything',
      async () => {
        const out = join(root, 'race');
        const args = ['--import', 'tsx', 'examples/cifar10/train.ts', ...tinyWith('1'), '--out', out];
        const racers = [start(process.execPath, args), start(process.execPath, args)];
        const ends = await Promise.all(racers.map((c) => c.closed));
        const codes = ends.map((e) => e.code).sort();
        expect(codes, racers.map((c) => c.stderr()).join('\n')).toEqual([0, 2]);
        const loser = racers[ends.findIndex((e) => e.code === 2)]!;
        expect(loser.stderr()).toMatch(
          new RegExp(
            `--out ${out}: (process \\d+ on this machine|another process) is training this run right now \\(it holds ${join(out, '.lock')}\\)`,
          ),
        );
        expect(loser.stdout()).not.toContain('Output:');
        // Everything in the directory is the winner's: one run id in config.json and its checkpoint, a completed metrics.json, no lock left.
        const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
        const checkpoint = JSON.parse(await readFile(join(out, 'checkpoint', 'checkpoint.json'), 'utf8'));
        expect(checkpoint.runId).toBe(`${config.runId}/run-1`);
        const metrics = await readMetrics(out);
        expect(metrics.status).toBe('completed');
        expect(metrics.process.pid).toBe(racers[ends.findIndex((e) => e.code === 0)]!.process.pid);
        expect(existsSync(join(out, '.lock'))).toBe(false);
      },
      LONG,
    );

    it(
      '--resume refuses a checkpoint of another run (same configuration) and a tensors.bin of another checkpoint of the same size',
      async () => {
        const source = join(root, 'sigterm-npm');
        const otherRun = join(root, 'other-run');
        await cp(source, otherRun, { recursive: true });
        const configPath = join(otherRun, 'config.json');
        const config = JSON.parse(await readFile(configPath, 'utf8'));
        const ownId = config.runId as string;
        // Another run's directory with the same configuration, into which this checkpoint was copied.
        await writeFile(configPath, JSON.stringify({ ...config, runId: 'another-run' }));
        const refused = await run(['train', '--resume', '--out', otherRun]);
        expect(refused.code).toBe(2);
        expect(refused.err).toContain(
          `--resume: the checkpoint in ${join(otherRun, 'checkpoint')} belongs to another run (run id ${ownId}/run-1, while ${configPath} records run id another-run)`,
        );
        expect(refused.out).not.toContain('| epoch');

        const mixed = join(root, 'mixed-tensors');
        await cp(source, mixed, { recursive: true });
        const tensors = join(mixed, 'checkpoint', 'tensors.bin');
        const bytes = await readFile(tensors);
        bytes[bytes.length >> 1]! ^= 0xff;
        await writeFile(tensors, bytes);
        const mixedRun = await run(['train', '--resume', '--out', mixed]);
        expect(mixedRun.code).toBe(1);
        expect(mixedRun.err).toContain(
          `the checkpoint's tensors file ${tensors} does not match the SHA-256 that ${join(mixed, 'checkpoint', 'checkpoint.json')} records: it belongs to another checkpoint`,
        );
      },
      LONG,
    );

    it(
      'a run whose first checkpoint write was cut off (a kill, a full disk) can be resumed from step 0 or reused',
      async () => {
        const dead = await deadPid();
        const cutOff = join(root, 'cut-off');
        await cp(join(root, 'sigterm-npm'), cutOff, { recursive: true });
        // What a first checkpoint write leaves when cut off before its renames: a partial staging folder and a temporary metrics file.
        await rm(join(cutOff, 'metrics.json'));
        await rename(join(cutOff, 'checkpoint'), join(cutOff, `checkpoint.saving-${dead}`));
        await rm(join(cutOff, `checkpoint.saving-${dead}`, 'checkpoint.json'));
        await writeFile(join(cutOff, `metrics.json.tmp-${dead}`), '{"status": "runn');
        const reuse = join(root, 'cut-off-reuse');
        await cp(cutOff, reuse, { recursive: true });

        const resumed = await run(['train', '--resume', '--out', cutOff]);
        expect(resumed.err).not.toContain('tfjs-dataflow-cifar10:');
        expect(resumed.code).toBe(0);
        expect(resumed.out).toContain('No checkpoint to continue from (the run never finished an epoch): training starts at step 0');
        expect((await readdir(cutOff)).filter((f) => /saving|tmp/.test(f))).toEqual([]);

        const fresh = await run(['train', ...tinyWith('1'), '--out', reuse]);
        expect(fresh.err).not.toContain('tfjs-dataflow-cifar10:');
        expect(fresh.code).toBe(0);
        expect(fresh.out).toContain(`Output: ${reuse} (reused: the run there never finished an epoch, so there was nothing to continue)`);
        expect((await readdir(reuse)).filter((f) => /saving|tmp/.test(f))).toEqual([]);
      },
      LONG,
    );

    it(
      'evaluate refuses a model whose weights give NaN logits, whose saved statistics hold a zero std, or that takes other images, instead of printing an accuracy',
      async () => {
        const garbage = join(root, 'garbage-model');
        await cp(join(root, 'ctrl-c', 'model'), garbage, { recursive: true });
        const weights = join(garbage, 'weights.bin');
        const size = (await readFile(weights)).byteLength;
        await writeFile(weights, new Uint8Array(size).fill(0xff)); // every float32 a NaN
        const evaluateGarbage = () => run(['evaluate', '--model', garbage, '--backend', 'wasm', '--data', DATA, '--eval-limit', '100']);
        // model.json records the SHA-256 of the weights saved with it: these are refused as not those.
        const changed = await evaluateGarbage();
        expect(changed.code).toBe(1);
        expect(changed.err).toContain(`the weights file ${weights} does not match the SHA-256 that ${join(garbage, 'model.json')} records`);
        // Saved so (by a version, or a tool, that records no SHA-256): the logits give it away.
        const garbageJson = join(garbage, 'model.json');
        const { weightsSha256: _, ...unrecorded } = JSON.parse(await readFile(garbageJson, 'utf8'));
        await writeFile(garbageJson, JSON.stringify(unrecorded));
        const nan = await evaluateGarbage();
        expect(nan.code).toBe(1);
        expect(nan.err).toContain(`the model in ${garbage} produces NaN or infinite logits on the test images`);
        expect(nan.out).not.toContain('Test accuracy');

        const zeroStd = join(root, 'zero-std-model');
        await cp(join(root, 'ctrl-c', 'model'), zeroStd, { recursive: true });
        const modelJson = join(zeroStd, 'model.json');
        const manifest = JSON.parse(await readFile(modelJson, 'utf8'));
        manifest.userDefinedMetadata.tfjsDataflowCifar10.stats.std = [0, 0.2, 0.2];
        await writeFile(modelJson, JSON.stringify(manifest));
        const zero = await run(['evaluate', '--model', zeroStd, '--backend', 'wasm', '--data', DATA, '--eval-limit', '100']);
        expect(zero.code).toBe(1);
        expect(zero.err).toContain(
          `${modelJson}: its normalisation statistics (userDefinedMetadata.tfjsDataflowCifar10.stats) must be 3 finite means and 3 positive finite stds`,
        );
        expect(zero.out).not.toContain('Test accuracy');

        // A model for other images: refused before the data is fed, not deep in the accuracy op.
        const otherSize = join(root, 'other-size-model');
        await cp(join(root, 'ctrl-c', 'model'), otherSize, { recursive: true });
        const otherJson = join(otherSize, 'model.json');
        await writeFile(
          otherJson,
          (await readFile(otherJson, 'utf8')).replace(
            /"batch_input_shape":\s*\[null,\s*32,\s*32,\s*3\]/,
            '"batch_input_shape":[null,16,16,3]',
          ),
        );
        const other = await run(['evaluate', '--model', otherSize, '--backend', 'wasm', '--data', DATA, '--eval-limit', '100']);
        expect(other.code).toBe(1);
        expect(other.err).toContain(`${otherJson}: the model takes [null, 16, 16, 3]; CIFAR-10 evaluation feeds [null, 32, 32, 3] images`);
      },
      LONG,
    );

    /** A data directory of links to the real files, with `replace` making some of them something else. */
    async function dataCopy(name: string, replace: Record<string, (path: string) => Promise<void>>): Promise<string> {
      const dir = join(root, name);
      await mkdir(dir);
      for (const file of [
        'data_batch_1.bin',
        'data_batch_2.bin',
        'data_batch_3.bin',
        'data_batch_4.bin',
        'data_batch_5.bin',
        'test_batch.bin',
      ]) {
        const make = replace[file];
        await (make ? make(join(dir, file)) : symlink(join(DATA, file), join(dir, file)));
      }
      return dir;
    }

    it(
      "--resume refuses other data than the run was trained on (config.json records each data file's size and SHA-256); a run recorded before that still resumes",
      async () => {
        const out = join(root, 'other-data');
        await cp(join(root, 'ctrl-c'), out, { recursive: true });
        const configPath = join(out, 'config.json');
        const config = JSON.parse(await readFile(configPath, 'utf8'));
        expect(config.dataFiles.map((f: { file: string }) => f.file)).toEqual(['data_batch_1.bin', 'test_batch.bin']);
        // The same files, but for one pixel of the training file the run read.
        const other = await dataCopy('other-cifar10', {
          'data_batch_1.bin': async (path) => {
            const bytes = await readFile(join(DATA, 'data_batch_1.bin'));
            bytes[1]! ^= 1;
            await writeFile(path, bytes);
          },
        });
        const refused = await run(['train', '--resume', '--out', out, '--data', other]);
        expect(refused.code).toBe(2);
        expect(refused.err).toContain(
          `--resume: the run in ${out} was trained on other data: ${join(other, 'data_batch_1.bin')} (30730000 bytes, SHA-256 `,
        );
        expect(refused.err).toContain(
          `is not the data_batch_1.bin it was trained on (30730000 bytes, SHA-256 ${config.dataFiles[0].sha256.slice(0, 16)}...)`,
        );
        expect(refused.err).toContain(`pass --data naming the data it was trained on (${configPath} records ${DATA})`);
        expect(refused.out).not.toContain('Output:');
        // config.json from before the record: continued unchecked.
        delete config.dataFiles;
        await writeFile(configPath, JSON.stringify(config));
        const unchecked = await run(['train', '--resume', '--out', out, '--data', other]);
        expect(unchecked.err).not.toContain('tfjs-dataflow-cifar10:');
        expect(unchecked.code).toBe(0);
        expect(unchecked.out).toContain('Run 1/1: already complete');
      },
      LONG,
    );

    it(
      'evaluate refuses a test_batch.bin copied from a training file it does not read, instead of reporting training accuracy as test accuracy',
      async () => {
        const copied = await dataCopy('test-copied', { 'test_batch.bin': (path) => symlink(join(DATA, 'data_batch_4.bin'), path) });
        const { code, out, err } = await run([
          'evaluate',
          '--model',
          join(root, 'ctrl-c', 'model'),
          '--backend',
          'wasm',
          '--data',
          copied,
          '--eval-limit',
          '100',
        ]);
        expect(code).toBe(1);
        expect(err).toContain(
          `CIFAR-10 directory ${copied}: test_batch.bin is byte-identical to data_batch_4.bin, so the test set would be training images`,
        );
        expect(out).not.toContain('Test accuracy');
      },
      LONG,
    );

    it(
      'evaluate on wasm sizes its batches from the model when its metadata has statistics but no base depth',
      async () => {
        const model = join(root, 'no-depth-model');
        await cp(join(root, 'ctrl-c', 'model'), model, { recursive: true });
        const modelJson = join(model, 'model.json');
        const manifest = JSON.parse(await readFile(modelJson, 'utf8'));
        delete manifest.userDefinedMetadata.tfjsDataflowCifar10.baseDepth;
        await writeFile(modelJson, JSON.stringify(manifest));
        const { code, out, err } = await run(['evaluate', '--model', model, '--backend', 'wasm', '--data', DATA, '--eval-limit', '100']);
        expect(err).toBe('');
        expect(code).toBe(0);
        expect(out).toContain('base depth 8 (not recorded: from its widest layer)');
        expect(out).toMatch(/Test accuracy \(flip TTA\): \d\.\d{4} on 100 images/);
      },
      LONG,
    );

    it(
      '--resume takes over the lock and "running" record of a killed run whose pid is now this process\'s (a restarted PID 1) or another live process\'s',
      async () => {
        const out = join(root, 'reused-pid');
        await cp(join(root, 'ctrl-c'), out, { recursive: true });
        const host = hostname();
        /** What a run killed at once (SIGKILL, a power cut) as process `pid` left: its lock, and metrics.json saying "running". */
        const killedAs = async (pid: number, writtenAt: Date) => {
          const metrics = await readMetrics(out);
          await writeFile(join(out, '.lock'), JSON.stringify({ pid, host, since: writtenAt.toISOString() }));
          await writeFile(join(out, 'metrics.json'), JSON.stringify({ ...metrics, status: 'running', process: { pid, host } }));
          for (const file of ['.lock', 'metrics.json']) await utimes(join(out, file), writtenAt, writtenAt);
        };
        await killedAs(process.pid, new Date());
        const own = await run(['train', '--resume', '--out', out]);
        expect(own.err).not.toContain('tfjs-dataflow-cifar10:');
        expect(own.code).toBe(0);
        // A process that started after the run was killed holds its pid now.
        const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
        try {
          await new Promise((done) => sleeper.on('spawn', done));
          await killedAs(sleeper.pid!, new Date(Date.now() - 3_600_000));
          const other = await run(['train', '--resume', '--out', out]);
          expect(other.err).not.toContain('tfjs-dataflow-cifar10:');
          expect(other.code).toBe(0);
        } finally {
          sleeper.kill();
        }
        expect(existsSync(join(out, '.lock'))).toBe(false);
        expect((await readMetrics(out)).status).toBe('completed');
      },
      LONG,
    );

    it(
      '--resume with a damaged metrics.json continues from the checkpoint (the source of truth), keeping the damaged file aside and saying so',
      async () => {
        const out = join(root, 'damaged-metrics');
        await cp(join(root, 'ctrl-c'), out, { recursive: true });
        const metricsPath = join(out, 'metrics.json');
        const damaged = '{"status": "running", "runs": [{"run": 1, "epo';
        await writeFile(metricsPath, damaged);
        const resumed = await run(['train', '--resume', '--out', out]);
        expect(resumed.code).toBe(0);
        const aside = (await readdir(out)).filter((f) => f.startsWith('metrics.json.damaged-'));
        expect(aside).toHaveLength(1);
        expect(resumed.err).toContain(`${metricsPath} is not valid JSON: `);
        expect(resumed.err).toContain(
          `Moved it to ${join(out, aside[0]!)}: the checkpoint is the source of truth (it holds the epochs so far), so the run continues from it and metrics.json is written anew.`,
        );
        expect(await readFile(join(out, aside[0]!), 'utf8')).toBe(damaged);
        const metrics = await readMetrics(out);
        expect(metrics.status).toBe('completed');
        expect(metrics.runs[0]!.epochs.map((e) => e.epoch)).toEqual([0, 1, 2]);
      },
      LONG,
    );
  },
);

/** The id of a process that has exited, as a crashed writer's leftovers carry. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((done) => child.on('exit', done));
  return child.pid!;
}

const canMount = spawnSync('unshare', ['-rm', 'true']).status === 0;
describe.skipIf(!HAS_DATA || !canMount)(
  `CIFAR-10 CLI: a disk that fills up during a checkpoint${!HAS_DATA ? ` (skipped: no CIFAR-10 binaries at ${DATA})` : !canMount ? ' (skipped: no user namespaces to mount a small tmpfs)' : ''}`,
  () => {
    /**
     * `train` with --out on a tmpfs of `totalPages` pages of which `freePages` are left free by a filler file, in a mount
     * namespace of its own (gone when it exits, so what the run left is listed from inside it). With `resumePages`, the
     * tmpfs then grows to that many pages, a folder of an earlier version's cut-off model save (model.saving-<dead pid>)
     * is put beside the run, and the run is resumed.
     */
    function trainOnSmallDisk(freePages: number, totalPages = 32, resumePages?: number) {
      const out = '/mnt/run';
      const list = (label: string) =>
        `'${process.execPath}' -e "const fs=require('fs');const d='${out}';const m=d+'/metrics.json';` +
        `console.log('${label} '+JSON.stringify({entries:fs.readdirSync(d).sort(),metrics:fs.existsSync(m)?JSON.parse(fs.readFileSync(m,'utf8')):null}))"`;
      const train = `'${process.execPath}' --import tsx examples/cifar10/train.ts`;
      const script = [
        'P=$(getconf PAGESIZE)',
        `mount -t tmpfs -o size=$((${totalPages}*P)) none /mnt`,
        `head -c $(((${totalPages}-${freePages})*P)) /dev/zero > /mnt/filler`,
        `${train} --backend wasm --data '${DATA}' --train-limit 128 --eval-limit 50 --base-depth 4 ` +
          `--batch-size 64 --epochs 1 --seed 2 --out ${out}`,
        'echo "EXIT $?"',
        list('AFTER'),
        ...(resumePages === undefined
          ? []
          : [
              `mount -o remount,size=$((${resumePages}*P)) /mnt`,
              `sh -c 'exit 0' & wait; mkdir ${out}/model.saving-$! && head -c 5000 /dev/zero > ${out}/model.saving-$!/weights.bin`,
              `${train} --resume --out ${out}`,
              'echo "RESUMED $?"',
              list('FINAL'),
            ]),
      ].join('\n');
      const result = spawnSync('unshare', ['-rm', 'sh', '-c', script], { cwd: REPO, encoding: 'utf8', timeout: LONG });
      const parse = (label: string) =>
        JSON.parse(new RegExp(`^${label} (.*)$`, 'm').exec(result.stdout)?.[1] ?? 'null') as {
          entries: string[];
          metrics: Metrics | null;
        } | null;
      const exit = Number(/^EXIT (\d+)$/m.exec(result.stdout)?.[1]);
      const resumed = Number(/^RESUMED (\d+)$/m.exec(result.stdout)?.[1]);
      return { exit, after: parse('AFTER'), resumed, final: parse('FINAL'), stdout: result.stdout, stderr: result.stderr, out };
    }

    // Before its first checkpoint the run holds 3 pages (out/.lock, config.json, metrics.json). With 4 free, metrics.json's
    // atomic rewrite fits once the cut-off checkpoint is removed; with 3, no page is left for its temporary copy.
    it.each([4, 3])(
      'with %i pages free: exit 1 naming the file, metrics.json "failed" with that message, no partial checkpoint or temporary file',
      (freePages) => {
        const { exit, after, stderr, out } = trainOnSmallDisk(freePages);
        expect(stderr).toMatch(
          new RegExp(`tfjs-dataflow-cifar10: cannot write ${out}/checkpoint/tensors\\.bin\\.tmp-\\d+: the disk is full \\(ENOSPC\\)`),
        );
        expect(exit).toBe(1);
        expect(after!.entries).toEqual(['config.json', 'metrics.json']);
        expect(after!.metrics!.status).toBe('failed');
        expect(after!.metrics!.runs[0]!.stopReason).toBe('failed');
        expect(after!.metrics!.runs[0]!.message).toMatch(
          new RegExp(`^cannot write ${out}/checkpoint/tensors\\.bin\\.tmp-\\d+: the disk is full \\(ENOSPC\\)$`),
        );
      },
      LONG,
    );

    // With 64 pages free the epoch's checkpoint (about 52 pages with the run's records) fits, the model (about 27 more) does not.
    it(
      'a disk that fills up during the final model save: exit 1 naming the file, no partial model; --resume (with room again) saves it and clears old leftovers',
      () => {
        const { exit, after, resumed, final, stdout, stderr, out } = trainOnSmallDisk(64, 64, 256);
        const why = `cannot write ${out}/model/weights\\.bin\\.tmp-\\d+: the disk is full \\(ENOSPC\\)`;
        expect(stderr).toMatch(new RegExp(`tfjs-dataflow-cifar10: ${why}`));
        expect(exit, stdout).toBe(1);
        expect(after!.entries).toEqual(['checkpoint', 'config.json', 'curves.svg', 'metrics.json']);
        expect(after!.metrics!.status).toBe('failed');
        expect(after!.metrics!.runs[0]!.message).toMatch(new RegExp(`^${why}$`));
        expect(resumed, stderr).toBe(0);
        expect(final!.entries).toEqual(['checkpoint', 'config.json', 'curves.svg', 'metrics.json', 'model']);
        expect(final!.metrics!.status).toBe('completed');
      },
      LONG,
    );
  },
);
