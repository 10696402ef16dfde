import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { DeviceRandomState } from '../ops/random.js';
import type { EpochRecord } from './types.js';

/**
 * The version of {@link TrainCheckpoint} this library writes. It reads version 1 too: there the seed SGD's state
 * was `sgd` and `momentum/<name>` and the EMA's `ema/<name>`, which version 2 keeps as the optimizer and EMA
 * stages' states (`stages.optimizer`, `stages/optimizer/momentum/<name>`; `stages.ema`, `stages/ema/<name>`).
 */
export const CHECKPOINT_VERSION = 2;

/**
 * The schedule a checkpoint was written for: what decides the run's steps (the training set's size, the batch size
 * and the number of epochs) and the steps it makes of them. A restore refuses a checkpoint of another schedule.
 */
export interface CheckpointSchedule {
  /** Training images. */
  examples: number;
  /** Images per optimiser step. */
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
  /** {@link CHECKPOINT_VERSION} when written by this library; 1 for a checkpoint written before the optimiser's state moved into `stages`. */
  version: 1 | 2;
  /**
   * The schedule the run was on. Absent from checkpoints written before it was recorded: those are checked by their
   * position alone, which cannot tell another schedule from this one early in the first epoch.
   */
  schedule?: CheckpointSchedule;
  /** The epoch to continue in, and how many of its steps are done. */
  epoch: number;
  /** Steps of `epoch` done. */
  epochStep: number;
  /** Steps of the run done. */
  step: number;
  /** The data generator's state when `epoch` started (its batches are drawn again and the first `epochStep` skipped). */
  dataRandomAtEpochStart: DeviceRandomState;
  /** The noise streams of the model's discrete actions now, in the model's layer order. */
  modelRandom: DeviceRandomState[];
  /** The table's rows of the epochs done. */
  records: EpochRecord[];
  /** Seconds of training so far (evaluation excluded). */
  totalTimeSeconds: number;
  /** Version 1 only: the seed SGD's step counts (version 2 keeps the optimiser's state in `stages.optimizer`). */
  sgd?: {
    /** Completed optimiser steps. */
    step: number;
    /** Each group's schedule step (null where the rate is a constant). */
    scheduleSteps: (number | null)[];
  };
  /** Whether the EMA had started (its state is then the EMA stage's). */
  emaActive: boolean;
  /** The current epoch's logged training loss/accuracy so far (the table's train columns), so a mid-epoch resume keeps them. */
  epochTrainMetrics?: {
    /** The last logged training loss. */
    loss: number;
    /** The last logged training accuracy, in [0, 1]. */
    acc: number;
  } | null;
  /**
   * The JSON state of each stage that keeps one, by stage name: the optimizer's always, the EMA's once it has
   * started, and any other stage implementing `StageCheckpoint` (src/train/contracts.ts). Their tensors are in
   * `tensors` as `stages/<stage>/<key>`. (Absent from a version-1 checkpoint whose stages kept none.)
   */
  stages?: Record<string, unknown>;
  /**
   * `weights/<name>`, by each weight's scoped name without tfjs-layers' uniqueness suffix, and
   * `stages/<stage>/<key>` for the stages' tensors (version 1: also `momentum/<name>` and `ema/<name>`).
   */
  tensors: tf.NamedTensorMap;
}

/**
 * A copy of every weight of `model` for a checkpoint, keyed `weights/<originalName>` (the scoped name without
 * tfjs-layers' per-process uniqueness suffix), so another process's model of the same architecture reads them.
 */
export function checkpointWeights(model: tfl.LayersModel): tf.NamedTensorMap {
  const tensors: tf.NamedTensorMap = {};
  for (const w of model.weights) tensors[`weights/${w.originalName}`] = tf.clone(w.read());
  return tensors;
}

/** What a checkpoint must fit: the trainer's model and its schedule. */
export interface CheckpointTarget {
  model: tfl.LayersModel;
  /** The trainer's schedule, which a checkpoint that records one must have been written for. */
  schedule?: CheckpointSchedule;
  /** Steps in each epoch of the trainer's schedule. */
  epochSteps: readonly number[];
  /** The model's discrete actions, whose noise streams the checkpoint holds. */
  discreteActions: number;
  /**
   * The stages whose state the checkpoint must hold, and no other: the optimizer, and the others that keep state of
   * their own (`StageCheckpoint`); the EMA's is required exactly when the checkpoint says it had started.
   */
  statefulStages?: readonly string[];
}

/** A checkpoint that passed every check, its tensors sorted by role. Nothing has been written anywhere yet. */
export interface CheckedCheckpoint {
  /** The value of each of the model's weights (all of them). */
  weights: Map<tfl.LayerVariable, tf.Tensor>;
  /** Whether the EMA had started: its state is then `stages.ema`. */
  emaActive: boolean;
  /** The state of each stateful stage by stage name, the optimizer's and (when active) the EMA's included; tensors still the checkpoint's. */
  stages: Record<string, { json: unknown; tensors: tf.NamedTensorMap }>;
}

/**
 * Checks a whole checkpoint against the trainer it is to be restored into: the format and
 * version; that its position is a point of the target's schedule (so one written with another
 * data size, batch size or number of epochs is refused); each random state and record; that every
 * weight has a value of its shape and dtype; and that it holds a state for each stateful stage and
 * no other. A version-1 checkpoint's `sgd`, `momentum/` and `ema/` become the optimizer and EMA
 * stages' states. The stages check their own states when they load them. Throws an error
 * beginning with `where` on the first fault; returns the tensors sorted by role.
 */
export function checkCheckpoint(checkpoint: TrainCheckpoint, target: CheckpointTarget, where = 'Trainer.restore'): CheckedCheckpoint {
  const fail = (what: string): never => {
    throw new Error(`${where}: ${what}`);
  };
  if (checkpoint == null || typeof checkpoint !== 'object')
    fail(`expected a checkpoint from Trainer.checkpoint(), got ${String(checkpoint)}`);
  if (checkpoint.version !== CHECKPOINT_VERSION && checkpoint.version !== 1)
    fail(`unsupported checkpoint version ${String(checkpoint.version)} (this trainer reads versions 1 and ${CHECKPOINT_VERSION})`);
  if (checkpoint.tensors == null || typeof checkpoint.tensors !== 'object')
    fail(`the checkpoint has no tensors, got ${String(checkpoint.tensors)}`);
  checkPosition(checkpoint, target, fail);
  const { stagesJson, tensors } = checkpoint.version === 1 ? fromVersion1(checkpoint, fail) : checkVersion2(checkpoint, fail);
  const { weights, stageTensors } = sortTensors(tensors, target.model, fail);
  const stateful = [...(target.statefulStages ?? [])];
  if (checkpoint.emaActive) stateful.push('ema');
  const stages = checkStages(stagesJson, stageTensors, stateful, checkpoint.emaActive, fail);
  return { weights, emaActive: checkpoint.emaActive, stages };
}

/** A version-2 checkpoint's stage states and tensors, as they are. */
function checkVersion2(checkpoint: TrainCheckpoint, fail: Fail): { stagesJson: unknown; tensors: tf.NamedTensorMap } {
  if (checkpoint.sgd !== undefined)
    fail("a version-2 checkpoint keeps the optimiser's state in stages.optimizer; it has an sgd field (a version-1 field)");
  return { stagesJson: checkpoint.stages ?? {}, tensors: checkpoint.tensors };
}

/** A version-1 checkpoint's `sgd`, `momentum/` and `ema/` as the optimizer and EMA stages' states (the tensors renamed, not copied). */
function fromVersion1(checkpoint: TrainCheckpoint, fail: Fail): { stagesJson: unknown; tensors: tf.NamedTensorMap } {
  const { sgd } = checkpoint;
  if (sgd == null || typeof sgd !== 'object' || Array.isArray(sgd))
    fail(`a version-1 checkpoint must have sgd { step, scheduleSteps }, got ${JSON.stringify(sgd)}`);
  const stagesJson = checkpoint.stages ?? {};
  if (typeof stagesJson !== 'object' || Array.isArray(stagesJson))
    fail(`stages must be an object of stage states, got ${JSON.stringify(stagesJson)}`);
  for (const name of ['optimizer', 'ema']) {
    if (name in stagesJson) fail(`a version-1 checkpoint holds the ${name}'s state in its own fields, not in stages.${name}`);
  }
  const tensors: tf.NamedTensorMap = {};
  for (const [key, value] of Object.entries(checkpoint.tensors)) {
    if (key.startsWith('stages/optimizer/') || key.startsWith('stages/ema/'))
      fail(`tensor '${key}' is not an entry of a version-1 checkpoint (its optimiser and EMA tensors are momentum/ and ema/)`);
    if (key.startsWith('momentum/')) tensors[`stages/optimizer/${key}`] = value;
    else if (key.startsWith('ema/')) {
      if (!checkpoint.emaActive) fail('the checkpoint holds ema/ tensors but says the EMA had not started (emaActive false)');
      tensors[`stages/ema/${key.slice('ema/'.length)}`] = value;
    } else tensors[key] = value;
  }
  const converted: Record<string, unknown> = { ...stagesJson, optimizer: { step: sgd.step, scheduleSteps: sgd.scheduleSteps } };
  if (checkpoint.emaActive) converted['ema'] = null;
  return { stagesJson: converted, tensors };
}

type Fail = (what: string) => never;

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Where the checkpoint is in the schedule, its random states and records. */
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
  json: unknown,
  stageTensors: Map<string, tf.NamedTensorMap>,
  stateful: readonly string[],
  emaActive: boolean,
  fail: Fail,
): CheckedCheckpoint['stages'] {
  if (json == null || typeof json !== 'object' || Array.isArray(json))
    fail(`stages must be an object of stage states, got ${JSON.stringify(json)}`);
  const states = json as Record<string, unknown>;
  for (const name of new Set([...Object.keys(states), ...stageTensors.keys()])) {
    if (name === 'ema' && !emaActive)
      fail('the checkpoint holds state for the ema stage but says the EMA had not started (emaActive false)');
    if (!stateful.includes(name)) {
      fail(
        `the checkpoint holds state for the ${name} stage, which keeps none in this trainer (was it written with another ${name} stage?)`,
      );
    }
  }
  const stages: CheckedCheckpoint['stages'] = {};
  for (const name of stateful) {
    if (name === 'ema' && !(name in states))
      fail('the checkpoint says the EMA had started (emaActive true) but holds no state for the ema stage');
    if (!(name in states))
      fail(`the checkpoint holds no state for this trainer's ${name} stage (was it written with another ${name} stage?)`);
    stages[name] = { json: states[name], tensors: stageTensors.get(name) ?? {} };
  }
  return stages;
}

/** Every weight named, of the model's shapes and dtypes, each with a value; the stages' tensors by stage. */
function sortTensors(
  tensors: tf.NamedTensorMap,
  model: tfl.LayersModel,
  fail: Fail,
): { weights: Map<tfl.LayerVariable, tf.Tensor>; stageTensors: Map<string, tf.NamedTensorMap> } {
  const byName = new Map(model.weights.map((w) => [w.originalName, w]));
  const weights = new Map<tfl.LayerVariable, tf.Tensor>();
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
    if (slash < 0 || kind !== 'weights') fail(`tensor '${key}' is not a weights/ or stages/ entry`);
    const w =
      byName.get(name) ??
      fail(
        `tensor '${key}' names no weight of this net (was it saved from another architecture or base depth? A layer made without a name is named anew in each model built: give your layers names)`,
      );
    if (!(value instanceof tf.Tensor) || value.isDisposed) fail(`'${key}' is not a live tensor`);
    if (!tf.util.arraysEqual(value.shape, w.shape as number[]))
      fail(`'${key}' has shape [${value.shape}], this net's weight is [${w.shape}]`);
    if (value.dtype !== w.dtype) fail(`'${key}' has dtype ${value.dtype}, this net's weight is ${w.dtype}`);
    weights.set(w, value);
  }
  for (const w of model.weights) {
    if (!weights.has(w)) fail(`the checkpoint has no value for weight '${w.originalName}'`);
  }
  return { weights, stageTensors };
}
