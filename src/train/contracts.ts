/**
 * What the Trainer asks of the objects its stages hand it: a state a checkpoint can carry, the optimiser it steps
 * and the weight average it keeps. The seed's are `SGD` and `NetworkEMA`; a user's own implements the same few
 * methods (docs/extending.md has an Adam in a page of code).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** What a stage keeps across steps, in a checkpoint: JSON-safe values and named tensors (copies the checkpoint owns). */
export interface StageState {
  /** JSON-safe values (numbers, strings, arrays, plain objects). */
  json?: unknown;
  /** Named tensors, written to the checkpoint's tensors. */
  tensors?: tf.NamedTensorMap;
}

/** Implemented by a stage with state of its own, so a checkpoint carries it and a restore puts it back. */
export interface StageCheckpoint {
  /** The stage's state now; tensors are copies (the checkpoint's caller disposes them). */
  saveState(): StageState;
  /** Puts back a state from `saveState` (the caller keeps its tensors: copy what you keep). Throws on one that does not fit, before changing anything. */
  loadState(state: StageState): void;
}

/**
 * The optimiser a `Trainer` steps, made by the optimizer stage: the seed's `SGD` groups, or any object with these
 * methods (an Adam, a Lion, a `tf.train` optimiser behind `step`).
 *
 * @remarks
 * `step` gets each trainable weight's gradient, keyed by the weight's variable name (`LayerVariable.name`, as
 * `tf.variableGrads` keys them), summed over the step's micro-batches, and updates the weights in place; schedules
 * of its own advance there too. `saveState`/`loadState` make the run checkpointable: the state goes into the
 * checkpoint as the optimizer stage's (`stages.optimizer`, tensors `stages/optimizer/<key>`); key tensors by
 * something that survives a new process, such as a weight's `originalName`, not its `name`. Without them a run
 * trains but `Trainer.checkpoint()` refuses.
 */
export interface TrainOptimizer extends Partial<StageCheckpoint> {
  /** Updates the weights from `grads` (the caller keeps and disposes them) and advances the optimiser's own schedules. */
  step(grads: tf.NamedTensorMap): void;
  /** The learning rate of the coming step, for the step log and the epoch table; NaN is reported where there is none. */
  readonly lr?: number;
  /** Frees what the optimiser keeps on the backend (momentum, moments, constants). */
  dispose?(): void;
  /** The optimiser's state now (momentum buffers, step counts); tensors are copies the caller disposes. Optional: without it a checkpoint is refused. */
  saveState?(): StageState;
  /** Puts back a state from `saveState` (the caller keeps its tensors); throws on one that does not fit, before changing anything. */
  loadState?(state: StageState): void;
}

/**
 * The weight average a `Trainer` keeps, made by the EMA stage at its first due step from the live model: the seed's
 * `NetworkEMA`, or any object with these methods.
 *
 * @remarks
 * At each later due step the trainer calls `average(model, step)`, then `copyBack(model)` when there is one (the
 * seed's EMA writes its averages back into the live network, Lookahead-style; an average that only watches leaves
 * it out). `withWeights` evaluates the average. `saveState`/`loadState` carry it in a checkpoint as the EMA
 * stage's state (`stages.ema`, tensors `stages/ema/<key>`).
 */
export interface TrainEMA extends Partial<StageCheckpoint> {
  /** Moves the average toward `model`'s weights; `step` is the steps completed (1 after the first). */
  average(model: tfl.LayersModel, step: number): void;
  /** Writes the average back into the live `model` (the seed's copy-back); optional. */
  copyBack?(model: tfl.LayersModel): void;
  /** Runs `fn` with the averaged weights in `model`, the live ones put back afterwards (also when `fn` throws or its promise rejects). */
  withWeights<T>(model: tfl.LayersModel, fn: () => T): T;
  /** Frees the averages. */
  dispose?(): void;
  /** The averages now; tensors are copies the caller disposes. Optional: without it a checkpoint is refused. */
  saveState?(): StageState;
  /** Puts back a state from `saveState` (the caller keeps its tensors); throws on one that does not fit, before changing anything. */
  loadState?(state: StageState): void;
}
