/** Training progress: a redrawn bar on a terminal, plain periodic lines otherwise (logs, CI, pipes). */
import type { DownloadProgress, StepInfo } from '../../src/node.js';

/** A writable text stream, with the TTY fields of process.stderr when it has them. */
export interface TextOut {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const BAR_WIDTH = 24;

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

/** One status line: epoch, steps, loss, accuracy, learning rate, throughput and (when known) the time left. */
export function progressLine(info: StepInfo, trainEpochs: number, last: { loss?: number; acc?: number }, etaSeconds?: number): string {
  return (
    `${epochLabel(info.epoch, trainEpochs)} step ${info.epochStep}/${info.epochSteps} (${info.step}/${info.totalSteps}) ` +
    `loss ${fmt(last.loss, 4)} acc ${fmt(last.acc, 4)} lr ${info.lr.toExponential(3)} ${fmt(info.imagesPerSec, 0)} img/s` +
    (etaSeconds === undefined ? '' : ` ETA ${formatDuration(etaSeconds)}`)
  );
}

/**
 * Shows the trainer's steps on `out`: on a TTY a bar redrawn in place (at most ten
 * times a second), else a plain line every `intervalMs` and at the end of each epoch.
 * The loss and accuracy shown are the last ones the trainer read (every few steps).
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
      const filled = Math.round((info.epochStep / info.epochSteps) * BAR_WIDTH);
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
      const text = `${bar} ${progressLine(info, this.trainEpochs, this.last, eta)}`;
      const width = this.out.columns ?? 120;
      this.out.write(`\r${text.slice(0, Math.max(20, width - 1))}\x1b[K`);
      this.drawn = true;
      this.lastDraw = now;
      return;
    }
    if (this.lastDraw === 0) this.lastDraw = now;
    if (epochDone || now - this.lastDraw >= this.intervalMs) {
      this.out.write(`${progressLine(info, this.trainEpochs, this.last, eta)}\n`);
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

/** One line of download progress: bytes so far (of the total, when announced) and the rate. */
export function downloadLine(p: DownloadProgress): string {
  const size =
    p.totalBytes !== undefined ? `${megabytes(p.receivedBytes)} of ${megabytes(p.totalBytes)} MB` : `${megabytes(p.receivedBytes)} MB`;
  const percent = p.totalBytes ? ` (${Math.floor((100 * p.receivedBytes) / p.totalBytes)}%)` : '';
  return `Downloading CIFAR-10: ${size}${percent} at ${megabytes(p.bytesPerSecond)} MB/s${p.done ? ', done' : ''}`;
}

/**
 * A `loadCifar10` `onDownloadProgress` that shows the download on `out`: redrawn in place on a
 * terminal, else a line every `intervalMs` (and one at the end), so a log shows it moving.
 */
export function downloadProgress(out: TextOut, intervalMs = 10_000): (p: DownloadProgress) => void {
  let last = Number.NEGATIVE_INFINITY;
  return (p) => {
    if (out.isTTY) {
      out.write(`\r${downloadLine(p)}\x1b[K${p.done ? '\n' : ''}`);
      return;
    }
    const now = Date.now();
    if (p.done || now - last >= intervalMs) {
      out.write(`${downloadLine(p)}\n`);
      last = now;
    }
  };
}
