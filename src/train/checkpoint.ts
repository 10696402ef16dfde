import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { DeviceRandomState } from '../ops/random.js';
import type { SGDState } from './sgd.js';
import type { EpochRecord } from './types.js';

/** The version of {@link TrainCheckpoint} this library writes and reads. */
export const CHECKPOINT_VERSION = 1;

/**
 * The schedule a checkpoint was written for: what decides the run's steps (the training set's size, the batch size
 * and the number of epochs) and the steps it makes of them. A restore refuses a checkpoint of another schedule.
 */
export interface CheckpointSchedule {
  /** Training images. */
  examples: number;
  batchSize: number;
  /** `hyp.misc.trainEpochs`. */
  trainEpochs: number;
  /** Steps in each epoch. */
  epochSteps: number[];
  /** Steps of the run (the OneCycle and EMA schedules' length). */
  totalSteps: number;
}

/** Everything needed to continue a run exactly: JSON-safe fields plus named tensors. */
export interface TrainCheckpoint {
  version: typeof CHECKPOINT_VERSION;
  /**
   * The schedule the run was on. Absent from checkpoints written before it was recorded: those are checked by their
   * position alone, which cannot tell another schedule from this one early in the first epoch.
   */
  schedule?: CheckpointSchedule;
  /** The epoch to continue in, and how many of its steps are done. */
  epoch: number;
  epochStep: number;
  step: number;
  /** The data generator's state when `epoch` started (its batches are drawn again and the first `epochStep` skipped). */
  dataRandomAtEpochStart: DeviceRandomState;
  /** The noise streams of the model's discrete actions now, in the model's layer order. */
  modelRandom: DeviceRandomState[];
  records: EpochRecord[];
  totalTimeSeconds: number;
  sgd: { step: number; scheduleSteps: (number | null)[] };
  emaActive: boolean;
  /** The current epoch's logged training loss/accuracy so far (the table's train columns), so a mid-epoch resume keeps them. */
  epochTrainMetrics?: { loss: number; acc: number } | null;
  /**
   * The JSON state of each trainer stage that keeps one (`StageCheckpoint`, src/train/stages.ts), by stage name;
   * absent when none does. Their tensors are in `tensors` as `stages/<stage>/<key>`.
   */
  stages?: Record<string, unknown>;
  /**
   * `weights/<name>`, `momentum/<name>`, `ema/<name>`, by each weight's scoped name without tfjs-layers' uniqueness
   * suffix, and `stages/<stage>/<key>` for the stages' tensors.
   */
  tensors: tf.NamedTensorMap;
}

/**
 * A checkpoint's tensors: a copy of every weight of `model`, the optimiser's momentum buffers and the
 * EMA's values (both taken over: the caller passes copies), keyed by `originalName`, the scoped name
 * without tfjs-layers' per-process uniqueness suffix, so another process's model of the same
 * architecture reads them.
 */
export function checkpointTensors(model: tfl.LayersModel, momentum: tf.NamedTensorMap, ema: tf.NamedTensorMap | null): tf.NamedTensorMap {
  const tensors: tf.NamedTensorMap = {};
  for (const w of model.weights) tensors[`weights/${w.originalName}`] = tf.clone(w.read());
  const original = new Map(model.weights.map((w) => [w.name, w.originalName]));
  for (const [name, b] of Object.entries(momentum)) tensors[`momentum/${original.get(name) ?? name}`] = b;
  for (const [name, v] of Object.entries(ema ?? {})) tensors[`ema/${original.get(name) ?? name}`] = v;
  return tensors;
}

/** What a checkpoint must fit: the trainer's model, its schedule and its learning-rate schedules. */
export interface CheckpointTarget {
  model: tfl.LayersModel;
  /** The trainer's schedule, which a checkpoint that records one must have been written for. */
  schedule?: CheckpointSchedule;
  /** Steps in each epoch of the trainer's schedule. */
  epochSteps: readonly number[];
  /** One per SGD group; a checkpoint's schedule steps must be steps of them (`lrAt`, where a schedule has one, throws otherwise). */
  schedules: ReadonlyArray<{ readonly lr: number; lrAt?(step: number): number }>;
  /** The model's discrete actions, whose noise streams the checkpoint holds. */
  discreteActions: number;
  /** The names of the trainer's stages that keep state of their own: the checkpoint must hold a state for each, and for no other. */
  statefulStages?: readonly string[];
}

/** A checkpoint that passed every check, its tensors sorted by role. Nothing has been written anywhere yet. */
export interface CheckedCheckpoint {
  /** The value of each of the model's weights (all of them). */
  weights: Map<tfl.LayerVariable, tf.Tensor>;
  /** The optimiser's state, momentum buffers keyed by the model's weight names. */
  sgd: SGDState;
  /** The EMA's values keyed by the model's weight names; null when the EMA had not started. */
  ema: tf.NamedTensorMap | null;
  /** The state of each stateful stage, by stage name (its tensors still the checkpoint's). */
  stages: Record<string, { json: unknown; tensors: tf.NamedTensorMap }>;
}

/**
 * Checks a whole checkpoint against the trainer it is to be restored into: the format and
 * version; that its position is a point of the target's schedule (so one written with another
 * data size, batch size or number of epochs is refused); each random state, record and
 * optimiser field; and that every tensor names one of the model's weights with its shape and
 * dtype, every weight having a value. Throws an error beginning with `where` on the first
 * fault; returns the tensors sorted by role.
 */
export function checkCheckpoint(checkpoint: TrainCheckpoint, target: CheckpointTarget, where = 'Trainer.restore'): CheckedCheckpoint {
  const fail = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (checkpoint == null || typeof checkpoint !== 'object')
    fail(`expected a checkpoint from Trainer.checkpoint(), got ${String(checkpoint)}`);
  if (checkpoint.version !== CHECKPOINT_VERSION)
    fail(`unsupported checkpoint version ${String(checkpoint.version)} (this trainer reads version ${CHECKPOINT_VERSION})`);
  const { tensors } = checkpoint;
  if (tensors == null || typeof tensors !== 'object') fail(`the checkpoint has no tensors, got ${String(tensors)}`);
  checkPosition(checkpoint, target, fail);
  const { weights, buffers, ema, stageTensors } = sortTensors(tensors, target.model, fail);
  if (!checkpoint.emaActive && Object.keys(ema).length > 0)
    fail('the checkpoint holds ema/ tensors but says the EMA had not started (emaActive false)');
  const stages = checkStages(checkpoint, stageTensors, target.statefulStages ?? [], fail);
  const { step, scheduleSteps } = checkpoint.sgd;
  return { weights, sgd: { step, scheduleSteps: [...scheduleSteps], buffers }, ema: checkpoint.emaActive ? ema : null, stages };
}

type Fail = (what: string) => never;

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Where the checkpoint is in the schedule, its random states, records and optimiser fields. */
function checkPosition(checkpoint: TrainCheckpoint, target: CheckpointTarget, fail: Fail): void {
  checkSchedule(checkpoint.schedule, target.schedule, fail);
  const { epoch, epochStep, step } = checkpoint;
  const { epochSteps } = target;
  const epochs = epochSteps.length;
  if (!isCount(epoch) || epoch > epochs) fail(`epoch must be an integer in [0, ${epochs}], got ${String(epoch)}`);
  const stepsThisEpoch = epochSteps[epoch] ?? 0;
  if (!isCount(epochStep) || epochStep > stepsThisEpoch) {
    fail(
      `epochStep must be an integer in [0, ${stepsThisEpoch}] for epoch ${epoch} of this schedule (${epochSteps.join(', ')} steps per epoch), got ${String(epochStep)}`,
    );
  }
  const expectedStep = epochSteps.slice(0, epoch).reduce((a, b) => a + b, 0) + epochStep;
  if (step !== expectedStep) {
    fail(
      `the checkpoint is at step ${String(step)}, but epoch ${epoch} step ${epochStep} is step ${expectedStep} of this trainer's schedule (${epochSteps.join(', ')} steps per epoch): ` +
        'was it written with another data size, batch size or number of epochs?',
    );
  }
  const checkState = (state: DeviceRandomState | undefined, what: string) => {
    if (state == null || !Number.isSafeInteger(state.seed) || !isCount(state.counter)) {
      fail(`${what} must be { seed, counter } with safe integers (counter >= 0), got ${JSON.stringify(state)}`);
    }
  };
  checkState(checkpoint.dataRandomAtEpochStart, 'dataRandomAtEpochStart');
  if (!Array.isArray(checkpoint.modelRandom) || checkpoint.modelRandom.length !== target.discreteActions) {
    fail(
      `the checkpoint has ${Array.isArray(checkpoint.modelRandom) ? checkpoint.modelRandom.length : 'no'} noise streams, the net has ${target.discreteActions} discrete actions (was it saved in another mode?)`,
    );
  }
  checkpoint.modelRandom.forEach((state, i) => checkState(state, `modelRandom[${i}]`));
  if (!Array.isArray(checkpoint.records) || checkpoint.records.length !== epoch) {
    fail(
      `records must hold one entry per finished epoch (${epoch}), got ${Array.isArray(checkpoint.records) ? checkpoint.records.length : String(checkpoint.records)}`,
    );
  }
  if (!(Number.isFinite(checkpoint.totalTimeSeconds) && checkpoint.totalTimeSeconds >= 0))
    fail(`totalTimeSeconds must be a number >= 0, got ${String(checkpoint.totalTimeSeconds)}`);
  const metrics = checkpoint.epochTrainMetrics;
  if (metrics != null && (typeof metrics.loss !== 'number' || typeof metrics.acc !== 'number'))
    fail(`epochTrainMetrics must be null or { loss, acc }, got ${JSON.stringify(metrics)}`);
  const { sgd } = checkpoint;
  if (sgd == null || !isCount(sgd.step) || !Array.isArray(sgd.scheduleSteps) || sgd.scheduleSteps.length !== target.schedules.length) {
    fail(`sgd must be { step, scheduleSteps } with ${target.schedules.length} schedule steps, got ${JSON.stringify(sgd)}`);
  }
  sgd.scheduleSteps.forEach((s, i) => {
    if (s == null) return;
    try {
      target.schedules[i]!.lrAt?.(s);
    } catch (e) {
      fail(`sgd.scheduleSteps[${i}] is not a step of this trainer's learning-rate schedule: ${(e as Error).message}`);
    }
  });
  if (typeof checkpoint.emaActive !== 'boolean') fail(`emaActive must be true or false, got ${String(checkpoint.emaActive)}`);
}

/**
 * A recorded schedule must be the trainer's. Checked before the position: early in the first epoch the step
 * numbers of two schedules agree, and such a checkpoint would otherwise resume onto the wrong one.
 */
function checkSchedule(written: CheckpointSchedule | undefined, own: CheckpointSchedule | undefined, fail: Fail): void {
  if (written === undefined || own === undefined) return;
  const describe = (s: CheckpointSchedule) =>
    `${s.examples} examples in batches of ${s.batchSize} over ${s.trainEpochs} epochs (${s.epochSteps.join(', ')} steps per epoch, ${s.totalSteps} in all)`;
  const wellFormed =
    written !== null &&
    typeof written === 'object' &&
    isCount(written.examples) &&
    isCount(written.batchSize) &&
    typeof written.trainEpochs === 'number' &&
    Array.isArray(written.epochSteps) &&
    written.epochSteps.every(isCount) &&
    isCount(written.totalSteps);
  if (!wellFormed) fail(`schedule must be { examples, batchSize, trainEpochs, epochSteps, totalSteps }, got ${JSON.stringify(written)}`);
  const same =
    written.examples === own.examples &&
    written.batchSize === own.batchSize &&
    written.trainEpochs === own.trainEpochs &&
    written.totalSteps === own.totalSteps &&
    tf.util.arraysEqual(written.epochSteps, own.epochSteps);
  if (!same) fail(`the checkpoint was written for another schedule: ${describe(written)}; this trainer runs ${describe(own)}`);
}

/** A state for each stateful stage of the trainer and for no other stage. */
function checkStages(
  checkpoint: TrainCheckpoint,
  stageTensors: Map<string, tf.NamedTensorMap>,
  stateful: readonly string[],
  fail: Fail,
): CheckedCheckpoint['stages'] {
  const json = checkpoint.stages ?? {};
  if (typeof json !== 'object' || Array.isArray(json)) fail(`stages must be an object of stage states, got ${JSON.stringify(json)}`);
  for (const name of new Set([...Object.keys(json), ...stageTensors.keys()])) {
    if (!stateful.includes(name)) {
      fail(
        `the checkpoint holds state for the ${name} stage, which keeps none in this trainer (was it written with another ${name} stage?)`,
      );
    }
  }
  const stages: CheckedCheckpoint['stages'] = {};
  for (const name of stateful) {
    if (!(name in json))
      fail(`the checkpoint holds no state for this trainer's ${name} stage (was it written with another ${name} stage?)`);
    stages[name] = { json: json[name], tensors: stageTensors.get(name) ?? {} };
  }
  return stages;
}

/** Every weight, momentum buffer and EMA entry named, of the model's shapes and dtypes; the stages' tensors by stage. */
function sortTensors(
  tensors: tf.NamedTensorMap,
  model: tfl.LayersModel,
  fail: Fail,
): {
  weights: Map<tfl.LayerVariable, tf.Tensor>;
  buffers: tf.NamedTensorMap;
  ema: tf.NamedTensorMap;
  stageTensors: Map<string, tf.NamedTensorMap>;
} {
  const byName = new Map(model.weights.map((w) => [w.originalName, w]));
  const trainable = new Set(model.trainableWeights.map((w) => w.name));
  const weights = new Map<tfl.LayerVariable, tf.Tensor>();
  const buffers: tf.NamedTensorMap = {};
  const ema: tf.NamedTensorMap = {};
  const stageTensors = new Map<string, tf.NamedTensorMap>();
  for (const [key, value] of Object.entries(tensors)) {
    const slash = key.indexOf('/');
    const [kind, name] = [key.slice(0, slash), key.slice(slash + 1)];
    if (kind === 'stages') {
      const [stage, entry] = [name.slice(0, name.indexOf('/')), name.slice(name.indexOf('/') + 1)];
      if (!name.includes('/') || !stage || !entry) fail(`tensor '${key}' is not a stages/<stage>/<key> entry`);
      if (!(value instanceof tf.Tensor) || value.isDisposed) fail(`'${key}' is not a live tensor`);
      if (!stageTensors.has(stage)) stageTensors.set(stage, {});
      stageTensors.get(stage)![entry] = value;
      continue;
    }
    if (slash < 0 || !['weights', 'momentum', 'ema'].includes(kind))
      fail(`tensor '${key}' is not a weights/, momentum/, ema/ or stages/ entry`);
    const w =
      byName.get(name) ??
      fail(
        `tensor '${key}' names no weight of this net (was it saved from another architecture or base depth? A layer made without a name is named anew in each model built: give your layers names)`,
      );
    if (!(value instanceof tf.Tensor) || value.isDisposed) fail(`'${key}' is not a live tensor`);
    if (!tf.util.arraysEqual(value.shape, w.shape as number[]))
      fail(`'${key}' has shape [${value.shape}], this net's weight is [${w.shape}]`);
    if (value.dtype !== w.dtype) fail(`'${key}' has dtype ${value.dtype}, this net's weight is ${w.dtype}`);
    if (kind === 'weights') weights.set(w, value);
    if (kind === 'momentum') {
      if (!trainable.has(w.name)) fail(`tensor '${key}' is momentum for '${name}', which this net does not train`);
      buffers[w.name] = value;
    }
    if (kind === 'ema') ema[w.name] = value;
  }
  for (const w of model.weights) {
    if (!weights.has(w)) fail(`the checkpoint has no value for weight '${w.originalName}'`);
  }
  return { weights, buffers, ema, stageTensors };
}
