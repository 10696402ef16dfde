/**
 * The seed's hyperparameters, one frozen object whose fields say their units.
 * `speedyConvNet` and `train` take a {@link HypOverrides} so a user changes one
 * knob without forking anything.
 */

/** Optimiser settings (two SGD groups: biases, and everything else). */
export interface OptHyp {
  /** Images per optimiser step. The seed: 1024. */
  batchSize: number;
  /** Peak learning rate of the bias group (per unit of summed loss). The seed: 1.525 * 64 / 512. */
  biasLr: number;
  /** Peak learning rate of the non-bias group. The seed: 1.525 / 512. */
  nonBiasLr: number;
  /** Coupled L2 decay of the bias group (PyTorch SGD: added to the gradient). The seed: 6.687e-4 * 1024 / 64. */
  biasDecay: number;
  /** Coupled L2 decay of the non-bias group. The seed: 6.687e-4 * 1024. */
  nonBiasDecay: number;
  /** Nesterov momentum of both groups. The seed: 0.85. */
  momentum: number;
  /** Temperature of the linear head (multiplies its weight). The seed: 1/12. */
  scalingFactor: number;
  /** Fraction of steps spent warming up to the peak learning rate. The seed: 0.23. */
  percentStart: number;
  /** OneCycle's initial learning rate is maxLr / this. The seed: 1e16 (start near 0). */
  initialDivFactor: number;
  /** Final learning rate as a fraction of the peak. The seed: 0.07. */
  finalLrRatio: number;
  /** Label smoothing of the cross-entropy. The seed: 0.1. */
  labelSmoothing: number;
  /** The loss is summed over the batch and scaled by lossBatchSize / batchSize. The seed: 512. */
  lossBatchSize: number;
}

/** Network shape and data augmentation. */
export interface NetHyp {
  /** Whitening conv kernel size, in pixels. The seed: 2. */
  whiteningKernelSize: number;
  /** Training images used to fit the whitening conv. The seed: 50000 (all). */
  whiteningExamples: number;
  /** Images per chunk of the whitening fit. The seed: 5000. */
  whiteningChunkSize: number;
  /** Batch-norm momentum in PyTorch's convention (running = (1 - m) * running + m * batch). The seed: 0.4. */
  batchNormMomentum: number;
  /** Batch-norm epsilon. The seed: 1e-12. */
  batchNormEps: number;
  /** Cutmix square side in pixels; 0 turns cutmix off. The seed: 0. */
  cutmixSize: number;
  /** Cutmix runs in the last this-many epochs (when cutmixSize > 0). The seed: 6. */
  cutmixEpochs: number;
  /** Reflect padding before the random crop, in pixels per side. The seed: 2. */
  padAmount: number;
  /** Channels of the first conv group; the others are 4x and 8x. The seed: 64 (64/256/512). */
  baseDepth: number;
  /** Noise multiplier of the simulated discrete actions (times the tensor's std). The seed: 1. */
  noiseStd: number;
}

/** Exponential moving average of the weights, copied back into the live network. */
export interface EmaHyp {
  /** The EMA starts this many whole epochs before the end: at epoch floor(trainEpochs) - epochs. The seed: 10. */
  epochs: number;
  /** Per-step decay base, raised to everyNSteps. The seed: 0.95. */
  decayBase: number;
  /** The decay is also scaled by (step / totalSteps) ** decayPow. The seed: 3. */
  decayPow: number;
  /** Steps between EMA updates. The seed: 5. */
  everyNSteps: number;
}

export interface MiscHyp {
  /** Epochs of training, fractional allowed. The seed: 12.1 (581 steps at batch 1024). */
  trainEpochs: number;
  /** Images per evaluation batch. The seed: 2500. */
  evalBatchSize: number;
  ema: EmaHyp;
}

export interface Hyp {
  opt: OptHyp;
  net: NetHyp;
  misc: MiscHyp;
}

/** A partial `Hyp`: every field optional, nested objects merged. */
export type HypOverrides = {
  [K in keyof Hyp]?: { [F in keyof Hyp[K]]?: Hyp[K][F] extends object ? Partial<Hyp[K][F]> : Hyp[K][F] };
};

const BATCH_SIZE = 1024;
const BIAS_SCALER = 64;

/** The sketch's hyperparameters, as published. */
export const SEED_HYP: Readonly<Hyp> = Object.freeze({
  opt: Object.freeze({
    batchSize: BATCH_SIZE,
    biasLr: (1.525 * BIAS_SCALER) / 512,
    nonBiasLr: 1.525 / 512,
    biasDecay: (6.687e-4 * BATCH_SIZE) / BIAS_SCALER,
    nonBiasDecay: 6.687e-4 * BATCH_SIZE,
    momentum: 0.85,
    scalingFactor: 1 / 12,
    percentStart: 0.23,
    initialDivFactor: 1e16,
    finalLrRatio: 0.07,
    labelSmoothing: 0.1,
    lossBatchSize: 512,
  }),
  net: Object.freeze({
    whiteningKernelSize: 2,
    whiteningExamples: 50000,
    whiteningChunkSize: 5000,
    batchNormMomentum: 0.4,
    batchNormEps: 1e-12,
    cutmixSize: 0,
    cutmixEpochs: 6,
    padAmount: 2,
    baseDepth: 64,
    noiseStd: 1,
  }),
  misc: Object.freeze({
    trainEpochs: 12.1,
    evalBatchSize: 2500,
    ema: Object.freeze({ epochs: 10, decayBase: 0.95, decayPow: 3, everyNSteps: 5 }),
  }),
}) as Hyp;

/**
 * The seed's hyperparameters with `overrides` merged in, validated. As in the seed,
 * whose decays are computed from its `batchsize`, the weight decays follow
 * `opt.batchSize` unless they are overridden themselves.
 */
export function resolveHyp(overrides: HypOverrides = {}): Hyp {
  const batchSize = overrides.opt?.batchSize ?? SEED_HYP.opt.batchSize;
  const hyp: Hyp = {
    opt: {
      ...SEED_HYP.opt,
      nonBiasDecay: 6.687e-4 * batchSize,
      biasDecay: (6.687e-4 * batchSize) / BIAS_SCALER,
      ...overrides.opt,
    },
    net: { ...SEED_HYP.net, ...overrides.net },
    misc: { ...SEED_HYP.misc, ...overrides.misc, ema: { ...SEED_HYP.misc.ema, ...overrides.misc?.ema } },
  };
  for (const [section, fields] of Object.entries(hyp) as [string, Record<string, unknown>][]) {
    for (const [field, value] of Object.entries(fields)) {
      if (field === 'ema') continue;
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new Error(`hyp.${section}.${field} must be a finite number, got ${String(value)}`);
      }
    }
  }
  const positive: [string, number][] = [
    ['opt.batchSize', hyp.opt.batchSize], ['net.baseDepth', hyp.net.baseDepth], ['misc.trainEpochs', hyp.misc.trainEpochs],
    ['misc.evalBatchSize', hyp.misc.evalBatchSize], ['misc.ema.everyNSteps', hyp.misc.ema.everyNSteps],
    ['net.whiteningChunkSize', hyp.net.whiteningChunkSize],
  ];
  for (const [name, value] of positive) {
    if (!(value > 0)) throw new Error(`hyp.${name} must be positive, got ${value}`);
  }
  for (const name of ['opt.batchSize', 'net.baseDepth', 'misc.evalBatchSize', 'misc.ema.everyNSteps', 'net.cutmixSize', 'net.padAmount'] as const) {
    const [s, f] = name.split('.') as [keyof Hyp, string];
    const value = name === 'misc.ema.everyNSteps' ? hyp.misc.ema.everyNSteps : (hyp[s] as unknown as Record<string, number>)[f]!;
    if (!Number.isInteger(value) || value < 0) throw new Error(`hyp.${name} must be a non-negative integer, got ${value}`);
  }
  if (!(hyp.opt.percentStart > 0 && hyp.opt.percentStart < 1)) {
    throw new Error(`hyp.opt.percentStart must be in (0, 1), got ${hyp.opt.percentStart}`);
  }
  return hyp;
}

/** Channel widths of SpeedyConvNet's blocks; the seed's `depths` with its scaler 2. */
export function blockDepths(baseDepth: number): { init: number; block1: number; block2: number; block3: number; numClasses: number } {
  return {
    init: roundHalfEven(baseDepth / 2),
    block1: baseDepth,
    block2: baseDepth * 4,
    block3: baseDepth * 8,
    numClasses: 10,
  };
}

/** Python 3's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
