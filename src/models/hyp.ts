/**
 * The seed's hyperparameters, one frozen object whose fields say their units.
 * `speedyConvNet` and `Trainer` take a {@link HypOverrides} so a user changes one
 * knob without forking anything.
 */
import { largestSeedSquare } from '../augment/masks.js';

/**
 * Optimiser settings (two SGD groups: biases, and everything else). `biasLr`, `nonBiasDecay` and
 * `biasDecay` are derived from the others by {@link resolveHyp} unless set themselves.
 */
export interface OptHyp {
  /** Images per optimiser step. The seed: 1024. */
  batchSize: number;
  /** Peak learning rate of the non-bias group (per unit of summed loss). The seed: 1.525 / 512. */
  nonBiasLr: number;
  /** The bias group's learning rate is this many times the non-bias group's, and its decay this many times smaller (the seed's bias_scaler). The seed: 64. */
  biasScaler: number;
  /** Coupled L2 decay per image of the batch (the loss is a sum over the batch). The seed: 6.687e-4. */
  weightDecayPerImage: number;
  /** Peak learning rate of the bias group. Derived: nonBiasLr * biasScaler (the seed: 1.525 * 64 / 512). */
  biasLr: number;
  /** Coupled L2 decay of the non-bias group (PyTorch SGD: added to the gradient). Derived: weightDecayPerImage * batchSize. */
  nonBiasDecay: number;
  /** Coupled L2 decay of the bias group. Derived: weightDecayPerImage * batchSize / biasScaler. */
  biasDecay: number;
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

/** The run's length, evaluation and logging, and the EMA. */
export interface MiscHyp {
  /** Epochs of training, fractional allowed. The seed: 12.1 (581 steps at batch 1024). */
  trainEpochs: number;
  /** Images per evaluation batch. The seed: 2500. */
  evalBatchSize: number;
  /** The table's train loss and accuracy are those of the epoch's last step with epochStep % this == 0 (0-based). The seed: 50. */
  logEveryNSteps: number;
  /** The EMA of the weights. */
  ema: EmaHyp;
}

/**
 * The seed's hyperparameters (`SEED_HYP`) or overrides of them resolved by {@link resolveHyp}: what
 * {@link speedyConvNet} builds and {@link Trainer} trains with.
 */
export interface Hyp {
  /** The optimiser, schedule, loss and batch size. */
  opt: OptHyp;
  /** The network's shape and augmentation. */
  net: NetHyp;
  /** The run's length, evaluation and logging, and the EMA. */
  misc: MiscHyp;
}

/** A partial `Hyp`: every field optional, nested objects merged. */
export type HypOverrides = {
  [K in keyof Hyp]?: { [F in keyof Hyp[K]]?: Hyp[K][F] extends object ? Partial<Hyp[K][F]> : Hyp[K][F] };
};

/** The seed's values of the fields that are not derived from others. */
const SEED_BASE: Readonly<{ opt: Omit<OptHyp, DerivedOptKey>; net: NetHyp; misc: MiscHyp }> = {
  opt: {
    batchSize: 1024,
    nonBiasLr: 1.525 / 512,
    biasScaler: 64,
    weightDecayPerImage: 6.687e-4,
    momentum: 0.85,
    scalingFactor: 1 / 12,
    percentStart: 0.23,
    initialDivFactor: 1e16,
    finalLrRatio: 0.07,
    labelSmoothing: 0.1,
    lossBatchSize: 512,
  },
  net: {
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
  },
  misc: {
    trainEpochs: 12.1,
    evalBatchSize: 2500,
    logEveryNSteps: 50,
    ema: { epochs: 10, decayBase: 0.95, decayPow: 3, everyNSteps: 5 },
  },
};

type DerivedOptKey = 'biasLr' | 'nonBiasDecay' | 'biasDecay';

/**
 * The optimiser values the seed computes from others, derived here and nowhere else (as airbench94
 * derives its learning rates and decay from a few base knobs). An override of the value itself wins.
 */
const DERIVED_OPT: { readonly [K in DerivedOptKey]: (opt: Omit<OptHyp, DerivedOptKey>) => number } = {
  biasLr: (o) => o.nonBiasLr * o.biasScaler,
  nonBiasDecay: (o) => o.weightDecayPerImage * o.batchSize,
  biasDecay: (o) => (o.weightDecayPerImage * o.batchSize) / o.biasScaler,
};

/** The seed's values with `overrides` merged in and the dependent values derived (not checked). */
function mergeHyp(overrides: HypOverrides): Hyp {
  const given = withoutUndefined(overrides.opt);
  const base = { ...SEED_BASE.opt, ...given };
  const derived = Object.fromEntries(Object.entries(DERIVED_OPT).map(([key, derive]) => [key, derive(base)])) as Pick<
    OptHyp,
    DerivedOptKey
  >;
  return {
    opt: { ...base, ...derived, ...given },
    net: { ...SEED_BASE.net, ...withoutUndefined(overrides.net) },
    misc: {
      ...SEED_BASE.misc,
      ...withoutUndefined(overrides.misc),
      ema: { ...SEED_BASE.misc.ema, ...withoutUndefined(overrides.misc?.ema) },
    },
  };
}

function deepFreeze<T extends object>(value: T): Readonly<T> {
  for (const v of Object.values(value)) if (typeof v === 'object' && v !== null) deepFreeze(v);
  return Object.freeze(value);
}

/** The sketch's hyperparameters, as published. */
export const SEED_HYP: Readonly<Hyp> = deepFreeze(mergeHyp({}));

/** What each hyperparameter accepts: an integer or any number, and its range. */
interface HypRule {
  integer?: boolean;
  /** Smallest allowed value; exclusive when `minOpen`. */
  min: number;
  minOpen?: boolean;
  /** Largest allowed value; exclusive when `maxOpen`. Default: none. */
  max?: number;
  maxOpen?: boolean;
  /** Why the range is what it is, when that is not obvious. */
  why?: string;
}

/** Bounds that keep a run's arrays and weights allocatable (beyond them a run fails deep inside with a raw allocation error). */
const MAX_TRAIN_EPOCHS = 1000;
const MAX_BASE_DEPTH = 512;

const POSITIVE_INT: HypRule = { integer: true, min: 1 };
const NON_NEGATIVE_INT: HypRule = { integer: true, min: 0 };
const POSITIVE: HypRule = { min: 0, minOpen: true };
const NON_NEGATIVE: HypRule = { min: 0 };
const FRACTION_OPEN: HypRule = { min: 0, minOpen: true, max: 1, maxOpen: true };

/** The range of every key of {@link Hyp}; resolveHyp checks each value against it. */
const HYP_RULES: { [K in keyof Hyp]: { [F in keyof Hyp[K]]: Hyp[K][F] extends object ? { [G in keyof Hyp[K][F]]: HypRule } : HypRule } } = {
  opt: {
    batchSize: POSITIVE_INT,
    nonBiasLr: NON_NEGATIVE,
    biasScaler: POSITIVE,
    weightDecayPerImage: NON_NEGATIVE,
    biasLr: NON_NEGATIVE,
    nonBiasDecay: NON_NEGATIVE,
    biasDecay: NON_NEGATIVE,
    momentum: { ...FRACTION_OPEN, why: 'Nesterov SGD needs momentum > 0' },
    scalingFactor: POSITIVE,
    percentStart: FRACTION_OPEN,
    initialDivFactor: POSITIVE,
    finalLrRatio: POSITIVE,
    labelSmoothing: { min: 0, max: 1 },
    lossBatchSize: { ...POSITIVE, why: 'the loss is scaled by lossBatchSize / batchSize' },
  },
  net: {
    whiteningKernelSize: POSITIVE_INT,
    whiteningExamples: POSITIVE_INT,
    whiteningChunkSize: POSITIVE_INT,
    batchNormMomentum: { min: 0, max: 1 },
    batchNormEps: POSITIVE,
    cutmixSize: NON_NEGATIVE_INT,
    cutmixEpochs: NON_NEGATIVE,
    padAmount: NON_NEGATIVE_INT,
    baseDepth: {
      integer: true,
      min: 1,
      max: MAX_BASE_DEPTH,
      why: `the last group has 8x as many channels; ${MAX_BASE_DEPTH} already makes 4096-channel convs of 600 MB`,
    },
    noiseStd: NON_NEGATIVE,
  },
  misc: {
    trainEpochs: { min: 0, minOpen: true, max: MAX_TRAIN_EPOCHS, why: `the seed trains 12.1; every epoch's schedule is held in memory` },
    evalBatchSize: POSITIVE_INT,
    logEveryNSteps: POSITIVE_INT,
    ema: { epochs: NON_NEGATIVE_INT, decayBase: { min: 0, max: 1 }, decayPow: NON_NEGATIVE, everyNSteps: POSITIVE_INT },
  },
};

function describeRule(rule: HypRule): string {
  if (rule.max !== undefined) {
    return `${rule.integer ? 'an integer' : 'a number'} in ${rule.minOpen ? '(' : '['}${rule.min}, ${rule.max}${rule.maxOpen ? ')' : ']'}`;
  }
  if (rule.integer) return rule.min === 1 ? 'a positive integer' : `an integer >= ${rule.min}`;
  return `a number ${rule.minOpen ? '>' : '>='} ${rule.min}`;
}

function checkValue(key: string, value: unknown, rule: HypRule): void {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!rule.integer || Number.isInteger(value)) &&
    (rule.minOpen ? value > rule.min : value >= rule.min) &&
    (rule.max === undefined || (rule.maxOpen ? value < rule.max : value <= rule.max));
  if (!ok) {
    const got =
      typeof value === 'string' ? `'${value}'` : typeof value === 'number' || value === undefined ? String(value) : describeValue(value);
    throw new Error(`hyp.${key} must be ${describeRule(rule)}${rule.why ? ` (${rule.why})` : ''}, got ${got}`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `an array ${JSON.stringify(value)}`;
  if (value === null) return 'null';
  return `${typeof value} ${typeof value === 'string' ? `'${value}'` : String(value)}`;
}

/** The closest valid key, for "did you mean" (case-insensitive, then by edit distance up to 2). */
function closest(key: string, valid: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const same = valid.find((v) => v.toLowerCase() === lower);
  if (same) return same;
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let diagonal = row[0]!;
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const above = row[j]!;
        row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
        diagonal = above;
      }
    }
    return row[b.length]!;
  };
  let best: string | undefined;
  let bestDistance = 3;
  for (const v of valid) {
    const d = distance(lower, v.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [v, d];
  }
  return best;
}

/** Checks that `overrides` only names keys of {@link Hyp}, each section an object. */
function checkOverrideKeys(overrides: unknown): void {
  if (!isPlainObject(overrides)) {
    throw new Error(`hyp must be an object of overrides such as { net: { baseDepth: 32 } }, got ${describeValue(overrides)}`);
  }
  const walk = (node: Record<string, unknown>, rules: Record<string, unknown>, path: string) => {
    for (const [key, value] of Object.entries(node)) {
      const here = path ? `${path}.${key}` : key;
      const valid = Object.keys(rules);
      if (!Object.hasOwn(rules, key)) {
        const guess = closest(key, valid);
        throw new Error(
          `hyp${path ? `.${path}` : ''} has no key '${key}'${guess ? ` (did you mean '${guess}'?)` : ''}; valid keys: ${valid.join(', ')}`,
        );
      }
      const rule = rules[key] as Record<string, unknown>;
      const isSection = !('min' in rule);
      if (isSection && value !== undefined && !isPlainObject(value)) {
        throw new Error(`hyp.${here} must be an object of overrides (keys: ${Object.keys(rule).join(', ')}), got ${describeValue(value)}`);
      }
      if (isSection && value !== undefined) walk(value as Record<string, unknown>, rule, here);
    }
  };
  walk(overrides, HYP_RULES as unknown as Record<string, unknown>, '');
}

/**
 * The seed's hyperparameters with `overrides` merged in, validated. As in the seed, the
 * dependent values follow what they depend on unless they are overridden themselves:
 * `opt.biasLr` is `nonBiasLr * biasScaler`, `opt.nonBiasDecay` is `weightDecayPerImage *
 * batchSize` and `opt.biasDecay` that over `biasScaler`. A complete `Hyp` passes through
 * unchanged (its dependent values count as overrides).
 *
 * @throws when `overrides` is not an object, names a key `Hyp` does not have (a typo
 * is never silently ignored), or sets a value outside its range (every key has one:
 * `opt.lossBatchSize` > 0, `opt.momentum` in (0, 1), `net.baseDepth` an integer in
 * [1, 512], `misc.trainEpochs` in (0, 1000], ...), or, with `options.imageSize`, a combination
 * the seed's crop, cutmix or whitening fit cannot use on such images (`net.padAmount` 0 for an
 * even crop, ...); the message names the key, what it accepts and what it got.
 */
export function resolveHyp(overrides: HypOverrides = {}, options: HypCheckOptions = {}): Hyp {
  const imageSize = checkImageSizeOption('resolveHyp', options);
  checkOverrideKeys(overrides);
  const hyp = mergeHyp(overrides);
  checkHyp(hyp, imageSize === undefined ? {} : { imageSize });
  return hyp;
}

/** Options of {@link resolveHyp} and {@link checkHyp}. */
export interface HypCheckOptions {
  /**
   * Side of the square, unpadded images the recipe runs on (32 for CIFAR-10 and CIFAR-100). Given, the values are
   * also checked together against it: the seed's random crop of the padded images, its cutmix squares and the
   * whitening fit's patches (see {@link checkHypFitsImages}). Without it only each key's own range is checked.
   */
  imageSize?: number;
}

function checkImageSizeOption(where: string, options: HypCheckOptions | undefined): number | undefined {
  const imageSize = options?.imageSize;
  if (imageSize !== undefined && !(typeof imageSize === 'number' && Number.isInteger(imageSize) && imageSize > 0))
    throw new Error(`${where}: option 'imageSize' must be a positive integer, got ${String(imageSize)}`);
  return imageSize;
}

/**
 * Throws unless the seed's random crop and cutmix can use `hyp` on `imageSize` x `imageSize` images, naming the
 * key at fault: the crop takes an `imageSize` window of the images padded by `net.padAmount` where the seed's
 * square masks would put it (an even window needs padded images larger than itself, an odd one fits its own
 * side), and a cutmix square must fit the crop the same way. What `Trainer` checks for the seed's batches
 * stage (its data comes padded already). @internal
 */
export function checkHypFitsCrops(hyp: Hyp, imageSize: number): void {
  const { padAmount, cutmixSize } = hyp.net;
  if (imageSize > largestSeedSquare(imageSize + 2 * padAmount)) {
    throw new Error(
      `hyp.net.padAmount must be at least 1 for the seed's random ${imageSize}x${imageSize} crop (an even crop needs padded images larger than itself), got ${padAmount}`,
    );
  }
  if (cutmixSize > largestSeedSquare(imageSize)) {
    throw new Error(
      `hyp.net.cutmixSize ${cutmixSize} does not fit the ${imageSize}x${imageSize} training crops; it must be at most ${largestSeedSquare(imageSize)} ` +
        "(the seed's square masks need a spare row for an even side; 0 turns cutmix off)",
    );
  }
}

/**
 * Throws unless the seed's reflect padding, crop, cutmix (`checkHypFitsCrops`) and whitening fit can use
 * `hyp` on `imageSize` x `imageSize` images: reflection needs `net.padAmount` below the side, the whitening kernel
 * must fit the unpadded image, and every chunk of the fit's `whiteningExamples` needs at least two patches for its
 * covariance. Names the key at fault.
 */
export function checkHypFitsImages(hyp: Hyp, imageSize: number): void {
  const { padAmount } = hyp.net;
  if (padAmount >= imageSize) {
    throw new Error(`hyp.net.padAmount must be smaller than the ${imageSize}x${imageSize} images it reflect-pads, got ${padAmount}`);
  }
  checkHypFitsCrops(hyp, imageSize);
  const { whiteningKernelSize: k, whiteningExamples: examples, whiteningChunkSize: chunk } = hyp.net;
  if (k > imageSize) {
    throw new Error(
      `hyp.net.whiteningKernelSize must be at most the image side ${imageSize} (the whitening conv is a 'valid' convolution of the unpadded images), got ${k}`,
    );
  }
  const patchesPerImage = (imageSize - k + 1) ** 2;
  const lastChunk = examples - chunk * Math.floor((examples - 1) / chunk);
  if (patchesPerImage * lastChunk < 2) {
    throw new Error(
      `hyp.net.whiteningKernelSize ${k} takes one patch from each ${imageSize}x${imageSize} image, and hyp.net.whiteningExamples ${examples} in chunks of ` +
        `hyp.net.whiteningChunkSize ${chunk} leaves a chunk of ${lastChunk} image: a covariance needs at least 2 patches`,
    );
  }
}

/** Drops keys set to undefined, so `{ baseDepth: undefined }` keeps the default (as an absent key does). */
function withoutUndefined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Checks a complete {@link Hyp} (e.g. one changed after `resolveHyp`): every key present,
 * no unknown key, every value in its range, and with `options.imageSize` the combinations
 * that image size needs ({@link checkHypFitsImages}). Throws an error naming the first key at fault.
 */
export function checkHyp(hyp: Hyp, options: HypCheckOptions = {}): void {
  const imageSize = checkImageSizeOption('checkHyp', options);
  if (!isPlainObject(hyp)) throw new Error(`hyp must be an object with opt, net and misc, got ${describeValue(hyp)}`);
  checkOverrideKeys(hyp);
  const walk = (node: Record<string, unknown>, rules: Record<string, unknown>, path: string) => {
    for (const [key, rule] of Object.entries(rules)) {
      const here = path ? `${path}.${key}` : key;
      if ('min' in (rule as object)) {
        checkValue(here, node[key], rule as HypRule);
      } else {
        if (!isPlainObject(node[key])) throw new Error(`hyp.${here} must be an object, got ${describeValue(node[key])}`);
        walk(node[key] as Record<string, unknown>, rule as Record<string, unknown>, here);
      }
    }
  };
  walk(hyp as unknown as Record<string, unknown>, HYP_RULES as unknown as Record<string, unknown>, '');
  if (imageSize !== undefined) checkHypFitsImages(hyp, imageSize);
}

/** Channel widths of SpeedyConvNet's blocks; the seed's `depths` with its scaler 2, and the output width (the seed's 10 unless given). */
export function blockDepths(
  baseDepth: number,
  numClasses = 10,
): {
  /** The initial block's width (the whitening's state prediction), half of `baseDepth` rounded half to even. */
  init: number;
  /** The first group's width: `baseDepth`. */
  block1: number;
  /** The second group's width: 4 x `baseDepth`. */
  block2: number;
  /** The third group's width: 8 x `baseDepth`. */
  block3: number;
  /** The output width: `numClasses`. */
  numClasses: number;
} {
  return {
    init: roundHalfEven(baseDepth / 2),
    block1: baseDepth,
    block2: baseDepth * 4,
    block3: baseDepth * 8,
    numClasses,
  };
}

/** Python 3's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
