// The benchmark's training and evaluation steps, built from the library's public pieces exactly as
// Trainer.trainStep composes them (model.apply + seedLoss + tf.variableGrads + SGD.step, and
// NetworkEMA.update every `ema.everyNSteps` steps), so the bench does not depend on Trainer internals.
import * as tf from '@tensorflow/tfjs-core';
import { fitSpeedyConvNetWhitening, speedyConvNet, type SpeedyConvNet, type SpeedyConvNetMode } from '../src/models/speedy-convnet.js';
import { predictWithFlipTTA } from '../src/train/flip-tta.js';
import { seedLoss } from '../src/ops/loss.js';
import { DeviceRandom } from '../src/ops/random.js';
import { NetworkEMA } from '../src/train/ema.js';
import { OneCycle } from '../src/train/one-cycle.js';
import { SGD, splitBiasGroups, type NamedWeight } from '../src/train/sgd.js';
import { variableGrads } from '../src/train/variable-grads.js';

export interface BenchSetupOptions {
  batch: number;
  baseDepth: number;
  /** Steps the schedules span (warm-up + timed); only the lr values depend on it. */
  totalSteps: number;
  /** Distinct input batches held on the backend, cycled through. Default 2. */
  batches?: number;
  imageSize?: number;
  mode?: SpeedyConvNetMode;
  seed?: number;
}

export interface BenchSetup {
  net: SpeedyConvNet;
  /** One optimiser step (forward, loss, backward, SGD) plus the EMA update when due; returns whether the EMA ran. */
  trainStep(): boolean;
  /** One flip-TTA evaluation forward of a batch; returns the logits (caller disposes). */
  evalStep(): tf.Tensor2D;
  /** Steps taken so far. */
  readonly steps: number;
  /** Everything the setup allocated except the model weights. */
  dispose(): void;
}

/** Builds the net, its optimiser and EMA, and random batches already on the backend. */
export async function setupBench(options: BenchSetupOptions): Promise<BenchSetup> {
  const { batch, baseDepth, totalSteps, batches = 2, imageSize = 32, mode = 'sketch', seed = 0 } = options;
  const net = speedyConvNet({ hyp: { net: { baseDepth }, opt: { batchSize: batch } }, mode, seed, imageSize });
  const { hyp } = net;
  const random = new DeviceRandom(seed + 1000);
  // Whitening fitted on random images: its values do not change the cost of a step (as bench_torch.py).
  const whitenImages = random.normal([Math.max(batch, 64), imageSize, imageSize, 3]) as tf.Tensor4D;
  await fitSpeedyConvNetWhitening(net, whitenImages, { chunkSize: whitenImages.shape[0] });
  whitenImages.dispose();
  const inputs = Array.from({ length: batches }, () => random.normal([batch, imageSize, imageSize, 3]) as tf.Tensor4D);
  const targets = Array.from({ length: batches }, () =>
    tf.tidy(() => tf.cast(tf.oneHot(random.randInt([batch], 0, 10), 10), 'float32') as tf.Tensor2D),
  );

  const weights = net.model.trainableWeights as unknown as NamedWeight[];
  const { bias, nonBias } = splitBiasGroups(weights);
  const cycle = (maxLr: number) =>
    new OneCycle({
      maxLr,
      totalSteps,
      pctStart: hyp.opt.percentStart,
      divFactor: hyp.opt.initialDivFactor,
      finalDivFactor: 1 / (hyp.opt.initialDivFactor * hyp.opt.finalLrRatio),
      anneal: 'linear',
    });
  const common = { momentum: hyp.opt.momentum, nesterov: true };
  const optimizer = new SGD([
    { name: 'non_bias', weights: nonBias, lr: cycle(hyp.opt.nonBiasLr), weightDecay: hyp.opt.nonBiasDecay, ...common },
    { name: 'bias', weights: bias, lr: cycle(hyp.opt.biasLr), weightDecay: hyp.opt.biasDecay, ...common },
  ]);
  const trainable = net.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const batchScale = hyp.opt.lossBatchSize / batch;
  let ema: NetworkEMA | null = null;
  let steps = 0;
  let evalSteps = 0; // apart from `steps`: the schedules and the EMA table count training steps only

  return {
    net,
    get steps() {
      return steps;
    },
    trainStep() {
      const i = steps % batches;
      const { value, grads } = variableGrads(() => {
        const out = net.model.apply(inputs[i]!, { training: true }) as tf.Tensor2D;
        return seedLoss(out, targets[i]!, { labelSmoothing: hyp.opt.labelSmoothing, batchScale });
      }, trainable);
      value.dispose();
      optimizer.step(grads);
      tf.dispose(Object.values(grads));
      steps++;
      if (steps % hyp.misc.ema.everyNSteps !== 0) return false;
      // As the trainer: the EMA is made on its first due step, then updated on every due step.
      ema ??= new NetworkEMA(net.model, {
        decaySchedule: {
          totalSteps,
          decayBase: hyp.misc.ema.decayBase,
          everyN: hyp.misc.ema.everyNSteps,
          pow: hyp.misc.ema.decayPow,
        },
      });
      // updateAt(step) is update(emaDecayAt(step, ...)) with the decays listed on the backend once.
      ema.updateAt(net.model, steps);
      return true;
    },
    evalStep() {
      return predictWithFlipTTA(net.model, inputs[evalSteps++ % batches]!);
    },
    dispose() {
      optimizer.dispose();
      ema?.dispose();
      tf.dispose([...inputs, ...targets]);
    },
  };
}

/** Waits for the backend to finish queued work (reads one element of one weight). */
export async function syncBackend(net: SpeedyConvNet): Promise<void> {
  const w = net.model.trainableWeights[0]!.read();
  const one = tf.tidy(() => tf.slice(tf.reshape(w, [-1]), 0, 1));
  await one.data();
  one.dispose();
}
