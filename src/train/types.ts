// The records a training run reports, shared by the Trainer, its checkpoints and its stages.

import type { TrainRecipe } from './recipes.js';

/** One row of the seed's table, plus what the CLI and the browser example show. */
export interface EpochRecord {
  /** 0-based, as the seed prints it. */
  epoch: number;
  /** The seed's logged train loss (per example) at the epoch's last step with epochStep % hyp.misc.logEveryNSteps == 0. */
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

/**
 * How a run ended: 'diverged' when a logged loss rose past `TrainOptions.maxLossRise` times its start (and chance
 * level), 'non-finite-loss' on a NaN or infinite loss.
 */
export type StopReason = 'completed' | 'stopped' | 'non-finite-loss' | 'diverged';

export interface TrainResult {
  records: EpochRecord[];
  stopReason: StopReason;
  /** Set when stopReason is 'non-finite-loss' or 'diverged': what happened, and for 'diverged' which knob to turn. */
  message?: string;
  totalTimeSeconds: number;
  /** The recipe the run trained with, and why (as `Trainer.recipe`). */
  recipe: TrainRecipe;
}
