/**
 * `tfjs-dataflow-cifar10 train`: the seed's CIFAR-10 run, top to bottom:
 * data -> model -> init -> train -> eval, with checkpoints, metrics and the saved model in --out.
 * The run directory and --resume are run-dir.ts's, the signals stop-requests.ts's, and several
 * runs with metrics.json battery.ts's.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import {
  BACKEND_NAMES,
  Trainer,
  fileHandler,
  fitSpeedyConvNetWhitening,
  formatTableHeader,
  formatTableRow,
  initBackend,
  loadCifar10,
  loadCifar100,
  resolveHyp,
  speedyConvNet,
  trainSchedule,
  type BackendName,
  type BackendReport,
  type Cifar10Dataset,
  type ConvPrecision,
  type Cifar10Stats,
  type Cifar100LabelKind,
  type LoadCifar10Options,
  type Hyp,
  type TrainData,
  type AnyLabelledImages,
  type Cifar10CompactOnBackend,
  type Cifar10OnBackend,
} from '../../src/node.js';
import { DATA_DIR_ENV, UsageError, checkConvPrecisionBackend, type DataOrigin, type DatasetName, type TrainConfig } from './args.js';
import { Battery, readEarlierRuns, type RunSummary } from './battery.js';
import { removeEmptyDirs } from './files.js';
import { Progress, downloadProgress, type TextOut } from './progress.js';
import { finalAccuracy, lrCurve, tableRow } from './report.js';
import {
  checkResumedData,
  claimRunDir,
  concludeStoppedRun,
  readRunCheckpoint,
  restoreRun,
  resumeConfig,
  saveRunCheckpoint,
  writeRunConfig,
  type RunConfig,
  type RunDir,
  type RunIdentity,
} from './run-dir.js';
import { StopRequests, letSignalsThrough } from './stop-requests.js';
import { version as packageVersion } from '../../package.json';

/** Where the CLI writes: stdout for the report and table, stderr for progress and problems. */
export interface CliIO {
  stdout: TextOut;
  stderr: TextOut;
}

/**
 * Runs `train`: returns the exit code (0 done, 1 failed or non-finite loss, 129, 130, 131 or 143
 * interrupted by SIGHUP, SIGINT, SIGQUIT or SIGTERM). Usage mistakes throw {@link UsageError}.
 */
export async function trainCommand(config: TrainConfig, io: CliIO): Promise<number> {
  const say = (line: string) => io.stdout.write(`${line}\n`);
  // The output directory, before anything is loaded: whose it is, and that it can be written.
  const dir = await claimRunDir(config, timestampDir());
  try {
    return await trainInClaimedDir(config, dir, say, io);
  } finally {
    dir.lock.release();
  }
}

async function trainInClaimedDir(config: TrainConfig, dir: RunDir, say: (line: string) => void, io: CliIO): Promise<number> {
  let prepared: PreparedRun;
  try {
    prepared = await prepareRun(config, dir, say, io);
  } catch (e) {
    dir.lock.release();
    await removeEmptyDirs(dir.created);
    throw e;
  }
  const { report, run, hyp, dataset, dataDir, onBackend, convPrecision } = prepared;
  const data: TrainData<AnyLabelledImages> = { train: onBackend.train, eval: onBackend.eval };
  const battery = new Battery(dir.out, run, {
    versions: versions(),
    backend: report,
    config: run,
    hyp,
    dataSource: dataset.source,
    stats: onBackend.stats,
  });

  // From here on a signal stops the run after the current step and checkpoints it.
  const stops = new StopRequests(io.stderr, (signal) => battery.recordQuit(signal));
  stops.install();
  let failed = false;
  try {
    // A new run's identity: each checkpoint records it, so --resume never continues another run's checkpoint.
    const runId = config.resume ? dir.saved?.runId : randomUUID();
    if (!config.resume)
      await writeRunConfig(dir.out, {
        run,
        backend: config.backend,
        ...(convPrecision !== null ? { convPrecision } : {}),
        data: dataDir,
        ...(dataset.files !== undefined ? { dataFiles: [...dataset.files] } : {}),
        ...(runId !== undefined ? { runId } : {}),
      });
    say(
      `Output: ${dir.out}${config.resume ? ' (continuing the run there)' : dir.reusing ? ' (reused: the run there never finished an epoch, so there was nothing to continue)' : ''}`,
    );
    const earlierRuns = config.resume ? await readEarlierRuns(dir.out, (line) => io.stderr.write(`${line}\n`)) : [];
    const exitCode = await battery.runAll(
      earlierRuns,
      () => stops.signal,
      say,
      (r, runDir, earlier) =>
        trainOneRun({
          r,
          runDir,
          run,
          hyp,
          data,
          stats: onBackend.stats,
          io,
          say,
          battery,
          stops,
          resuming: config.resume,
          earlier,
          identity: { runId, run: r, configPath: join(dir.out, 'config.json') },
        }),
    );
    if (exitCode === 0) {
      const line = battery.summaryLine();
      if (line) say(line);
      say(`Wrote ${join(dir.out, 'metrics.json')}`);
    }
    return exitCode;
  } catch (e) {
    failed = true;
    throw e;
  } finally {
    stops.uninstall();
    disposeData(onBackend, failed);
  }
}

/** What {@link prepareRun} settled: everything is valid, and nothing has been written yet. */
interface PreparedRun {
  report: BackendReport;
  run: RunConfig;
  hyp: Hyp;
  dataset: Cifar10Dataset;
  dataDir: string | undefined;
  onBackend: Cifar10CompactOnBackend | Cifar10OnBackend;
  /** WebGPU's conv precision as asked for (the report says what runs); null off WebGPU. */
  convPrecision: ConvPrecision | null;
}

/**
 * Everything a run needs, checked before anything is written: the backend, the configuration
 * (merged with a resumed run's), the hyperparameters, the data, a schedule with at least one step,
 * and a net and trainer built once with it.
 */
async function prepareRun(config: TrainConfig, dir: RunDir, say: (line: string) => void, io: CliIO): Promise<PreparedRun> {
  const { saved } = dir;
  // Backend
  const backendFromRun = config.resume && !config.explicit.has('backend');
  const backend = backendFromRun ? saved!.backend : config.backend;
  const convPrecision = decideConvPrecision(config, dir, backend, backendFromRun);
  const report = await initBackend(backend, {
    ...(config.wasmThreads !== null ? { wasmThreads: config.wasmThreads } : {}),
    ...(convPrecision !== null ? { webgpuConvPrecision: convPrecision } : {}),
  });
  say(describeBackend(report, config.verbose));
  const { run, hyp } = decideRunConfig(config, dir, report, say);

  // Data (the resumed run's dataset: an environment variable naming another dataset's directory does not apply)
  const envForOtherDataset = config.dataFrom === 'env' && run.dataset !== config.dataset;
  const typedData = config.data === undefined || envForOtherDataset ? undefined : resolve(config.data);
  const fromRun = !(config.explicit.has('data') || !saved) && typedData === undefined && saved?.data !== undefined;
  const dataDir = config.explicit.has('data') || !saved ? typedData : (typedData ?? saved.data);
  const dataset = await loadData(
    {
      dir: dataDir,
      cacheDir: config.cacheDir,
      download: config.download,
      trainLimit: run.trainLimit ?? undefined,
      evalLimit: run.evalLimit ?? undefined,
    },
    {
      from: fromRun ? 'run-config' : envForOtherDataset ? undefined : config.dataFrom,
      runConfig: join(dir.out, 'config.json'),
      progress: io.stderr,
      dataset: run.dataset,
      labels: run.labels,
    },
  );
  if (saved) checkResumedData(dir.out, saved, dataset.files, dataset.source);
  say(
    `Data: ${datasetTitle(run.dataset, run.labels, dataset.classNames.length)}, ${dataset.train.count} training and ${dataset.eval.count} test images from ${dataset.source}`,
  );
  try {
    trainSchedule(dataset.train.count, run.batchSize, run.epochs);
  } catch (e) {
    throw new UsageError(`--epochs ${run.epochs}: ${(e as Error).message.replace(/^trainSchedule: /, '')}`);
  }

  if (report.backend === 'wasm') checkWasmHeap(run, dataset.train.count, dataset.eval.count);

  // The net and its trainer, built once here so a configuration they refuse fails before anything is written.
  // The images stay bytes on the device and are decoded per batch: a fifth of the float32 set's memory.
  // tfjs-node has no decode kernel (the library's kernels are for cpu, wasm and WebGPU): float32 there.
  const onBackend =
    report.backend === 'tensorflow'
      ? dataset.toBackend({ padAmount: hyp.net.padAmount })
      : dataset.toCompactBackend({ padAmount: hyp.net.padAmount });
  try {
    const probe = speedyConvNet({ hyp, mode: run.mode, seed: run.seed, numClasses: dataset.classNames.length });
    try {
      new Trainer(probe, { train: onBackend.train, eval: onBackend.eval }, { seed: run.seed, microBatchSize: run.microBatch }).dispose();
    } finally {
      probe.model.dispose();
    }
  } catch (e) {
    disposeData(onBackend, true);
    throw new UsageError(`the model or trainer refuses this configuration: ${(e as Error).message}`);
  }
  return { report, run, hyp, dataset, dataDir, onBackend, convPrecision };
}

/**
 * How WebGPU's convolutions multiply in this run: the flag, else a resumed run's own (float32 for runs from
 * before the flag); null off WebGPU. A resumed run keeps its precision: another one typed now is refused,
 * since its checkpoint's numbers were made with the first.
 */
function decideConvPrecision(config: TrainConfig, dir: RunDir, backend: BackendName, backendFromRun: boolean): ConvPrecision | null {
  checkConvPrecisionBackend(config.convPrecision, backend, backendFromRun);
  if (backend !== 'webgpu') return null;
  const then = dir.saved ? (dir.saved.convPrecision ?? 'float32') : null;
  if (then !== null && config.convPrecision !== null && config.convPrecision !== then) {
    throw new UsageError(
      `--resume: the run in ${dir.out} was started with --conv-precision ${then}, not ${config.convPrecision}: ` +
        'drop --conv-precision to continue it as it was started, or start a new run with another --out.',
    );
  }
  return config.convPrecision ?? then ?? 'float32';
}

/**
 * The run's configuration (a resumed run's own, with any flag typed now checked against it; else
 * the flags, with the batch sizes decided for the backend) and its hyperparameters, validated.
 */
function decideRunConfig(
  config: TrainConfig,
  dir: RunDir,
  report: BackendReport,
  say: (line: string) => void,
): { run: RunConfig; hyp: Hyp } {
  const { saved } = dir;
  const onWasm = report.backend === 'wasm';
  // A resumed run binds at its own base depth, not the flag's default.
  const perBinding = webgpuImagesPerBinding(report, saved ? saved.run.baseDepth : config.baseDepth);
  const wanted = {
    dataset: config.dataset,
    labels: config.labels,
    epochs: config.epochs,
    batchSize: config.batchSize,
    microBatch: config.microBatch,
    baseDepth: config.baseDepth,
    trainLimit: config.trainLimit,
    evalLimit: config.evalLimit,
    mode: config.mode,
    whiteningSigns: config.whiteningSigns,
    runs: config.runs,
    seed: config.seed,
    hyp: config.hyp,
  };
  let run: RunConfig;
  if (saved) {
    run = resumeConfig(dir.out, saved, config, wanted);
  } else {
    const microBatch =
      config.microBatch ??
      (onWasm
        ? largestDivisorAtMost(config.batchSize, WASM_TRAIN_IMAGES_X_DEPTH / config.baseDepth)
        : largestDivisorAtMost(config.batchSize, perBinding));
    const evalBatch =
      config.hyp.misc?.evalBatchSize ??
      (onWasm
        ? Math.min(2500, Math.max(1, Math.floor(WASM_EVAL_IMAGES_X_DEPTH / config.baseDepth)))
        : Math.min(2500, Math.max(1, Math.floor(perBinding / 2))));
    run = { ...wanted, microBatch, evalBatch };
  }
  checkWebGPUBinding(run, perBinding);
  const autoMicro = config.microBatch === null && !saved && (onWasm || run.microBatch !== run.batchSize);
  if (run.microBatch !== run.batchSize || autoMicro) {
    const why = !autoMicro
      ? ''
      : onWasm
        ? ` (chosen for wasm, whose heap holds about ${WASM_TRAIN_IMAGES_X_DEPTH / run.baseDepth} images per pass at base depth ${run.baseDepth}; set it with --micro-batch)`
        : ` (chosen for this WebGPU device, which binds at most ${perBinding} images' largest activation at base depth ${run.baseDepth}; set it with --micro-batch)`;
    say(
      `Micro-batch: ${run.microBatch} images per pass, ${run.batchSize / run.microBatch} pass${run.batchSize / run.microBatch === 1 ? '' : 'es'} per step${why}`,
    );
  }
  try {
    const hyp = resolveHyp({
      ...run.hyp,
      opt: { ...run.hyp.opt, batchSize: run.batchSize },
      net: { ...run.hyp.net, baseDepth: run.baseDepth },
      misc: { ...run.hyp.misc, trainEpochs: run.epochs, evalBatchSize: run.evalBatch },
    });
    return { run, hyp };
  } catch (e) {
    if (!saved) throw new UsageError(`--hyp: ${(e as Error).message}`);
    throw new UsageError(
      `--resume: the run in ${dir.out} was started with a configuration that is refused now: ${(e as Error).message}. ` +
        (dir.hasWork
          ? 'Start a new run with another --out.'
          : 'It never finished an epoch, so start it afresh: the same --out without --resume.'),
    );
  }
}

interface OneRunArgs {
  r: number;
  runDir: string;
  run: RunConfig;
  hyp: Hyp;
  data: TrainData<AnyLabelledImages>;
  stats: Cifar10Stats;
  io: CliIO;
  say: (line: string) => void;
  battery: Battery;
  stops: StopRequests;
  /** Continue the run from its checkpoint (--resume). */
  resuming: boolean;
  /** What metrics.json said about this run before (--resume). */
  earlier: RunSummary | undefined;
  /** The run its checkpoints belong to. */
  identity: RunIdentity;
}

/** One run of the seed: model -> init -> train (checkpointed each epoch) -> save the EMA model. */
async function trainOneRun({
  r,
  runDir,
  run,
  hyp,
  data,
  stats,
  io,
  say,
  battery,
  stops,
  resuming,
  earlier,
  identity,
}: OneRunArgs): Promise<RunSummary> {
  const seed = run.seed + r - 1;
  const resumed = resuming
    ? await readRunCheckpoint(runDir, run, identity, { run: r, finishedEpochs: earlier?.epochs.length ?? 0 }, io.stderr)
    : undefined;
  if (resuming && !resumed)
    say(
      `${run.runs > 1 ? `Run ${r}/${run.runs}: n` : 'N'}o checkpoint to continue from (the run never finished an epoch): training starts at step 0`,
    );
  const record = battery.startRun(r, seed, runDir, resumed?.checkpoint);
  let net: ReturnType<typeof speedyConvNet> | null = null;
  let trainer: Trainer | null = null;
  let failed = false;
  try {
    await record.save();
    // Model
    net = speedyConvNet({ hyp, mode: run.mode, seed, numClasses: data.train.targets.shape[1] });
    // Init: whitening from the training images (a resumed run restores the fitted weights instead).
    if (!resumed)
      await fitSpeedyConvNetWhitening(net, data.train.images, {
        padAmount: hyp.net.padAmount,
        seed,
        signMode: run.whiteningSigns ?? 'raw',
      });

    // Train, writing the table, a checkpoint and metrics.json after each epoch
    const epochs = Math.ceil(run.epochs);
    const progress = new Progress(io.stderr, run.epochs);
    trainer = new Trainer(net, data, {
      seed,
      microBatchSize: run.microBatch,
      callbacks: {
        onStep: async (info) => {
          progress.update(info);
          // On wasm and cpu a step never waits for I/O: a signal (a libuv event) gets through only when the loop turns.
          await letSignalsThrough();
        },
        onEpochEnd: async (epochRecord, t) => {
          progress.clear();
          say(formatTableRow(tableRow(epochRecord), epochRecord.epoch === epochs - 1));
          await saveRunCheckpoint(runDir, t, run, identity, 'epoch-end');
          await record.update(t.history, epochRecord.totalTimeSeconds);
        },
      },
    });
    record.lrCurve = lrCurve(hyp, trainer.epochSteps, trainer.totalSteps);
    if (r === 1) say(`Recipe: ${trainer.recipe.name} (${trainer.recipe.reason})`);
    if (run.runs > 1) say(`\nRun ${r}/${run.runs} (seed ${seed})`);
    say(formatTableHeader());
    if (resumed) {
      restoreRun(trainer, resumed);
      const { epoch, epochStep, step, records } = resumed.checkpoint;
      for (const earlierRecord of records) say(formatTableRow(tableRow(earlierRecord)));
      io.stderr.write(
        `Resumed from the checkpoint of ${resumed.meta.savedAt} (${resumed.meta.reason}): epoch ${epoch + 1}, step ${epochStep} of the epoch, ${step}/${trainer.totalSteps} in all\n`,
      );
    }
    stops.watch(trainer, progress);
    progress.start();
    const result = await trainer.run();
    stops.watch(null, null);
    progress.clear();
    await record.update(result.records, result.totalTimeSeconds, false);

    if (result.stopReason !== 'completed') {
      const { status, message } = await concludeStoppedRun(result, trainer, {
        runDir,
        run,
        identity,
        signal: stops.signal,
        stderr: io.stderr,
      });
      return await record.end(status, message);
    }

    // Eval: the model to keep is the EMA network the seed reports (the live one when no EMA ran).
    const modelDir = join(runDir, 'model');
    const { model } = net;
    const ema = trainer.networkEMA;
    model.setUserDefinedMetadata({
      tfjsDataflowCifar10: {
        stats,
        dataset: run.dataset,
        labels: run.labels,
        mode: run.mode,
        baseDepth: run.baseDepth,
        seed,
        weights: ema ? 'ema' : 'live',
        finalAccuracy: finalAccuracy(result.records),
      },
    });
    const save = () => model.save(fileHandler(modelDir));
    await (ema ? ema.withWeights(model, save) : save());
    say(`Saved the ${ema ? 'EMA' : 'final'} model to ${modelDir} (load it with tf.loadLayersModel(fileHandler(dir)))`);
    return await record.end('completed');
  } catch (e) {
    failed = true;
    const reported = explainWasmHeapFailure(e as Error, tf.getBackend());
    await record.fail(reported);
    throw reported;
  } finally {
    stops.watch(null, null);
    try {
      trainer?.dispose();
      net?.model.dispose();
    } catch (e) {
      // After a failure (a corrupted wasm heap, say) the first error is the one to report.
      // biome-ignore lint/correctness/noUnsafeFinally: a cleanup error is thrown only when no error is already on its way out.
      if (!failed) throw e;
    }
  }
}

// ---- helpers ---------------------------------------------------------------------------------

/** Frees the data; after a failure (perhaps a corrupted wasm heap) a failure here must not replace the first error. */
function disposeData(onBackend: PreparedRun['onBackend'], failed = false): void {
  try {
    onBackend.train.images.dispose();
    onBackend.eval.images.dispose();
    tf.dispose([onBackend.train.targets, onBackend.eval.targets]);
  } catch (e) {
    if (!failed) throw e;
  }
}

/** The images the wasm heap holds in one training pass, per unit of base depth (128 images at base depth 64). */
const WASM_TRAIN_IMAGES_X_DEPTH = 128 * 64;
/** The same for an evaluation pass (no gradients, but the batch is doubled by the flip). */
const WASM_EVAL_IMAGES_X_DEPTH = 512 * 64;

/** 32-bit wasm's heap ends at 4 GiB (tfjs-backend-wasm grows it up to there). */
const WASM_HEAP_BYTES = 4 * 2 ** 30;
/**
 * Heap bytes a training pass holds per image and unit of base depth (activations, their gradients, the
 * kernels' scratch), measured: 128 images at base depth 64 took about 1.9 GB of the heap beside the data.
 */
const WASM_PASS_BYTES_PER_IMAGE_X_DEPTH = 232_000;

/**
 * Refuses, before anything is written, a wasm run whose heap cannot hold it: the compact data, a decoded
 * batch (and its gather), and the passes' activations, against wasm's 4 GiB. Says what to lower.
 */
function checkWasmHeap(run: RunConfig, trainImages: number, evalImages: number): void {
  const data = (trainImages + evalImages) * (3072 + 40);
  const batch = 2 * run.batchSize * 32 * 32 * 3 * 4;
  // An evaluation pass (no gradients, flip-doubled) holds about a quarter of a training pass per image.
  const passes = Math.max(run.microBatch, Math.min(run.evalBatch, evalImages) / 4) * run.baseDepth * WASM_PASS_BYTES_PER_IMAGE_X_DEPTH;
  const needed = data + batch + passes;
  if (needed <= WASM_HEAP_BYTES) return;
  const mb = (b: number) => `${Math.round(b / 1e6)} MB`;
  const fitting = Math.floor((WASM_HEAP_BYTES - data - batch) / (run.baseDepth * WASM_PASS_BYTES_PER_IMAGE_X_DEPTH));
  throw new UsageError(
    `this run needs about ${mb(needed)} of wasm heap (data ${mb(data)}, batches ${mb(batch)}, passes of ${run.microBatch} images at base depth ${run.baseDepth} ${mb(passes)}), ` +
      `more than wasm's ${mb(WASM_HEAP_BYTES)}: lower --micro-batch (at most about ${Math.max(1, fitting)} images per pass fit), --base-depth or --train-limit`,
  );
}

/**
 * tfjs-backend-wasm does not report a failed allocation: its malloc returns 0 once the heap cannot grow
 * (past 4 GB), the kernel writes there, and the trap surfaces later as "memory access out of bounds"
 * (often in _dispose_data). Says what it most likely is and what to lower, keeping the original message.
 */
export function explainWasmHeapFailure(error: Error, backend: string): Error {
  if (backend !== 'wasm' || !/memory access out of bounds|Cannot enlarge memory|out of memory|Aborted\(OOM\)/i.test(error?.message ?? ''))
    return error;
  const explained = new Error(
    `the wasm heap most likely ran out of memory (32-bit wasm ends at 4 GB, and tfjs-backend-wasm reports a failed allocation only ` +
      `as a later trap): ${error.message}. Lower --micro-batch, --base-depth or --train-limit.`,
  );
  explained.stack = `${explained.message}\n${error.stack ?? ''}`;
  return explained;
}

/** The largest divisor of `n` that is at most `cap`. */
/**
 * SpeedyConvNet's largest tensor per image, in bytes: the first conv group's output before its pool, (side - 1)^2
 * positions (the whitening conv is 2x2 valid) of max(24, base depth) float32 channels (24: the whitening output).
 */
function largestActivationBytesPerImage(baseDepth: number, side = 32): number {
  return (side - 1) ** 2 * Math.max(24, baseDepth) * 4;
}

/**
 * Images whose largest activation fits one binding of this WebGPU device (its maxStorageBufferBindingSize: 128 MiB
 * on lavapipe, up to 4 GiB on a large GPU), or Infinity off WebGPU. A larger tensor makes WebGPU drop the kernel
 * with an error event, not an exception.
 */
export function webgpuImagesPerBinding(report: BackendReport, baseDepth: number): number {
  if (report.backend !== 'webgpu') return Infinity;
  const device = (tf.backend() as unknown as { device?: GPUDevice }).device;
  const limit = device?.limits.maxStorageBufferBindingSize;
  return limit ? Math.max(1, Math.floor(limit / largestActivationBytesPerImage(baseDepth))) : Infinity;
}

/** Refuses, before anything is written, passes whose largest tensor this WebGPU device cannot bind; says what fits. */
function checkWebGPUBinding(run: RunConfig, perBinding: number): void {
  if (run.microBatch > perBinding) {
    throw new UsageError(
      `--micro-batch ${run.microBatch} is more than this WebGPU device binds at once at base depth ${run.baseDepth} (about ${perBinding} images): lower --micro-batch`,
    );
  }
  // Flip TTA doubles the evaluation batch.
  if (2 * run.evalBatch > perBinding) {
    throw new UsageError(
      `the evaluation batch ${run.evalBatch} (doubled by flip TTA) is more than this WebGPU device binds at once at base depth ${run.baseDepth} (about ${perBinding} images): lower --hyp misc.evalBatchSize to at most ${Math.max(1, Math.floor(perBinding / 2))}`,
    );
  }
}

function largestDivisorAtMost(n: number, cap: number): number {
  for (let d = Math.max(1, Math.min(n, Math.floor(cap))); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

/**
 * The start-up backend line; on WebGPU it says how the convolutions multiply (initBackend's report of --conv-precision).
 * The backends 'auto' passed over are named with the first clause of each reason, unless `verbose`: their full reasons
 * (install commands, package paths) run to hundreds of characters, and metrics.json's backend.reason keeps them.
 */
export function describeBackend(report: BackendReport, verbose = false): string {
  const convolutions = report.convPrecision !== undefined ? `, convolutions: ${report.convPrecision}` : '';
  const { reason, passedOver } = splitPassedOver(report.reason);
  if (verbose || passedOver.length === 0) return `Backend: ${report.backend} (${report.reason})${convolutions}`;
  const brief = passedOver.map(({ backend, why }) => `${backend} (${briefReason(why)})`).join(', ');
  return `Backend: ${report.backend} (${reason})${convolutions}; auto passed over ${brief}; --verbose or metrics.json for why`;
}

/** initBackend('auto')'s reason, `<why this one> (passed over: webgpu: <why>; tensorflow: <why>)`, taken apart. */
export function splitPassedOver(reason: string): { reason: string; passedOver: Array<{ backend: string; why: string }> } {
  const marker = ' (passed over: ';
  const at = reason.indexOf(marker);
  if (at < 0 || !reason.endsWith(')')) return { reason, passedOver: [] };
  const names = BACKEND_NAMES.filter((n) => n !== 'auto').join('|');
  const entries = reason.slice(at + marker.length, -1).split(new RegExp(`; (?=(?:${names}): )`));
  const passedOver = entries.map((entry) => {
    const colon = entry.indexOf(': ');
    return { backend: entry.slice(0, colon), why: entry.slice(colon + 2) };
  });
  return { reason: reason.slice(0, at), passedOver };
}

/** A reason cut to its gist: a missing package says "not installed"; else the first clause, without asides in parentheses. */
function briefReason(why: string): string {
  if (/Cannot find (package|module)/.test(why)) return 'not installed';
  let gist = why;
  for (let previous = ''; previous !== gist; ) {
    previous = gist;
    gist = gist.replace(/ ?\([^()]*\)/g, '');
  }
  gist = gist.split(/[:.;](?: |$)/)[0]!.trim();
  return gist.length > 60 ? `${gist.slice(0, 59)}…` : gist;
}

function versions() {
  return { tfjsCore: tf.version_core, tfjsLayers: tfl.version_layers, node: process.version, tfjsDataflow: packageVersion };
}

function timestampDir(): string {
  return join(
    'runs',
    new Date()
      .toISOString()
      .replace(/:/g, '-')
      .replace(/\.\d+Z$/, 'Z'),
  );
}

/** Where a data directory came from, for the CLI's messages about it. */
export interface DataContext {
  from?: DataOrigin | undefined;
  /** The config.json a resumed run's directory was read from. */
  runConfig?: string;
  /** Where download progress goes. */
  progress?: TextOut;
  /** Which dataset to load; default CIFAR-10. */
  dataset?: DatasetName;
  /** CIFAR-100's labels (default fine); ignored for CIFAR-10. */
  labels?: Cifar100LabelKind | null;
}

/** "CIFAR-10 (10 classes)", "CIFAR-100, coarse labels (20 classes)": what the run trains on. */
export function datasetTitle(dataset: DatasetName, labels: Cifar100LabelKind | null, classes: number): string {
  return dataset === 'cifar100' ? `CIFAR-100, ${labels ?? 'fine'} labels (${classes} classes)` : `CIFAR-10 (${classes} classes)`;
}

/**
 * loadCifar10 (or loadCifar100 for `context.dataset` 'cifar100'), with the CLI's wording added to its
 * errors: how to allow a download, and where a data directory that does not work came from
 * ($CIFAR10_DIR or $CIFAR100_DIR, or a resumed run's config.json).
 */
export async function loadData(options: LoadCifar10Options, context: DataContext = {}): Promise<Cifar10Dataset> {
  const dataset = context.dataset ?? 'cifar10';
  try {
    const what = dataset === 'cifar100' ? 'CIFAR-100' : 'CIFAR-10';
    const withProgress = {
      ...options,
      ...(context.progress ? { onDownloadProgress: downloadProgress(context.progress, undefined, what) } : {}),
    };
    return dataset === 'cifar100'
      ? await loadCifar100({ ...withProgress, labels: context.labels ?? 'fine' })
      : await loadCifar10(withProgress);
  } catch (e) {
    const message = (e as Error).message;
    if (options.dir === undefined && !options.download && /download is disabled/.test(message)) {
      throw new Error(`${message} Or pass --download to fetch it (${dataset === 'cifar100' ? '161' : '163'} MB) into the cache.`);
    }
    if (options.dir !== undefined && context.from === 'env') {
      const name = DATA_DIR_ENV[dataset];
      throw new Error(
        `$${name} is set to ${options.dir}, and that does not work: ${message} ` +
          `Point $${name} at the ${dataset === 'cifar100' ? 'CIFAR-100' : 'CIFAR-10'} binary directory, unset it to use the download cache, or pass --data DIR.`,
      );
    }
    if (options.dir !== undefined && context.from === 'run-config') {
      throw new Error(
        `The run recorded its data directory ${options.dir} in ${context.runConfig}, and that does not work now: ${message} ` +
          'Pass --data DIR to read the data from elsewhere.',
      );
    }
    throw e;
  }
}
