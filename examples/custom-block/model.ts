// A small SpeedyConvNet-shaped model whose last two blocks are the user-defined ResidualBlock,
// trained with the seed's recipe through the library's Trainer.
// Reads top to bottom: data -> model -> init -> train -> eval.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  BatchNorm,
  Conv,
  ConvGroup,
  DiscreteAction,
  Gelu,
  GlobalMaxPool,
  Linear,
  MaxPool2,
  SEED_HYP,
  Trainer,
  WhiteningConv,
  accuracy,
  diracRenormInit,
  fitWhitening,
  initConvGroupDirac,
  predictWithFlipTTA,
  reflectPad,
  resolveHyp,
  type HypOverrides,
  type LabelledImages,
  type TrainOptions,
  type TrainResult,
} from '../../src/index.js';
import { ResidualBlock } from './residual-block.js';

// ---- data ------------------------------------------------------------------------------------

/**
 * A learnable stand-in for CIFAR-10 when no data directory is given: each class is a fixed
 * smooth random pattern, each image that pattern plus Gaussian noise; the training and eval
 * splits share the patterns. NHWC float32 images, one-hot targets; the caller disposes them.
 */
export function syntheticDataset(
  trainCount: number,
  evalCount: number,
  size: number,
  classes: number,
  seed = 0,
): { train: LabelledImages; eval: LabelledImages } {
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0; // an LCG: plenty for toy data
    return (state + 0.5) / 2 ** 32;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const pixels = size * size * 3;
  // Smooth patterns (a colour plus a low-frequency wave per channel), so random crops keep them recognisable.
  const templates = Array.from({ length: classes }, () => {
    const t = new Float32Array(pixels);
    for (let c = 0; c < 3; c++) {
      const [colour, ky, kx, phase] = [normal(), Math.floor(uniform() * 3), Math.floor(uniform() * 3), 2 * Math.PI * uniform()];
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) t[(y * size + x) * 3 + c] = colour + Math.sin((2 * Math.PI * (ky * y + kx * x)) / size + phase);
      }
    }
    return t;
  });
  const split = (count: number): LabelledImages => {
    const images = new Float32Array(count * pixels);
    const labels = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      labels[i] = i % classes;
      const t = templates[labels[i]!]!;
      for (let p = 0; p < pixels; p++) images[i * pixels + p] = t[p]! + 0.5 * normal();
    }
    return tf.tidy(() => ({
      images: tf.tensor4d(images, [count, size, size, 3]),
      targets: tf.cast(tf.oneHot(tf.tensor1d(labels, 'int32'), classes), 'float32') as tf.Tensor2D,
    }));
  };
  return { train: split(trainCount), eval: split(evalCount) };
}

// ---- model -----------------------------------------------------------------------------------

export interface CustomNetOptions {
  /** Input image side in pixels (at least 16: the blocks pool four times). Default 32. */
  imageSize?: number;
  /** Channels of the three blocks. Default [32, 64, 128]. */
  widths?: [number, number, number];
  /** Output classes. Default 10. */
  classes?: number;
  /** Seeds the initialisation and the discrete actions' noise. Default 0. */
  seed?: number;
  /** Noise of the simulated discrete actions, times the tensor's std. Default 1, the seed's. */
  noiseStd?: number;
}

/** The model plus handles on the parts the recipe touches. */
export interface CustomNet {
  model: tfl.LayersModel;
  whitening: WhiteningConv;
  group: ConvGroup;
  blocks: [ResidualBlock, ResidualBlock];
  discreteActions: DiscreteAction[];
}

type Symbolic = tfl.SymbolicTensor;

/**
 * SpeedyConvNet's dataflow with a library `ConvGroup` first and two `ResidualBlock`s after it:
 * each block's output goes through a simulated discrete action (cut + noise) and has the previous
 * block's state prediction added before it feeds the next block.
 */
export function customBlockNet(options: CustomNetOptions = {}): CustomNet {
  const { imageSize = 32, widths = [32, 64, 128], classes = 10, seed = 0, noiseStd = 1 } = options;
  if (!(Number.isInteger(imageSize) && imageSize >= 16))
    throw new Error(`customBlockNet: option 'imageSize' must be an integer >= 16, got ${imageSize}`);
  const [w1, w2, w3] = widths;
  const link = (layer: tfl.layers.Layer, x: Symbolic | Symbolic[]) => layer.apply(x) as Symbolic;
  const pair = (layer: tfl.layers.Layer, x: Symbolic) => layer.apply(x) as [Symbolic, Symbolic];
  const act = (i: number) => new DiscreteAction({ name: `discrete_action_${i}`, noiseStd, seed: seed + 100 + i });
  const add = (i: number, a: Symbolic, b: Symbolic) => link(tfl.layers.add({ name: `residual_${i}` }), [a, b]);

  const input = tfl.input({ shape: [imageSize, imageSize, 3], name: 'images' });
  const whitening = new WhiteningConv({ name: 'initial_block_whiten', seed });
  const x0 = link(new Gelu({ name: 'initial_block_activation' }), link(whitening, input));
  // The initial block's state prediction, for the first block's output (as the seed's state_pred_1).
  let sp1 = link(new Conv({ name: 'initial_block_state_pred', filters: w1, seed: seed + 1 }), x0);
  sp1 = link(
    new Gelu({ name: 'initial_block_state_activation' }),
    link(new BatchNorm({ name: 'initial_block_state_norm' }), link(new MaxPool2({ name: 'initial_block_state_pool' }), sp1)),
  );

  const group = new ConvGroup({ name: 'conv_group_1', channelsOut: w1, statePredDim: w2, seed: seed + 10 });
  const blocks: [ResidualBlock, ResidualBlock] = [
    new ResidualBlock({ name: 'residual_block_2', channelsOut: w2, statePredDim: w3, seed: seed + 20 }),
    new ResidualBlock({ name: 'residual_block_3', channelsOut: w3, seed: seed + 30 }),
  ];
  const discreteActions = [act(1), act(2), act(3)];

  const [x1Raw, sp2] = pair(group, x0);
  const x1 = add(1, link(discreteActions[0]!, x1Raw), sp1);
  const [x2Raw, sp3] = pair(blocks[0], x1);
  const x2 = add(2, link(discreteActions[1]!, x2Raw), sp2);
  const x3 = add(3, link(discreteActions[2]!, link(blocks[1], x2)), sp3);
  const pooled = link(new GlobalMaxPool({ name: 'pooling' }), x3);
  const logits = link(new Linear({ name: 'linear', units: classes, temperature: SEED_HYP.opt.scalingFactor, seed: seed + 40 }), pooled);
  const model = tfl.model({ inputs: input, outputs: logits, name: 'custom_block_net' });
  return { model, whitening, group, blocks, discreteActions };
}

// ---- init ------------------------------------------------------------------------------------

/**
 * The seed's initialisation, applied to the custom blocks too: whitening fitted on the training
 * images, the conv group's dirac init, and each residual block's transition conv (and a widening
 * state projection) set to `0.1 * w + dirac(w)` renormalised, so every block starts near identity.
 */
export async function initCustomBlockNet(net: CustomNet, trainImages: tf.Tensor4D, seed = 0): Promise<void> {
  await fitWhitening(net.whitening, trainImages, { chunkSize: 5000, seed });
  initConvGroupDirac(net.group);
  const renorm = (v: { read(): tf.Tensor; write(t: tf.Tensor): unknown }) => {
    const next = diracRenormInit(v.read());
    v.write(next);
    next.dispose();
  };
  for (const block of net.blocks) {
    renorm(block.conv1.weight);
    if (block.stateProject && block.stateProject.filters > block.channelsOut) renorm(block.stateProject.weight);
  }
}

// ---- train ----------------------------------------------------------------------------------

/**
 * Trains `net` with the seed's recipe through the library's `Trainer`, as `speedyConvNet` is
 * trained: two SGD groups (biases and the rest; Nesterov momentum, coupled decay) under OneCycle,
 * reflect-pad + random crop + flip once per epoch, the seed's summed label-smoothed loss, an EMA
 * copied back into the live network, and flip-TTA evaluation after each epoch. `hyp` overrides
 * the seed's hyperparameters (a small model wants a smaller batch and fewer epochs); the trainer
 * finds the model's discrete actions itself. `options.stages` swaps parts of the recipe (stages.ts has a focal
 * loss and an Adam optimiser).
 */
export async function trainCustomBlockNet(
  net: CustomNet,
  data: { train: LabelledImages; eval: LabelledImages },
  { hyp: overrides, ...options }: TrainOptions & { hyp?: HypOverrides } = {},
): Promise<TrainResult> {
  const hyp = resolveHyp(overrides);
  const train = { images: reflectPad(data.train.images, hyp.net.padAmount), targets: data.train.targets };
  const trainer = new Trainer({ model: net.model, hyp }, { train, eval: data.eval }, options);
  try {
    return await trainer.run();
  } finally {
    trainer.dispose();
    train.images.dispose();
  }
}

// ---- eval ------------------------------------------------------------------------------------

/** Accuracy with the seed's flip test-time augmentation (the discrete actions stay noisy, as in the seed). */
export async function evaluateCustomBlockNet(net: CustomNet, data: LabelledImages): Promise<number> {
  const acc = tf.tidy(() => accuracy(predictWithFlipTTA(net.model, data.images), data.targets));
  const value = (await acc.data())[0]!;
  acc.dispose();
  return value;
}
