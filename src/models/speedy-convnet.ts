import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initConvGroupDirac } from '../init/dirac.js';
import { fitWhitening, fitWhiteningFrom, type FitWhiteningOptions, type WhiteningFit } from '../init/whitening.js';
import { isCompactImages, type CompactImages } from '../data/compact.js';
import { BatchNorm } from '../layers/batch-norm.js';
import { Conv } from '../layers/conv.js';
import { ConvGroup } from '../layers/conv-group.js';
import { DiscreteAction } from '../layers/discrete-action.js';
import { Gelu } from '../layers/gelu.js';
import { Linear } from '../layers/linear.js';
import { GlobalMaxPool, MaxPool2 } from '../layers/pooling.js';
import { WhiteningConv } from '../layers/whitening.js';
import { blockDepths, resolveHyp, type Hyp, type HypOverrides } from './hyp.js';

/** 'sketch': the seed (cut + noise between groups). 'backprop': the same net trained end to end (no cut, no noise). */
export type SpeedyConvNetMode = 'sketch' | 'backprop';

/** Options of {@link speedyConvNet}: hyperparameter overrides, the mode, the seed and the class count. */
export interface SpeedyConvNetOptions {
  /** Overrides of the seed's hyperparameters (`net.baseDepth`, `net.noiseStd`, `opt.scalingFactor`, ...). */
  hyp?: HypOverrides;
  /** Default 'sketch'. */
  mode?: SpeedyConvNetMode;
  /** Seeds the weight initialisation and the discrete actions' noise; random when omitted. */
  seed?: number;
  /** Input image side in pixels. Default 32 (CIFAR-10). */
  imageSize?: number;
  /** Width of the logits: the dataset's class count (a dataset's `classNames.length`: 100 or 20 for CIFAR-100). Default 10 (CIFAR-10, the seed's `num_classes`). */
  numClasses?: number;
}

/** SpeedyConvNet: a tfjs LayersModel plus handles on the parts its recipe touches. */
export interface SpeedyConvNet {
  /** The network: `[N, 32, 32, 3]` normalised NHWC images in, `[N, numClasses]` logits out (`[N, 10]` by default). Save and load it like any LayersModel. */
  model: tfl.LayersModel;
  /** The hyperparameters it was built with, resolved; {@link Trainer} trains with them. */
  hyp: Hyp;
  /** 'sketch' (cut and noise between groups) or 'backprop'. */
  mode: SpeedyConvNetMode;
  /** The initial whitening layer, for {@link fitSpeedyConvNetWhitening}. */
  whitening: WhiteningConv;
  /** The three conv groups, in order. */
  groups: ConvGroup[];
  /** The three simulated discrete actions (empty in 'backprop' mode). */
  discreteActions: DiscreteAction[];
}

type Symbolic = tfl.SymbolicTensor;
/** Applies a layer to symbolic inputs (building the functional graph). */
const link = (layer: tfl.layers.Layer, x: Symbolic | Symbolic[]): Symbolic => layer.apply(x) as Symbolic;
const linkPair = (layer: tfl.layers.Layer, x: Symbolic): [Symbolic, Symbolic] => layer.apply(x) as [Symbolic, Symbolic];

/**
 * Builds the seed's SpeedyConvNet as a tfjs LayersModel with its dirac
 * initialisation applied; call {@link fitSpeedyConvNetWhitening} with training
 * images before training, as the seed does in `make_net`.
 *
 * @remarks
 * The forward pass is the seed's: whitening conv → GELU (x0); the initial state
 * prediction conv → max-pool → norm → GELU; three conv groups, each group's output
 * passed through a simulated discrete action (cut + noise, also at inference, as the
 * seed) and added to the state prediction of the block before; global max-pool;
 * linear head scaled by `opt.scalingFactor`. Layer names mirror the seed's state
 * dict (`initial_block_whiten/weight`, `conv_group_1/norm1/bias`, ...), which the
 * optimiser's bias split and the EMA's exclusion rule read. Eval-time flip
 * test-time augmentation is {@link predictWithFlipTTA}.
 */
export function speedyConvNet(options: SpeedyConvNetOptions = {}): SpeedyConvNet {
  const hyp = resolveHyp(options.hyp);
  const mode = options.mode ?? 'sketch';
  if (mode !== 'sketch' && mode !== 'backprop')
    throw new Error(`speedyConvNet: option 'mode' must be 'sketch' or 'backprop', got '${String(mode)}'`);
  const imageSize = options.imageSize ?? 32;
  if (!(Number.isInteger(imageSize) && imageSize >= 16))
    throw new Error(`speedyConvNet: option 'imageSize' must be an integer >= 16, got ${imageSize}`);
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const numClasses = options.numClasses ?? 10;
  if (!(Number.isInteger(numClasses) && numClasses >= 2))
    throw new Error(`speedyConvNet: option 'numClasses' must be an integer >= 2, got ${numClasses}`);
  const depths = blockDepths(hyp.net.baseDepth, numClasses);
  const batchNorm = { momentum: hyp.net.batchNormMomentum, eps: hyp.net.batchNormEps };
  const bn = (name: string) => new BatchNorm({ name, ...batchNorm });
  const group = (name: string, channelsOut: number, statePredDim: number | null, groupSeed: number) =>
    new ConvGroup({ name, channelsOut, statePredDim, seed: groupSeed, batchNormMomentum: batchNorm.momentum, batchNormEps: batchNorm.eps });

  const input = tfl.input({ shape: [imageSize, imageSize, 3], name: 'images' });
  const whitening = new WhiteningConv({ name: 'initial_block_whiten', kernelSize: hyp.net.whiteningKernelSize, seed });
  const x0 = link(new Gelu({ name: 'initial_block_activation' }), link(whitening, input));
  let statePred1 = link(new Conv({ name: 'initial_block_state_pred', filters: depths.block1, seed: seed + 1 }), x0);
  statePred1 = link(new MaxPool2({ name: 'initial_block_state_pool' }), statePred1);
  statePred1 = link(bn('initial_block_state_norm'), statePred1);
  statePred1 = link(new Gelu({ name: 'initial_block_state_activation' }), statePred1);

  const groups = [
    group('conv_group_1', depths.block1, depths.block2, seed + 10),
    group('conv_group_2', depths.block2, depths.block3, seed + 20),
    group('conv_group_3', depths.block3, null, seed + 30),
  ];
  const discreteActions =
    mode === 'sketch'
      ? [1, 2, 3].map((i) => new DiscreteAction({ name: `discrete_action_${i}`, noiseStd: hyp.net.noiseStd, seed: seed + 100 + i }))
      : [];
  const act = (x: Symbolic, i: number) => (mode === 'sketch' ? link(discreteActions[i]!, x) : x);
  const residual = (i: number, a: Symbolic, b: Symbolic) => link(tfl.layers.add({ name: `residual_${i}` }), [a, b]);

  const [x1Raw, statePred2] = linkPair(groups[0]!, x0);
  const x1 = residual(1, act(x1Raw, 0), statePred1);
  const [x2Raw, statePred3] = linkPair(groups[1]!, x1);
  const x2 = residual(2, act(x2Raw, 1), statePred2);
  const x3 = residual(3, act(link(groups[2]!, x2), 2), statePred3);
  const pooled = link(new GlobalMaxPool({ name: 'pooling' }), x3);
  const logits = link(
    new Linear({ name: 'linear', units: depths.numClasses, temperature: hyp.opt.scalingFactor, seed: seed + 40 }),
    pooled,
  );
  const model = tfl.model({ inputs: input, outputs: logits, name: `speedy_conv_net_${mode}` });

  for (const group of groups) initConvGroupDirac(group);
  return { model, hyp, mode, whitening, groups, discreteActions };
}

/**
 * The seed's whitening init: fits the whitening conv on (a random permutation of)
 * the unpadded training images in chunks of `hyp.net.whiteningChunkSize`.
 *
 * @param images Normalised training images, NHWC; if padded by `padAmount`, pass that so the padding is cut off first.
 */
export async function fitSpeedyConvNetWhitening(
  net: SpeedyConvNet,
  images: tf.Tensor4D | CompactImages,
  options: FitWhiteningOptions & { padAmount?: number } = {},
): Promise<WhiteningFit> {
  const { padAmount = 0, ...fitOptions } = options;
  // Checked for either form of images: a negative pad passed unchecked, and one too large failed inside tf.slice.
  // (Images of any other kind are fitWhitening's to refuse.)
  const [, height = 0, width = 0] = (images as { shape?: readonly number[] } | null)?.shape ?? [];
  const k = net.whitening.kernelSize;
  const largestPad = Math.max(0, Math.floor((Math.min(height, width) - k) / 2));
  if (!(typeof padAmount === 'number' && Number.isInteger(padAmount) && padAmount >= 0 && padAmount <= largestPad)) {
    throw new Error(
      `fitSpeedyConvNetWhitening: option 'padAmount' must be an integer in [0, ${largestPad}] for ${height}x${width} images ` +
        `(the unpadded images keep at least the whitening kernel's ${k}x${k}), got ${String(padAmount)}`,
    );
  }
  const fit = {
    chunkSize: net.hyp.net.whiteningChunkSize,
    numExamples: Math.min(net.hyp.net.whiteningExamples, images.shape[0]),
    ...fitOptions,
  };
  if (isCompactImages(images)) {
    // Decoded straight to the unpadded window: nothing of the padded set is materialised.
    const [n, h, w, c] = images.shape;
    if (h !== w) throw new Error(`fitSpeedyConvNetWhitening: compact images must be square, got shape [${images.shape}]`);
    const side = h - 2 * padAmount;
    return fitWhiteningFrom(net.whitening, [n, side, side, c], (idx) => images.gather(idx, padAmount, side), fit);
  }
  const unpadded =
    padAmount > 0
      ? tf.slice(images, [0, padAmount, padAmount, 0], [-1, images.shape[1] - 2 * padAmount, images.shape[2] - 2 * padAmount, -1])
      : images;
  try {
    return await fitWhitening(net.whitening, unpadded, fit);
  } finally {
    if (unpadded !== images) unpadded.dispose();
  }
}
