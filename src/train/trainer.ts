import * as tf from '@tensorflow/tfjs-core';
import { epochBatches, epochFraction, stepsInEpoch, type LabelledImages } from '../data/batches.js';
import { checkHyp } from '../models/hyp.js';
import { predictWithFlipTTA, type SpeedyConvNet } from '../models/speedy-convnet.js';
import { accuracy, crossEntropy, seedLoss } from '../ops/loss.js';
import { DeviceRandom, type DeviceRandomState } from '../ops/random.js';
import { NetworkEMA } from './ema.js';
import { perExampleLoss } from './metrics.js';
import { OneCycle } from './one-cycle.js';
import { SGD, splitBiasGroups, type NamedWeight } from './sgd.js';
import { variableGrads } from './variable-grads.js';

/** The dataset as the seed holds it on the device: padded, normalised training images and the eval split. */
export interface TrainData {
  /** Training images reflect-padded by `hyp.net.padAmount`, NHWC, with one-hot (or soft) targets. */
  train: LabelledImages;
  /** Evaluation images (unpadded) and one-hot targets. */
  eval: LabelledImages;
}

/** One row of the seed's table, plus what the CLI and the browser example show. */
export interface EpochRecord {
  /** 0-based, as the seed prints it. */
  epoch: number;
  /** The seed's logged train loss (per example) at the last step with epochStep % 50 == 0. */
  trainLoss: number;
  trainAcc: number;
  valLoss: number;
  valAcc: number;
  /** Null before the EMA starts. */
  emaValAcc: number | null;
  /** Training-loop time so far (evaluation excluded), as the seed's total_time_seconds. */
  totalTimeSeconds: number;
  /** Optimiser steps completed so far. */
  steps: number;
  /** Training images per second in this epoch's loop. */
  imagesPerSec: number;
  /** The non-bias group's learning rate used by the epoch's last step. */
  lr: number;
}

export interface StepInfo {
  epoch: number;
  /** Steps completed in total (1 after the first step). */
  step: number;
  /** Steps completed in this epoch. */
  epochStep: number;
  epochSteps: number;
  totalSteps: number;
  /** Learning rate the step used (non-bias group). */
  lr: number;
  /** Per-example training loss of the step, when it was read (every `logEvery` steps); else undefined. */
  loss?: number;
  /** Training accuracy of the step, when read. */
  acc?: number;
  /**
   * Training images per second since the epoch started, counting the steps known to be finished at the
   * last read of the loss: on an asynchronous backend (WebGPU) a step returns once queued, so counting
   * queued steps would overstate the rate. NaN before the epoch's first read.
   */
  imagesPerSec: number;
}

export interface TrainCallbacks {
  /** After each step; `loss`/`acc` are present every `logEvery` steps. Awaited. */
  onStep?(info: StepInfo): void | Promise<void>;
  /** After each epoch's evaluation. Awaited; a good place to checkpoint. */
  onEpochEnd?(record: EpochRecord, trainer: Trainer): void | Promise<void>;
}

export interface TrainOptions {
  /** Seeds the data order and augmentations. Default 0. */
  seed?: number;
  /** Images per forward/backward pass; gradients of `batchSize / microBatchSize` passes are summed into one step. Default: the batch size. */
  microBatchSize?: number;
  /** Steps between (asynchronous) reads of the loss for progress and the NaN check. Default 10. */
  logEvery?: number;
  callbacks?: TrainCallbacks;
  /** Evaluate on the eval split after every epoch (else only after the last). Default true. */
  evalEveryEpoch?: boolean;
}

/** Everything needed to continue a run exactly: JSON-safe fields plus named tensors. */
export interface TrainCheckpoint {
  version: 1;
  /** The epoch to continue in, and how many of its steps are done. */
  epoch: number;
  epochStep: number;
  step: number;
  /** The data generator's state when `epoch` started (its batches are drawn again and the first `epochStep` skipped). */
  dataRandomAtEpochStart: DeviceRandomState;
  /** The discrete actions' noise streams now. */
  modelRandom: DeviceRandomState[];
  records: EpochRecord[];
  totalTimeSeconds: number;
  sgd: { step: number; scheduleSteps: (number | null)[] };
  emaActive: boolean;
  /** The current epoch's logged training loss/accuracy so far (the table's train columns), so a mid-epoch resume keeps them. */
  epochTrainMetrics?: { loss: number; acc: number } | null;
  /** `weights/<name>`, `momentum/<name>`, `ema/<name>`, by each weight's scoped name without tfjs-layers' uniqueness suffix. */
  tensors: tf.NamedTensorMap;
}

/** How a run ended. */
export type StopReason = 'completed' | 'stopped' | 'non-finite-loss';

export interface TrainResult {
  records: EpochRecord[];
  stopReason: StopReason;
  /** Set when stopReason is 'non-finite-loss'. */
  message?: string;
  totalTimeSeconds: number;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly value: number) {
    super(`training loss became ${value} at step ${step} (the loss is read every few steps; it was finite when last read before that)`);
    this.name = 'NonFiniteLossError';
  }
}

/** The seed's step bookkeeping, with whole-number epoch counts running their last epoch in full (see docs/seed-differences.md). */
export function trainSchedule(numExamples: number, batchSize: number, trainEpochs: number): { epochSteps: number[]; totalSteps: number; stepsPerEpoch: number } {
  const epochs = Math.ceil(trainEpochs);
  const epochSteps = Array.from({ length: epochs }, (_, e) => {
    // The seed's last epoch of a whole-number run gets fraction 0 (no steps); it runs in full here.
    const fraction = epochFraction(e, trainEpochs) || 1;
    return stepsInEpoch(numExamples, batchSize, fraction);
  });
  const stepsPerEpoch = Math.floor(numExamples / batchSize);
  if (epochSteps.every((n) => n === 0)) {
    const why = stepsPerEpoch === 0
      ? `${numExamples} examples make no full batch of ${batchSize}`
      : `an epoch is ${stepsPerEpoch} steps of ${batchSize} examples, and ${trainEpochs} of one rounds to 0 steps; train more than ${(0.5 / stepsPerEpoch).toPrecision(3)} epochs`;
    throw new Error(`trainSchedule: ${trainEpochs} epochs of ${numExamples} examples make no training step (${why})`);
  }
  const total = Math.ceil(stepsPerEpoch * trainEpochs);
  // Rounding of a fractional last epoch can add a step beyond the seed's formula; the schedule then stretches to cover it.
  return { epochSteps, stepsPerEpoch, totalSteps: Math.max(total, epochSteps.reduce((a, b) => a + b, 0)) };
}

/**
 * The seed's training loop for a {@link SpeedyConvNet}: two SGD groups (biases and
 * the rest) with OneCycle schedules, crop/flip (and cutmix in the last epochs) each
 * epoch, an EMA from epoch `floor(trainEpochs) - ema.epochs` updated every
 * `ema.everyNSteps` steps and copied back into the live net, and evaluation of the
 * live and EMA nets with flip test-time augmentation after each epoch. Only the
 * training loop is timed.
 *
 * @remarks
 * With `microBatchSize` below the batch size, the gradients of several passes are
 * summed before one optimiser step: the same update as one large batch (the seed's
 * loss is a sum), except that batch-norm statistics are per micro-batch.
 * Nothing is read back inside a step: the loss is read asynchronously every
 * `logEvery` steps, for progress and to stop on a NaN or infinite loss.
 */
export class Trainer {
  readonly net: SpeedyConvNet;
  readonly data: TrainData;
  readonly batchSize: number;
  readonly microBatchSize: number;
  readonly epochSteps: number[];
  readonly totalSteps: number;
  readonly emaStartEpoch: number;
  /** Side of the network's input images (the crop size), in pixels. */
  readonly imageSize: number;
  private readonly options: Required<Omit<TrainOptions, 'callbacks'>> & { callbacks: TrainCallbacks };
  private readonly optimizer: SGD;
  private readonly schedules: OneCycle[];
  private readonly trainable: tf.Variable[];
  private readonly random: DeviceRandom;
  private ema: NetworkEMA | null = null;
  private epoch = 0;
  private epochStep = 0;
  private step = 0;
  private dataRandomAtEpochStart: DeviceRandomState;
  private records: EpochRecord[] = [];
  private totalTimeSeconds = 0;
  private lastLr = 0;
  private stopRequested = false;
  private nonFinite: NonFiniteLossError | null = null;
  /** The epoch's logged training loss (per example) and accuracy, already read back. */
  private lastLogged: { loss: number; acc: number } | null = null;

  constructor(net: SpeedyConvNet, data: TrainData, options: TrainOptions = {}) {
    this.net = net;
    this.data = data;
    const { hyp } = net;
    try {
      checkHyp(hyp);
    } catch (e) {
      throw new Error(`Trainer: net.hyp is invalid: ${(e as Error).message}`);
    }
    this.batchSize = hyp.opt.batchSize;
    const n = data.train.images.shape[0];
    if (n < this.batchSize) throw new Error(`Trainer: the training set has ${n} images, fewer than one batch of ${this.batchSize}`);
    this.imageSize = net.model.inputs[0]!.shape[1] ?? 32;
    const expectedSide = this.imageSize + 2 * hyp.net.padAmount;
    if (data.train.images.shape[1] !== expectedSide) {
      throw new Error(`Trainer: training images must be reflect-padded by hyp.net.padAmount=${hyp.net.padAmount} (${expectedSide}x${expectedSide}), got shape [${data.train.images.shape}]`);
    }
    this.microBatchSize = options.microBatchSize ?? this.batchSize;
    if (!(Number.isInteger(this.microBatchSize) && this.microBatchSize > 0 && this.batchSize % this.microBatchSize === 0)) {
      throw new Error(`Trainer: microBatchSize must be a positive divisor of the batch size ${this.batchSize}, got ${options.microBatchSize}`);
    }
    this.options = {
      seed: options.seed ?? 0,
      microBatchSize: this.microBatchSize,
      logEvery: options.logEvery ?? 10,
      evalEveryEpoch: options.evalEveryEpoch ?? true,
      callbacks: options.callbacks ?? {},
    };
    let schedule: ReturnType<typeof trainSchedule>;
    try {
      schedule = trainSchedule(n, this.batchSize, hyp.misc.trainEpochs);
    } catch (e) {
      throw new Error(`Trainer: hyp.misc.trainEpochs ${hyp.misc.trainEpochs} gives no step to train: ${(e as Error).message.replace(/^trainSchedule: /, '')}`);
    }
    this.epochSteps = schedule.epochSteps;
    this.totalSteps = schedule.totalSteps;
    this.emaStartEpoch = Math.floor(hyp.misc.trainEpochs) - hyp.misc.ema.epochs;

    const weights = net.model.trainableWeights as unknown as NamedWeight[];
    const { bias, nonBias } = splitBiasGroups(weights);
    const cycle = (maxLr: number) => new OneCycle({
      maxLr,
      totalSteps: this.totalSteps,
      pctStart: hyp.opt.percentStart,
      divFactor: hyp.opt.initialDivFactor,
      finalDivFactor: 1 / (hyp.opt.initialDivFactor * hyp.opt.finalLrRatio),
      anneal: 'linear',
    });
    this.schedules = [cycle(hyp.opt.nonBiasLr), cycle(hyp.opt.biasLr)];
    const common = { momentum: hyp.opt.momentum, nesterov: true };
    this.optimizer = new SGD([
      { name: 'non_bias', weights: nonBias, lr: this.schedules[0]!, weightDecay: hyp.opt.nonBiasDecay, ...common },
      { name: 'bias', weights: bias, lr: this.schedules[1]!, weightDecay: hyp.opt.biasDecay, ...common },
    ]);
    this.trainable = net.model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.random = new DeviceRandom(this.options.seed);
    this.dataRandomAtEpochStart = this.random.getState();
  }

  private makeEma(): NetworkEMA {
    const { ema } = this.net.hyp.misc;
    return new NetworkEMA(this.net.model, {
      decaySchedule: { totalSteps: this.totalSteps, decayBase: ema.decayBase, everyN: ema.everyNSteps, pow: ema.decayPow },
    });
  }

  /**
   * Asks the run to stop after the current step (e.g. on Ctrl-C); `run()` then resolves with
   * stopReason 'stopped'. Asked before `run()`, it makes the next `run()` stop before its first step.
   */
  requestStop(): void {
    this.stopRequested = true;
  }

  /** Epoch records so far. */
  get history(): readonly EpochRecord[] {
    return this.records;
  }

  /** The EMA network, once the EMA has started. */
  get networkEMA(): NetworkEMA | null {
    return this.ema;
  }

  /** Trains to the end of the schedule (or until stopped), evaluating after each epoch. */
  async run(): Promise<TrainResult> {
    const { hyp } = this.net;
    const epochs = this.epochSteps.length;
    while (this.epoch < epochs) {
      if (this.stopRequested) return this.finish('stopped');
      const epoch = this.epoch;
      if (this.epochStep === 0) this.dataRandomAtEpochStart = this.random.getState();
      else this.random.setState(this.dataRandomAtEpochStart);
      const cutmixSize = epoch >= hyp.misc.trainEpochs - hyp.net.cutmixEpochs ? hyp.net.cutmixSize : 0;
      const steps = this.epochSteps[epoch]!;
      const batches = epochBatches(this.data.train, {
        batchSize: this.batchSize,
        random: this.random,
        epochFraction: steps * this.batchSize / this.data.train.images.shape[0],
        cropSize: this.imageSize,
        cutmixSize,
      });
      const started = performance.now();
      let seen = 0;
      let index = 0;
      // Images of the steps the backend has finished (as of the last completed read), and when.
      let finishedImages = 0;
      let finishedAt = started;
      try {
        for (const batch of batches) {
          if (index++ < this.epochStep) {
            tf.dispose([batch.inputs, batch.targets]); // resuming: these steps are done
            continue;
          }
          if (this.epochStep >= steps || this.stopRequested) {
            tf.dispose([batch.inputs, batch.targets]);
            break;
          }
          const lr = this.schedules[0]!.lr;
          this.lastLr = lr;
          const logNow = (this.epochStep % 50 === 0) || ((this.step + 1) % this.options.logEvery === 0) || this.epochStep === steps - 1;
          const { loss, acc } = this.trainStep(batch.inputs, batch.targets, logNow);
          tf.dispose([batch.inputs, batch.targets]);
          this.step++;
          this.epochStep++;
          seen += this.batchSize;
          if (epoch >= this.emaStartEpoch && this.step % hyp.misc.ema.everyNSteps === 0) {
            if (this.ema == null) {
              // The seed snapshots the live net at its first EMA step and `continue`s: updates start a period later.
              this.ema = this.makeEma();
            } else {
              // The seed's decay, decayBase^everyN * (step / totalSteps)^pow, read from a table on the backend.
              this.ema.updateAt(this.net.model, this.step);
            }
          }
          const info: StepInfo = {
            epoch, step: this.step, epochStep: this.epochStep, epochSteps: steps, totalSteps: this.totalSteps, lr, imagesPerSec: NaN,
          };
          if (loss && acc) {
            const [lossValue, accValue] = await Promise.all([loss.data(), acc.data()]);
            // The read returns once the backend has run this step, and so every step before it.
            finishedImages = seen;
            finishedAt = performance.now();
            info.loss = this.perExample(lossValue[0]!);
            info.acc = accValue[0]!;
            // Either can be the first to go: a finite sum scaled by a zero loss batch size is 0/0 per example.
            if (!Number.isFinite(lossValue[0]!) || !Number.isFinite(info.loss)) {
              this.nonFinite = new NonFiniteLossError(this.step, Number.isFinite(lossValue[0]!) ? info.loss : lossValue[0]!);
            }
            if ((this.epochStep - 1) % 50 === 0) this.lastLogged = { loss: info.loss, acc: info.acc };
            tf.dispose([loss, acc]);
          }
          if (finishedImages > 0) info.imagesPerSec = finishedImages / ((finishedAt - started) / 1000);
          await this.options.callbacks.onStep?.(info);
          if (this.nonFinite) {
            return this.finish('non-finite-loss', this.nonFinite.message);
          }
          if (this.stopRequested) return this.finish('stopped');
        }
      } finally {
        batches.return(undefined);
      }
      if (this.stopRequested && this.epochStep < steps) return this.finish('stopped');
      // Let queued device work finish before stopping the clock (the seed synchronises CUDA events).
      const sync = tf.tidy(() => tf.sum(this.trainable[0]!));
      await sync.data();
      sync.dispose();
      const elapsed = (performance.now() - started) / 1000;
      this.totalTimeSeconds += elapsed;
      const isLast = epoch === epochs - 1;
      const evaluated = isLast || this.options.evalEveryEpoch;
      const record = await this.evaluateEpoch(epoch, seen / elapsed, evaluated);
      if (evaluated && !Number.isFinite(record.valLoss)) {
        // The training loss is only read every few steps; the net (or the eval data) may hold NaN or infinity since.
        return this.finish('non-finite-loss', `validation loss became ${record.valLoss} after epoch ${epoch} (step ${this.step})`);
      }
      this.records.push(record);
      this.epoch++;
      this.epochStep = 0;
      await this.options.callbacks.onEpochEnd?.(record, this);
      if (this.stopRequested && this.epoch < epochs) return this.finish('stopped');
    }
    return this.finish('completed');
  }

  private finish(stopReason: StopReason, message?: string): TrainResult {
    this.stopRequested = false;
    const result: TrainResult = { records: [...this.records], stopReason, totalTimeSeconds: this.totalTimeSeconds };
    if (message !== undefined) result.message = message;
    return result;
  }

  private perExample(loss: number): number {
    return perExampleLoss(loss, this.batchSize, this.net.hyp.opt.lossBatchSize / this.batchSize);
  }

  /** One optimiser step over the batch (summing micro-batch gradients); returns the loss/accuracy tensors when asked. */
  private trainStep(inputs: tf.Tensor4D, targets: tf.Tensor2D, keepMetrics: boolean): { loss: tf.Scalar | null; acc: tf.Scalar | null } {
    const { hyp } = this.net;
    const micro = this.microBatchSize;
    const passes = this.batchSize / micro;
    // Each pass is scaled for the full batch, so the summed gradient is the full batch's (the seed's loss is a sum).
    const batchScale = hyp.opt.lossBatchSize / this.batchSize;
    let total: tf.NamedTensorMap | null = null;
    let lossSum: tf.Scalar | null = null;
    let correct: tf.Scalar | null = null;
    for (let p = 0; p < passes; p++) {
      const x = passes === 1 ? inputs : tf.slice(inputs, p * micro, micro);
      const y = passes === 1 ? targets : tf.slice(targets, p * micro, micro);
      const kept: { logits?: tf.Tensor } = {};
      const { value, grads } = variableGrads(() => {
        const out = this.net.model.apply(x, { training: true }) as tf.Tensor2D;
        if (keepMetrics) kept.logits = tf.keep(out);
        return seedLoss(out, y, { labelSmoothing: hyp.opt.labelSmoothing, batchScale });
      }, this.trainable);
      if (kept.logits) {
        const acc = accuracy(kept.logits, y);
        kept.logits.dispose();
        const prevCorrect: tf.Scalar | null = correct;
        correct = prevCorrect ? tf.tidy(() => tf.add(prevCorrect, acc) as tf.Scalar) : tf.clone(acc);
        prevCorrect?.dispose();
        acc.dispose();
        const prevLoss: tf.Scalar | null = lossSum;
        lossSum = prevLoss ? tf.tidy(() => tf.add(prevLoss, value) as tf.Scalar) : tf.clone(value);
        prevLoss?.dispose();
      }
      value.dispose();
      if (x !== inputs) tf.dispose([x, y]);
      if (total == null) {
        total = grads;
      } else {
        const prev: tf.NamedTensorMap = total;
        total = tf.tidy(() => Object.fromEntries(Object.entries(prev).map(([k, g]) => [k, tf.add(g, grads[k]!)])));
        tf.dispose(Object.values(prev));
        tf.dispose(Object.values(grads));
      }
    }
    this.optimizer.step(total!);
    tf.dispose(Object.values(total!));
    if (!keepMetrics) return { loss: null, acc: null };
    const meanAcc = passes === 1 ? correct! : tf.tidy(() => tf.div(correct!, passes) as tf.Scalar);
    if (meanAcc !== correct) (correct as tf.Scalar | null)?.dispose();
    return { loss: lossSum, acc: meanAcc };
  }

  /** Accuracy and loss on the eval split, with flip test-time augmentation; `ema` evaluates the EMA weights. */
  async evaluate(useEma = false): Promise<{ loss: number; acc: number }> {
    const run = async () => {
      const { images, targets } = this.data.eval;
      const n = images.shape[0];
      const size = Math.min(this.net.hyp.misc.evalBatchSize, n);
      const parts: tf.Scalar[] = [];
      const weights: number[] = [];
      for (let start = 0; start < n; start += size) {
        const count = Math.min(size, n - start);
        const [loss, acc] = tf.tidy(() => {
          const x = tf.slice(images, start, count);
          const y = tf.slice(targets, start, count);
          const logits = predictWithFlipTTA(this.net.model, x);
          return [tf.mean(crossEntropy(logits, y, this.net.hyp.opt.labelSmoothing)), accuracy(logits, y)] as tf.Scalar[];
        });
        parts.push(loss!, acc!);
        weights.push(count);
      }
      const values = await Promise.all(parts.map((t) => t.data()));
      tf.dispose(parts);
      let loss = 0;
      let acc = 0;
      weights.forEach((w, i) => {
        loss += values[2 * i]![0]! * w;
        acc += values[2 * i + 1]![0]! * w;
      });
      return { loss: loss / n, acc: acc / n };
    };
    if (useEma) {
      if (!this.ema) throw new Error('Trainer.evaluate: the EMA has not started yet');
      return this.ema.withWeights(this.net.model, run);
    }
    return run();
  }

  private async evaluateEpoch(epoch: number, imagesPerSec: number, doEval: boolean): Promise<EpochRecord> {
    let trainLoss = Number.NaN;
    let trainAcc = Number.NaN;
    if (this.lastLogged) {
      trainLoss = this.lastLogged.loss;
      trainAcc = this.lastLogged.acc;
      this.lastLogged = null;
    }
    const live = doEval ? await this.evaluate(false) : { loss: Number.NaN, acc: Number.NaN };
    const emaAcc = doEval && this.ema && epoch >= this.emaStartEpoch ? (await this.evaluate(true)).acc : null;
    return {
      epoch,
      trainLoss,
      trainAcc,
      valLoss: live.loss,
      valAcc: live.acc,
      emaValAcc: emaAcc,
      totalTimeSeconds: this.totalTimeSeconds,
      steps: this.step,
      imagesPerSec,
      lr: this.lastLr,
    };
  }

  /** A checkpoint of the run at the current step; the caller disposes `tensors`. */
  checkpoint(): TrainCheckpoint {
    const tensors: tf.NamedTensorMap = {};
    // Keyed by originalName: the scoped name without tfjs-layers' per-process uniqueness suffix.
    for (const w of this.net.model.weights) tensors[`weights/${w.originalName}`] = tf.clone(w.read());
    const sgd = this.optimizer.getState();
    const original = new Map(this.net.model.weights.map((w) => [w.name, w.originalName]));
    for (const [name, b] of Object.entries(sgd.buffers)) tensors[`momentum/${original.get(name) ?? name}`] = b;
    if (this.ema) for (const [name, v] of Object.entries(this.ema.snapshot())) tensors[`ema/${original.get(name) ?? name}`] = v;
    return {
      version: 1,
      epoch: this.epoch,
      epochStep: this.epochStep,
      step: this.step,
      dataRandomAtEpochStart: this.epochStep === 0 ? this.random.getState() : this.dataRandomAtEpochStart,
      modelRandom: this.net.discreteActions.map((d) => d.random.getState()),
      records: structuredClone(this.records),
      totalTimeSeconds: this.totalTimeSeconds,
      sgd: { step: sgd.step, scheduleSteps: sgd.scheduleSteps },
      emaActive: this.ema != null,
      epochTrainMetrics: this.lastLogged && { ...this.lastLogged },
      tensors,
    };
  }

  /**
   * Continues from a checkpoint of the same configuration (the caller keeps `checkpoint.tensors`).
   * Everything is checked before anything is written: a refused checkpoint (another mode,
   * architecture, data size or batch size; a missing or misshapen tensor; a bad field) throws and
   * leaves the trainer exactly as it was.
   */
  restore(checkpoint: TrainCheckpoint): void {
    const fail = (what: string): never => {
      throw new Error(`Trainer.restore: ${what}`);
    };
    if (checkpoint == null || typeof checkpoint !== 'object') fail(`expected a checkpoint from Trainer.checkpoint(), got ${String(checkpoint)}`);
    if (checkpoint.version !== 1) fail(`unsupported checkpoint version ${String(checkpoint.version)} (this trainer reads version 1)`);
    const { tensors } = checkpoint;
    if (tensors == null || typeof tensors !== 'object') fail(`the checkpoint has no tensors, got ${String(tensors)}`);

    // Where the checkpoint is in the schedule: it must be a point of this trainer's schedule.
    const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
    const { epoch, epochStep, step } = checkpoint;
    const epochs = this.epochSteps.length;
    if (!isCount(epoch) || epoch > epochs) fail(`epoch must be an integer in [0, ${epochs}], got ${String(epoch)}`);
    const stepsThisEpoch = this.epochSteps[epoch] ?? 0;
    if (!isCount(epochStep) || epochStep > stepsThisEpoch) {
      fail(`epochStep must be an integer in [0, ${stepsThisEpoch}] for epoch ${epoch} of this schedule (${this.epochSteps.join(', ')} steps per epoch), got ${String(epochStep)}`);
    }
    const expectedStep = this.epochSteps.slice(0, epoch).reduce((a, b) => a + b, 0) + epochStep;
    if (step !== expectedStep) {
      fail(`the checkpoint is at step ${String(step)}, but epoch ${epoch} step ${epochStep} is step ${expectedStep} of this trainer's schedule (${this.epochSteps.join(', ')} steps per epoch): ` +
        'was it written with another data size, batch size or number of epochs?');
    }
    const checkState = (state: DeviceRandomState | undefined, what: string) => {
      if (state == null || !Number.isSafeInteger(state.seed) || !isCount(state.counter)) {
        fail(`${what} must be { seed, counter } with safe integers (counter >= 0), got ${JSON.stringify(state)}`);
      }
    };
    checkState(checkpoint.dataRandomAtEpochStart, 'dataRandomAtEpochStart');
    if (!Array.isArray(checkpoint.modelRandom) || checkpoint.modelRandom.length !== this.net.discreteActions.length) {
      fail(`the checkpoint has ${Array.isArray(checkpoint.modelRandom) ? checkpoint.modelRandom.length : 'no'} noise streams, the net has ${this.net.discreteActions.length} discrete actions (was it saved in another mode?)`);
    }
    checkpoint.modelRandom.forEach((state, i) => checkState(state, `modelRandom[${i}]`));
    if (!Array.isArray(checkpoint.records) || checkpoint.records.length !== epoch) {
      fail(`records must hold one entry per finished epoch (${epoch}), got ${Array.isArray(checkpoint.records) ? checkpoint.records.length : String(checkpoint.records)}`);
    }
    if (!(Number.isFinite(checkpoint.totalTimeSeconds) && checkpoint.totalTimeSeconds >= 0)) fail(`totalTimeSeconds must be a number >= 0, got ${String(checkpoint.totalTimeSeconds)}`);
    const metrics = checkpoint.epochTrainMetrics;
    if (metrics != null && (typeof metrics.loss !== 'number' || typeof metrics.acc !== 'number')) fail(`epochTrainMetrics must be null or { loss, acc }, got ${JSON.stringify(metrics)}`);
    const sgd = checkpoint.sgd;
    if (sgd == null || !isCount(sgd.step) || !Array.isArray(sgd.scheduleSteps) || sgd.scheduleSteps.length !== this.schedules.length) {
      fail(`sgd must be { step, scheduleSteps } with ${this.schedules.length} schedule steps, got ${JSON.stringify(sgd)}`);
    }
    sgd.scheduleSteps.forEach((s, i) => {
      if (s == null) return;
      try {
        this.schedules[i]!.lrAt(s);
      } catch (e) {
        fail(`sgd.scheduleSteps[${i}] is not a step of this trainer's learning-rate schedule (${this.totalSteps} steps): ${(e as Error).message}`);
      }
    });

    // The tensors: every weight, momentum buffer and EMA entry named, of this net's shapes.
    const current = new Map(this.net.model.weights.map((w) => [w.originalName, w]));
    const trainableNames = new Set(this.net.model.trainableWeights.map((w) => w.name));
    const weights = new Map<string, tf.Tensor>();
    const buffers: tf.NamedTensorMap = {};
    const ema: tf.NamedTensorMap = {};
    const checkTensor = (key: string, value: tf.Tensor, shape: number[], dtype: tf.DataType) => {
      if (!(value instanceof tf.Tensor) || value.isDisposed) fail(`'${key}' is not a live tensor`);
      if (!tf.util.arraysEqual(value.shape, shape)) fail(`'${key}' has shape [${value.shape}], this net's weight is [${shape}]`);
      if (value.dtype !== dtype) fail(`'${key}' has dtype ${value.dtype}, this net's weight is ${dtype}`);
    };
    for (const [key, value] of Object.entries(tensors)) {
      const slash = key.indexOf('/');
      const [kind, name] = [key.slice(0, slash), key.slice(slash + 1)];
      const w = current.get(name);
      if (slash < 0 || !['weights', 'momentum', 'ema'].includes(kind)) fail(`tensor '${key}' is not a weights/, momentum/ or ema/ entry`);
      if (!w) fail(`tensor '${key}' names no weight of this net (was it saved from another architecture or base depth?)`);
      checkTensor(key, value, w!.shape as number[], w!.dtype);
      if (kind === 'weights') weights.set(name, value);
      if (kind === 'momentum') {
        if (!trainableNames.has(w!.name)) fail(`tensor '${key}' is momentum for '${name}', which this net does not train`);
        buffers[w!.name] = value;
      }
      if (kind === 'ema') ema[w!.name] = value;
    }
    for (const w of this.net.model.weights) {
      if (!weights.has(w.originalName)) fail(`the checkpoint has no value for weight '${w.originalName}'`);
    }
    if (typeof checkpoint.emaActive !== 'boolean') fail(`emaActive must be true or false, got ${String(checkpoint.emaActive)}`);
    // The EMA is built and loaded aside (NetworkEMA.load checks every entry), and swapped in only at the end.
    let nextEma: NetworkEMA | null = null;
    if (checkpoint.emaActive) {
      nextEma = this.makeEma();
      try {
        nextEma.load(ema);
      } catch (e) {
        nextEma.dispose();
        fail(`the checkpoint's EMA does not fit this net: ${(e as Error).message}`);
      }
    } else if (Object.keys(ema).length > 0) {
      fail('the checkpoint holds ema/ tensors but says the EMA had not started (emaActive false)');
    }

    // Everything checked: write.
    for (const w of this.net.model.weights) w.write(tf.clone(weights.get(w.originalName)!));
    this.optimizer.setState({ ...sgd, buffers });
    this.ema?.dispose();
    this.ema = nextEma;
    checkpoint.modelRandom.forEach((s, i) => this.net.discreteActions[i]!.random.setState(s));
    this.random.setState(checkpoint.dataRandomAtEpochStart);
    this.dataRandomAtEpochStart = { ...checkpoint.dataRandomAtEpochStart };
    this.epoch = epoch;
    this.epochStep = epochStep;
    this.step = step;
    this.records = structuredClone(checkpoint.records);
    this.totalTimeSeconds = checkpoint.totalTimeSeconds;
    this.lastLogged = metrics ? { ...metrics } : null;
  }

  /** Frees the optimiser's buffers and the EMA (not the network or the data). */
  dispose(): void {
    this.optimizer.dispose();
    this.ema?.dispose();
    this.lastLogged = null;
  }
}
