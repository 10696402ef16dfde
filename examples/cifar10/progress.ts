/** Training progress: a redrawn bar on a terminal, plain periodic lines otherwise (logs, CI, pipes). */
import type { DownloadProgress, StepInfo } from '../../src/node.js';

/** A writable text stream, with the TTY fields of process.stderr when it has them. */
export interface TextOut {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const BAR_WIDTH = 24;
/** The narrowest bar drawn before fields are left out of a narrow terminal's line. */
const MIN_BAR_WIDTH = 8;
/** The line width assumed when the stream reports none (a pipe) or 0 (some terminals, e.g. under a CI runner or an IDE). */
const DEFAULT_COLUMNS = 80;
/** Steps the ms/step figure averages over: enough to span a read of the loss, where an asynchronous backend waits. */
const STEP_WINDOW = 10;

function fmt(value: number | undefined, digits: number): string {
  return value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

/** A duration for people: `45 s`, `12 min`, `7 h 48 min`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * The epoch as the seed counts it: its loop runs `ceil(trainEpochs)` epochs, the last one partial, so
 * 12.1 epochs read "epoch 1/12.1" .. "epoch 13/12.1" (never "/13", which promises a 13th full epoch).
 */
export function epochLabel(epoch: number, trainEpochs: number): string {
  return `epoch ${epoch + 1}/${Number(trainEpochs.toPrecision(6))}`;
}

/** The width to draw in on `out`: its columns when it reports a positive number, else {@link DEFAULT_COLUMNS}. */
export function lineWidth(out: TextOut): number {
  const columns = out.columns;
  return columns !== undefined && Number.isFinite(columns) && columns > 0 ? columns : DEFAULT_COLUMNS;
}

/** The fields of a status line, in order, each with how readily a narrow terminal's bar leaves it out (0: never). */
function progressFields(
  info: StepInfo,
  trainEpochs: number,
  last: { loss?: number; acc?: number },
  etaSeconds: number | undefined,
  msPerStep: number | undefined,
): Array<{ text: string; dropOrder: number }> {
  return [
    { text: `${epochLabel(info.epoch, trainEpochs)} step ${info.epochStep}/${info.epochSteps}`, dropOrder: 0 },
    { text: `(${info.step}/${info.totalSteps})`, dropOrder: 4 },
    { text: `loss ${fmt(last.loss, 4)}`, dropOrder: 0 },
    { text: `acc ${fmt(last.acc, 4)}`, dropOrder: 3 },
    { text: `lr ${info.lr.toExponential(3)}`, dropOrder: 1 },
    { text: `${fmt(info.imagesPerSec, 0)} img/s`, dropOrder: 2 },
    ...(msPerStep === undefined ? [] : [{ text: `${fmt(msPerStep, 0)} ms/step`, dropOrder: 0 }]),
    ...(etaSeconds === undefined ? [] : [{ text: `ETA ${formatDuration(etaSeconds)}`, dropOrder: 0 }]),
  ];
}

/**
 * One status line: epoch, steps, loss, accuracy, learning rate, throughput, wall time per step and (when
 * known) the time left. `msPerStep` is refreshed every step; the loss and accuracy only when the trainer
 * reads them (every `logEvery` steps, as a read waits for the device).
 */
export function progressLine(
  info: StepInfo,
  trainEpochs: number,
  last: { loss?: number; acc?: number },
  etaSeconds?: number,
  msPerStep?: number,
): string {
  return progressFields(info, trainEpochs, last, etaSeconds, msPerStep)
    .map((f) => f.text)
    .join(' ');
}

/**
 * The terminal's line: a bar of the epoch and the status line, within `width` characters. Where the whole does not
 * fit, the learning rate goes first, then images/s, then the bar narrows, then the accuracy, then the step of the whole
 * run; the epoch's step, loss, ms/step and ETA stay (cut at the width only on a terminal too narrow even for them).
 */
export function progressBarLine(
  info: StepInfo,
  trainEpochs: number,
  last: { loss?: number; acc?: number },
  width: number,
  etaSeconds?: number,
  msPerStep?: number,
): string {
  const fields = progressFields(info, trainEpochs, last, etaSeconds, msPerStep);
  const draw = (barWidth: number, dropped: number) => {
    const filled = Math.round((info.epochStep / info.epochSteps) * barWidth);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}]`;
    const kept = fields.filter((f) => f.dropOrder === 0 || f.dropOrder > dropped).map((f) => f.text);
    return `${bar} ${kept.join(' ')}`;
  };
  let line = '';
  for (const [barWidth, dropped] of [
    [BAR_WIDTH, 0],
    [BAR_WIDTH, 1],
    [BAR_WIDTH, 2],
    [Math.max(MIN_BAR_WIDTH, BAR_WIDTH - (draw(BAR_WIDTH, 2).length - width)), 2],
    [MIN_BAR_WIDTH, 3],
    [MIN_BAR_WIDTH, 4],
  ] as const) {
    line = draw(barWidth, dropped);
    if (line.length <= width) return line;
  }
  return line.slice(0, Math.max(20, width));
}

/**
 * Shows the trainer's steps on `out`: on a TTY a bar redrawn in place (at most ten
 * times a second), else a plain line every `intervalMs` and at the end of each epoch.
 * The loss and accuracy shown are the last ones the trainer read (every few steps); the
 * wall time per step (over the last {@link STEP_WINDOW} steps) is new at every step.
 * After the first step it says once what the whole run should take; every line then
 * carries an ETA, from the wall time per step since {@link start} (evaluations included).
 */
export class Progress {
  private last: { loss?: number; acc?: number } = {};
  private lastDraw = 0;
  private drawn = false;
  private startedAt = Date.now();
  /** Steps already done when this process started training (a resumed run's). */
  private stepsBefore: number | undefined;
  private estimated = false;
  /** When the last few steps ended (the first entry: when the oldest of them began). */
  private stepEnds: number[] = [];

  constructor(
    private readonly out: TextOut,
    private readonly trainEpochs: number,
    private readonly intervalMs = 10_000,
  ) {}

  /** Marks the start of training (the clock the ETA runs on). */
  start(): void {
    this.startedAt = Date.now();
    this.stepsBefore = undefined;
    this.estimated = false;
    this.stepEnds = [this.startedAt];
  }

  /** Milliseconds a step took, averaged over the last few (evaluations in between count too). */
  private msPerStep(now: number): number | undefined {
    this.stepEnds.push(now);
    if (this.stepEnds.length > STEP_WINDOW + 1) this.stepEnds.shift();
    const span = this.stepEnds.length - 1;
    return span > 0 ? (now - this.stepEnds[0]!) / span : undefined;
  }

  /** Seconds left by the rate so far, or undefined before the first step. */
  private eta(info: StepInfo, now: number): number | undefined {
    const done = info.step - (this.stepsBefore ?? info.step);
    if (done < 1) return undefined;
    return ((now - this.startedAt) / 1000 / done) * (info.totalSteps - info.step);
  }

  update(info: StepInfo): void {
    if (info.loss !== undefined) this.last = { loss: info.loss, acc: info.acc };
    if (this.stepsBefore === undefined) this.stepsBefore = info.step - 1;
    const now = Date.now();
    const eta = this.eta(info, now);
    const msPerStep = this.msPerStep(now);
    if (!this.estimated && eta !== undefined) {
      this.estimated = true;
      const perStep = (now - this.startedAt) / 1000 / (info.step - this.stepsBefore);
      this.clear();
      this.out.write(
        `Estimated time: ${formatDuration(perStep * (info.totalSteps - this.stepsBefore))} for ${info.totalSteps - this.stepsBefore} steps ` +
          `(${formatDuration(perStep)} a step so far; about ${formatDuration(eta)} left)\n`,
      );
    }
    const epochDone = info.epochStep === info.epochSteps;
    if (this.out.isTTY) {
      if (!epochDone && now - this.lastDraw < 100) return;
      // One column short of the width: a line that fills it wraps on some terminals, and the next \r would redraw one row down.
      const text = progressBarLine(info, this.trainEpochs, this.last, lineWidth(this.out) - 1, eta, msPerStep);
      this.out.write(`\r${text}\x1b[K`);
      this.drawn = true;
      this.lastDraw = now;
      return;
    }
    if (this.lastDraw === 0) this.lastDraw = now;
    if (epochDone || now - this.lastDraw >= this.intervalMs) {
      this.out.write(`${progressLine(info, this.trainEpochs, this.last, eta, msPerStep)}\n`);
      this.lastDraw = now;
    }
  }

  /** Clears the bar so a table row or message can be printed on a clean line. */
  clear(): void {
    if (this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }
}

function megabytes(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** One line of download progress of `what` (e.g. 'CIFAR-100'): bytes so far (of the total, when announced) and the rate. */
export function downloadLine(p: DownloadProgress, what = 'CIFAR-10'): string {
  const size =
    p.totalBytes !== undefined ? `${megabytes(p.receivedBytes)} of ${megabytes(p.totalBytes)} MB` : `${megabytes(p.receivedBytes)} MB`;
  const percent = p.totalBytes ? ` (${Math.floor((100 * p.receivedBytes) / p.totalBytes)}%)` : '';
  return `Downloading ${what}: ${size}${percent} at ${megabytes(p.bytesPerSecond)} MB/s${p.done ? ', done' : ''}`;
}

/**
 * A `loadCifar10` (or `loadCifar100`) `onDownloadProgress` that shows the download of `what` on `out`:
 * redrawn in place on a terminal, else a line every `intervalMs` (and one at the end), so a log shows it moving.
 */
export function downloadProgress(out: TextOut, intervalMs = 10_000, what = 'CIFAR-10'): (p: DownloadProgress) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (p) => {
    if (out.isTTY) {
      out.write(`\r${downloadLine(p, what)}\x1b[K${p.done ? '\n' : ''}`);
      return;
    }
    const now = Date.now();
    if (p.done || now - last >= intervalMs) {
      out.write(`${downloadLine(p, what)}\n`);
      last = now;
    }
  };
}
