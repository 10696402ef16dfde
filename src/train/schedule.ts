import { epochFraction, stepsInEpoch } from '../data/batches.js';

/** The seed's step bookkeeping, with whole-number epoch counts running their last epoch in full (see docs/seed-differences.md). */
export function trainSchedule(
  numExamples: number,
  batchSize: number,
  trainEpochs: number,
): {
  /** Optimiser steps in each epoch. */
  epochSteps: number[];
  /** Their sum. */
  totalSteps: number;
  /** Steps of a full epoch: whole batches in `numExamples`. */
  stepsPerEpoch: number;
} {
  const epochs = Math.ceil(trainEpochs);
  const epochSteps = Array.from({ length: epochs }, (_, e) => {
    // The seed's last epoch of a whole-number run gets fraction 0 (no steps); it runs in full here.
    const fraction = epochFraction(e, trainEpochs) || 1;
    return stepsInEpoch(numExamples, batchSize, fraction);
  });
  const stepsPerEpoch = Math.floor(numExamples / batchSize);
  if (epochSteps.every((n) => n === 0)) {
    const why =
      stepsPerEpoch === 0
        ? `${numExamples} examples make no full batch of ${batchSize}`
        : `an epoch is ${stepsPerEpoch} steps of ${batchSize} examples, and ${trainEpochs} of one rounds to 0 steps; train more than ${(0.5 / stepsPerEpoch).toPrecision(3)} epochs`;
    throw new Error(`trainSchedule: ${trainEpochs} epochs of ${numExamples} examples make no training step (${why})`);
  }
  const total = Math.ceil(stepsPerEpoch * trainEpochs);
  // Rounding of a fractional last epoch can add a step beyond the seed's formula; the schedule then stretches to cover it.
  return {
    epochSteps,
    stepsPerEpoch,
    totalSteps: Math.max(
      total,
      epochSteps.reduce((a, b) => a + b, 0),
    ),
  };
}
