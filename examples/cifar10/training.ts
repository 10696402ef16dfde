/**
 * `tfjs-dataflow-cifar10 train`: the seed's CIFAR-10 run, top to bottom:
 * data -> model -> init -> train -> eval, with checkpoints, metrics and the saved model in --out.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { join, resolve } from 'node:path';
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
  trainSchedule,
  type BackendReport,
  type Cifar10Dataset,
  type Cifar10Stats,
  type LoadCifar10Options,
  type EpochRecord,
  type Hyp,
  type TrainData,
} from '../../src/node.js';
import { UsageError, type DataOrigin, type RunSettings, type TrainConfig } from './args.js';
import { SIGNAL_EXIT_CODES, exitWith, type StopSignal } from './exit.js';
import {
  RUN_CONFIG_FORMAT, ensureWritableDir, inspectRunDir, processAlive, processInfo, readCheckpoint, readJsonIfExists, recoverCheckpoint,
  removeEmptyDirs, writeCheckpoint, writeFileAtomic, writeJsonAtomic, writeJsonAtomicSync,
} from './files.js';
import { Progress, downloadProgress, type TextOut } from './progress.js';
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
  /** Marks the directory as this CLI's run (absent in runs from before it was added). */
  format?: typeof RUN_CONFIG_FORMAT;
  run: RunConfig;
  backend: TrainConfig['backend'];
  data: string | undefined;
}

/** The flag behind each RunConfig field, for resume's mismatch messages. */
const RUN_FLAGS: Record<keyof RunConfig, string> = {
  epochs: 'epochs', batchSize: 'batch-size', microBatch: 'micro-batch', evalBatch: 'hyp', baseDepth: 'base-depth',
  trainLimit: 'train-limit', evalLimit: 'eval-limit', mode: 'mode', whiteningSigns: 'whitening-signs', runs: 'runs', seed: 'seed', hyp: 'hyp',
};

/**
 * Where a run stands, as metrics.json says at the moment it was written: `running` (also what a
 * process killed with SIGKILL, or by a power cut, leaves behind: `process` names it),
 * `interrupted` (stopped by a signal, checkpoint written), `failed` (with the message) or `completed`.
 */
export type RunStatus = 'running' | 'interrupted' | 'failed' | 'completed';

/** Per-run results kept in metrics.json. */
interface RunSummary {
  run: number;
  seed: number;
  dir: string;
  stopReason: RunStatus;
  /** Why the run failed or how it was interrupted. */
  message?: string;
  epochs: EpochRecord[];
  /** Training loops only (evaluation excluded), as the seed's total_time_seconds. */
  trainingSeconds: number;
  /** Wall time of this process's part of the run (data excluded; whitening, training, evaluation, saving included). */
  wallSeconds: number;
  finalValAcc: number | null;
  finalEmaValAcc: number | null;
}

/** The parts of metrics.json another process reads before touching the run. */
interface MetricsHead {
  status?: RunStatus;
  process?: { pid: number; host: string };
  runs?: RunSummary[];
}

/** The images the wasm heap holds in one training pass, per unit of base depth (128 images at base depth 64). */
const WASM_TRAIN_IMAGES_X_DEPTH = 128 * 64;
/** The same for an evaluation pass (no gradients, but the batch is doubled by the flip). */
const WASM_EVAL_IMAGES_X_DEPTH = 512 * 64;
/**
 * A repeat of the stop signal this soon after the first is the same request, not a second Ctrl-C:
 * `npm run` forwards the terminal's SIGINT (and a SIGTERM) to a process that already got it.
 */
const REPEAT_GRACE_MS = 1000;

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

/** Where a data directory came from, for the CLI's messages about it. */
export interface DataContext {
  from?: DataOrigin | undefined;
  /** The config.json a resumed run's directory was read from. */
  runConfig?: string;
  /** Where download progress goes. */
  progress?: TextOut;
}

/**
 * loadCifar10, with the CLI's wording added to its errors: how to allow a download, and where a
 * data directory that does not work came from ($CIFAR10_DIR, or a resumed run's config.json).
 */
export async function loadData(options: LoadCifar10Options, context: DataContext = {}): Promise<Cifar10Dataset> {
  try {
    return await loadCifar10({ ...options, ...(context.progress ? { onDownloadProgress: downloadProgress(context.progress) } : {}) });
  } catch (e) {
    const message = (e as Error).message;
    if (options.dir === undefined && !options.download && /download is disabled/.test(message)) {
      throw new Error(`${message} Or pass --download to fetch it (163 MB) into the cache.`);
    }
    if (options.dir !== undefined && context.from === 'env') {
      throw new Error(`$CIFAR10_DIR is set to ${options.dir}, and that does not work: ${message} ` +
        'Point $CIFAR10_DIR at the CIFAR-10 binary directory, unset it to use the download cache, or pass --data DIR.');
    }
    if (options.dir !== undefined && context.from === 'run-config') {
      throw new Error(`The run recorded its data directory ${options.dir} in ${context.runConfig}, and that does not work now: ${message} ` +
        'Pass --data DIR to read the data from elsewhere.');
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
 * SIGINT (Ctrl-C) and SIGTERM (kill, systemd, docker stop, CI): the first asks the trainer to stop
 * after the current step, which then writes a checkpoint; a second, later one quits at once.
 */
class StopRequests {
  /** The signal that asked for the stop, once one did. */
  signal: StopSignal | null = null;
  private receivedAt = 0;
  private trainer: Trainer | null = null;
  private readonly listeners = new Map<StopSignal, () => void>();

  constructor(
    private readonly io: CliIO,
    private readonly clearProgress: () => void,
    private readonly quitNow: (signal: StopSignal) => void,
  ) {}

  install(): void {
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as StopSignal[]) {
      const listener = () => this.receive(signal);
      this.listeners.set(signal, listener);
      process.on(signal, listener);
    }
  }

  uninstall(): void {
    for (const [signal, listener] of this.listeners) process.off(signal, listener);
    this.listeners.clear();
  }

  /** The trainer a stop applies to; one asked for before it existed applies as soon as it does. */
  watch(trainer: Trainer | null): void {
    this.trainer = trainer;
    if (trainer && this.signal) trainer.requestStop();
  }

  private receive(signal: StopSignal): void {
    const now = performance.now();
    if (this.signal === null) {
      this.signal = signal;
      this.receivedAt = now;
      this.clearProgress();
      const name = signal === 'SIGINT' ? 'Ctrl-C' : signal;
      this.io.stderr.write(`\n${name}: stopping after this step and writing a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again to quit at once)\n`);
      this.trainer?.requestStop();
      return;
    }
    if (now - this.receivedAt < REPEAT_GRACE_MS) return;
    this.quitNow(signal);
  }
}

/** What {@link prepareRun} settled: everything is valid, and nothing has been written yet. */
interface PreparedRun {
  report: BackendReport;
  run: RunConfig;
  hyp: Hyp;
  dataset: Cifar10Dataset;
  dataDir: string | undefined;
  onBackend: ReturnType<Cifar10Dataset['toBackend']>;
}

/**
 * Everything a run needs, checked before anything is written: the backend, the configuration
 * (merged with a resumed run's), the hyperparameters, the data, a schedule with at least one step,
 * and a net and trainer built once with it.
 */
async function prepareRun(config: TrainConfig, out: string, saved: SavedConfig | undefined, hasWork: boolean, say: (line: string) => void, io: CliIO): Promise<PreparedRun> {
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
  let hyp: Hyp;
  try {
    hyp = resolveHyp({
      ...run.hyp,
      opt: { ...run.hyp.opt, batchSize: run.batchSize },
      net: { ...run.hyp.net, baseDepth: run.baseDepth },
      misc: { ...run.hyp.misc, trainEpochs: run.epochs, evalBatchSize: run.evalBatch },
    });
  } catch (e) {
    if (!saved) throw new UsageError(`--hyp: ${(e as Error).message}`);
    throw new UsageError(`--resume: the run in ${out} was started with a configuration that is refused now: ${(e as Error).message}. ` +
      (hasWork ? 'Start a new run with another --out.' : 'It never finished an epoch, so start it afresh: the same --out without --resume.'));
  }

  // Data
  const typedData = config.data === undefined ? undefined : resolve(config.data);
  const fromRun = !(config.explicit.has('data') || !saved) && typedData === undefined && saved?.data !== undefined;
  const dataDir = config.explicit.has('data') || !saved ? typedData : typedData ?? saved.data;
  const dataset = await loadData({
    dir: dataDir, cacheDir: config.cacheDir, download: config.download,
    trainLimit: run.trainLimit ?? undefined, evalLimit: run.evalLimit ?? undefined,
  }, { from: fromRun ? 'run-config' : config.dataFrom, runConfig: join(out, 'config.json'), progress: io.stderr });
  say(`Data: ${dataset.train.count} training and ${dataset.eval.count} test images from ${dataset.source}`);
  try {
    trainSchedule(dataset.train.count, run.batchSize, run.epochs);
  } catch (e) {
    throw new UsageError(`--epochs ${run.epochs}: ${(e as Error).message.replace(/^trainSchedule: /, '')}`);
  }

  // The net and its trainer, built once here so a configuration they refuse fails before anything is written.
  const onBackend = dataset.toBackend({ padAmount: hyp.net.padAmount });
  try {
    const probe = speedyConvNet({ hyp, mode: run.mode, seed: run.seed });
    try {
      new Trainer(probe, { train: onBackend.train, eval: onBackend.eval }, { seed: run.seed, microBatchSize: run.microBatch }).dispose();
    } finally {
      probe.model.dispose();
    }
  } catch (e) {
    disposeData(onBackend);
    throw new UsageError(`the model or trainer refuses this configuration: ${(e as Error).message}`);
  }
  return { report, run, hyp, dataset, dataDir, onBackend };
}

function disposeData(onBackend: PreparedRun['onBackend']): void {
  tf.dispose([onBackend.train.images, onBackend.train.targets, onBackend.eval.images, onBackend.eval.targets]);
}

/** The process that is training in `out` right now, according to its metrics.json, if it is not this one. */
async function runningElsewhere(out: string): Promise<number | undefined> {
  const metrics = await readJsonIfExists<MetricsHead>(join(out, 'metrics.json')).catch(() => undefined);
  const owner = metrics?.process;
  if (metrics?.status !== 'running' || !owner || owner.host !== processInfo().host || owner.pid === process.pid) return undefined;
  return processAlive(owner.pid) ? owner.pid : undefined;
}

/**
 * Runs `train`: returns the exit code (0 done, 1 failed or non-finite loss, 130 or 143
 * interrupted by SIGINT or SIGTERM). Usage mistakes throw {@link UsageError}.
 */
export async function trainCommand(config: TrainConfig, io: CliIO): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  const out = resolve(config.out ?? timestampDir());

  // The output directory, before anything is loaded: whose it is, and that it can be written.
  const state = await inspectRunDir(out);
  const saved = state.config as SavedConfig | undefined;
  const list = (names: string[]) => (names.length > 6 ? [...names.slice(0, 6), `and ${names.length - 6} more`] : names).join(', ');
  if (config.resume && saved === undefined) {
    if (!state.exists) throw new UsageError(`--resume: ${out} holds no run to continue (no such directory)`);
    if (state.foreign.length > 0) throw new UsageError(`--resume: ${out} holds no run of this program to continue (no config.json of its own, but ${list(state.foreign)})`);
    throw new UsageError(`--resume: ${out} holds no run to continue (no config.json); start one with --out ${config.out} and no --resume`);
  }
  let reusing = false;
  if (!config.resume) {
    if (saved && state.work.length > 0) {
      throw new UsageError(`--out ${out} already holds a run (${list(state.work)}); continue it with --resume, or choose another --out`);
    }
    if (saved) reusing = true;
    else if (state.foreign.length > 0) {
      throw new UsageError(`--out ${out} holds files that are not a run of this program (${list(state.foreign)}); choose an empty or new directory, so that nothing there is overwritten`);
    }
  }
  const owner = await runningElsewhere(out);
  if (owner !== undefined) throw new UsageError(`--out ${out}: process ${owner} on this machine is training this run right now; wait for it to end or stop it first`);
  let created: string[];
  try {
    created = await ensureWritableDir(out, `--out ${out}`);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  let prepared: PreparedRun;
  try {
    prepared = await prepareRun(config, out, config.resume ? saved : undefined, state.work.length > 0, say, io);
  } catch (e) {
    await removeEmptyDirs(created);
    throw e;
  }
  const { report, run, hyp, dataset, dataDir, onBackend } = prepared;
  const data: TrainData = { train: onBackend.train, eval: onBackend.eval };

  // From here on a signal stops the run after the current step and checkpoints it.
  let progress: Progress | null = null;
  let latest: { doc: Record<string, unknown>; current: RunSummary } | null = null;
  const stops = new StopRequests(io, () => progress?.clear(), (signal) => {
    progress?.clear();
    io.stderr.write(`\nSecond ${signal === 'SIGINT' ? 'Ctrl-C' : signal}: quitting at once, without a checkpoint of this step (the last epoch's checkpoint stays)\n`);
    if (latest) {
      const message = `quit at once by a second ${signal}; the checkpoint holds the last finished epoch`;
      Object.assign(latest.current, { stopReason: 'interrupted', message });
      try {
        writeJsonAtomicSync(join(out, 'metrics.json'), { ...latest.doc, status: 'interrupted', runs: latest.doc['runs'], updatedAt: new Date().toISOString() });
      } catch {
        // Quitting matters more than the record; metrics.json then says "running", with this process's id.
      }
    }
    exitWith(SIGNAL_EXIT_CODES[signal]);
  });
  stops.install();

  const common = { versions: versions(), backend: report, config: run, hyp, dataSource: dataset.source, stats: onBackend.stats };
  const summaries: RunSummary[] = [];
  let finalStatus: RunStatus | null = null;
  const statusOf = (runs: readonly RunSummary[]): RunStatus => {
    if (finalStatus) return finalStatus;
    if (runs.some((s) => s.stopReason === 'failed')) return 'failed';
    if (runs.some((s) => s.stopReason === 'interrupted')) return 'interrupted';
    return runs.filter((s) => s.stopReason === 'completed').length === run.runs ? 'completed' : 'running';
  };
  // metrics.json holds every run so far (updated each epoch); with several runs each run-N/ also gets its own.
  const record = async (current: RunSummary | null) => {
    const runs = current ? [...summaries, current] : [...summaries];
    const doc = {
      ...common, status: statusOf(runs), process: processInfo(), plannedRuns: run.runs, runs, summary: batterySummary(runs), updatedAt: new Date().toISOString(),
    };
    if (current) latest = { doc, current };
    await writeJsonAtomic(join(out, 'metrics.json'), doc);
    if (run.runs > 1 && current) await writeJsonAtomic(join(current.dir, 'metrics.json'), { ...common, status: current.stopReason, process: processInfo(), run: current, updatedAt: doc.updatedAt });
  };

  let exitCode = 0;
  try {
    if (!config.resume) {
      await writeJsonAtomic(join(out, 'config.json'), { format: RUN_CONFIG_FORMAT, run, backend: config.backend, data: dataDir } satisfies SavedConfig);
    }
    say(`Output: ${out}${config.resume ? ' (continuing the run there)' : reusing ? ' (reused: the run there never finished an epoch, so there was nothing to continue)' : ''}`);
    const earlier = config.resume ? (await readJsonIfExists<MetricsHead>(join(out, 'metrics.json')))?.runs ?? [] : [];
    for (let r = 1; r <= run.runs && exitCode === 0; r++) {
      if (stops.signal) {
        exitCode = SIGNAL_EXIT_CODES[stops.signal];
        break;
      }
      const runDir = run.runs > 1 ? join(out, `run-${r}`) : out;
      const done = earlier.find((s) => s.run === r && s.stopReason === 'completed');
      if (done && (await readJsonIfExists(join(runDir, 'model', 'model.json')).catch(() => undefined)) !== undefined) {
        say(`Run ${r}/${run.runs}: already complete (final accuracy ${done.finalEmaValAcc ?? done.finalValAcc})`);
        summaries.push(done);
        continue;
      }
      const summary = await trainOneRun({
        r, runDir, run, hyp, data, stats: onBackend.stats, io, say, record, resuming: config.resume, earlier: earlier.find((s) => s.run === r),
        stopSignal: () => stops.signal,
        setTrainer: (t, p) => {
          progress = p;
          stops.watch(t);
        },
      });
      summaries.push(summary);
      if (summary.stopReason === 'interrupted') exitCode = SIGNAL_EXIT_CODES[stops.signal ?? 'SIGINT'];
      if (summary.stopReason === 'failed') exitCode = 1;
    }
    if (exitCode !== 0 && exitCode !== 1) finalStatus = 'interrupted';
    await record(null);
  } finally {
    stops.uninstall();
    disposeData(onBackend);
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
  /** Continue the run from its checkpoint (--resume). */
  resuming: boolean;
  /** What metrics.json said about this run before (--resume). */
  earlier: RunSummary | undefined;
  /** The signal that stopped the run, once one did. */
  stopSignal: () => StopSignal | null;
  setTrainer: (trainer: Trainer | null, progress: Progress | null) => void;
}

async function trainOneRun({ r, runDir, run, hyp, data, stats, io, say, record, resuming, earlier, stopSignal, setTrainer }: OneRunArgs): Promise<RunSummary> {
  const seed = run.seed + r - 1;
  const started = performance.now();
  const checkpointDir = join(runDir, 'checkpoint');
  let resumed: Awaited<ReturnType<typeof readCheckpoint<RunConfig>>>;
  if (resuming) {
    // A checkpoint write cut off between its two renames is recovered here, or refused: never silently dropped.
    let found: Awaited<ReturnType<typeof recoverCheckpoint>>;
    try {
      found = await recoverCheckpoint(checkpointDir);
    } catch (e) {
      throw new Error(`--resume: ${(e as Error).message}`);
    }
    if (found?.recoveredFrom) io.stderr.write(`Recovered the checkpoint from ${join(runDir, found.recoveredFrom)}: its write had been cut off between two renames\n`);
    resumed = found ? await readCheckpoint<RunConfig>(checkpointDir) : undefined;
    if (!resumed) {
      if (earlier && earlier.epochs.length > 0) {
        throw new Error(`--resume: metrics.json records ${earlier.epochs.length} finished epoch(s) of run ${r}, but ${checkpointDir} holds no checkpoint. ` +
          'Refusing to start over from step 0: restore the checkpoint, or start a new run with another --out.');
      }
      say(`${run.runs > 1 ? `Run ${r}/${run.runs}: n` : 'N'}o checkpoint to continue from (the run never finished an epoch): training starts at step 0`);
    }
  }
  if (resumed && JSON.stringify(resumed.meta.config) !== JSON.stringify(run)) {
    tf.dispose(Object.values(resumed.checkpoint.tensors));
    throw new UsageError(`--resume: the checkpoint in ${checkpointDir} was written with another configuration than ${join(runDir, '..', 'config.json')} records; refusing to mix them`);
  }

  const summary: RunSummary = {
    run: r, seed, dir: runDir, stopReason: 'running', epochs: resumed ? [...resumed.checkpoint.records] : [],
    trainingSeconds: resumed?.checkpoint.totalTimeSeconds ?? 0, wallSeconds: 0, finalValAcc: null, finalEmaValAcc: null,
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

  // Model
  let net: ReturnType<typeof speedyConvNet> | null = null;
  let trainer: Trainer | null = null;
  try {
    await record(summary);
    net = speedyConvNet({ hyp, mode: run.mode, seed });
    // Init: whitening from the training images (a resumed run restores the fitted weights instead).
    if (!resumed) await fitSpeedyConvNetWhitening(net, data.train.images, { padAmount: hyp.net.padAmount, seed, signMode: run.whiteningSigns ?? 'raw' });

    // Train
    const progress = new Progress(io.stderr, Math.ceil(run.epochs));
    const epochs = Math.ceil(run.epochs);
    trainer = new Trainer(net, data, {
      seed,
      microBatchSize: run.microBatch,
      callbacks: {
        onStep: async (info) => {
          progress.update(info);
          // On wasm and cpu a step never waits for I/O, so yield once per step to let a signal (a libuv event) through.
          await new Promise((done) => setImmediate(done));
        },
        onEpochEnd: async (epochRecord, t) => {
          progress.clear();
          say(formatTableRow(tableRow(epochRecord), epochRecord.epoch === epochs - 1));
          const checkpoint = t.checkpoint();
          try {
            await writeCheckpoint(checkpointDir, checkpoint, { config: run, reason: 'epoch-end', savedAt: new Date().toISOString() });
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
      try {
        trainer.restore(resumed.checkpoint);
      } finally {
        tf.dispose(Object.values(resumed.checkpoint.tensors));
      }
      const { epoch, epochStep, step, records } = resumed.checkpoint;
      for (const earlierRecord of records) say(formatTableRow(tableRow(earlierRecord)));
      io.stderr.write(`Resumed from the checkpoint of ${resumed.meta.savedAt} (${resumed.meta.reason}): epoch ${epoch + 1}, step ${epochStep} of the epoch, ${step}/${trainer.totalSteps} in all\n`);
    }
    setTrainer(trainer, progress);
    const result = await trainer.run();
    setTrainer(null, null);
    progress.clear();
    update(result.records, result.totalTimeSeconds);

    if (result.stopReason === 'stopped') {
      const checkpoint = trainer.checkpoint();
      try {
        await writeCheckpoint(checkpointDir, checkpoint, { config: run, reason: 'interrupted', savedAt: new Date().toISOString() });
      } finally {
        tf.dispose(Object.values(checkpoint.tensors));
      }
      summary.stopReason = 'interrupted';
      summary.message = `stopped by ${stopSignal() ?? 'a stop request'} at step ${checkpoint.step}/${trainer.totalSteps}; the checkpoint holds that step`;
      io.stderr.write(`Interrupted at step ${checkpoint.step}/${trainer.totalSteps} (epoch ${checkpoint.epoch + 1}, step ${checkpoint.epochStep} of ${trainer.epochSteps[checkpoint.epoch] ?? 0}). ` +
        `Checkpoint written to ${checkpointDir}; continue with: --resume --out ${resolve(runDir, run.runs > 1 ? '..' : '.')}\n`);
    } else if (result.stopReason === 'non-finite-loss') {
      summary.stopReason = 'failed';
      summary.message = result.message;
      const kept = (await readJsonIfExists(join(checkpointDir, 'checkpoint.json')).catch(() => undefined)) !== undefined
        ? `The last epoch's checkpoint in ${checkpointDir} is untouched`
        : 'No checkpoint was written (no epoch ended with a finite loss)';
      io.stderr.write(`Stopped: ${result.message}. ${kept}; a lower learning rate (--hyp opt.nonBiasLr=..., opt.biasLr=...) or a smaller batch may help.\n`);
    } else {
      // Eval: the model to keep is the EMA network the seed reports (the live one when no EMA ran).
      const modelDir = join(runDir, 'model');
      const model = net.model;
      model.setUserDefinedMetadata({
        tfjsDataflowCifar10: { stats, mode: run.mode, baseDepth: run.baseDepth, seed, weights: trainer.networkEMA ? 'ema' : 'live', finalAccuracy: finalAccuracy(result.records) },
      });
      const save = () => model.save(fileHandler(modelDir));
      await (trainer.networkEMA ? trainer.networkEMA.withWeights(model, save) : save());
      summary.stopReason = 'completed';
      say(`Saved the ${trainer.networkEMA ? 'EMA' : 'final'} model to ${modelDir} (load it with tf.loadLayersModel(fileHandler(dir)))`);
    }
    summary.wallSeconds = (performance.now() - started) / 1000;
    await writeRunFiles();
    return summary;
  } catch (e) {
    // Whatever went wrong, metrics.json says so rather than "running".
    summary.stopReason = 'failed';
    summary.message = (e as Error).message;
    summary.wallSeconds = (performance.now() - started) / 1000;
    await record(summary).catch(() => undefined);
    throw e;
  } finally {
    setTrainer(null, null);
    trainer?.dispose();
    net?.model.dispose();
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
