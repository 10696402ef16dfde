/**
 * `tfjs-dataflow-cifar10 train`: the seed's CIFAR-10 run, top to bottom:
 * data -> model -> init -> train -> eval, with checkpoints, metrics and the saved model in --out.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { join, resolve } from 'node:path';
import { stat } from 'node:fs/promises';
import {
  Trainer,
  curvesSvg,
  fileHandler,
  fitSpeedyConvNetWhitening,
  formatTableHeader,
  formatTableRow,
  initBackend,
  loadCifar10,
  meanAndVariance,
  resolveHyp,
  speedyConvNet,
  type BackendReport,
  type Cifar10Dataset,
  type Cifar10Stats,
  type LoadCifar10Options,
  type EpochRecord,
  type Hyp,
  type StopReason,
  type TrainData,
} from '../../src/node.js';
import { UsageError, type RunSettings, type TrainConfig } from './args.js';
import { readCheckpoint, readJsonIfExists, writeCheckpoint, writeFileAtomic, writeJsonAtomic } from './files.js';
import { Progress, type TextOut } from './progress.js';
import { version as packageVersion } from '../../package.json';

/** Where the CLI writes: stdout for the report and table, stderr for progress and problems. */
export interface CliIO {
  stdout: TextOut;
  stderr: TextOut;
}

/** The part of the config a run's numbers depend on, batch sizes decided; a checkpoint records it and --resume must match it. */
export interface RunConfig extends Omit<RunSettings, 'microBatch'> {
  /** Images per forward/backward pass: --micro-batch, else the batch size, or a size that fits the wasm heap. */
  microBatch: number;
  /** Images per evaluation batch: --hyp misc.evalBatchSize, else 2500, or less on wasm. */
  evalBatch: number;
}

/** out/config.json: the run config plus how the run was started. */
interface SavedConfig {
  run: RunConfig;
  backend: TrainConfig['backend'];
  data: string | undefined;
}

/** The flag behind each RunConfig field, for resume's mismatch messages. */
const RUN_FLAGS: Record<keyof RunConfig, string> = {
  epochs: 'epochs', batchSize: 'batch-size', microBatch: 'micro-batch', evalBatch: 'hyp', baseDepth: 'base-depth',
  trainLimit: 'train-limit', evalLimit: 'eval-limit', mode: 'mode', whiteningSigns: 'whitening-signs', runs: 'runs', seed: 'seed', hyp: 'hyp',
};

/** Per-run results kept in metrics.json. */
interface RunSummary {
  run: number;
  seed: number;
  dir: string;
  stopReason: StopReason;
  message?: string;
  epochs: EpochRecord[];
  /** Training loops only (evaluation excluded), as the seed's total_time_seconds. */
  trainingSeconds: number;
  /** Wall time of this process's part of the run (data excluded; whitening, training, evaluation, saving included). */
  wallSeconds: number;
  finalValAcc: number | null;
  finalEmaValAcc: number | null;
}

/** The images the wasm heap holds in one training pass, per unit of base depth (128 images at base depth 64). */
const WASM_TRAIN_IMAGES_X_DEPTH = 128 * 64;
/** The same for an evaluation pass (no gradients, but the batch is doubled by the flip). */
const WASM_EVAL_IMAGES_X_DEPTH = 512 * 64;

/** The largest divisor of `n` that is at most `cap`. */
function largestDivisorAtMost(n: number, cap: number): number {
  for (let d = Math.max(1, Math.min(n, Math.floor(cap))); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

function describeBackend(report: BackendReport): string {
  return `Backend: ${report.backend} (${report.reason})`;
}

function versions() {
  return { tfjsCore: tf.version_core, tfjsLayers: tfl.version_layers, node: process.version, tfjsDataflow: packageVersion };
}

function timestampDir(): string {
  return join('runs', new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z'));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/** loadCifar10, with the CLI's way to allow a download added to its "download is disabled" message. */
export async function loadData(options: LoadCifar10Options): Promise<Cifar10Dataset> {
  try {
    return await loadCifar10(options);
  } catch (e) {
    if (options.dir === undefined && !options.download && /download is disabled/.test((e as Error).message)) {
      throw new Error(`${(e as Error).message} Or pass --download to fetch it (163 MB) into the cache.`);
    }
    throw e;
  }
}

/** The EMA accuracy the seed reports, else (no EMA yet) the live net's. */
function finalAccuracy(records: readonly EpochRecord[]): number | null {
  const last = records.at(-1);
  if (!last) return null;
  return last.emaValAcc ?? (Number.isFinite(last.valAcc) ? last.valAcc : null);
}

/** Merges a resumed run's saved config with the flags typed now; a typed value that differs is an error. */
function resumeConfig(out: string, saved: SavedConfig, config: TrainConfig, wanted: RunSettings): RunConfig {
  const mismatches: string[] = [];
  for (const key of Object.keys(RUN_FLAGS) as (keyof RunConfig)[]) {
    if (key === 'evalBatch') continue;
    const flag = RUN_FLAGS[key];
    if (!config.explicit.has(flag)) continue;
    const now = JSON.stringify(wanted[key]);
    const then = JSON.stringify(saved.run[key]);
    if (now !== then) mismatches.push(`--${flag} ${now} (the run has ${then})`);
  }
  if (mismatches.length > 0) {
    throw new UsageError(
      `--resume: the run in ${out} was started with a different configuration: ${mismatches.join('; ')}. ` +
      'Drop these flags to continue it as it was started, or start a new run with another --out.',
    );
  }
  return saved.run;
}

/**
 * Runs `train`: returns the exit code (0 done, 1 failed or non-finite loss, 130 interrupted).
 * Usage mistakes throw {@link UsageError}.
 */
export async function trainCommand(config: TrainConfig, io: CliIO): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const out = resolve(config.out ?? timestampDir());
  const saved = config.resume ? await readJsonIfExists<SavedConfig>(join(out, 'config.json')) : undefined;
  if (config.resume && saved === undefined) {
    throw new UsageError(`--resume: ${out} holds no run to continue (no config.json); start one with --out ${config.out} and no --resume`);
  }
  if (!config.resume && await exists(join(out, 'config.json'))) {
    throw new UsageError(`--out ${out} already holds a run; continue it with --resume, or choose another --out`);
  }

  // Backend
  const backend = config.resume && !config.explicit.has('backend') ? saved!.backend : config.backend;
  const report = await initBackend(backend, config.wasmThreads !== null ? { wasmThreads: config.wasmThreads } : {});
  say(describeBackend(report));
  const onWasm = report.backend === 'wasm';
  const wanted = {
    epochs: config.epochs, batchSize: config.batchSize, microBatch: config.microBatch, baseDepth: config.baseDepth,
    trainLimit: config.trainLimit, evalLimit: config.evalLimit, mode: config.mode, whiteningSigns: config.whiteningSigns,
    runs: config.runs, seed: config.seed, hyp: config.hyp,
  };
  let run: RunConfig;
  if (saved) {
    run = resumeConfig(out, saved, config, wanted);
  } else {
    const microBatch = config.microBatch ?? (onWasm ? largestDivisorAtMost(config.batchSize, WASM_TRAIN_IMAGES_X_DEPTH / config.baseDepth) : config.batchSize);
    const evalBatch = config.hyp.misc?.evalBatchSize ?? (onWasm ? Math.min(2500, Math.max(1, Math.floor(WASM_EVAL_IMAGES_X_DEPTH / config.baseDepth))) : 2500);
    run = { ...wanted, microBatch, evalBatch };
  }
  const autoMicro = config.microBatch === null && !saved && onWasm;
  if (run.microBatch !== run.batchSize || autoMicro) {
    const why = autoMicro ? ` (chosen for wasm, whose heap holds about ${WASM_TRAIN_IMAGES_X_DEPTH / run.baseDepth} images per pass at base depth ${run.baseDepth}; set it with --micro-batch)` : '';
    say(`Micro-batch: ${run.microBatch} images per pass, ${run.batchSize / run.microBatch} pass${run.batchSize / run.microBatch === 1 ? '' : 'es'} per step${why}`);
  }
  const hyp = resolveHyp({
    ...run.hyp,
    opt: { ...run.hyp.opt, batchSize: run.batchSize },
    net: { ...run.hyp.net, baseDepth: run.baseDepth },
    misc: { ...run.hyp.misc, trainEpochs: run.epochs, evalBatchSize: run.evalBatch },
  });

  // Data
  const typedData = config.data === undefined ? undefined : resolve(config.data);
  const dataDir = config.explicit.has('data') || !saved ? typedData : typedData ?? saved.data;
  const dataset = await loadData({
    dir: dataDir, cacheDir: config.cacheDir, download: config.download,
    trainLimit: run.trainLimit ?? undefined, evalLimit: run.evalLimit ?? undefined,
  });
  say(`Data: ${dataset.train.count} training and ${dataset.eval.count} test images from ${dataset.source}`);
  if (!saved) await writeJsonAtomic(join(out, 'config.json'), { run, backend: config.backend, data: dataDir } satisfies SavedConfig);
  say(`Output: ${out}${config.resume ? ' (resuming)' : ''}`);
  const onBackend = dataset.toBackend({ padAmount: hyp.net.padAmount });
  const data: TrainData = { train: onBackend.train, eval: onBackend.eval };

  // Ctrl-C: stop after the current step and checkpoint; a second one quits at once.
  let interrupted = false;
  let activeTrainer: Trainer | null = null;
  let progress: Progress | null = null;
  const onSigint = () => {
    if (interrupted) {
      io.stderr.write('\nSecond Ctrl-C: quitting without a checkpoint of this step (the last epoch\'s checkpoint stays)\n');
      process.exit(130);
    }
    interrupted = true;
    progress?.clear();
    io.stderr.write('\nCtrl-C: stopping after this step and writing a checkpoint (Ctrl-C again to quit at once)\n');
    activeTrainer?.requestStop();
  };
  process.on('SIGINT', onSigint);

  const common = { versions: versions(), backend: report, config: run, hyp, dataSource: dataset.source, stats: onBackend.stats };
  const summaries: RunSummary[] = [];
  const earlier = (await readJsonIfExists<{ runs?: RunSummary[] }>(join(out, 'metrics.json')))?.runs ?? [];
  // metrics.json holds every run so far (updated each epoch); with several runs each run-N/ also gets its own.
  const record = async (current: RunSummary) => {
    await writeJsonAtomic(join(out, 'metrics.json'), {
      ...common, plannedRuns: run.runs, runs: [...summaries, current], summary: batterySummary([...summaries, current]), updatedAt: new Date().toISOString(),
    });
    if (run.runs > 1) await writeJsonAtomic(join(current.dir, 'metrics.json'), { ...common, run: current, updatedAt: new Date().toISOString() });
  };
  let exitCode = 0;
  try {
    for (let r = 1; r <= run.runs && exitCode === 0; r++) {
      if (interrupted) {
        exitCode = 130;
        break;
      }
      const runDir = run.runs > 1 ? join(out, `run-${r}`) : out;
      const done = earlier.find((s) => s.run === r && s.stopReason === 'completed');
      if (done && await exists(join(runDir, 'model', 'model.json'))) {
        say(`Run ${r}/${run.runs}: already complete (final accuracy ${done.finalEmaValAcc ?? done.finalValAcc})`);
        summaries.push(done);
        continue;
      }
      const summary = await trainOneRun({ r, runDir, run, hyp, data, stats: onBackend.stats, io, say, record,
        setTrainer: (t, p) => {
          activeTrainer = t;
          progress = p;
          if (t && interrupted) t.requestStop();
        } });
      summaries.push(summary);
      if (summary.stopReason === 'stopped') exitCode = 130;
      if (summary.stopReason === 'non-finite-loss') exitCode = 1;
    }
  } finally {
    process.off('SIGINT', onSigint);
    tf.dispose([onBackend.train.images, onBackend.train.targets, onBackend.eval.images, onBackend.eval.targets]);
  }
  if (exitCode === 0) {
    const finals = summaries.map((s) => s.finalEmaValAcc ?? s.finalValAcc).filter((a): a is number => a !== null);
    if (finals.length > 0) {
      const { mean, variance } = meanAndVariance(finals);
      // The seed prints its battery as a (mean, variance) tuple of the EMA accuracies.
      say(`Mean and variance: (${mean.toFixed(4)}, ${Number.isNaN(variance) ? 'nan' : variance.toExponential(4)}) over ${finals.length} run${finals.length === 1 ? '' : 's'}`);
    }
    say(`Wrote ${join(out, 'metrics.json')}`);
  }
  return exitCode;
}

/** Mean and (unbiased) variance of the completed runs' final accuracies, or null before any completed. */
function batterySummary(runs: readonly RunSummary[]) {
  const finals = runs.filter((s) => s.stopReason === 'completed').map((s) => s.finalEmaValAcc ?? s.finalValAcc).filter((a): a is number => a !== null);
  return finals.length > 0 ? { metric: 'final EMA val_acc (flip TTA)', ...meanAndVariance(finals) } : null;
}

interface OneRunArgs {
  r: number;
  runDir: string;
  run: RunConfig;
  hyp: Hyp;
  data: TrainData;
  stats: Cifar10Stats;
  io: CliIO;
  say: (line: string) => void;
  /** Writes the metrics files with this run's current state. */
  record: (summary: RunSummary) => Promise<void>;
  setTrainer: (trainer: Trainer | null, progress: Progress | null) => void;
}

async function trainOneRun({ r, runDir, run, hyp, data, stats, io, say, record, setTrainer }: OneRunArgs): Promise<RunSummary> {
  const seed = run.seed + r - 1;
  const started = performance.now();
  const resumed = await readCheckpoint<RunConfig>(join(runDir, 'checkpoint'));
  if (resumed && JSON.stringify(resumed.meta.config) !== JSON.stringify(run)) {
    tf.dispose(Object.values(resumed.checkpoint.tensors));
    throw new UsageError(`--resume: the checkpoint in ${join(runDir, 'checkpoint')} was written with another configuration than ${join(runDir, '..', 'config.json')} records; refusing to mix them`);
  }

  // Model
  const net = speedyConvNet({ hyp, mode: run.mode, seed });
  let trainer: Trainer | null = null;
  try {
    // Init: whitening from the training images (a resumed run restores the fitted weights instead).
    if (!resumed) await fitSpeedyConvNetWhitening(net, data.train.images, { padAmount: hyp.net.padAmount, seed, signMode: run.whiteningSigns ?? 'raw' });

    // Train
    const progress = new Progress(io.stderr, Math.ceil(run.epochs));
    const summary: RunSummary = {
      run: r, seed, dir: runDir, stopReason: 'completed', epochs: [], trainingSeconds: 0, wallSeconds: 0, finalValAcc: null, finalEmaValAcc: null,
    };
    const update = (records: readonly EpochRecord[], totalTimeSeconds: number) => {
      summary.epochs = [...records];
      summary.trainingSeconds = totalTimeSeconds;
      summary.wallSeconds = (performance.now() - started) / 1000;
      summary.finalValAcc = records.at(-1)?.valAcc ?? null;
      summary.finalEmaValAcc = records.at(-1)?.emaValAcc ?? null;
    };
    const writeRunFiles = async () => {
      await record(summary);
      await writeFileAtomic(join(runDir, 'curves.svg'), curves(summary.epochs));
    };
    const epochs = Math.ceil(run.epochs);
    trainer = new Trainer(net, data, {
      seed,
      microBatchSize: run.microBatch,
      callbacks: {
        onStep: async (info) => {
          progress.update(info);
          // On wasm and cpu a step never waits for I/O, so yield once per step to let a Ctrl-C (a libuv signal) through.
          await new Promise((done) => setImmediate(done));
        },
        onEpochEnd: async (epochRecord, t) => {
          progress.clear();
          say(formatTableRow(tableRow(epochRecord), epochRecord.epoch === epochs - 1));
          const checkpoint = t.checkpoint();
          try {
            await writeCheckpoint(join(runDir, 'checkpoint'), checkpoint, { config: run, reason: 'epoch-end', savedAt: new Date().toISOString() });
          } finally {
            tf.dispose(Object.values(checkpoint.tensors));
          }
          update(t.history, epochRecord.totalTimeSeconds);
          await writeRunFiles();
        },
      },
    });
    if (run.runs > 1) say(`\nRun ${r}/${run.runs} (seed ${seed})`);
    say(formatTableHeader());
    if (resumed) {
      trainer.restore(resumed.checkpoint);
      tf.dispose(Object.values(resumed.checkpoint.tensors));
      const { epoch, epochStep, step, records } = resumed.checkpoint;
      for (const earlierRecord of records) say(formatTableRow(tableRow(earlierRecord)));
      io.stderr.write(`Resumed from the checkpoint of ${resumed.meta.savedAt} (${resumed.meta.reason}): epoch ${epoch + 1}, step ${epochStep} of the epoch, ${step}/${trainer.totalSteps} in all\n`);
    }
    setTrainer(trainer, progress);
    const result = await trainer.run();
    setTrainer(null, null);
    progress.clear();
    update(result.records, result.totalTimeSeconds);
    summary.stopReason = result.stopReason;

    if (result.stopReason === 'stopped') {
      const checkpoint = trainer.checkpoint();
      try {
        await writeCheckpoint(join(runDir, 'checkpoint'), checkpoint, { config: run, reason: 'interrupted', savedAt: new Date().toISOString() });
      } finally {
        tf.dispose(Object.values(checkpoint.tensors));
      }
      io.stderr.write(`Interrupted at step ${checkpoint.step}/${trainer.totalSteps} (epoch ${checkpoint.epoch + 1}, step ${checkpoint.epochStep} of ${trainer.epochSteps[checkpoint.epoch] ?? 0}). ` +
        `Checkpoint written to ${join(runDir, 'checkpoint')}; continue with: --resume --out ${resolve(runDir, run.runs > 1 ? '..' : '.')}\n`);
    } else if (result.stopReason === 'non-finite-loss') {
      summary.message = result.message;
      io.stderr.write(`Stopped: ${result.message}. The last epoch's checkpoint in ${join(runDir, 'checkpoint')} is untouched; ` +
        'a lower learning rate (--hyp opt.nonBiasLr=..., opt.biasLr=...) or a smaller batch may help.\n');
    } else {
      // Eval: the model to keep is the EMA network the seed reports (the live one when no EMA ran).
      const modelDir = join(runDir, 'model');
      net.model.setUserDefinedMetadata({
        tfjsDataflowCifar10: { stats, mode: run.mode, baseDepth: run.baseDepth, seed, weights: trainer.networkEMA ? 'ema' : 'live', finalAccuracy: finalAccuracy(result.records) },
      });
      const save = () => net.model.save(fileHandler(modelDir));
      await (trainer.networkEMA ? trainer.networkEMA.withWeights(net.model, save) : save());
      say(`Saved the ${trainer.networkEMA ? 'EMA' : 'final'} model to ${modelDir} (load it with tf.loadLayersModel(fileHandler(dir)))`);
    }
    summary.wallSeconds = (performance.now() - started) / 1000;
    await writeRunFiles();
    return summary;
  } finally {
    setTrainer(null, null);
    trainer?.dispose();
    net.model.dispose();
  }
}

function tableRow(record: EpochRecord) {
  return {
    epoch: record.epoch,
    train_loss: Number.isFinite(record.trainLoss) ? record.trainLoss : null,
    val_loss: Number.isFinite(record.valLoss) ? record.valLoss : null,
    train_acc: Number.isFinite(record.trainAcc) ? record.trainAcc : null,
    val_acc: Number.isFinite(record.valAcc) ? record.valAcc : null,
    ema_val_acc: record.emaValAcc,
    total_time_seconds: record.totalTimeSeconds,
  };
}

function curves(records: readonly EpochRecord[]): string {
  const x = (r: EpochRecord) => r.epoch + 1;
  return curvesSvg([
    { title: 'Loss', xLabel: 'epoch', series: [
      { label: 'train', points: records.map((r) => [x(r), r.trainLoss]) },
      { label: 'val', points: records.map((r) => [x(r), r.valLoss]) },
    ] },
    { title: 'Accuracy', xLabel: 'epoch', series: [
      { label: 'train', points: records.map((r) => [x(r), r.trainAcc]) },
      { label: 'val', points: records.map((r) => [x(r), r.valAcc]) },
      { label: 'val (EMA)', points: records.map((r) => [x(r), r.emaValAcc ?? Number.NaN]) },
    ] },
  ]);
}
