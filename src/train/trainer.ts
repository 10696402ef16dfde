import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { throwIfWebGPUFailed } from '../backend/device-errors.js';
import type { AnyLabelledImages, Batch } from '../data/batches.js';
import { findDiscreteActions, type DiscreteAction } from '../layers/discrete-action.js';
import { checkHypFitsCrops, type Hyp } from '../models/hyp.js';
import { accuracy } from '../ops/loss.js';
import { DeviceRandom, type DeviceRandomState } from '../ops/random.js';
import { CHECKPOINT_VERSION, checkCheckpoint, checkpointWeights, type CheckpointSchedule, type TrainCheckpoint } from './checkpoint.js';
import type { StageCheckpoint, StageState, TrainEMA, TrainOptimizer } from './contracts.js';
import { checkHypForRecipe, resolveRecipe, type RecipeOption, type TrainRecipe } from './recipes.js';
import { trainSchedule } from './schedule.js';
import {
  STAGE_NAMES,
  resolveStages,
  seedBatchesStage,
  stageCheckpoint,
  type StageContext,
  type StageName,
  type TrainStages,
} from './stages.js';
import { checkTrainData, resolveTrainable, type TrainData, type TrainableNet } from './trainable.js';
import type { EpochRecord, StepInfo, StopReason, TrainResult } from './types.js';
import { variableGrads } from './variable-grads.js';

export type { EpochRecord, StepInfo, StopReason, TrainResult } from './types.js';

/** `TrainOptions.maxLossRise`'s default. */
export const DEFAULT_MAX_LOSS_RISE = 10;

/** Functions a {@link Trainer} calls as it runs: progress, and a place to checkpoint. */
export interface TrainCallbacks {
  /** After each step; `loss`/`acc` are present every `logEvery` steps. Awaited. */
  onStep?(info: StepInfo): void | Promise<void>;
  /** After each epoch's evaluation. Awaited; a good place to checkpoint. */
  onEpochEnd?(record: EpochRecord, trainer: Trainer): void | Promise<void>;
}

/** Options of a {@link Trainer}: seeding, micro-batches, logging, callbacks and the recipe's stages. */
export interface TrainOptions {
  /** Seeds the data order and augmentations. Default 0. */
  seed?: number;
  /** Images per forward/backward pass; gradients of `batchSize / microBatchSize` passes are summed into one step. Default: the batch size. */
  microBatchSize?: number;
  /** Steps between (asynchronous) reads of the loss for progress and the NaN check. Default 10. */
  logEvery?: number;
  /** Progress callbacks: after each step and after each epoch's evaluation. */
  callbacks?: TrainCallbacks;
  /** Evaluate on the eval split after every epoch (else only after the last). Default true. */
  evalEveryEpoch?: boolean;
  /**
   * The recipe whose stages run where `stages` gives none: 'seed' (`SEED_RECIPE`, tuned for the seed's net), 'plain'
   * (`plainRecipe()`: mean loss, one Nesterov SGD group, no EMA; for a model of stock tfjs layers), a recipe such as
   * `plainRecipe({ lr: 0.02 })`, or 'auto' (the default): the seed's for a model with any of the library's layers,
   * else the plain one (`recipeFor`). `Trainer.recipe` and `TrainResult.recipe` say which ran and why.
   */
  recipe?: RecipeOption;
  /**
   * Stages of your own (loss, batches, optimizer, ema, evaluate); each left out is the recipe's. A stage with state
   * of its own implements `StageCheckpoint`.
   */
  stages?: TrainStages;
  /**
   * The run stops as diverged (stopReason 'diverged', with a message naming the knob to turn) when a logged
   * training loss exceeds this many times the larger of the run's first logged loss and chance level, `ln(classes)`
   * (the loss of uniform logits). Default 10; `Infinity` never stops.
   */
  maxLossRise?: number;
}

/** Thrown by {@link Trainer.run} when the training loss becomes NaN or infinite; `step` and `value` say when and what. */
export class NonFiniteLossError extends Error {
  constructor(
    /** The step at which the loss was read as non-finite. */
    readonly step: number,
    /** The loss read (NaN or ±Infinity). */
    readonly value: number,
  ) {
    super(`training loss became ${value} at step ${step} (the loss is read every few steps; it was finite when last read before that)`);
    this.name = 'NonFiniteLossError';
  }
}

/** How an epoch's training loop ended: the epoch is done (at this rate), or the run stops. */
type EpochOutcome = { imagesPerSec: number } | { stop: StopReason; message?: string };

/**
 * A training recipe for any tfjs `LayersModel` that maps NHWC images to logits, run as named stages
 * (`TrainOptions.stages`). Which recipe fills the stages not given is `TrainOptions.recipe`: by default the
 * seed's for a model with any of the library's layers, and the plain one (`plainRecipe`: mean loss, one Nesterov SGD
 * group, no EMA) for a model of stock tfjs layers, which the seed's rates blow up; `Trainer.recipe` says which and
 * why. The seed's recipe: two
 * SGD groups (weights with `bias` in their name, and the rest) with Nesterov momentum, coupled
 * weight decay and OneCycle schedules; crop/flip (and cutmix in the last epochs) each epoch; the
 * seed's summed, label-smoothed loss; an EMA from epoch `floor(trainEpochs) - ema.epochs`,
 * updated every `ema.everyNSteps` steps and copied back into the live model; evaluation of the
 * live and EMA models with flip test-time augmentation after each epoch; checkpoints that resume
 * exactly. Only the training loop is timed.
 *
 * @remarks
 * Pass a model and its hyperparameters as `{ model, hyp }` (a `SpeedyConvNet` is one), or a bare
 * `LayersModel` to train it with the seed's hyperparameters. The trainer finds the model's `DiscreteAction`
 * layers itself and checkpoints their noise streams. Under the seed's recipe its naming rules apply to any
 * model: weights named `...bias` go to the bias group, and the EMA copies back every float
 * weight except those with `whiten`, or both `norm` and `weight`, in their names.
 * With `microBatchSize` below the batch size, the gradients of several passes are summed
 * before one optimiser step: the same update as one large batch (the seed's loss is a sum),
 * except that batch-norm statistics are per micro-batch. Everything the run needs is checked in the
 * constructor: among others, a model with no trainable weight, an empty evaluation split (every run
 * is evaluated after its last epoch, so training without one is refused rather than run to a
 * meaningless loss), and, for the seed's batches stage, a `net.padAmount` or `net.cutmixSize` the
 * crop or cutmix cannot use (`checkHypFitsImages`). Nothing is read back inside a step:
 * the loss is read asynchronously every `logEvery` steps, for progress, to stop on a NaN or
 * infinite loss, and to stop a run whose loss rose past `maxLossRise` times its start (stopReason 'diverged').
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import { Trainer, initBackend, reflectPad, speedyConvNet } from 'tfjs-dataflow';
 *
 * await initBackend('cpu');
 * const net = speedyConvNet({ hyp: { net: { baseDepth: 8 }, opt: { batchSize: 16 }, misc: { trainEpochs: 1 } }, numClasses: 4, seed: 0 });
 * const images = tf.randomNormal([64, 32, 32, 3]) as tf.Tensor4D;
 * const targets = tf.cast(tf.oneHot(tf.tensor1d([...Array(64).keys()].map((i) => i % 4), 'int32'), 4), 'float32') as tf.Tensor2D;
 * const trainer = new Trainer(
 *   net,
 *   { train: { images: reflectPad(images, net.hyp.net.padAmount), targets }, eval: { images, targets } },
 *   { seed: 1, callbacks: { onEpochEnd: (r) => console.log(r.epoch, r.trainLoss, r.valAcc) } },
 * );
 * const result = await trainer.run(); // result.stopReason: 'completed'
 * trainer.dispose();
 * ```
 */
export class Trainer {
  /** The model being trained. */
  readonly model: tfl.LayersModel;
  /** The hyperparameters this trainer runs with, resolved and checked. */
  readonly hyp: Hyp;
  /** The model's simulated discrete actions, whose noise streams checkpoints hold. */
  readonly discreteActions: readonly DiscreteAction[];
  /** The training and evaluation data, as given. */
  readonly data: TrainData<AnyLabelledImages>;
  /** Images per optimiser step (`hyp.opt.batchSize`). */
  readonly batchSize: number;
  /** Images per forward and backward pass (see {@link TrainOptions.microBatchSize}). */
  readonly microBatchSize: number;
  /** Optimiser steps in each epoch (the last may be a fraction of a full one). */
  readonly epochSteps: number[];
  /** Optimiser steps in the whole run. */
  readonly totalSteps: number;
  /** The epoch (0-based) whose first step starts the EMA. */
  readonly emaStartEpoch: number;
  /** Side of the network's input images (the crop size), in pixels. */
  readonly imageSize: number;
  /** The stages this trainer runs, the recipe's where none was given. */
  readonly stages: Required<TrainStages>;
  /** The recipe this trainer runs and why (given, or chosen from the model's layers), with a line to print. */
  readonly recipe: TrainRecipe;
  private readonly options: Required<Omit<TrainOptions, 'callbacks' | 'stages' | 'recipe'>> & { callbacks: TrainCallbacks };
  private readonly context: StageContext;
  private readonly divergenceAdvice: string;
  private readonly optimizer: TrainOptimizer;
  private readonly trainable: tf.Variable[];
  private readonly random: DeviceRandom;
  private ema: TrainEMA | null = null;
  private epoch = 0;
  private epochStep = 0;
  private step = 0;
  private dataRandomAtEpochStart: DeviceRandomState;
  private records: EpochRecord[] = [];
  private totalTimeSeconds = 0;
  private lastLr = 0;
  private stopRequested = false;
  private running = false;
  private disposed = false;
  private nonFinite: NonFiniteLossError | null = null;
  /** The first loss this run read, and the message once a later one rose past `maxLossRise` times it. */
  private firstLoss: number | null = null;
  private diverged: string | null = null;
  /** The epoch's logged training loss (per example) and accuracy, already read back. */
  private lastLogged: { loss: number; acc: number } | null = null;

  constructor(net: tfl.LayersModel | TrainableNet, data: TrainData<AnyLabelledImages>, options: TrainOptions = {}) {
    ({ model: this.model, hyp: this.hyp } = resolveTrainable(net));
    // Checked here: without one, the optimiser has no group to step and the run fails only inside run().
    if (this.model.trainableWeights.length === 0) {
      throw new Error('Trainer: the model has no trainable weight (model.trainableWeights is empty); there is nothing to train');
    }
    this.discreteActions = findDiscreteActions(this.model);
    this.data = data;
    const { opt, misc } = this.hyp;
    this.batchSize = opt.batchSize;
    this.imageSize = checkTrainData(this.model, data, this.hyp);
    this.microBatchSize = options.microBatchSize ?? this.batchSize;
    if (!(Number.isInteger(this.microBatchSize) && this.microBatchSize > 0 && this.batchSize % this.microBatchSize === 0)) {
      throw new Error(
        `Trainer: microBatchSize must be a positive divisor of the batch size ${this.batchSize}, got ${options.microBatchSize}`,
      );
    }
    const logEvery = options.logEvery ?? 10;
    if (!(typeof logEvery === 'number' && Number.isInteger(logEvery) && logEvery > 0)) {
      throw new Error(
        `Trainer: logEvery must be a positive integer (steps between loss reads), got ${typeof logEvery === 'string' ? `'${logEvery}'` : String(logEvery)}`,
      );
    }
    const ownStages = STAGE_NAMES.filter((name) => options.stages?.[name] !== undefined);
    const { recipe, report } = resolveRecipe(options.recipe, this.model, ownStages);
    this.recipe = report;
    this.divergenceAdvice = ownStages.includes('optimizer') ? "lower your optimizer stage's learning rate" : recipe.onDivergence;
    this.stages = resolveStages(options.stages, recipe.stages);
    checkHypForRecipe(this.hyp, recipe, ownStages);
    // Checked here: a padding the crop cannot use, or a patch larger than the crop, fails inside an epoch's batches,
    // after their tensors exist. Only for the seed's batches stage: a stage of one's own crops (or not) as it likes.
    if (this.stages.batches === seedBatchesStage) {
      try {
        checkHypFitsCrops(this.hyp, this.imageSize);
      } catch (e) {
        throw new Error(`Trainer: ${(e as Error).message}`);
      }
    }
    const maxLossRise = options.maxLossRise ?? DEFAULT_MAX_LOSS_RISE;
    if (!(typeof maxLossRise === 'number' && maxLossRise > 1)) {
      throw new Error(
        `Trainer: maxLossRise must be a number above 1 (Infinity turns the divergence check off), got ${typeof maxLossRise === 'string' ? `'${maxLossRise}'` : String(maxLossRise)}`,
      );
    }
    this.options = {
      seed: options.seed ?? 0,
      microBatchSize: this.microBatchSize,
      logEvery,
      maxLossRise,
      evalEveryEpoch: options.evalEveryEpoch ?? true,
      callbacks: options.callbacks ?? {},
    };
    let schedule: ReturnType<typeof trainSchedule>;
    try {
      schedule = trainSchedule(data.train.images.shape[0], this.batchSize, misc.trainEpochs);
    } catch (e) {
      throw new Error(
        `Trainer: hyp.misc.trainEpochs ${misc.trainEpochs} gives no step to train: ${(e as Error).message.replace(/^trainSchedule: /, '')}`,
      );
    }
    this.epochSteps = schedule.epochSteps;
    this.totalSteps = schedule.totalSteps;
    this.context = Object.freeze({
      model: this.model,
      hyp: this.hyp,
      batchSize: this.batchSize,
      totalSteps: this.totalSteps,
      epochSteps: this.epochSteps,
      imageSize: this.imageSize,
    });
    this.emaStartEpoch = this.stages.ema.startEpoch(this.context);

    this.optimizer = checkOptimizer(this.stages.optimizer(this.context));
    this.trainable = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.random = new DeviceRandom(this.options.seed);
    this.dataRandomAtEpochStart = this.random.getState();
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

  /** The EMA (the seed's: a `NetworkEMA`), once it has started. */
  get networkEMA(): TrainEMA | null {
    return this.ema;
  }

  /** Trains to the end of the schedule (or until stopped), evaluating after each epoch. */
  async run(): Promise<TrainResult> {
    if (this.disposed) throw new Error('Trainer.run: this trainer has been disposed; make a new Trainer');
    if (this.running)
      throw new Error('Trainer.run: this trainer is already running; await the run in progress (a Trainer trains one run at a time)');
    const gone = (['train', 'eval'] as const).flatMap((split) =>
      (['images', 'targets'] as const).filter((k) => this.data[split][k].isDisposed).map((k) => `data.${split}.${k}`),
    );
    if (gone.length > 0)
      throw new Error(
        `Trainer.run: ${gone.join(', ')} ${gone.length === 1 ? 'has' : 'have'} been disposed; keep the data alive until the run ends`,
      );
    this.running = true;
    try {
      return await this.runEpochs();
    } finally {
      this.running = false;
    }
  }

  private async runEpochs(): Promise<TrainResult> {
    while (this.epoch < this.epochSteps.length) {
      if (this.stopRequested) return this.finish('stopped');
      const trained = await this.trainEpoch();
      if ('stop' in trained) return this.finish(trained.stop, trained.message);
      const evaluated = this.epoch === this.epochSteps.length - 1 || this.options.evalEveryEpoch;
      const record = await this.epochRecord(trained.imagesPerSec, evaluated);
      if (evaluated && !Number.isFinite(record.valLoss)) {
        // The training loss is only read every few steps; the net (or the eval data) may hold NaN or infinity since.
        return this.finish('non-finite-loss', `validation loss became ${record.valLoss} after epoch ${this.epoch} (step ${this.step})`);
      }
      this.records.push(record);
      this.epoch++;
      this.epochStep = 0;
      await this.options.callbacks.onEpochEnd?.(record, this);
    }
    return this.finish('completed');
  }

  /** Trains the current epoch from its `epochStep` on (more than 0 when resuming). */
  private async trainEpoch(): Promise<EpochOutcome> {
    const steps = this.epochSteps[this.epoch]!;
    const batches = this.epochBatches(steps);
    const clock = new EpochClock();
    try {
      let index = 0;
      for (const batch of batches) {
        const doneBeforeResume = index++ < this.epochStep;
        if (doneBeforeResume || this.epochStep >= steps || this.stopRequested) {
          tf.dispose([batch.inputs, batch.targets]);
          if (doneBeforeResume) continue;
          break;
        }
        const info = await this.trainOneStep(batch, steps, clock);
        await this.options.callbacks.onStep?.(info);
        if (this.nonFinite) return { stop: 'non-finite-loss', message: this.nonFinite.message };
        if (this.diverged) return { stop: 'diverged', message: this.diverged };
        if (this.stopRequested) return { stop: 'stopped' };
      }
    } finally {
      batches.return?.(undefined);
    }
    if (this.stopRequested && this.epochStep < steps) return { stop: 'stopped' };
    if (this.epochStep < steps) {
      throw new Error(
        `Trainer: stages.batches gave ${this.epochStep} batches for epoch ${this.epoch}, which needs ${steps} (hyp.opt.batchSize ${this.batchSize})`,
      );
    }
    // Let queued device work finish before stopping the clock (the seed synchronises CUDA events).
    const sync = tf.tidy(() => tf.sum(this.trainable[0]!));
    await sync.data();
    sync.dispose();
    throwIfWebGPUFailed(`epoch ${this.epoch}'s training`);
    const elapsed = clock.elapsedSeconds();
    this.totalTimeSeconds += elapsed;
    return { imagesPerSec: clock.seen / elapsed };
  }

  /** The epoch's batches from the batches stage (the seed's: crop and flip, cutmix in the last epochs), drawn from the generator's state at the epoch's start. */
  private epochBatches(steps: number): Iterator<Batch, unknown, undefined> & Iterable<Batch> {
    // A resumed epoch draws its batches again, and the steps already done are skipped.
    if (this.epochStep === 0) this.dataRandomAtEpochStart = this.random.getState();
    else this.random.setState(this.dataRandomAtEpochStart);
    const batches = this.stages.batches({ epoch: this.epoch, steps, train: this.data.train, random: this.random, context: this.context });
    if (batches == null || typeof batches.next !== 'function')
      throw new Error(`Trainer: stages.batches must return an iterator of batches, got ${String(batches)}`);
    return {
      next: () => batches.next(),
      return: (v?: unknown) => batches.return?.(v) ?? { done: true, value: v },
      [Symbol.iterator]() {
        return this;
      },
    };
  }

  /** One optimiser step, the EMA's turn, and the loss read back when it is due. */
  private async trainOneStep(batch: Batch, steps: number, clock: EpochClock): Promise<StepInfo> {
    const lr = this.optimizer.lr ?? Number.NaN;
    this.lastLr = lr;
    const tableStep = this.epochStep % this.hyp.misc.logEveryNSteps === 0;
    const readNow = tableStep || (this.step + 1) % this.options.logEvery === 0 || this.epochStep === steps - 1;
    const metrics = this.trainStep(batch.inputs, batch.targets, readNow);
    tf.dispose([batch.inputs, batch.targets]);
    this.step++;
    this.epochStep++;
    clock.seen += this.batchSize;
    this.advanceEma();
    const info: StepInfo = {
      epoch: this.epoch,
      step: this.step,
      epochStep: this.epochStep,
      epochSteps: steps,
      totalSteps: this.totalSteps,
      lr,
      imagesPerSec: Number.NaN,
    };
    if (metrics) {
      const [lossValue, accValue] = await Promise.all([metrics.loss.data(), metrics.acc.data()]);
      tf.dispose([metrics.loss, metrics.acc]);
      // A kernel WebGPU dropped (an error event, not an exception) would make these numbers garbage.
      throwIfWebGPUFailed(`training step ${this.step}`);
      // The read returns once the backend has run this step, and so every step before it.
      clock.markFinished();
      info.loss = this.perExample(lossValue[0]!);
      info.acc = accValue[0]!;
      // Either can be the first to go: a finite sum scaled by a zero loss batch size is 0/0 per example.
      if (!Number.isFinite(lossValue[0]!) || !Number.isFinite(info.loss)) {
        this.nonFinite = new NonFiniteLossError(this.step, Number.isFinite(lossValue[0]!) ? info.loss : lossValue[0]!);
      } else {
        this.checkDivergence(info.loss);
      }
      if (tableStep) this.lastLogged = { loss: info.loss, acc: info.acc };
    }
    info.imagesPerSec = clock.imagesPerSec;
    return info;
  }

  /**
   * Marks the run diverged when `loss` is over `maxLossRise` times the larger of the first loss read and chance level.
   *
   * @remarks
   * Chance level, `ln(classes)`, is the cross-entropy of uniform logits whatever the label smoothing: a loss above it
   * is worse than knowing nothing, and ten times above both it and the start is no fluctuation. The floor also keeps
   * a run that starts low (resumed, or fine-tuning a trained net) from stopping on ordinary noise. The first loss is
   * this `run()`'s (a resumed run measures from its own first read).
   */
  private checkDivergence(loss: number): void {
    if (this.firstLoss == null) {
      this.firstLoss = loss;
      return;
    }
    const classes = this.data.train.targets.shape[1];
    const chance = Math.log(classes);
    const limit = this.options.maxLossRise * Math.max(this.firstLoss, chance);
    if (!(loss > limit)) return;
    const rise = this.options.maxLossRise;
    this.diverged =
      `training loss ${fmt(loss)} at step ${this.step} is over ${rise}x the larger of its first logged value ${fmt(this.firstLoss)} ` +
      `and chance level ln(${classes}) = ${fmt(chance)}: the run diverged under the ${this.recipe.name} recipe; ${this.divergenceAdvice} ` +
      '(TrainOptions.maxLossRise sets this check)';
  }

  /** The EMA stage's schedule: made from the live model at its first due step, updated (and copied back) at each one after. */
  private advanceEma(): void {
    if (!this.stages.ema.isDue(this.epoch, this.step, this.context)) return;
    // The seed snapshots the live net at its first EMA step and `continue`s: updates start a period later.
    if (this.ema == null) {
      this.ema = this.makeEma();
      return;
    }
    this.ema.average(this.model, this.step); // the seed's: decay decayBase^everyN * (step / totalSteps)^pow, from a table on the backend
    this.ema.copyBack?.(this.model);
  }

  private makeEma(): TrainEMA {
    const ema = this.stages.ema.create(this.context);
    if (ema == null || typeof ema.average !== 'function' || typeof ema.withWeights !== 'function') {
      (ema as TrainEMA | null)?.dispose?.();
      throw new Error(
        'Trainer: stages.ema.create must return an EMA with average(model, step) and withWeights(model, fn) (a TrainEMA, such as NetworkEMA)',
      );
    }
    return ema;
  }

  private finish(stopReason: StopReason, message?: string): TrainResult {
    this.stopRequested = false;
    this.diverged = null;
    this.firstLoss = null;
    const result: TrainResult = {
      records: [...this.records],
      stopReason,
      totalTimeSeconds: this.totalTimeSeconds,
      recipe: { ...this.recipe, ownStages: [...this.recipe.ownStages] },
    };
    if (message !== undefined) result.message = message;
    return result;
  }

  /** The logged loss: the loss stage's own per-example form of the step's total (the seed's divides its scaling back out). */
  private perExample(loss: number): number {
    const { loss: stage } = this.stages;
    if (stage.perExample == null) return loss;
    return stage.perExample(loss, { batchScale: this.hyp.opt.lossBatchSize / this.batchSize, context: this.context });
  }

  /** One optimiser step over the batch (summing micro-batch gradients); the loss and accuracy tensors when asked. */
  private trainStep(inputs: tf.Tensor4D, targets: tf.Tensor2D, keepMetrics: boolean): { loss: tf.Scalar; acc: tf.Scalar } | null {
    const { opt } = this.hyp;
    const { loss: lossStage } = this.stages;
    const micro = this.microBatchSize;
    const passes = this.batchSize / micro;
    // Each pass is scaled for the full batch, so the summed gradient is the full batch's (the seed's loss is a sum).
    const batchScale = opt.lossBatchSize / this.batchSize;
    let grads: tf.NamedTensorMap | null = null;
    let loss: tf.Scalar | null = null;
    let correct: tf.Scalar | null = null;
    for (let p = 0; p < passes; p++) {
      const x = passes === 1 ? inputs : tf.slice(inputs, p * micro, micro);
      const y = passes === 1 ? targets : tf.slice(targets, p * micro, micro);
      const kept: { logits?: tf.Tensor } = {};
      const pass = variableGrads(() => {
        const logits = this.model.apply(x, { training: true }) as tf.Tensor2D;
        if (keepMetrics) kept.logits = tf.keep(logits);
        return lossStage(logits, y as tf.Tensor2D, { batchScale, context: this.context });
      }, this.trainable);
      if (kept.logits) {
        correct = sum(correct, accuracy(kept.logits, y));
        kept.logits.dispose();
        loss = sum(loss, pass.value);
      } else {
        pass.value.dispose();
      }
      if (x !== inputs) tf.dispose([x, y]);
      grads = sumEach(grads, pass.grads);
    }
    this.optimizer.step(grads!);
    tf.dispose(Object.values(grads!));
    if (!keepMetrics) return null;
    const acc = passes === 1 ? correct! : tf.tidy(() => tf.div(correct!, passes) as tf.Scalar);
    if (acc !== correct) correct!.dispose();
    return { loss: loss!, acc };
  }

  /** Accuracy and loss on the eval split by the evaluate stage (the seed's: flip test-time augmentation); `useEma` evaluates the EMA weights. */
  async evaluate(useEma = false): Promise<{
    /** Mean loss per image, as the evaluate stage computes it (the seed's: label-smoothed cross-entropy). */
    loss: number;
    /** Fraction of images classified right, in [0, 1]. */
    acc: number;
  }> {
    const run = async () => {
      const result = await this.stages.evaluate(this.model, this.data.eval, this.context);
      throwIfWebGPUFailed(`the evaluation${useEma ? ' of the EMA weights' : ''}`);
      return result;
    };
    if (useEma) {
      if (!this.ema) throw new Error('Trainer.evaluate: the EMA has not started yet');
      return this.ema.withWeights(this.model, run);
    }
    return run();
  }

  private async epochRecord(imagesPerSec: number, evaluated: boolean): Promise<EpochRecord> {
    const logged = this.lastLogged ?? { loss: Number.NaN, acc: Number.NaN };
    this.lastLogged = null;
    const live = evaluated ? await this.evaluate(false) : { loss: Number.NaN, acc: Number.NaN };
    const emaValAcc = evaluated && this.ema && this.epoch >= this.emaStartEpoch ? (await this.evaluate(true)).acc : null;
    return {
      epoch: this.epoch,
      trainLoss: logged.loss,
      trainAcc: logged.acc,
      valLoss: live.loss,
      valAcc: live.acc,
      emaValAcc,
      totalTimeSeconds: this.totalTimeSeconds,
      steps: this.step,
      imagesPerSec,
      lr: this.lastLr,
    };
  }

  /**
   * A checkpoint of the run at the current step; the caller disposes `tensors`. Refused after `dispose()`, which frees
   * the optimiser state it needs, and when the optimiser (or the EMA, once started) cannot save its state.
   */
  checkpoint(): TrainCheckpoint {
    if (this.disposed) {
      throw new Error(
        'Trainer.checkpoint: this trainer has been disposed (its optimiser state is gone); take the checkpoint before dispose()',
      );
    }
    for (const [name, holder] of [
      ['optimizer', this.optimizer],
      ['ema', this.ema],
    ] as const) {
      if (holder != null && typeof holder.saveState !== 'function') {
        throw new Error(
          `Trainer.checkpoint: the ${name === 'ema' ? 'EMA' : 'optimiser'} that stages.${name} made has no saveState(), so its state cannot be checkpointed (implement saveState and loadState)`,
        );
      }
    }
    return {
      version: CHECKPOINT_VERSION,
      schedule: this.scheduleIdentity(),
      epoch: this.epoch,
      epochStep: this.epochStep,
      step: this.step,
      dataRandomAtEpochStart: this.epochStep === 0 ? this.random.getState() : this.dataRandomAtEpochStart,
      modelRandom: this.discreteActions.map((d) => d.random.getState()),
      records: structuredClone(this.records),
      totalTimeSeconds: this.totalTimeSeconds,
      emaActive: this.ema != null,
      epochTrainMetrics: this.lastLogged && { ...this.lastLogged },
      ...this.stageStates(),
    };
  }

  /** What keeps each stage's state in this trainer: the optimiser, the EMA once started, and the stages with a `StageCheckpoint`. */
  private stateHolders(): Array<[StageName, Partial<StageCheckpoint>]> {
    return STAGE_NAMES.flatMap((name): Array<[StageName, Partial<StageCheckpoint>]> => {
      if (name === 'optimizer') return [[name, this.optimizer]];
      if (name === 'ema') return this.ema ? [[name, this.ema]] : [];
      const stage = stageCheckpoint(this.stages[name]);
      return stage ? [[name, stage]] : [];
    });
  }

  /** The checkpoint's `stages` (each stateful stage's JSON) and `tensors` (the weights, and `stages/<stage>/<key>`). */
  private stageStates(): Pick<TrainCheckpoint, 'stages' | 'tensors'> {
    const stages: Record<string, unknown> = {};
    const tensors = checkpointWeights(this.model);
    for (const [name, holder] of this.stateHolders()) {
      const state = holder.saveState!();
      stages[name] = state?.json ?? null;
      for (const [key, t] of Object.entries(state?.tensors ?? {})) tensors[`stages/${name}/${key}`] = t;
    }
    return { stages, tensors };
  }

  /** What a checkpoint records of the schedule it was written for, so a restore can refuse another one. */
  private scheduleIdentity(): CheckpointSchedule {
    return {
      examples: this.data.train.images.shape[0],
      batchSize: this.batchSize,
      trainEpochs: this.hyp.misc.trainEpochs,
      epochSteps: [...this.epochSteps],
      totalSteps: this.totalSteps,
    };
  }

  /**
   * Continues from a checkpoint of the same configuration (the caller keeps `checkpoint.tensors`).
   * Everything is checked before anything is written: a refused checkpoint (another mode,
   * architecture, schedule (data size, batch size or number of epochs, wherever in the run it was
   * written); a missing or misshapen tensor; a bad field) throws and leaves the trainer exactly as it was.
   * A checkpoint written before checkpoints recorded their schedule is checked by its position in this
   * trainer's schedule alone.
   */
  restore(checkpoint: TrainCheckpoint): void {
    if (this.disposed) throw new Error('Trainer.restore: this trainer has been disposed; make a new Trainer');
    if (typeof this.optimizer.loadState !== 'function') {
      throw new Error(
        'Trainer.restore: the optimiser that stages.optimizer made has no loadState(), so a checkpoint cannot put its state back (implement saveState and loadState)',
      );
    }
    const checked = checkCheckpoint(checkpoint, {
      model: this.model,
      schedule: this.scheduleIdentity(),
      epochSteps: this.epochSteps,
      discreteActions: this.discreteActions.length,
      statefulStages: STAGE_NAMES.filter((name) => name === 'optimizer' || (name !== 'ema' && stageCheckpoint(this.stages[name]) != null)),
    });
    // The EMA is built and loaded aside, and swapped in only at the end.
    let ema: TrainEMA | null = null;
    if (checked.emaActive) {
      ema = this.makeEma();
      try {
        if (typeof ema.loadState !== 'function') throw new Error('the EMA that stages.ema made has no loadState()');
        ema.loadState(checked.stages['ema']!);
      } catch (e) {
        ema.dispose?.();
        throw new Error(`Trainer.restore: the checkpoint's EMA does not fit this net: ${(e as Error).message}`);
      }
    }

    // The stages' own states next (the optimiser's among them), in stage order: each checks its state before it writes
    // it, and a refusal puts back the states already loaded, so a refused checkpoint leaves the trainer as it was.
    const loaded: Array<[Partial<StageCheckpoint>, StageState]> = [];
    const rollBack = () => {
      for (const [holder, previous] of loaded.reverse()) {
        holder.loadState!(previous);
        tf.dispose(Object.values(previous.tensors ?? {}));
      }
    };
    for (const [name, holder] of this.stateHolders()) {
      if (name === 'ema') continue;
      const previous = holder.saveState!();
      try {
        holder.loadState!(checked.stages[name]!);
      } catch (e) {
        tf.dispose(Object.values(previous.tensors ?? {}));
        rollBack();
        ema?.dispose?.();
        throw new Error(`Trainer.restore: the ${name} stage refused its state: ${(e as Error).message}`);
      }
      loaded.push([holder, previous]);
    }
    for (const [, previous] of loaded) tf.dispose(Object.values(previous.tensors ?? {}));

    // Everything checked: write. The variable takes its own reference to the value's data (the caller keeps the
    // checkpoint's tensor); a clone written here was a tensor left behind per weight, holding a copy of the weights.
    for (const [w, value] of checked.weights) w.write(value);
    this.ema?.dispose?.();
    this.ema = ema;
    checkpoint.modelRandom.forEach((s, i) => this.discreteActions[i]!.random.setState(s));
    this.random.setState(checkpoint.dataRandomAtEpochStart);
    this.dataRandomAtEpochStart = { ...checkpoint.dataRandomAtEpochStart };
    this.epoch = checkpoint.epoch;
    this.epochStep = checkpoint.epochStep;
    this.step = checkpoint.step;
    this.records = structuredClone(checkpoint.records);
    this.totalTimeSeconds = checkpoint.totalTimeSeconds;
    this.lastLogged = checkpoint.epochTrainMetrics ? { ...checkpoint.epochTrainMetrics } : null;
  }

  /** Frees the optimiser's buffers and the EMA (not the model or the data). */
  dispose(): void {
    if (this.running) throw new Error('Trainer.dispose: the trainer is running; requestStop() and await run() first');
    this.disposed = true;
    this.optimizer.dispose?.();
    this.ema?.dispose?.();
    this.lastLogged = null;
  }
}

/**
 * Images per second of the steps known to be finished: a step on an asynchronous backend returns
 * once queued, and a read of its loss returns once the backend has run it (and every step before).
 */
class EpochClock {
  private readonly started = performance.now();
  /** Images of the steps run (queued) so far. */
  seen = 0;
  private finishedImages = 0;
  private finishedAt = this.started;

  /** Every step run so far is finished. */
  markFinished(): void {
    this.finishedImages = this.seen;
    this.finishedAt = performance.now();
  }

  /** NaN before the first `markFinished`. */
  get imagesPerSec(): number {
    return this.finishedImages > 0 ? this.finishedImages / ((this.finishedAt - this.started) / 1000) : Number.NaN;
  }

  elapsedSeconds(): number {
    return (performance.now() - this.started) / 1000;
  }
}

/** The optimizer stage's optimiser, checked to be one (`TrainOptimizer`). */
function checkOptimizer(optimizer: TrainOptimizer): TrainOptimizer {
  const given = optimizer as Partial<TrainOptimizer> & { optimizer?: unknown; schedules?: unknown };
  if (given != null && typeof given.step !== 'function' && given.optimizer != null && Array.isArray(given.schedules)) {
    throw new Error('Trainer: stages.optimizer must return the optimiser itself (a TrainOptimizer), not { optimizer, schedules }');
  }
  if (given == null || typeof given.step !== 'function') {
    throw new Error(
      `Trainer: stages.optimizer must return an optimiser with step(grads) (a TrainOptimizer, such as the seed's SGD), got ${given == null ? String(given) : typeof given}`,
    );
  }
  if ((typeof given.saveState === 'function') !== (typeof given.loadState === 'function')) {
    throw new Error(
      'Trainer: the optimiser from stages.optimizer has one of saveState and loadState; a checkpoint needs both (or neither)',
    );
  }
  return optimizer;
}

/** A loss for a message: four significant digits. */
function fmt(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

/** `total + next` (both taken over), or `next` when there is no total yet. */
function sum(total: tf.Scalar | null, next: tf.Scalar): tf.Scalar {
  if (total == null) return next;
  const out = tf.add(total, next) as tf.Scalar;
  tf.dispose([total, next]);
  return out;
}

/** `sum` for every entry of two maps with the same keys. */
function sumEach(total: tf.NamedTensorMap | null, next: tf.NamedTensorMap): tf.NamedTensorMap {
  if (total == null) return next;
  const out = tf.tidy(() => Object.fromEntries(Object.entries(total).map(([k, g]) => [k, tf.add(g, next[k]!)])));
  tf.dispose([...Object.values(total), ...Object.values(next)]);
  return out;
}
