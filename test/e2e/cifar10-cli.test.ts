import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SEED, closest, parseCommandLine, UsageError } from '../../examples/cifar10/args.js';
import { Battery, type RunSummary } from '../../examples/cifar10/battery.js';
import { readCheckpoint } from '../../examples/cifar10/files.js';
import { main, type CliIO } from '../../examples/cifar10/main.js';
import { Progress, formatDuration } from '../../examples/cifar10/progress.js';
import type { RunConfig } from '../../examples/cifar10/run-dir.js';
import { curves, lrCurve } from '../../examples/cifar10/report.js';
import { describeBackend } from '../../examples/cifar10/training.js';
import {
  type DiscreteAction,
  fileHandler,
  initBackend,
  predictWithFlipTTA,
  speedyConvNet,
  type EpochRecord,
  type Hyp,
  type StepInfo,
  resolveHyp,
} from '../../src/node.js';
import { maxRelativeError } from '../helpers/assert.js';
import { liveTensors } from '../helpers/memory.js';

const REPO = resolve(__dirname, '../..');
// CI checks the repo out next to a copy of shared/.
// A worktree under /work/wt/ has no ../shared next to it; the machine's copy is then used.
const DATA =
  [resolve(REPO, '../shared/data/cifar10'), '/work/shared/data/cifar10'].find((d) => existsSync(join(d, 'test_batch.bin'))) ??
  resolve(REPO, '../shared/data/cifar10');
const HAS_DATA = existsSync(join(DATA, 'data_batch_1.bin')) && existsSync(join(DATA, 'test_batch.bin'));

/** Captures what the CLI writes. */
function captureIO(): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    out: () => out,
    err: () => err,
  };
}

async function run(argv: string[]) {
  const io = captureIO();
  const code = await main(argv, io);
  return { code, out: io.out(), err: io.err() };
}

describe('CIFAR-10 CLI: arguments', () => {
  it('defaults to the seed configuration, with CIFAR10_DIR as the data directory', () => {
    const parsed = parseCommandLine(['train'], { CIFAR10_DIR: '/data/c10' });
    expect(parsed.command).toBe('train');
    if (parsed.command !== 'train') return;
    expect(parsed.config).toMatchObject({
      backend: 'auto',
      wasmThreads: null,
      data: '/data/c10',
      dataFrom: 'env',
      download: false,
      epochs: 12.1,
      batchSize: 1024,
      microBatch: null,
      baseDepth: 64,
      trainLimit: null,
      evalLimit: null,
      mode: 'sketch',
      whiteningSigns: 'raw',
      runs: 1,
      seed: 0,
      out: null,
      resume: false,
    });
    const explicit = parseCommandLine(
      ['train', '--data', 'x', '--epochs', '2.5', '--micro-batch', '128', '--hyp', 'opt.momentum=0.9', '--hyp', 'misc.ema.decayBase=0.9'],
      {},
    );
    if (explicit.command !== 'train') throw new Error('expected train');
    expect(explicit.config.data).toBe('x');
    expect(explicit.config.dataFrom).toBe('flag');
    expect(explicit.config.epochs).toBe(2.5);
    expect(explicit.config.microBatch).toBe(128);
    const canonical = parseCommandLine(['train', '--whitening-signs', 'canonical'], {});
    expect(canonical.command === 'train' && canonical.config.whiteningSigns).toBe('canonical');
    expect(explicit.config.hyp).toEqual({ opt: { momentum: 0.9 }, misc: { ema: { decayBase: 0.9 } } });
    expect([...explicit.config.explicit].sort()).toEqual(['data', 'epochs', 'hyp', 'micro-batch']);
  });

  it.each([
    [['train', '--batch-size', '0'], "--batch-size must be an integer >= 1, got '0'"],
    [['train', '--batch-size', '12.5'], "--batch-size must be an integer >= 1, got '12.5'"],
    [['train', '--epochs=-1'], "--epochs must be a positive number (fractions allowed, e.g. 12.1), got '-1'"],
    [['train', '--epochs', 'ten'], '--epochs must be a positive number'],
    [['train', '--batch-size', '256', '--micro-batch', '100'], '--micro-batch must divide --batch-size 256, got 100'],
    [['train', '--mode', 'forward'], "--mode must be one of sketch, backprop, got 'forward'"],
    [['train', '--whitening-signs', 'seed'], "--whitening-signs must be one of canonical, raw, got 'seed'"],
    [['train', '--wasm-threads', '0'], "--wasm-threads must be an integer from 1 to 4, got '0'"],
    [['train', '--wasm-threads', '8'], "--wasm-threads must be an integer from 1 to 4, got '8'"],
    [
      ['train', '--wasm-threads', '2', '--backend', 'cpu'],
      "--wasm-threads applies to the wasm backend: use it with --backend wasm or auto, not 'cpu'",
    ],
    [['evaluate', '--model', 'm', '--wasm-threads', '2', '--backend', 'webgpu'], '--wasm-threads applies to the wasm backend'],
    [['train', '--backend', 'gpu'], "--backend must be one of auto, webgpu, tensorflow, wasm, cpu, got 'gpu'"],
    [['train', '--backend', 'webgpu', '--conv-precision', 'half'], "--conv-precision must be one of float32, float16, got 'half'"],
    [
      ['train', '--backend', 'wasm', '--conv-precision', 'float16'],
      "--conv-precision applies to the webgpu backend: use it with --backend webgpu, not 'wasm'",
    ],
    [
      ['train', '--conv-precision', 'float32'],
      "--conv-precision applies to the webgpu backend: use it with --backend webgpu, not 'auto' (auto may pick a backend without WebGPU's convolutions)",
    ],
    [['evaluate', '--model', 'm', '--backend', 'cpu', '--conv-precision', 'float16'], "use it with --backend webgpu, not 'cpu'"],
    [['train', '--train-limit', '60000'], "--train-limit must be an integer from 1 to 50000, got '60000'"],
    [['train', '--train-limit', '100', '--batch-size', '256'], '--train-limit 100 is smaller than one batch (--batch-size 256)'],
    [['train', '--eval-limit', '0'], '--eval-limit must be an integer from 1 to 10000'],
    [['train', '--seed=-3'], `--seed must be an integer from 0 to ${MAX_SEED}, got '-3'`],
    [
      ['train', '--seed', '-3'],
      "Option '--seed' argument is ambiguous. Did you forget to specify the option argument for '--seed'? To specify an option argument starting with a dash use '--seed=-XYZ'.",
    ],
    [['train', '--hyp', 'opt.momentum'], "--hyp expects KEY=VALUE such as opt.momentum=0.9, got 'opt.momentum'"],
    [['train', '--hyp', 'opt.speed=2'], "--hyp: unknown hyperparameter 'opt.speed'. Valid keys: opt.batchSize"],
    [['train', '--hyp', 'opt.momentum=fast'], "--hyp opt.momentum must be a finite number, got 'fast'"],
    [['train', '--hyp', 'misc.trainEpochs=3'], '--hyp misc.trainEpochs: use --epochs instead'],
    [
      ['train', '--hyp', 'opt.lossBatchSize=0'],
      '--hyp opt.lossBatchSize must be a number > 0 (the loss is scaled by lossBatchSize / batchSize), got 0',
    ],
    [['train', '--hyp', 'opt.momentum=1'], '--hyp opt.momentum must be a number in (0, 1) (Nesterov SGD needs momentum > 0), got 1'],
    [['train', '--hyp', 'misc.ema.everyNSteps=0'], '--hyp misc.ema.everyNSteps must be a positive integer, got 0'],
    [
      ['train', '--hyp', 'net.padAmount=0'],
      "--hyp net.padAmount must be at least 1 for the seed's random 32x32 crop (an even crop needs padded images larger than itself), got 0",
    ],
    [['train', '--hyp', 'net.cutmixSize=32'], '--hyp: hyp.net.cutmixSize 32 does not fit the 32x32 training crops; it must be at most 31'],
    [
      ['train', '--hyp', 'opt.momentum=0.9', '--hyp', 'net.noiseStd=2', '--hyp', 'opt.momentum=0.8'],
      "--hyp opt.momentum is given 2 times ('0.9', '0.8'); give it once",
    ],
    [['train', '--out', ''], "--out must name a directory, got ''"],
    [['evaluate', '--model', 'm', '--draws', '0'], "--draws must be an integer from 1 to 1000, got '0'"],
    [['train', '--resume'], '--resume needs --out DIR naming the run to continue'],
    [['train', '--epochs'], "Option '--epochs <value>' argument missing"],
    [['fit'], "unknown command 'fit'; expected 'train' or 'evaluate'"],
    [['trian'], "unknown command 'trian'; expected 'train' or 'evaluate'. Did you mean 'train'?"],
    [
      ['train', '--epochs', '1e8'],
      "--epochs must be a number in (0, 1000] (the seed trains 12.1; every epoch's schedule is held in memory), got 100000000",
    ],
    [['train', '--epochs', '1e300'], '--epochs must be a number in (0, 1000]'],
    [['train', '--base-depth', '100000'], '--base-depth must be an integer in [1, 512] (the last group has 8x as many channels'],
    [
      ['train', '--seed', String(MAX_SEED - 1), '--runs', '3'],
      `--seed ${MAX_SEED - 1} with --runs 3 uses seeds ${MAX_SEED - 1} to ${MAX_SEED + 1}, beyond the largest allowed seed ${MAX_SEED}; lower --seed to at most ${MAX_SEED - 2}`,
    ],
    [['train', '--epochs', '2', '--epochs', '3'], "--epochs is given 2 times ('2', '3'); give it once"],
    [['evaluate', '--model', 'a', '--model', 'b'], "--model is given 2 times ('a', 'b'); give it once"],
    [['evaluate'], 'evaluate needs --model DIR'],
  ])('rejects %j with a message naming the flag', (argv, message) => {
    expect(() => parseCommandLine(argv, {})).toThrow(UsageError);
    expect(() => parseCommandLine(argv, {})).toThrow(message);
  });

  it('lists the valid flags for an unknown one, and main exits with code 2', async () => {
    const { code, out, err } = await run(['train', '--epoch', '3']);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toContain("Unknown option '--epoch'. Did you mean --epochs? Valid flags for 'train'");
    expect(err).toContain(
      "Valid flags for 'train': --backend, --wasm-threads, --conv-precision, --data, --download, --cache-dir, --eval-limit, --help (-h), --epochs, --batch-size",
    );
    expect(err).toContain('Run with --help for usage.');
    const onWasm = await run(['train', '--backend', 'wasm', '--conv-precision', 'float16']);
    expect(onWasm.code).toBe(2);
    expect(onWasm.err).toContain('--conv-precision applies to the webgpu backend');
    const evaluate = await run(['evaluate', '--model', 'm', '--runs', '2']);
    expect(evaluate.code).toBe(2);
    expect(evaluate.err).toContain("Unknown option '--runs'. --runs is a flag of 'train', not 'evaluate'. Valid flags");
    expect(evaluate.err).toContain(
      "Valid flags for 'evaluate': --backend, --wasm-threads, --conv-precision, --data, --download, --cache-dir, --eval-limit, --help (-h), --model, --eval-batch, --draws",
    );
  });

  it('suggests the flag meant for a typo: a swap, a missing letter, a prefix, an underscore; nothing for a stranger', () => {
    const message = (argv: string[]) => {
      try {
        parseCommandLine(argv, {});
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error(`${argv.join(' ')} parsed`);
    };
    expect(message(['train', '--batchsize', '64'])).toMatch(/^Unknown option '--batchsize'\. Did you mean --batch-size\? Valid flags/);
    expect(message(['train', '--base_depth', '8'])).toContain('Did you mean --base-depth?');
    expect(message(['train', '--eopchs', '2'])).toContain('Did you mean --epochs?');
    expect(message(['train', '--whitening', 'raw'])).toContain('Did you mean --whitening-signs?');
    expect(message(['evaluate', '--model', 'm', '--eval', '9'])).toContain('Did you mean --eval-limit or --eval-batch?');
    expect(message(['train', '--lr', '0.1'])).toMatch(/^Unknown option '--lr'\. Valid flags/);
    expect(closest('mode', ['model', 'mode'])).toEqual(['mode']);
    expect(closest('xyz', ['train', 'evaluate'])).toEqual([]);
  });

  it('prints help for --help, the command and no arguments', async () => {
    for (const argv of [[], ['--help'], ['train', '--help'], ['evaluate', '-h']]) {
      const { code, out } = await run(argv);
      expect(code).toBe(0);
      expect(out).toMatch(/^Usage: tfjs-dataflow-cifar10/);
    }
    expect((await run(['train', '--help'])).out).toContain('--micro-batch N');
    // The help and the summary line say the same accuracy.
    expect((await run(['train', '--help'])).out).toContain(
      "test accuracy: the EMA net's, or the live net's in a run that ends before the EMA starts",
    );
  });

  it("names the command as it was typed: the bin's, or npm's for the npm scripts", async () => {
    // main() as the package bin (cli.ts) and as `npm run train` / `npm run evaluate` (train.ts, evaluate.ts) call it.
    const asBin = captureIO();
    await main(['train', '--help'], asBin);
    expect(asBin.out()).toMatch(/^Usage: tfjs-dataflow-cifar10 train \[flags\]\n/);
    expect(asBin.out()).not.toContain('npm run');
    const asNpm = captureIO();
    await main(['evaluate', '--help'], asNpm, 'npm');
    expect(asNpm.out()).toMatch(/^Usage: npm run evaluate -- --model DIR \[flags\]\n/);
    const top = await run(['--help']);
    expect(top.out).toContain('train      train (tfjs-dataflow-cifar10 train [flags])');
    expect(top.out).not.toContain('npm run');
  });

  it.skipIf(!existsSync(join(REPO, 'dist/cifar10-cli.js')))(
    'the built bin (dist/cifar10-cli.js, after npm run build) prints its own name in --help, and npm run train -- --help its own',
    () => {
      const bin = spawnSync(process.execPath, [join(REPO, 'dist/cifar10-cli.js'), 'train', '--help'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(bin.status).toBe(0);
      expect(bin.stdout).toMatch(/^Usage: tfjs-dataflow-cifar10 train \[flags\]\n/);
      expect(bin.stdout).not.toContain('npm run');
      const top = spawnSync(process.execPath, [join(REPO, 'dist/cifar10-cli.js')], { encoding: 'utf8', timeout: 60_000 });
      expect(top.stdout).toMatch(/^Usage: tfjs-dataflow-cifar10 <command> \[flags\]\n/);
      expect(top.stdout).not.toContain('npm run');
      const npm = spawnSync('npm', ['run', '--silent', 'train', '--', '--help'], {
        cwd: REPO,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, npm_config_update_notifier: 'false' },
      });
      expect(npm.status).toBe(0);
      expect(npm.stdout).toMatch(/^Usage: npm run train -- \[flags\]\n/);
    },
    120_000,
  );

  it('ends with the final accuracy of one run plainly (no variance), and the mean and variance of several, saying whose accuracy it is', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cifar10-summary-'));
    const summary = (run: number, finalValAcc: number, finalEmaValAcc: number | null): RunSummary => ({
      run,
      seed: run - 1,
      dir,
      stopReason: 'completed',
      epochs: [],
      trainingSeconds: 1,
      wallSeconds: 2,
      finalValAcc,
      finalEmaValAcc,
    });
    const battery = async (runs: Array<[number, number | null]>) => {
      const b = new Battery(dir, { runs: runs.length } as RunConfig, {});
      await b.runAll(
        [],
        () => null,
        () => undefined,
        async (r) => summary(r, ...runs[r - 1]!),
      );
      const metrics = JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')) as { summary: Record<string, unknown> };
      return { line: b.summaryLine(), metrics: metrics.summary };
    };
    try {
      const one = await battery([[0.3, 0.3457]]);
      expect(one.line).toBe(
        'Final test accuracy: 0.3457 (EMA net, flip TTA). One run, so no variance: --runs N reports the mean and variance over N seeds.',
      );
      expect(one.line).not.toContain('nan');
      expect(one.metrics).toMatchObject({ metric: 'final val_acc (EMA net, flip TTA)', mean: 0.3457, count: 1, variance: null });
      const short = await battery([[0.21, null]]);
      expect(short.line).toBe(
        'Final test accuracy: 0.2100 (live net: the run ended before the EMA started, flip TTA). One run, so no variance: --runs N reports the mean and variance over N seeds.',
      );
      expect(short.metrics['metric']).toBe('final val_acc (live net: the run ended before the EMA started, flip TTA)');
      const two = await battery([
        [0.3, 0.4],
        [0.3, 0.5],
      ]);
      expect(two.line).toBe('Mean and variance of the final test accuracy (EMA net, flip TTA): (0.4500, 5.0000e-3) over 2 runs');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("curves.svg has a learning-rate panel: the seed's OneCycle per step, warm-up then anneal", () => {
    const hyp = resolveHyp({ opt: { batchSize: 256 }, misc: { trainEpochs: 2 } });
    const rates = lrCurve(hyp, [8, 8], 16);
    expect(rates.map(([x]) => x)).toEqual(Array.from({ length: 16 }, (_, i) => (i + 1) / 8));
    const peak = rates.reduce((best, r, i) => (r[1] > rates[best]![1] ? i : best), 0);
    expect(rates[0]![1]).toBeLessThan(1e-15);
    // The peak falls between steps (pctStart x 16 - 1 = 2.68): near the maximum, not past it.
    expect(rates[peak]![1]).toBeLessThanOrEqual(hyp.opt.nonBiasLr);
    expect(rates[peak]![1]).toBeGreaterThan(0.95 * hyp.opt.nonBiasLr);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(15);
    // A long run is drawn with at most 500 points, the last step included.
    const long = lrCurve(
      hyp,
      Array.from({ length: 13 }, () => 48),
      13 * 48,
    );
    expect(long.length).toBeLessThanOrEqual(500);
    expect(long.at(-1)![0]).toBe(13);
    const record: EpochRecord = {
      epoch: 0,
      trainLoss: 2.3,
      trainAcc: 0.1,
      valLoss: 2,
      valAcc: 0.2,
      emaValAcc: null,
      totalTimeSeconds: 1,
      steps: 8,
      imagesPerSec: 1,
      lr: rates[7]![1],
    };
    const svg = curves([record], rates);
    expect(svg).toContain('>Learning rate</text>');
    expect(svg).toContain('OneCycle, non-bias group');
    // Without the schedule the panel still shows each epoch's rate, from the records.
    expect(curves([record])).toContain('each epoch&apos;s last step');
  });

  it("names the backends 'auto' passed over in a few words, and gives their reasons in full with --verbose", () => {
    const reason =
      'WebAssembly SIMD with 2 threads (passed over: webgpu: only a software adapter (llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) 0.0.1), slower than wasm; ' +
      "tensorflow: backend 'tensorflow' needs @tensorflow/tfjs-node-gpu (CUDA) or @tensorflow/tfjs-node at 4.22: npm install @tensorflow/tfjs-node-gpu@4.22.0 " +
      "(its install step downloads libtensorflow). Tried @tensorflow/tfjs-node-gpu: Cannot find package '@tensorflow/tfjs-node-gpu' imported from /x/node.ts; " +
      "@tensorflow/tfjs-node: Cannot find package '@tensorflow/tfjs-node' imported from /x/node.ts)";
    const line = describeBackend({ backend: 'wasm', wasmThreads: 2, reason });
    expect(line).toBe(
      'Backend: wasm (WebAssembly SIMD with 2 threads); auto passed over webgpu (only a software adapter, slower than wasm), tensorflow (not installed); --verbose or metrics.json for why',
    );
    expect(line.length).toBeLessThan(200);
    expect(describeBackend({ backend: 'wasm', wasmThreads: 2, reason }, true)).toBe(`Backend: wasm (${reason})`);
    expect(describeBackend({ backend: 'cpu', reason: 'plain JavaScript (slow; the reference for correctness)' })).toBe(
      'Backend: cpu (plain JavaScript (slow; the reference for correctness))',
    );
  });

  it('--resume refuses a missing run, a mismatched config, and a new run over an old one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cifar10-cli-'));
    try {
      const missing = await run(['train', '--resume', '--out', dir, '--backend', 'cpu']);
      expect(missing.code).toBe(2);
      expect(missing.err).toContain(`--resume: ${dir} holds no run to continue (no config.json)`);
      const runConfig = {
        epochs: 2,
        batchSize: 256,
        microBatch: 256,
        evalBatch: 2048,
        baseDepth: 16,
        trainLimit: 2048,
        evalLimit: 500,
        mode: 'sketch',
        whiteningSigns: 'raw',
        runs: 1,
        seed: 1,
        hyp: {},
      };
      await writeFile(join(dir, 'config.json'), JSON.stringify({ run: runConfig, backend: 'cpu', data: DATA }));
      const mismatch = await run([
        'train',
        '--resume',
        '--out',
        dir,
        '--backend',
        'cpu',
        '--epochs',
        '3',
        '--seed',
        '1',
        '--base-depth',
        '32',
        '--whitening-signs',
        'canonical',
      ]);
      expect(mismatch.code).toBe(2);
      expect(mismatch.err).toContain(
        `--resume: the run in ${dir} was started with a different configuration: --epochs 3 (the run has 2); --base-depth 32 (the run has 16); --whitening-signs "canonical" (the run has "raw").`,
      );
      // --conv-precision: a resumed run keeps its own, and applies only to a WebGPU run.
      const onCpu = await run(['train', '--resume', '--out', dir, '--conv-precision', 'float16']);
      expect(onCpu.code).toBe(2);
      expect(onCpu.err).toContain(
        "--conv-precision applies to the webgpu backend, and the run being resumed trains on 'cpu': drop --conv-precision, or add --backend webgpu",
      );
      await writeFile(
        join(dir, 'config.json'),
        JSON.stringify({ run: runConfig, backend: 'webgpu', convPrecision: 'float16', data: DATA }),
      );
      const otherPrecision = await run(['train', '--resume', '--out', dir, '--conv-precision', 'float32']);
      expect(otherPrecision.code).toBe(2);
      expect(otherPrecision.err).toContain(
        `--resume: the run in ${dir} was started with --conv-precision float16, not float32: drop --conv-precision to continue it as it was started`,
      );
      await writeFile(join(dir, 'config.json'), JSON.stringify({ run: runConfig, backend: 'cpu', data: DATA }));
      // A run with a checkpoint is work a new run must not overwrite.
      await mkdir(join(dir, 'checkpoint'));
      await writeFile(join(dir, 'checkpoint', 'checkpoint.json'), '{}');
      const again = await run(['train', '--out', dir, '--backend', 'cpu']);
      expect(again.code).toBe(2);
      expect(again.err).toContain(`--out ${dir} already holds a run (checkpoint); continue it with --resume`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('without data or --download, says how to get the data', async () => {
    const cache = await mkdtemp(join(tmpdir(), 'cifar10-cache-'));
    const saved = process.env['CIFAR10_DIR'];
    delete process.env['CIFAR10_DIR'];
    try {
      const { code, err } = await run(['train', '--backend', 'cpu', '--cache-dir', cache, '--out', join(cache, 'out')]);
      expect(code).toBe(1);
      expect(err).toContain('CIFAR-10 is not in the cache');
      expect(err).toContain('(CLI: --data <dir>)');
      expect(err).toContain('Or pass --download to fetch it (163 MB) into the cache.');
    } finally {
      if (saved !== undefined) process.env['CIFAR10_DIR'] = saved;
      await rm(cache, { recursive: true, force: true });
    }
  });

  it('shows progress as a bar on a terminal and as periodic lines elsewhere, with the time estimated after the first step and an ETA', () => {
    const step = (epochStep: number, extra: Partial<StepInfo> = {}): StepInfo => ({
      epoch: 0,
      step: epochStep,
      epochStep,
      epochSteps: 4,
      totalSteps: 8,
      lr: 0.002,
      imagesPerSec: 123.4,
      ...extra,
    });
    let tty = '';
    const bar = new Progress({ write: (t: string) => (tty += t), isTTY: true, columns: 200 }, 2);
    bar.start();
    bar.update(step(1, { loss: 2.25, acc: 0.125 }));
    expect(tty).toMatch(/^Estimated time: \d+ s for 8 steps \(\d+ s a step so far; about \d+ s left\)\n/);
    expect(tty).toMatch(
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the progress bar's ANSI erase-line escape is what is checked.
      /\r\[######\.{18}\] epoch 1\/2 step 1\/4 \(1\/8\) loss 2\.2500 acc 0\.1250 lr 2\.000e-3 123 img\/s \d+ ms\/step ETA \d+ s\x1b\[K$/,
    );
    bar.clear();
    expect(tty.endsWith('\r\x1b[K')).toBe(true);
    let plain = '';
    const lines = new Progress({ write: (t: string) => (plain += t) }, 12.1, 60_000);
    lines.start();
    lines.update(step(1, { loss: 2.25, acc: 0.125 }));
    lines.update(step(2));
    // One estimate, said once; the periodic lines wait for their interval or the epoch's end.
    expect(plain.split('\n').filter(Boolean)).toHaveLength(1);
    expect(plain).toMatch(/^Estimated time: /);
    lines.update(step(4));
    // The epoch as the seed counts it: of 12.1, not of ceil(12.1) = 13.
    expect(plain.split('\n')[1]).toMatch(
      /^epoch 1\/12\.1 step 4\/4 \(4\/8\) loss 2\.2500 acc 0\.1250 lr 2\.000e-3 123 img\/s \d+ ms\/step ETA \d+ s$/,
    );
    // A terminal that reports 0 columns (or none) gets 80, not a bar cut to 20 characters.
    for (const columns of [0, undefined, Number.NaN]) {
      let drawn = '';
      const zero = new Progress({ write: (t: string) => (drawn += t), isTTY: true, columns }, 2);
      zero.start();
      zero.update(step(1, { loss: 2.25, acc: 0.125 }));
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the bar's own line, between \r and the erase-line escape.
      const bar = /\r(.*)\x1b\[K$/.exec(drawn)![1]!;
      // 79 columns: what fits stays (the step, loss, accuracy, ms/step and ETA; a narrower bar), the rest goes.
      expect(bar.length, `columns ${columns}`).toBeLessThanOrEqual(79);
      expect(bar.length).toBeGreaterThan(60);
      expect(bar).toMatch(/^\[#*\.*\] epoch 1\/2 step 1\/4 \(1\/8\) loss 2\.2500 acc 0\.1250 \d+ ms\/step ETA \d+ s$/);
    }
    // ms/step is new at every step, while the loss waits for the trainer's next read.
    let each = '';
    const perStep = new Progress({ write: (t: string) => (each += t), isTTY: true, columns: 200 }, 2);
    perStep.start();
    for (let s = 1; s <= 3; s++) {
      const before = Date.now();
      while (Date.now() - before < 110);
      perStep.update(step(s, s === 1 ? { loss: 2.25, acc: 0.125 } : {}));
    }
    const redraws = each.split('\r').filter((t) => t.includes('ms/step'));
    expect(redraws).toHaveLength(3);
    for (const r of redraws) expect(r).toMatch(/loss 2\.2500 acc 0\.1250 .* (1[1-9]\d|[2-9]\d\d) ms\/step/);
    expect(formatDuration(28_080)).toBe('7 h 48 min');
    expect(formatDuration(47)).toBe('47 s');
    expect(formatDuration(600)).toBe('10 min');
  });
});

// A small configuration: small enough for two busy cores, large enough to learn. Runs take minutes when the cores are shared.
const LONG = 900_000;
const SMALL_RUN = [
  '--backend',
  'wasm',
  '--data',
  DATA,
  '--train-limit',
  '2048',
  '--eval-limit',
  '500',
  // Base depth 8: the CLI's whole path at a quarter of depth 16's convolution work (these runs prove behaviour).
  '--base-depth',
  '8',
  '--batch-size',
  '256',
  '--epochs',
  '2',
  '--seed',
  '1',
];
// One wasm thread (threads are the default on a multi-core machine): the run the threaded one is compared with.
const SMALL = [...SMALL_RUN, '--wasm-threads', '1'];

interface Metrics {
  versions: Record<string, string>;
  backend: { backend: string };
  config: { microBatch: number; epochs: number };
  hyp: { net: { baseDepth: number } };
  runs: Array<{ stopReason: string; epochs: EpochRecord[]; finalEmaValAcc: number | null; trainingSeconds: number; wallSeconds: number }>;
  summary: { mean: number; count: number } | null;
}

/** The numbers a resumed run must reproduce (timings aside). */
const numbers = (records: EpochRecord[]) =>
  records.map(({ epoch, trainLoss, trainAcc, valLoss, valAcc, emaValAcc, steps, lr }) => ({
    epoch,
    trainLoss,
    trainAcc,
    valLoss,
    valAcc,
    emaValAcc,
    steps,
    lr,
  }));

describe.skipIf(!HAS_DATA)(
  HAS_DATA
    ? 'CIFAR-10 CLI: training on wasm with the real data'
    : `CIFAR-10 CLI e2e: SKIPPED, no CIFAR-10 binaries at ${DATA} (CI provides ../shared/data/cifar10)`,
  () => {
    let root: string;
    let uninterrupted: Metrics;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'cifar10-e2e-'));
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it(
      'trains 2 epochs, prints the table, writes every output, and the saved model predicts like the trained net',
      async () => {
        const out = join(root, 'a');
        const before = liveTensors();
        const { code, out: stdout, err } = await run(['train', ...SMALL, '--out', out]);
        expect(err).not.toContain('tfjs-dataflow-cifar10:');
        expect(code).toBe(0);
        expect(liveTensors()).toBe(before);

        expect(stdout).toContain('Backend: wasm');
        expect(stdout).toContain('Micro-batch: 256 images per pass, 1 pass per step (chosen for wasm');
        expect(stdout).toContain("Recipe: seed (the model is built from the library's layers: WhiteningConv 'initial_block_whiten'");
        expect(stdout).toContain(
          '|  epoch  |  train_loss  |  val_loss  |  train_acc  |  val_acc  |  ema_val_acc  |  total_time_seconds  |',
        );
        expect(stdout).toMatch(/\|\s+0\s+\|\s+\d\.\d{4}\s+\|/);
        expect(stdout).toMatch(/\|\s+1\s+\|\s+\d\.\d{4}\s+\|/);
        expect(stdout).toMatch(
          /Final test accuracy: 0\.\d{4} \(EMA net, flip TTA\)\. One run, so no variance: --runs N reports the mean and variance over N seeds\./,
        );
        expect(stdout).not.toContain('nan');
        expect(err).toMatch(/epoch 2\/2 step 8\/8 \(16\/16\) loss \d\.\d{4} acc 0\.\d{4} lr \S+ \d+ img\/s/);

        uninterrupted = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as Metrics;
        expect(uninterrupted.versions).toMatchObject({ tfjsCore: tf.version_core, tfjsLayers: tfl.version_layers, node: process.version });
        expect(uninterrupted.backend.backend).toBe('wasm');
        expect(uninterrupted.config).toMatchObject({ epochs: 2, microBatch: 256 });
        expect(uninterrupted.hyp.net.baseDepth).toBe(8);
        const [result] = uninterrupted.runs;
        expect(result!.stopReason).toBe('completed');
        expect(result!.epochs.map((e) => e.steps)).toEqual([8, 16]);
        expect(result!.trainingSeconds).toBeGreaterThan(0);
        expect(result!.wallSeconds).toBeGreaterThan(result!.trainingSeconds);
        // Chance is 0.1.
        expect(result!.finalEmaValAcc).toBeGreaterThan(0.2);
        expect(uninterrupted.summary).toMatchObject({ mean: result!.finalEmaValAcc, count: 1 });
        expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).run.seed).toBe(1);
        const svg = await readFile(join(out, 'curves.svg'), 'utf8');
        expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
        expect(svg).toContain('Accuracy');
        // The learning-rate panel: its curve is the trainer's own schedule (the rate each epoch's last step used, as recorded).
        expect(svg).toContain('>Learning rate</text>');
        const rates = lrCurve(uninterrupted.hyp as unknown as Hyp, [8, 8], 16);
        expect(rates).toHaveLength(16);
        expect([rates[7]!, rates[15]!]).toEqual(result!.epochs.map((e) => [e.epoch + 1, e.lr]));

        // The last epoch's checkpoint: the end of the schedule, EMA included.
        const saved = await readCheckpoint<{ seed: number }>(join(out, 'checkpoint'));
        expect(saved).toBeDefined();
        const { checkpoint, meta } = saved!;
        expect(meta).toMatchObject({ reason: 'epoch-end', config: { seed: 1, baseDepth: 8 } });
        expect([checkpoint.epoch, checkpoint.epochStep, checkpoint.step, checkpoint.emaActive]).toEqual([2, 0, 16, true]);
        expect(numbers(checkpoint.records)).toEqual(numbers(result!.epochs));

        // The saved model is the EMA net: load it and compare with a net given the checkpoint's EMA weights, same noise.
        const loaded = await tfl.loadLayersModel(fileHandler(join(out, 'model')));
        const reference = speedyConvNet({ hyp: { net: { baseDepth: 8 } }, mode: 'sketch', seed: 1 });
        try {
          for (const w of reference.model.weights) {
            const value = checkpoint.tensors[`stages/ema/${w.originalName}`] ?? checkpoint.tensors[`weights/${w.originalName}`];
            expect(value, w.originalName).toBeDefined();
            w.write(tf.clone(value!));
          }
          for (let i = 1; i <= 3; i++) {
            const state = { seed: 77 + i, counter: 0 };
            (loaded.getLayer(`discrete_action_${i}`) as DiscreteAction).random.setState(state);
            reference.discreteActions[i - 1]!.random.setState(state);
          }
          const images = tf.randomNormal([16, 32, 32, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
          const [a, b] = [predictWithFlipTTA(loaded, images), predictWithFlipTTA(reference.model, images)];
          expect(maxRelativeError(await a.data(), await b.data(), 1e-6)).toBeLessThan(1e-6);
          tf.dispose([images, a, b]);
          expect((loaded.getUserDefinedMetadata() as { tfjsDataflowCifar10: { weights: string } }).tfjsDataflowCifar10.weights).toBe('ema');
        } finally {
          loaded.dispose();
          reference.model.dispose();
          tf.dispose(Object.values(checkpoint.tensors));
        }

        // evaluate: the saved model's accuracy with flip TTA (its noise streams start afresh, so close, not equal).
        const evaluated = await run([
          'evaluate',
          '--model',
          join(out, 'model'),
          '--backend',
          'wasm',
          '--data',
          DATA,
          '--eval-limit',
          '500',
        ]);
        expect(evaluated.err).toBe('');
        expect(evaluated.code).toBe(0);
        const acc = Number(/Test accuracy \(flip TTA\): (\d\.\d{4}) on 500 images/.exec(evaluated.out)?.[1]);
        expect(Math.abs(acc - result!.finalEmaValAcc!)).toBeLessThan(0.05);
      },
      LONG,
    );

    it(
      "--wasm-threads 2 trains (in a process of its own) to the one-thread run's accuracy",
      async () => {
        expect(uninterrupted).toBeDefined();
        const out = join(root, 'threads');
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', 'examples/cifar10/cli.ts', 'train', ...SMALL_RUN, '--wasm-threads', '2', '--out', out],
          {
            cwd: REPO,
            env: { ...process.env, XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? tmpdir() },
            stdio: ['ignore', 'pipe', 'pipe'],
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const code = await new Promise<number | null>((done) => child.on('exit', (c) => done(c)));
        expect(stderr).not.toContain('tfjs-dataflow-cifar10:');
        expect(code).toBe(0);
        expect(stdout).toContain('WebAssembly SIMD with 2 threads');
        const metrics = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as Metrics;
        const [threaded] = metrics.runs;
        const [single] = uninterrupted!.runs;
        expect(threaded!.stopReason).toBe('completed');
        // Same seed and recipe; only the order of float32 sums inside the kernels differs: 16 steps later the
        // accuracy on 500 images agrees to within a few images.
        expect(Math.abs(threaded!.finalEmaValAcc! - single!.finalEmaValAcc!)).toBeLessThan(0.03);
      },
      LONG,
    );

    it(
      'Ctrl-C mid-run checkpoints and exits 130; --resume finishes with the uninterrupted numbers',
      async () => {
        expect(uninterrupted).toBeDefined();
        const out = join(root, 'b');
        const child = spawn(process.execPath, ['--import', 'tsx', 'examples/cifar10/cli.ts', 'train', ...SMALL, '--out', out], {
          cwd: REPO,
          env: { ...process.env, XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'] ?? tmpdir() },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const exited = new Promise<NodeJS.Signals | null>((done) => child.on('exit', (_code, signal) => done(signal)));
        // Interrupt once the first epoch's checkpoint is on disk, i.e. during the second epoch.
        await new Promise<void>((done) => {
          child.stdout.on('data', async (d: Buffer) => {
            stdout += d.toString();
            if (!/\|\s+0\s+\|/.test(stdout)) return;
            while (!existsSync(join(out, 'checkpoint', 'checkpoint.json'))) await new Promise((r) => setTimeout(r, 100));
            done();
          });
        });
        child.kill('SIGINT');
        // Once the checkpoint is written the CLI ends by re-raising SIGINT, so a shell sees $? 130.
        const signal = await exited;
        expect(stderr).toContain('Ctrl-C: stopping after this step and writing a checkpoint');
        expect(signal).toBe('SIGINT');
        expect(stderr).toMatch(
          /Interrupted at step \d+\/16 \(epoch 2, step \d of 8\)\. Checkpoint written to .*; continue with: --resume --out /,
        );

        const stopped = await readCheckpoint<unknown>(join(out, 'checkpoint'));
        const { checkpoint, meta } = stopped!;
        tf.dispose(Object.values(checkpoint.tensors));
        expect(meta.reason).toBe('interrupted');
        expect(checkpoint.epoch).toBe(1);
        expect(checkpoint.step).toBe(8 + checkpoint.epochStep);
        const metrics = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as Metrics;
        expect(metrics.runs[0]!.stopReason).toBe('interrupted');

        // Resume in-process: only --resume and --out; the rest comes from the run.
        const resumed = await run(['train', '--resume', '--out', out]);
        expect(resumed.code).toBe(0);
        expect(resumed.err).toContain(
          `Resumed from the checkpoint of ${meta.savedAt} (interrupted): epoch 2, step ${checkpoint.epochStep} of the epoch, ${checkpoint.step}/16 in all`,
        );
        const final = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as Metrics;
        expect(final.runs[0]!.stopReason).toBe('completed');
        expect(numbers(final.runs[0]!.epochs)).toEqual(numbers(uninterrupted.runs[0]!.epochs));
        expect(existsSync(join(out, 'model', 'model.json'))).toBe(true);

        // A finished run resumes to nothing.
        const again = await run(['train', '--resume', '--out', out]);
        expect(again.code).toBe(0);
        expect(again.out).toContain('Run 1/1: already complete');
      },
      LONG,
    );

    it(
      '--runs 2 trains two seeds into run-1/ and run-2/ and prints their mean and variance',
      async () => {
        const out = join(root, 'runs');
        const { code, out: stdout } = await run([
          'train',
          '--backend',
          'wasm',
          '--data',
          DATA,
          '--train-limit',
          '256',
          '--eval-limit',
          '100',
          '--base-depth',
          '8',
          '--batch-size',
          '128',
          '--epochs',
          '3',
          '--runs',
          '2',
          '--seed',
          '5',
          '--out',
          out,
        ]);
        expect(code).toBe(0);
        expect(stdout).toContain('Run 1/2 (seed 5)');
        expect(stdout).toContain('Run 2/2 (seed 6)');
        const metrics = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as Metrics & { summary: { variance: number } };
        // 6 steps: the EMA (every 5 steps) has started, so its accuracy is the one reported.
        const finals = metrics.runs.map((r) => r.finalEmaValAcc!);
        expect(finals.every((f) => typeof f === 'number')).toBe(true);
        expect(metrics.runs.map((r) => r.stopReason)).toEqual(['completed', 'completed']);
        expect(metrics.summary.mean).toBeCloseTo((finals[0]! + finals[1]!) / 2, 10);
        expect(metrics.summary.variance).toBeCloseTo((finals[0]! - finals[1]!) ** 2 / 2, 10);
        const [mean, variance] = /Mean and variance of the final test accuracy \(EMA net, flip TTA\): \((\S+), (\S+)\) over 2 runs/
          .exec(stdout)!
          .slice(1)
          .map(Number);
        expect(mean).toBeCloseTo(metrics.summary.mean, 4);
        expect(variance).toBeCloseTo(metrics.summary.variance, 4);
        for (const r of [1, 2]) {
          const dir = join(out, `run-${r}`);
          expect(JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')).run.seed).toBe(4 + r);
          for (const file of [
            'curves.svg',
            'checkpoint/checkpoint.json',
            'checkpoint/tensors.bin',
            'model/model.json',
            'model/weights.bin',
          ]) {
            expect(existsSync(join(dir, file)), `run-${r}/${file}`).toBe(true);
          }
        }
      },
      LONG,
    );

    it(
      'stops on a non-finite or diverging loss, naming the step, with a non-zero exit, never checkpoints the diverged net, and leaves no tensor behind',
      async () => {
        const out = join(root, 'nan');
        // Counted on the backend the run uses (main() makes it the active one).
        await initBackend('wasm');
        const before = liveTensors();
        const { code, err } = await run([
          'train',
          '--backend',
          'wasm',
          '--data',
          DATA,
          '--train-limit',
          '256',
          '--eval-limit',
          '100',
          '--base-depth',
          '8',
          '--batch-size',
          '256',
          '--epochs',
          '4',
          '--hyp',
          'opt.nonBiasLr=1e30',
          '--hyp',
          'opt.biasLr=1e30',
          '--out',
          out,
        ]);
        expect(code).toBe(1);
        expect(tf.getBackend()).toBe('wasm');
        expect(liveTensors()).toBe(before);
        // One step an epoch: the first step's loss is finite, the net it leaves is not, and the evaluation after it says so.
        expect(err).toContain(
          'Stopped: validation loss became NaN after epoch 0 (step 1). No checkpoint was written (no epoch ended with a finite loss)',
        );
        const metrics = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as Metrics & { runs: Array<{ message?: string }> };
        expect(metrics.runs[0]!.stopReason).toBe('failed');
        expect(metrics.runs[0]!.message).toBe('validation loss became NaN after epoch 0 (step 1)');
        expect(existsSync(join(out, 'checkpoint'))).toBe(false);
        expect(existsSync(join(out, 'model'))).toBe(false);

        // A training loss that rises past 10x its start (and chance) after a finished epoch: stopped as diverged, naming
        // the knob, the checkpoint kept. The rate peaks late (percentStart 0.9), so epoch 1 ends at a loss of about 15.
        const later = join(root, 'diverged-later');
        const stopped = await run([
          'train',
          '--backend',
          'wasm',
          '--data',
          DATA,
          '--train-limit',
          '256',
          '--eval-limit',
          '100',
          '--base-depth',
          '8',
          '--batch-size',
          '64',
          '--epochs',
          '4',
          '--hyp',
          'opt.nonBiasLr=0.3',
          '--hyp',
          'opt.biasLr=0.3',
          '--hyp',
          'opt.percentStart=0.9',
          '--out',
          later,
        ]);
        expect(stopped.code).toBe(1);
        expect(stopped.err).toMatch(
          /Stopped: training loss [\d.e+]+ at step \d+ is over 10x the larger of its first logged value [\d.]+ and chance level ln\(10\) = 2\.303: the run diverged under the seed recipe; lower the learning rate \(hyp\.opt\.nonBiasLr.*The last epoch's checkpoint in .* is untouched/,
        );
        expect(existsSync(join(later, 'checkpoint'))).toBe(true);
        expect(liveTensors()).toBe(before);
      },
      LONG,
    );
  },
);

describe.skipIf(!HAS_DATA)(
  HAS_DATA ? 'CIFAR-10 CLI: --conv-precision on WebGPU' : `CIFAR-10 CLI --conv-precision: SKIPPED, no CIFAR-10 binaries at ${DATA}`,
  () => {
    let root: string;
    /** Why WebGPU cannot run here (undefined: it can). */
    let noWebGPU: string | undefined;

    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'cifar10-precision-'));
      try {
        await initBackend('webgpu');
      } catch (e) {
        noWebGPU = (e as Error).message;
      }
    });
    afterAll(async () => {
      await rm(root, { recursive: true, force: true });
    });

    it(
      'float16 is taken on webgpu, and the report of what ran (float32 where the device lacks tensor cores) is printed and recorded',
      async (ctx) => {
        if (noWebGPU !== undefined) {
          console.warn(`SKIPPED: no WebGPU here (${noWebGPU})`);
          ctx.skip();
        }
        const out = join(root, 'f16');
        const tiny = ['--backend', 'webgpu', '--data', DATA, '--train-limit', '32', '--eval-limit', '32', '--base-depth', '4'];
        const {
          code,
          out: stdout,
          err,
        } = await run([
          'train',
          ...tiny,
          '--batch-size',
          '32',
          '--epochs',
          '1',
          '--conv-precision',
          'float16',
          // Twice 300 flipped images bind more than 128 MiB (lavapipe's binding) at the default base depth 64, not at 4.
          '--hyp',
          'misc.evalBatchSize=300',
          '--out',
          out,
        ]);
        expect(err).not.toContain('tfjs-dataflow-cifar10:');
        expect(code).toBe(0);
        const metrics = JSON.parse(await readFile(join(out, 'metrics.json'), 'utf8')) as { backend: { convPrecision?: string } };
        const report = metrics.backend.convPrecision!;
        // lavapipe has no subgroup matrices: the f32 kernels run, and the report says why. A GPU with them reports float16.
        expect(report).toMatch(/^float32 \(float16 requested, but the device lacks \S+\)$|^float16 on subgroup matrices /);
        expect(stdout).toContain(`, convolutions: ${report}\n`);
        expect(JSON.parse(await readFile(join(out, 'config.json'), 'utf8'))).toMatchObject({ backend: 'webgpu', convPrecision: 'float16' });
        // --resume checks the binding at the run's base depth, not the default's.
        const resumed = await run(['train', '--resume', '--out', out]);
        expect(resumed.err).not.toContain('tfjs-dataflow-cifar10:');
        expect(resumed.code).toBe(0);

        const evaluated = await run([
          'evaluate',
          '--model',
          join(out, 'model'),
          '--backend',
          'webgpu',
          '--data',
          DATA,
          '--eval-limit',
          '32',
          '--conv-precision',
          'float16',
        ]);
        expect(evaluated.err).toBe('');
        expect(evaluated.code).toBe(0);
        expect(evaluated.out).toContain(`, convolutions: ${report}\n`);
      },
      LONG,
    );
  },
);
