// Training stages of the example's own: the library's Trainer runs each in place of the seed's, with nothing in the
// library changed (`trainCustomBlockNet(net, data, { stages: { loss: focalLoss(2), optimizer: adamStage(),
// batches: brightnessStage(0.2) } })`).
// Inside this repository it imports ../../src; in your own project import from 'tfjs-dataflow'.
import * as tf from '@tensorflow/tfjs-core';
import {
  deviceScalar,
  seedBatches,
  type BatchAugmentation,
  type BatchesStage,
  type LossStage,
  type LossStageArgs,
  type OptimizerStage,
  type StageState,
  type TrainOptimizer,
} from '../../src/index.js';

// ---- loss -----------------------------------------------------------------------------------

/**
 * Focal loss (Lin et al. 2017), -Σ_c t_c (1 - p_c)^gamma log p_c per example, summed over the batch and
 * scaled like the seed's loss (`batchScale`), so the seed's learning rates still fit; logged per example, as the
 * seed's is. Soft targets (cutmix) work as they are. gamma 0 is plain cross-entropy without label smoothing.
 */
export function focalLoss(gamma: number): LossStage {
  if (!(Number.isFinite(gamma) && gamma >= 0)) throw new Error(`focalLoss: gamma must be a number >= 0, got ${gamma}`);
  const loss = (logits: tf.Tensor2D, targets: tf.Tensor2D, { batchScale }: LossStageArgs) =>
    tf.tidy(() => {
      const logP = tf.logSoftmax(logits);
      const weight = tf.pow(tf.sub(1, tf.exp(logP)), gamma);
      const perExample = tf.neg(tf.sum(tf.mul(targets, tf.mul(weight, logP)), -1));
      return tf.mul(tf.sum(perExample), batchScale) as tf.Scalar;
    });
  // The step's total is a sum scaled by batchScale: per example, divide both back out.
  return Object.assign(loss, {
    perExample: (total: number, { batchScale, context }: LossStageArgs) => total / (batchScale * context.batchSize),
  });
}

// ---- optimizer ------------------------------------------------------------------------------

/** Options of the example's Adam. */
export interface AdamOptions {
  /** Learning rate. Default 1e-3. */
  lr?: number;
  /** Decay of the first moment. Default 0.9. */
  beta1?: number;
  /** Decay of the second moment. Default 0.999. */
  beta2?: number;
  /** Added to the second moment's square root. Default 1e-7, tfjs's `tf.train.adam` default on float32 backends. */
  epsilon?: number;
}

/**
 * Adam (Kingma and Ba 2015) as a `TrainOptimizer`: `m = β1 m + (1 - β1) g`, `v = β2 v + (1 - β2) g²`,
 * `w -= lr m̂ / (√v̂ + ε)` with the bias corrections `m̂ = m / (1 - β1^t)`, `v̂ = v / (1 - β2^t)`, in the order
 * `tf.train.adam` computes them. Its moments go into the checkpoint as `m/<weight>` and `v/<weight>`, so a run
 * with it resumes exactly.
 */
export class Adam implements TrainOptimizer {
  readonly lr: number;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly weights: Map<string, tf.Variable>;
  /** Each weight's checkpoint key (its originalName), by gradient name. */
  private readonly keys: Map<string, string>;
  private readonly moments = new Map<string, { m: tf.Tensor; v: tf.Tensor }>();
  private t = 0;

  /** `weights`: the variables to train, keyed by the name their gradients come under (`LayerVariable.name`) and checkpointed by `originalName`. */
  constructor(weights: ReadonlyArray<{ name: string; originalName: string; read(): tf.Tensor }>, options: AdamOptions = {}) {
    const { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7 } = options;
    for (const [name, value, ok] of [
      ['lr', lr, lr > 0],
      ['beta1', beta1, beta1 >= 0 && beta1 < 1],
      ['beta2', beta2, beta2 >= 0 && beta2 < 1],
      ['epsilon', epsilon, epsilon >= 0],
    ] as const) {
      if (!(typeof value === 'number' && Number.isFinite(value) && ok)) throw new Error(`Adam: '${name}' is out of range, got ${value}`);
    }
    [this.lr, this.beta1, this.beta2, this.epsilon] = [lr, beta1, beta2, epsilon];
    this.weights = new Map(weights.map((w) => [w.name, w.read() as tf.Variable]));
    this.keys = new Map(weights.map((w) => [w.name, w.originalName]));
  }

  step(grads: tf.NamedTensorMap): void {
    this.t++;
    const [c1, c2] = [1 - this.beta1 ** this.t, 1 - this.beta2 ** this.t];
    tf.tidy(() => {
      for (const [name, w] of this.weights) {
        const g = grads[name];
        if (g == null) continue;
        const old = this.moments.get(name);
        const m = tf.add(tf.mul(old?.m ?? tf.zerosLike(w), this.beta1), tf.mul(g, 1 - this.beta1));
        const v = tf.add(tf.mul(old?.v ?? tf.zerosLike(w), this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        w.assign(tf.add(tf.mul(tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), this.epsilon)), -this.lr), w));
        if (old) tf.dispose([old.m, old.v]);
        this.moments.set(name, { m: tf.keep(m), v: tf.keep(v) });
      }
    });
  }

  saveState(): StageState {
    const tensors: tf.NamedTensorMap = {};
    for (const [name, { m, v }] of this.moments) {
      tensors[`m/${this.keys.get(name)}`] = tf.clone(m);
      tensors[`v/${this.keys.get(name)}`] = tf.clone(v);
    }
    return { json: { step: this.t }, tensors };
  }

  loadState({ json, tensors = {} }: StageState): void {
    const step = (json as { step?: unknown } | null)?.step;
    if (!Number.isSafeInteger(step) || (step as number) < 0)
      throw new Error(`Adam.loadState: expected { step }, got ${JSON.stringify(json)}`);
    const byKey = new Map([...this.keys].map(([name, key]) => [key, name]));
    const next = new Map<string, { m?: tf.Tensor; v?: tf.Tensor }>();
    for (const [key, t] of Object.entries(tensors)) {
      const [kind, weight] = [key.slice(0, 2), key.slice(2)];
      const name = byKey.get(weight);
      if ((kind !== 'm/' && kind !== 'v/') || name == null || !tf.util.arraysEqual(t.shape, this.weights.get(name)!.shape)) {
        throw new Error(`Adam.loadState: '${key}' [${t.shape}] is no moment of this optimiser's weights`);
      }
      next.set(name, { ...next.get(name), [kind[0]!]: t });
    }
    for (const [name, { m, v }] of next) if (!m || !v) throw new Error(`Adam.loadState: '${this.keys.get(name)}' needs both moments`);
    this.dispose();
    for (const [name, { m, v }] of next) this.moments.set(name, { m: tf.keep(tf.clone(m!)), v: tf.keep(tf.clone(v!)) });
    this.t = step as number;
  }

  dispose(): void {
    for (const { m, v } of this.moments.values()) tf.dispose([m, v]);
    this.moments.clear();
  }
}

/** The optimizer stage for `Adam` over the model's trainable weights (no bias group, no schedule, no decay). */
export function adamStage(options: AdamOptions = {}): OptimizerStage {
  return ({ model }) => new Adam(model.trainableWeights, options);
}

/**
 * Any `tf.train` optimiser as the optimizer stage, e.g. `tfjsOptimizerStage(() => tf.train.adam(1e-3), 1e-3)`. It
 * trains, but its state comes out only through the asynchronous `getWeights()`, and `Trainer.checkpoint()` is
 * synchronous: a run with it cannot be checkpointed (the Trainer says so). `lr` is only what the log reports.
 */
export function tfjsOptimizerStage(make: () => tf.Optimizer, lr = Number.NaN): OptimizerStage {
  return ({ model }) => {
    const optimizer = make();
    const names = model.trainableWeights.map((w) => w.name);
    return {
      lr,
      // tfjs's Adam and friends pair their slots with the gradients by position: hand them in one fixed order.
      step: (grads) => optimizer.applyGradients(names.map((name) => ({ name, tensor: grads[name]! }))),
      dispose: () => optimizer.dispose(),
    };
  };
}

// ---- augmentation ---------------------------------------------------------------------------

/**
 * Brightness jitter: every image of a training batch shifted by one amount drawn uniformly from
 * `[-amount, amount)`, the same for all its pixels and channels (the images are normalised, so `amount` is in
 * units of a channel's std). It draws from the epoch's generator it is given, so a resumed run draws the same.
 * The constants are device scalars: a JS number in an op is a write to the backend on every batch.
 */
export function brightnessJitter(amount: number): BatchAugmentation {
  if (!(Number.isFinite(amount) && amount > 0)) throw new Error(`brightnessJitter: amount must be a number > 0, got ${amount}`);
  return ({ inputs, targets }, random) => {
    const shift = tf.mul(tf.sub(random.uniform([inputs.shape[0], 1, 1, 1]), deviceScalar(0.5)), deviceScalar(2 * amount));
    return { inputs: tf.add(inputs, shift) as tf.Tensor4D, targets };
  };
}

/**
 * The batches stage with {@link brightnessJitter} added: the seed's (shuffle, crop, flip and cutmix, drawn once per
 * epoch) and then the jitter on each batch, on float32 and compact sets alike and on every backend.
 */
export function brightnessStage(amount: number): BatchesStage {
  return seedBatches({ augment: brightnessJitter(amount) });
}
