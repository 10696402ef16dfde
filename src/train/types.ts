// The records a training run reports, shared by the Trainer, its checkpoints and its stages.

import type { TrainRecipe } from './recipes.js';

/** One row of the seed's table, plus what the CLI and the browser example show. */
export interface EpochRecord {
  /** 0-based, as the seed prints it. */
  epoch: number;
  /** The seed's logged train loss (per example) at the epoch's last step with epochStep % hyp.misc.logEveryNSteps == 0. */
  trainLoss: number;
  /** The training accuracy logged with `trainLoss`, in [0, 1]. */
  trainAcc: number;
  /** Loss on the evaluation split (the evaluate stage's: the seed's label-smoothed cross-entropy with flip TTA). */
  valLoss: number;
  /** Accuracy on the evaluation split, in [0, 1]. */
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

/** What {@link TrainCallbacks.onStep} is told after each step. */
export interface StepInfo {
  /** 0-based epoch of the step. */
  epoch: number;
  /** Steps completed in total (1 after the first step). */
  step: number;
  /** Steps completed in this epoch. */
  epochStep: number;
  /** Steps in this epoch. */
  epochSteps: number;
  /** Steps in the run. */
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

/**
 * How a run ended: 'diverged' when a logged loss rose past `TrainOptions.maxLossRise` times its start (and chance
 * level), 'non-finite-loss' on a NaN or infinite loss.
 */
export type StopReason = 'completed' | 'stopped' | 'non-finite-loss' | 'diverged';

/** What {@link Trainer.run} returns: the table's rows and how the run ended. */
export interface TrainResult {
  /** One row per epoch evaluated. */
  records: EpochRecord[];
  /** How the run ended. */
  stopReason: StopReason;
  /** Set when stopReason is 'non-finite-loss' or 'diverged': what happened, and for 'diverged' which knob to turn. */
  message?: string;
  /** Training-loop time in seconds (evaluation excluded). */
  totalTimeSeconds: number;
  /** The recipe the run trained with, and why (as `Trainer.recipe`). */
  recipe: TrainRecipe;
}
