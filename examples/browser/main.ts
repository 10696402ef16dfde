// The browser example, top to bottom: backend -> data -> model -> whitening -> train -> evaluate.
// It imports the library by its package name, as an application would.
import * as tf from '@tensorflow/tfjs-core';
import { browserDownloads } from '@tensorflow/tfjs-core/dist/io/browser_files.js';
import {
  CIFAR10_IMAGE_BYTES,
  Trainer,
  describeAdapter,
  fitSpeedyConvNetWhitening,
  formatTableHeader,
  formatTableRow,
  initBackend,
  predictWithFlipTTA,
  speedyConvNet,
  type Cifar10Split,
  type ConvPrecision,
  type EpochRecord,
  type SpeedyConvNet,
  type StepInfo,
  type TrainCheckpoint,
  type TrainData,
  type AnyLabelledImages,
  type CompactImages,
  type EvaluateStage,
  seedEvaluateStage,
  sliceImages,
  type TrainResult,
} from 'tfjs-dataflow';
import { LineChart, Smoother } from './charts.js';
import { filesSource, loadDataset, urlSource, type Cifar10Source } from './data.js';
import { WASM_PATHS } from './wasm-paths.js';

// ---------------------------------------------------------------------------------------------
// Configuration: a form, filled from presets and URL parameters (?depth=8&train=256&...).

type Backend = 'webgpu' | 'wasm' | 'cpu';
const CONV_PRECISIONS = ['float32', 'float16'] as const satisfies readonly ConvPrecision[];

interface RunConfig {
  backend: Backend;
  /** How WebGPU's convolutions multiply (initBackend's webgpuConvPrecision); other backends ignore it. */
  convPrecision: ConvPrecision;
  /** Channels of the first conv group (the seed: 64). */
  depth: number;
  /** Training images, the first ones of data_batch_1..5. */
  train: number;
  /** Test images, the first ones of test_batch. */
  eval: number;
  /** Epochs, fractional allowed (the seed: 12.1). */
  epochs: number;
  /** Images per optimiser step (the seed: 1024). */
  batch: number;
  /** Images per forward/backward pass; bounds memory. */
  micro: number;
  /** Images per evaluation pass (the seed: 2500). */
  evalBatch: number;
  seed: number;
  /** Steps between reads of the loss (each read waits for the device). */
  logEvery: number;
  /** CIFAR-100's labels: fine (100 classes) or coarse (20 superclasses); unused for CIFAR-10. */
  labels: 'fine' | 'coarse';
  /** Training images the whitening conv is fitted on (the seed: all 50,000; here at most the training set). */
  whiten: number;
}

type NumericField = Exclude<keyof RunConfig, 'backend' | 'convPrecision' | 'labels'>;
const NUMERIC_FIELDS: NumericField[] = ['depth', 'train', 'eval', 'epochs', 'batch', 'micro', 'evalBatch', 'seed', 'logEvery', 'whiten'];

const PRESETS: Record<
  'tiny' | 'quick' | 'seed',
  Omit<RunConfig, 'backend' | 'convPrecision' | 'seed' | 'logEvery' | 'labels' | 'whiten'>
> = {
  tiny: { depth: 8, train: 1024, eval: 256, epochs: 2, batch: 64, micro: 64, evalBatch: 256 },
  quick: { depth: 32, train: 10000, eval: 2000, epochs: 4, batch: 512, micro: 512, evalBatch: 1000 },
  seed: { depth: 64, train: 50000, eval: 10000, epochs: 12.1, batch: 1024, micro: 1024, evalBatch: 2500 },
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const form = $<HTMLFormElement>('config');
const backendSelect = $<HTMLSelectElement>('backend');
const convPrecisionSelect = $<HTMLSelectElement>('conv-precision');
const params = new URLSearchParams(location.search);

function applyPreset(name: keyof typeof PRESETS): void {
  for (const [field, value] of Object.entries(PRESETS[name])) (form.elements.namedItem(field) as HTMLInputElement).value = String(value);
}

function readConfig(): RunConfig {
  const values = {} as Record<NumericField, number>;
  for (const field of NUMERIC_FIELDS) {
    const input = form.elements.namedItem(field) as HTMLInputElement;
    const value = Number(input.value);
    if (input.value.trim() === '' || !Number.isFinite(value))
      throw new Error(`'${input.parentElement?.textContent?.trim()}' must be a number, got '${input.value}'`);
    values[field] = value;
  }
  const labels = (form.elements.namedItem('labels') as HTMLSelectElement).value === 'coarse' ? 'coarse' : 'fine';
  const config: RunConfig = {
    backend: backendSelect.value as Backend,
    convPrecision: convPrecisionSelect.value as ConvPrecision,
    labels,
    ...values,
  };
  // A micro-batch larger than the batch means no splitting.
  config.micro = Math.min(config.micro, config.batch);
  if (config.train < config.batch) throw new Error(`training images (${config.train}) must be at least one batch (${config.batch})`);
  if (config.batch % config.micro !== 0) throw new Error(`the micro-batch (${config.micro}) must divide the batch size (${config.batch})`);
  return config;
}

// ---------------------------------------------------------------------------------------------
// State shared with the page (and read by the end-to-end test through window.tfjsDataflowDemo).

type DemoState = 'idle' | 'loading' | 'training' | 'stopping' | 'stopped' | 'done' | 'error';

const demo = {
  state: 'idle' as DemoState,
  backend: null as string | null,
  backendReason: '',
  /** WebGPU only: how the convolutions multiply, as initBackend reports it (float16 asked for may run as float32, with the reason). */
  convPrecision: null as string | null,
  steps: [] as StepInfo[],
  records: [] as EpochRecord[],
  predictions: [] as Array<{ predicted: number; label: number }>,
  result: null as TrainResult | null,
  error: null as string | null,
  /** Seconds spent in each setup stage of the last run. */
  timings: {} as Record<string, number>,
  charts: {} as Record<string, LineChart>,
};
declare global {
  interface Window {
    tfjsDataflowDemo: typeof demo;
  }
}
window.tfjsDataflowDemo = demo;

const buttons = {
  start: $<HTMLButtonElement>('start'),
  stop: $<HTMLButtonElement>('stop'),
  resume: $<HTMLButtonElement>('resume'),
  download: $<HTMLButtonElement>('download'),
};

let source: Cifar10Source | null = null;

function setState(state: DemoState): void {
  demo.state = state;
  document.body.dataset['state'] = state;
  const busy = state === 'loading' || state === 'training' || state === 'stopping';
  buttons.start.disabled = busy || source == null;
  buttons.stop.disabled = state !== 'training';
  buttons.resume.disabled = state !== 'stopped';
  buttons.download.disabled = !(state === 'stopped' || state === 'done');
  buttons.start.textContent = state === 'idle' ? 'Train' : 'Train again';
}

function showError(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  demo.error = message;
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}

window.addEventListener('error', (event) => showError(event.error ?? event.message));
window.addEventListener('unhandledrejection', (event) => showError(event.reason));

// ---------------------------------------------------------------------------------------------
// The status line (#progress): what the page is doing now, with a clock for the long stages.

/** What the page is doing, for the status line after an error ("failed while fitting the whitening conv"). */
let activity = '';
let statusClock: ReturnType<typeof setInterval> | undefined;

/** A duration for people: `45 s`, `12 min`, `1 h 5 min`. */
function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 90 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const plural = (n: number, word: string) => `${n.toLocaleString('en')} ${word}${n === 1 ? '' : 's'}`;

/**
 * Shows `render(elapsed seconds)` on the status line as `doing` starts, and again every second while the
 * page is free to (between the stage's device reads), so a long stage visibly moves; returns the redraw.
 */
function showActivity(doing: string, render: (seconds: number) => string = () => `${doing}…`): () => void {
  stopStatusClock();
  activity = doing;
  const started = performance.now();
  const draw = () => {
    $('progress').textContent = render((performance.now() - started) / 1000);
  };
  draw();
  statusClock = setInterval(draw, 1000);
  return draw;
}

function stopStatusClock(): void {
  if (statusClock !== undefined) clearInterval(statusClock);
  statusClock = undefined;
}

/** Replaces whatever the status line said with the failure, naming what the page was doing. */
function showFailure(e: unknown): void {
  stopStatusClock();
  const message = e instanceof Error ? e.message : String(e);
  $('progress').textContent = `failed${activity ? ` while ${activity}` : ''}: ${message}`;
  activity = '';
}

/**
 * Lets the browser paint before a long stretch of device work (an evaluation, the whitening fit), which may
 * not give it another chance: after the next frame, or 50 ms where frames are paused (a background tab).
 */
function paint(): Promise<void> {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
    setTimeout(resolve, 50);
  });
}

// ---------------------------------------------------------------------------------------------
// 1. Backend: say plainly when there is no WebGPU, and offer WebAssembly.

function offerWasm(reason: string): void {
  $('no-webgpu-reason').textContent = reason;
  $('no-webgpu').hidden = false;
}

$('use-wasm').addEventListener('click', () => {
  backendSelect.value = 'wasm';
  $('no-webgpu').hidden = true;
});

/** Looks for a WebGPU adapter before anything starts; returns whether it is a software one. */
async function probeWebGPU(): Promise<{ ok: boolean; software: boolean }> {
  const probe = $('gpu-probe');
  const gpu = navigator.gpu;
  if (!gpu) {
    const why = window.isSecureContext
      ? 'navigator.gpu is missing: use a recent Chrome or Edge (or Firefox/Safari with WebGPU enabled).'
      : 'WebGPU needs a secure page (https:// or http://localhost).';
    probe.textContent = 'no WebGPU';
    offerWasm(why);
    return { ok: false, software: false };
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
  if (!adapter) {
    probe.textContent = 'no WebGPU adapter';
    offerWasm('navigator.gpu exists but found no adapter (the GPU may be blocklisted or WebGPU disabled).');
    return { ok: false, software: false };
  }
  const info = describeAdapter(adapter);
  const name = info.description || [info.vendor, info.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  probe.textContent = `WebGPU adapter: ${name}${info.isSoftware ? ' (software: slow, use the tiny preset)' : ''}`;
  return { ok: true, software: info.isSoftware };
}

async function startBackend(name: Backend, convPrecision: ConvPrecision): Promise<void> {
  try {
    const report = await initBackend(name, { wasmPaths: WASM_PATHS, webgpuConvPrecision: convPrecision });
    demo.backend = report.backend;
    demo.backendReason = report.reason;
    demo.convPrecision = report.convPrecision ?? null;
    $('backend-name').textContent = report.backend;
    $('backend-reason').textContent = `(${report.reason})`;
    $('backend-conv-precision').textContent = report.convPrecision !== undefined ? `convolutions: ${report.convPrecision}` : '';
  } catch (e) {
    if (name === 'webgpu') offerWasm((e as Error).message);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Data: files from disk, or ?data=/cifar10/ served by the dev server from CIFAR10_DIR
// (?data=/cifar100/&dataset=cifar100 from CIFAR100_DIR).

async function useSource(next: Cifar10Source): Promise<void> {
  const status = $('data-status');
  status.textContent = `Reading ${next.label}…`;
  // The labels choice is CIFAR-100's (fine or coarse); CIFAR-10 has one kind.
  $('labels-field').hidden = next.dataset !== 'cifar100';
  if (next.dataset === 'cifar100') {
    const [train, test] = await Promise.all([next.bytes('train.bin'), next.bytes('test.bin')]);
    if (!train || !test) throw new Error(`${next.label}: train.bin and test.bin are both needed for CIFAR-100`);
    source = next;
    status.textContent = `CIFAR-100 from ${next.label}: the net gets 100 outputs for the fine labels, 20 for the coarse ones (see "labels" below).`;
    setState(demo.state);
    return;
  }
  const [train, test] = await Promise.all([next.get('data_batch_1.bin'), next.get('test_batch.bin')]);
  if (!train || !test) throw new Error(`${next.label}: data_batch_1.bin and test_batch.bin are both needed`);
  source = next;
  const subset = train.count < 10000 ? ` (a subset: data_batch_1.bin holds ${train.count} images, test_batch.bin ${test.count})` : '';
  status.textContent = `CIFAR-10 from ${next.label}${subset}. Training images come from data_batch_1, 2, … in order.`;
  setState(demo.state);
}

$<HTMLInputElement>('files').addEventListener('change', (event) => {
  const files = Array.from((event.target as HTMLInputElement).files ?? []);
  if (files.length) filesSource(files).then(useSource).catch(showError);
});

// ---------------------------------------------------------------------------------------------
// 3-5. Model, whitening, training, with live charts, the epoch table and a prediction grid.

const charts = {
  loss: new LineChart(
    $('chart-loss'),
    'loss per step',
    [
      { label: 'train batch', color: '#9ecae1', width: 1 },
      { label: 'train (moving average)', color: '#1f77b4', width: 2 },
      { label: 'test, per epoch', color: '#d62728', dots: true },
    ],
    (y) => y.toFixed(2),
  ),
  acc: new LineChart(
    $('chart-acc'),
    'accuracy per step',
    [
      { label: 'train batch', color: '#a1d99b', width: 1 },
      { label: 'train (moving average)', color: '#2ca02c', width: 2 },
      { label: 'test', color: '#d62728', dots: true },
      { label: 'test, EMA net', color: '#9467bd', dots: true },
    ],
    (y) => y.toFixed(2),
  ),
  lr: new LineChart($('chart-lr'), 'learning rate (OneCycle, non-bias group)', [{ label: 'lr', color: '#ff7f0e', width: 2 }], (y) =>
    y.toExponential(1),
  ),
  speed: new LineChart(
    $('chart-speed'),
    'training images / s',
    [
      { label: 'per step', color: '#c49c94', width: 1 },
      { label: 'moving average', color: '#8c564b', width: 2 },
    ],
    (y) => y.toFixed(y < 10 ? 1 : 0),
  ),
};
demo.charts = charts;
let smoothLoss = new Smoother(0.9);
let smoothAcc = new Smoother(0.9);
let smoothSpeed = new Smoother(0.8);
/** When the last step (or evaluation, or resume) ended: the page's own per-step clock for images/s. */
let lastStepEnd = 0;
/** The ETA's clock: when this Trainer.run() began, and the steps done before it (a resumed run's). */
let runClock = { startedAt: 0, stepsBefore: 0 };
/** Evaluations since the epoch's last step: the first is the live net's, the second the EMA net's. */
let evaluationsThisEpoch = 0;

interface Session {
  config: RunConfig;
  net: SpeedyConvNet;
  data: TrainData<AnyLabelledImages>;
  evalHost: Cifar10Split;
  /** The dataset's class names, indexed by label. */
  classNames: readonly string[];
  trainer: Trainer | null;
  checkpoint: TrainCheckpoint | null;
}
let session: Session | null = null;

function disposeSession(): void {
  if (!session) return;
  session.trainer?.dispose();
  if (session.checkpoint) tf.dispose(Object.values(session.checkpoint.tensors));
  session.net.model.dispose();
  for (const split of [session.data.train, session.data.eval]) {
    split.images.dispose();
    split.targets.dispose();
  }
  session = null;
}

/** Lets the page paint and handle clicks between steps (not throttled like setTimeout in a background tab). */
function yieldToBrowser(): Promise<void> {
  const scheduler = (globalThis as { scheduler?: { yield?: () => Promise<void> } }).scheduler;
  if (scheduler?.yield) return scheduler.yield();
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

function renderTable(final: boolean): void {
  const rows = demo.records.map((r, i) =>
    formatTableRow(
      {
        epoch: r.epoch,
        train_loss: r.trainLoss,
        val_loss: r.valLoss,
        train_acc: r.trainAcc,
        val_acc: r.valAcc,
        ema_val_acc: r.emaValAcc,
        total_time_seconds: r.totalTimeSeconds,
      },
      final && i === demo.records.length - 1,
    ),
  );
  $('table').textContent = [formatTableHeader(), ...rows].join('\n');
}

const GRID_SIZE = 32;

function buildGrid(evalHost: Cifar10Split, classNames: readonly string[]): void {
  const grid = $('predictions');
  grid.replaceChildren();
  const plane = 32 * 32;
  for (let i = 0; i < Math.min(GRID_SIZE, evalHost.count); i++) {
    const cell = document.createElement('div');
    cell.className = 'pred';
    const canvas = document.createElement('canvas');
    canvas.width = 32;
    canvas.height = 32;
    const ctx = canvas.getContext('2d')!;
    const image = ctx.createImageData(32, 32);
    // The files hold R, G and B planes (NCHW); ImageData is RGBA per pixel.
    const offset = i * CIFAR10_IMAGE_BYTES;
    for (let p = 0; p < plane; p++) {
      image.data[4 * p] = evalHost.images[offset + p]!;
      image.data[4 * p + 1] = evalHost.images[offset + plane + p]!;
      image.data[4 * p + 2] = evalHost.images[offset + 2 * plane + p]!;
      image.data[4 * p + 3] = 255;
    }
    ctx.putImageData(image, 0, 0);
    const label = document.createElement('div');
    label.className = 'label';
    label.textContent = '…';
    const truth = document.createElement('div');
    truth.className = 'truth';
    truth.textContent = `(${classNames[evalHost.labels[i]!]})`;
    cell.append(canvas, label, truth);
    grid.append(cell);
  }
}

/** Predicts the grid's images with flip TTA, leaving the noise streams as they were so the run is the CLI's. */
async function updatePredictions(s: Session): Promise<void> {
  const n = Math.min(GRID_SIZE, s.evalHost.count);
  const streams = s.net.discreteActions.map((d) => d.random.getState());
  const predicted = tf.tidy(() => tf.argMax(predictWithFlipTTA(s.net.model, sliceImages(s.data.eval.images, 0, n)), 1));
  const values = await predicted.data();
  predicted.dispose();
  streams.forEach((state, i) => s.net.discreteActions[i]!.random.setState(state));
  const cells = $('predictions').children;
  demo.predictions = [];
  for (let i = 0; i < n; i++) {
    const label = s.evalHost.labels[i]!;
    const guess = values[i]!;
    demo.predictions.push({ predicted: guess, label });
    const cell = cells[i] as HTMLElement;
    cell.className = `pred ${guess === label ? 'right' : 'wrong'}`;
    cell.querySelector('.label')!.textContent = s.classNames[guess] ?? String(guess);
  }
}

function onStep(info: StepInfo): Promise<void> {
  demo.steps.push(info);
  const now = performance.now();
  // The trainer's imagesPerSec averages since the epoch began; this is each step's own rate.
  // With logEvery 1 the loss was read (so the device finished the step) before this callback.
  const rate = (session?.config.batch ?? Number.NaN) / ((now - lastStepEnd) / 1000);
  lastStepEnd = now;
  charts.lr.push(0, info.step, info.lr);
  charts.speed.push(0, info.step, rate);
  charts.speed.push(1, info.step, smoothSpeed.next(rate));
  if (info.loss !== undefined) {
    charts.loss.push(0, info.step, info.loss);
    charts.loss.push(1, info.step, smoothLoss.next(info.loss));
  }
  if (info.acc !== undefined) {
    charts.acc.push(0, info.step, info.acc);
    charts.acc.push(1, info.step, smoothAcc.next(info.acc));
  }
  stopStatusClock();
  activity = 'training';
  // From the wall time per step so far, evaluations included (the CLI's estimate).
  const done = info.step - runClock.stepsBefore;
  const eta = ((now - runClock.startedAt) / 1000 / done) * (info.totalSteps - info.step);
  $('progress').textContent =
    `epoch ${info.epoch + 1}, step ${info.step}/${info.totalSteps} (${info.epochStep}/${info.epochSteps} in this epoch)` +
    ` · ${info.imagesPerSec.toFixed(info.imagesPerSec < 10 ? 1 : 0)} images/s · lr ${info.lr.toExponential(2)}` +
    (info.loss !== undefined ? ` · loss ${info.loss.toFixed(4)} · acc ${info.acc!.toFixed(3)}` : '') +
    (info.step < info.totalSteps ? ` · ETA ${formatDuration(eta)}` : '');
  return yieldToBrowser();
}

/**
 * The seed's evaluation, saying so on the status line first: after an epoch's last step the page would
 * otherwise show that step for as long as the test set takes (minutes at the seed's size).
 */
const evaluateWithStatus: EvaluateStage = async (model, split, context) => {
  const last = demo.steps.at(-1);
  const which = evaluationsThisEpoch++ === 0 ? 'live' : 'EMA';
  const epochs = session?.trainer?.epochSteps.length;
  const trained = last ? `epoch ${last.epoch + 1}${epochs ? `/${epochs}` : ''} trained · ` : '';
  const doing = `evaluating the ${which} net on ${plural(split.images.shape[0], 'test image')} (flip TTA)`;
  showActivity(doing, (t) => `${trained}${doing}… ${formatDuration(t)}`);
  await paint();
  return seedEvaluateStage(model, split, context);
};

async function onEpochEnd(record: EpochRecord): Promise<void> {
  evaluationsThisEpoch = 0;
  demo.records.push(record);
  charts.loss.push(2, record.steps, record.valLoss);
  charts.acc.push(2, record.steps, record.valAcc);
  charts.acc.push(3, record.steps, record.emaValAcc);
  renderTable(false);
  if (session) await updatePredictions(session);
  lastStepEnd = performance.now();
}

async function runTrainer(s: Session, checkpoint: TrainCheckpoint | null): Promise<void> {
  const trainer = new Trainer(s.net, s.data, {
    seed: s.config.seed,
    microBatchSize: s.config.micro,
    logEvery: s.config.logEvery,
    callbacks: { onStep, onEpochEnd },
    stages: { evaluate: evaluateWithStatus },
  });
  if (checkpoint) {
    trainer.restore(checkpoint);
    tf.dispose(Object.values(checkpoint.tensors));
    s.checkpoint = null;
  }
  s.trainer = trainer;
  Object.values(charts).forEach((c) => (c.xMax = trainer.totalSteps));
  setState('training');
  lastStepEnd = performance.now();
  runClock = { startedAt: lastStepEnd, stepsBefore: checkpoint?.step ?? 0 };
  evaluationsThisEpoch = 0;
  showActivity(checkpoint ? 'resuming' : 'training', () => (checkpoint ? 'resuming…' : 'training: the first step…'));
  const result = await trainer.run();
  stopStatusClock();
  activity = '';
  demo.result = result;
  if (result.stopReason === 'stopped') {
    // A new Trainer restored from this checkpoint continues the run exactly (Resume).
    s.checkpoint = trainer.checkpoint();
    $('progress').textContent += ' · stopped';
  }
  trainer.dispose();
  s.trainer = null;
  Object.values(charts).forEach((c) => c.draw());
  if (result.stopReason === 'non-finite-loss' || result.stopReason === 'diverged') {
    throw new Error(result.message ?? 'the loss became NaN or infinite');
  }
  if (result.stopReason === 'completed') {
    renderTable(true);
    const last = result.records[result.records.length - 1];
    $('progress').textContent =
      `done: ${plural(result.records.length, 'epoch')}, ${plural(last?.steps ?? 0, 'step')} in ${result.totalTimeSeconds.toFixed(1)} s of training` +
      ` · test accuracy ${last?.valAcc.toFixed(4)}${last?.emaValAcc != null ? ` (EMA net ${last.emaValAcc.toFixed(4)})` : ''}`;
  }
  setState(result.stopReason === 'stopped' ? 'stopped' : 'done');
}

async function startRun(): Promise<void> {
  const config = readConfig();
  if (!source) throw new Error('pick the CIFAR-10 or CIFAR-100 files first');
  disposeSession();
  $('error').hidden = true;
  demo.error = null;
  demo.steps = [];
  demo.records = [];
  demo.result = null;
  demo.timings = {};
  Object.values(charts).forEach((c) => c.clear());
  smoothLoss = new Smoother(0.9);
  smoothAcc = new Smoother(0.9);
  smoothSpeed = new Smoother(0.8);
  renderTable(false);
  setState('loading');
  const clock = (stage: string, since: number) => (demo.timings[stage] = (performance.now() - since) / 1000);

  let t = performance.now();
  showActivity(`starting ${config.backend}`);
  await startBackend(config.backend, config.convPrecision);
  clock('backend', t);

  t = performance.now();
  showActivity(`reading ${source.dataset === 'cifar100' ? 'CIFAR-100' : 'CIFAR-10'}`);
  const dataset = await loadDataset(source, config.train, config.eval, config.labels);
  clock('read', t);

  const net = speedyConvNet({
    seed: config.seed,
    numClasses: dataset.classNames.length,
    hyp: {
      opt: { batchSize: config.batch },
      net: { baseDepth: config.depth, whiteningExamples: config.whiten },
      misc: { trainEpochs: config.epochs, evalBatchSize: config.evalBatch },
    },
  });
  t = performance.now();
  showActivity(
    `putting ${plural(dataset.train.count, 'training image')} and ${plural(dataset.eval.count, 'test image')} on ${config.backend}`,
  );
  await paint();
  let onBackend: ReturnType<typeof dataset.toCompactBackend>;
  try {
    // Bytes on the device, decoded per batch: the full 50,000 images fit a browser's default 128 MiB per binding.
    onBackend = dataset.toCompactBackend({ padAmount: net.hyp.net.padAmount });
  } catch (e) {
    net.model.dispose();
    throw e;
  }
  const s: Session = {
    config,
    net,
    data: { train: onBackend.train, eval: onBackend.eval },
    evalHost: dataset.eval,
    classNames: dataset.classNames,
    trainer: null,
    checkpoint: null,
  };
  session = s;
  clock('toBackend', t);

  t = performance.now();
  // The fit reads its images in passes of a few hundred, twice (their mean, then the covariance), each pass read back
  // before the next is gathered: the images of the passes before the current one are its progress.
  const whitened = Math.min(net.hyp.net.whiteningExamples, onBackend.train.images.shape[0]);
  let gathered = 0;
  let imagesRead = 0;
  const redraw = showActivity('fitting the whitening conv', (seconds) => {
    const done = Math.min(imagesRead, 2 * whitened) / (2 * whitened);
    const eta = done > 0 && done < 1 ? ` · ETA ${formatDuration((seconds / done) * (1 - done))}` : '';
    return `fitting the whitening conv on ${plural(whitened, 'training image')}: ${Math.round(100 * done)}% · ${formatDuration(seconds)}${eta}`;
  });
  await paint();
  const counted = countGathers(onBackend.train.images, (n) => {
    imagesRead = gathered;
    gathered += n;
    redraw();
  });
  await fitSpeedyConvNetWhitening(net, counted, { padAmount: net.hyp.net.padAmount });
  stopStatusClock();
  clock('whitening', t);

  buildGrid(dataset.eval, dataset.classNames);
  await runTrainer(s, null);
}

/** `images` whose every `gather` (the whitening fit's way of reading them) reports how many images it took. */
function countGathers(images: CompactImages, onGather: (count: number) => void): CompactImages {
  // Everything else (shape, parts, decoding) is the original's, through the prototype chain.
  const counted = Object.create(images) as CompactImages;
  counted.gather = (indices, ...rest) => {
    onGather(indices.shape[0]);
    return images.gather(indices, ...rest);
  };
  return counted;
}

function fail(e: unknown): void {
  showError(e);
  showFailure(e);
  setState('error');
}

function guarded(action: () => Promise<void>): () => void {
  return () => {
    action().catch(fail);
  };
}

buttons.start.addEventListener('click', guarded(startRun));
buttons.stop.addEventListener('click', () => {
  session?.trainer?.requestStop();
  setState('stopping');
});
buttons.resume.addEventListener(
  'click',
  guarded(async () => {
    if (!session?.checkpoint) throw new Error('nothing to resume');
    await runTrainer(session, session.checkpoint);
  }),
);
buttons.download.addEventListener(
  'click',
  guarded(async () => {
    if (!session) throw new Error('train a model first');
    // The same as model.save('downloads://speedy-convnet-cifar10'), but naming the handler keeps it in a
    // production bundle: Vite 8 tree-shakes tfjs-core's self-registering 'downloads://' router away.
    await session.net.model.save(browserDownloads('speedy-convnet-cifar10'));
  }),
);
document.querySelectorAll<HTMLButtonElement>('[data-preset]').forEach((button) => {
  button.addEventListener('click', () => applyPreset(button.dataset['preset'] as keyof typeof PRESETS));
});

// ---------------------------------------------------------------------------------------------
// Start-up: probe WebGPU, pick a preset, apply URL parameters, load ?data= and ?autostart=1.

async function main(): Promise<void> {
  setState('idle');
  Object.values(charts).forEach((c) => c.draw());
  const gpu = await probeWebGPU();
  if (!gpu.ok) backendSelect.value = 'wasm';
  applyPreset(gpu.ok && !gpu.software ? 'quick' : 'tiny');
  (form.elements.namedItem('seed') as HTMLInputElement).value = '0';
  (form.elements.namedItem('logEvery') as HTMLInputElement).value = '1';
  (form.elements.namedItem('whiten') as HTMLInputElement).value = '50000';
  const backend = params.get('backend');
  if (backend === 'webgpu' || backend === 'wasm' || backend === 'cpu') backendSelect.value = backend;
  const convPrecision = params.get('convPrecision');
  if (convPrecision !== null) {
    if (!(CONV_PRECISIONS as readonly string[]).includes(convPrecision))
      throw new Error(`?convPrecision must be one of ${CONV_PRECISIONS.join(', ')}, got '${convPrecision}'`);
    convPrecisionSelect.value = convPrecision;
  }
  for (const field of NUMERIC_FIELDS) {
    const value = params.get(field);
    if (value != null) (form.elements.namedItem(field) as HTMLInputElement).value = value;
  }
  if (params.has('batch') && !params.has('micro')) (form.elements.namedItem('micro') as HTMLInputElement).value = params.get('batch')!;
  const dataUrl = params.get('data');
  const labels = params.get('labels');
  if (labels === 'fine' || labels === 'coarse') (form.elements.namedItem('labels') as HTMLSelectElement).value = labels;
  if (dataUrl) await useSource(urlSource(dataUrl, params.get('dataset') === 'cifar100' ? 'cifar100' : 'cifar10'));
  if (params.get('autostart') === '1') await startRun();
}

main().catch(fail);
