/**
 * The Trainer's named recipes: the seed's, tuned for the seed's network, and a plain one for a model built from
 * stock tfjs layers. A recipe is a full set of stages; `TrainOptions.stages` still replaces any of them one by one.
 *
 * @remarks
 * The seed's recipe is tuned for the seed's net: a loss summed over the batch (512 / batch size times the mean,
 * so its peak rate of 1.525 / 512 is about 1.5 per unit of mean loss), biases stepped 64 times faster, and a
 * head scaled by 1/12 (`Linear`'s temperature) behind batch norms that make the convolutions' scale irrelevant.
 * A stock `dense` head has none of that, and the same rates blow it up (a conv/batch-norm/dense model's loss
 * went from 3.2 to 166 in two epochs). The plain recipe is the textbook one: the mean label-smoothed
 * cross-entropy, one SGD group with Nesterov momentum 0.9 and coupled weight decay 5e-4 under the seed's
 * OneCycle shape, and no EMA unless asked. `Trainer` picks it for a model with none of the library's layers
 * (`recipeFor`), and says which it runs (`Trainer.recipe`, `TrainResult.recipe`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { BatchNorm } from '../layers/batch-norm.js';
import { CompositeLayer } from '../layers/composite.js';
import { Conv } from '../layers/conv.js';
import { DiscreteAction } from '../layers/discrete-action.js';
import { Linear } from '../layers/linear.js';
import { WhiteningConv } from '../layers/whitening.js';
import { resolveHyp, type Hyp } from '../models/hyp.js';
import { crossEntropy } from '../ops/loss.js';
import { deviceScalar } from '../ops/constants.js';
import { checkBoolean, checkFiniteNonNegative, checkUnitInterval, describeReceived } from '../validation.js';
import { OneCycle } from './one-cycle.js';
import { SGD } from './sgd.js';
import {
  SEED_STAGES,
  seedEmaStage,
  type EmaStage,
  type LossStage,
  type OptimizerStage,
  type StageName,
  type TrainStages,
} from './stages.js';

/** The recipes by name. */
export type RecipeName = 'seed' | 'plain';

/** A named set of stages the Trainer runs where `TrainOptions.stages` gives none. */
export interface Recipe {
  /** 'seed' or 'plain'. */
  readonly name: RecipeName;
  /** Its stage for each place. */
  readonly stages: Readonly<Required<TrainStages>>;
  /** What it runs, in a few words, for the report (`TrainRecipe.line`). */
  readonly description: string;
  /** Which knob to turn when a run under it diverges (the end of the Trainer's 'diverged' message). */
  readonly onDivergence: string;
  /**
   * The `hyp` keys (`'opt.nonBiasLr'`) each of its stages does not read: a value other than the seed's there is
   * refused while that stage runs, since it would change nothing. @internal
   */
  readonly ignoresHyp?: Readonly<Partial<Record<StageName, readonly string[]>>>;
}

/** The seed's recipe: `SEED_STAGES` (summed loss, two SGD groups with the biases' 64x rate, the EMA with copy-back). */
export const SEED_RECIPE: Recipe = Object.freeze({
  name: 'seed',
  stages: SEED_STAGES,
  description:
    "the seed's summed label-smoothed loss, Nesterov SGD at hyp.opt.nonBiasLr (biases x hyp.opt.biasScaler) under OneCycle, the EMA with copy-back",
  onDivergence:
    "lower the learning rate (hyp.opt.nonBiasLr; the biases' follows), or, for a model of stock tfjs layers (a dense head without the seed's temperature), train with recipe: 'plain'",
});

/** Knobs of {@link plainRecipe}; each says its unit. */
export interface PlainRecipeOptions {
  /** Peak learning rate per unit of mean loss, reached after `hyp.opt.percentStart` of the steps. Default 0.02. */
  lr?: number;
  /** Nesterov momentum. Default 0.9. */
  momentum?: number;
  /** Coupled L2 decay (PyTorch SGD's: added to the gradient), on every trainable weight. Default 5e-4. */
  weightDecay?: number;
  /** Run the seed's EMA (with copy-back, on `hyp.misc.ema`'s schedule). Default false. */
  ema?: boolean;
}

/** The plain recipe's defaults. */
export const PLAIN_RECIPE_DEFAULTS: Readonly<Required<PlainRecipeOptions>> = Object.freeze({
  lr: 0.02,
  momentum: 0.9,
  weightDecay: 5e-4,
  ema: false,
});

/**
 * The mean label-smoothed cross-entropy (`hyp.opt.labelSmoothing`), each (micro-)batch weighted by its share of
 * the step's batch, so the passes of a step add up to the batch's mean. Logged as it is.
 */
export const plainLossStage: LossStage = (logits, targets, { context }) =>
  tf.tidy(() => {
    const share = logits.shape[0] / context.batchSize;
    const mean = tf.mean(crossEntropy(logits, targets, context.hyp.opt.labelSmoothing));
    return (share === 1 ? mean : tf.mul(mean, deviceScalar(share))) as tf.Scalar;
  });

/**
 * One SGD group over every trainable weight (no bias group), Nesterov momentum and coupled decay, its rate under
 * the seed's OneCycle shape (`hyp.opt.percentStart`, `initialDivFactor`, `finalLrRatio`; linear) peaking at `lr`.
 */
export function plainOptimizerStage(options: Pick<PlainRecipeOptions, 'lr' | 'momentum' | 'weightDecay'> = {}): OptimizerStage {
  const { lr, momentum, weightDecay } = checkPlainOptions(options);
  return ({ model, hyp, totalSteps }) => {
    const { opt } = hyp;
    const schedule = new OneCycle({
      maxLr: lr,
      totalSteps,
      pctStart: opt.percentStart,
      divFactor: opt.initialDivFactor,
      finalDivFactor: 1 / (opt.initialDivFactor * opt.finalLrRatio),
      anneal: 'linear',
    });
    return new SGD([{ name: 'all', weights: model.trainableWeights, lr: schedule, momentum, nesterov: true, weightDecay }]);
  };
}

/** No EMA: never due (`Trainer.networkEMA` stays null and `EpochRecord.emaValAcc` null). */
export const noEmaStage: EmaStage = Object.freeze({
  startEpoch: () => Number.POSITIVE_INFINITY,
  isDue: () => false,
  create: () => {
    throw new Error('noEmaStage makes no EMA');
  },
});

/** The seed's hyp keys the plain loss and optimiser do not read (the seed's EMA's when the plain recipe runs none). */
const SEED_OPTIMIZER_KEYS = [
  'opt.nonBiasLr',
  'opt.biasLr',
  'opt.biasScaler',
  'opt.weightDecayPerImage',
  'opt.nonBiasDecay',
  'opt.biasDecay',
  'opt.momentum',
] as const;
const SEED_EMA_KEYS = ['misc.ema.epochs', 'misc.ema.decayBase', 'misc.ema.decayPow', 'misc.ema.everyNSteps'] as const;

/**
 * The plain recipe for a model of stock tfjs layers (conv2d, batchNormalization, dense, ...): {@link plainLossStage},
 * {@link plainOptimizerStage} and no EMA ({@link noEmaStage}; `ema: true` runs the seed's), with the seed's batches
 * (crop, flip) and evaluation (flip test-time augmentation). The batch size, epochs, label smoothing and OneCycle
 * shape come from `hyp` as for the seed's recipe; the seed's optimiser knobs (`opt.nonBiasLr`, `biasScaler`,
 * `momentum`, the decays, `lossBatchSize`) do not apply: set `lr`, `momentum` and `weightDecay` here.
 *
 * @example
 * ```ts
 * import * as tfl from '@tensorflow/tfjs-layers';
 * import { Trainer, plainRecipe, type TrainData } from 'tfjs-dataflow';
 *
 * declare const data: TrainData; // padded training images and the evaluation split, with one-hot targets
 * const model = tfl.sequential({
 *   layers: [tfl.layers.conv2d({ inputShape: [32, 32, 3], filters: 16, kernelSize: 3 }), tfl.layers.flatten(), tfl.layers.dense({ units: 10 })],
 * });
 * const trainer = new Trainer({ model, hyp: { opt: { batchSize: 64 }, misc: { trainEpochs: 5 } } }, data, { recipe: plainRecipe({ lr: 0.02 }) });
 * ```
 */
export function plainRecipe(options: PlainRecipeOptions = {}): Recipe {
  const resolved = checkPlainOptions(options);
  const { lr, momentum, weightDecay, ema } = resolved;
  return Object.freeze({
    name: 'plain',
    stages: Object.freeze({
      loss: plainLossStage,
      batches: SEED_STAGES.batches,
      optimizer: plainOptimizerStage(resolved),
      ema: ema ? seedEmaStage : noEmaStage,
      evaluate: SEED_STAGES.evaluate,
    }),
    description:
      `the mean label-smoothed cross-entropy, Nesterov SGD (momentum ${momentum}, decay ${weightDecay}) at peak lr ${lr} under OneCycle, ` +
      (ema ? "the seed's EMA" : 'no EMA'),
    onDivergence: `lower the learning rate: recipe: plainRecipe({ lr }) with lr below its ${lr}`,
    ignoresHyp: Object.freeze({
      loss: ['opt.lossBatchSize'],
      optimizer: SEED_OPTIMIZER_KEYS,
      ...(ema ? {} : { ema: SEED_EMA_KEYS }),
    }),
  });
}

function checkPlainOptions(options: PlainRecipeOptions): Required<PlainRecipeOptions> {
  if (options == null || typeof options !== 'object')
    throw new Error(`plainRecipe: options must be an object such as { lr: 0.02 }, got ${describeReceived(options)}`);
  const known = Object.keys(PLAIN_RECIPE_DEFAULTS);
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw new Error(`plainRecipe: unknown option '${key}'; expected one of ${known.join(', ')}`);
  }
  const where = 'plainRecipe';
  const r = { ...PLAIN_RECIPE_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  checkFiniteNonNegative(r.lr, 'lr', where);
  checkUnitInterval(r.momentum, 'momentum', where);
  if (!(r.momentum > 0)) throw new Error(`${where}: argument 'momentum' must be above 0 for Nesterov momentum, got ${r.momentum}`);
  checkFiniteNonNegative(r.weightDecay, 'weightDecay', where);
  checkBoolean(r.ema, 'ema', where);
  return r;
}

/** Which recipe the Trainer runs, and why: `Trainer.recipe`, `TrainResult.recipe`. */
export interface TrainRecipe {
  /** The recipe that runs. */
  name: RecipeName;
  /** Why this one: given in `TrainOptions.recipe`, or what the model was found to be built from. */
  reason: string;
  /** The stages given in `TrainOptions.stages`, which run instead of the recipe's. */
  ownStages: StageName[];
  /** One line for a log, e.g. `recipe: plain (no layer of tfjs-dataflow's in the model): the mean ...`. */
  line: string;
}

/** The library's layers the seed's recipe is tuned for (pooling and GELU layers are neutral: they do not count). */
const SEED_LAYER_CLASSES = [WhiteningConv, Conv, Linear, BatchNorm, DiscreteAction, CompositeLayer] as const;

/** The names (with their class) of the model's layers that are the library's seed layers, searching nested models and blocks. */
function seedLayersOf(model: tfl.LayersModel | tfl.layers.Layer): string[] {
  const found: string[] = [];
  const visit = (layer: tfl.layers.Layer) => {
    if (SEED_LAYER_CLASSES.some((cls) => layer instanceof cls)) {
      // The class's name without the package's namespace ('tfjs-dataflow>ConvGroup' -> 'ConvGroup').
      const className = (layer.constructor as { className?: string }).className?.replace(/^.*>/, '');
      found.push(`${className ?? layer.constructor.name} '${layer.name}'`);
      return;
    }
    for (const child of (layer as { layers?: tfl.layers.Layer[] }).layers ?? []) visit(child);
  };
  visit(model);
  return found;
}

/**
 * The recipe for `model` when none is named: the seed's if any of its layers (nested models and blocks searched)
 * is one of the library's (`WhiteningConv`, `Conv`, `Linear`, `BatchNorm`, `DiscreteAction`, a `CompositeLayer`
 * such as `ConvGroup`), since the seed's rates are tuned for those; else the plain one.
 */
export function recipeFor(model: tfl.LayersModel): {
  /** The recipe chosen. */
  recipe: Recipe;
  /** Why, in a few words (the layers found, or that there were none). */
  reason: string;
} {
  const seedLayers = seedLayersOf(model);
  if (seedLayers.length > 0) {
    const shown = seedLayers.length > 3 ? `${seedLayers.slice(0, 3).join(', ')} and ${seedLayers.length - 3} more` : seedLayers.join(', ');
    return { recipe: SEED_RECIPE, reason: `the model is built from the library's layers: ${shown}` };
  }
  return { recipe: plainRecipe(), reason: "the model has none of the library's layers (Conv, Linear, BatchNorm, DiscreteAction, ...)" };
}

/** What `TrainOptions.recipe` takes: a name, a recipe, or `'auto'` (the default: {@link recipeFor}). */
export type RecipeOption = 'auto' | RecipeName | Recipe;

/** The recipe to run and the report of it, from the option, the model and the stages given. @internal */
export function resolveRecipe(
  option: RecipeOption | undefined,
  model: tfl.LayersModel,
  ownStages: StageName[],
): { recipe: Recipe; report: TrainRecipe } {
  let recipe: Recipe;
  let reason: string;
  if (option === undefined || option === 'auto') ({ recipe, reason } = recipeFor(model));
  else if (option === 'seed' || option === 'plain') {
    recipe = option === 'seed' ? SEED_RECIPE : plainRecipe();
    reason = `TrainOptions.recipe '${option}'`;
  } else if (option != null && typeof option === 'object' && (option.name === 'seed' || option.name === 'plain') && option.stages != null) {
    recipe = option;
    reason = 'TrainOptions.recipe';
  } else {
    throw new Error(
      `Trainer: recipe must be 'auto', 'seed', 'plain' or a recipe such as plainRecipe({ lr: 0.02 }), got ${describeReceived(option)}`,
    );
  }
  const own = ownStages.length > 0 ? `; stages of your own: ${ownStages.join(', ')}` : '';
  const line = `recipe: ${recipe.name} (${reason}): ${recipe.description}${own}`;
  return { recipe, report: { name: recipe.name, reason, ownStages: [...ownStages], line } };
}

/**
 * Throws when `hyp` sets, away from the seed's value, a key that a stage of `recipe` in use ignores: such a
 * value would silently change nothing (the seed's `opt.nonBiasLr` under the plain recipe, whose rate is its `lr`).
 * @internal
 */
export function checkHypForRecipe(hyp: Hyp, recipe: Recipe, ownStages: readonly StageName[]): void {
  // The seed's values, with the derived ones (the decays) following this hyp's batch size as they would by default.
  const seed = resolveHyp({ opt: { batchSize: hyp.opt.batchSize } });
  for (const [stage, keys] of Object.entries(recipe.ignoresHyp ?? {}) as Array<[StageName, readonly string[]]>) {
    if (ownStages.includes(stage)) continue;
    for (const key of keys) {
      const value = valueAt(hyp, key);
      if (value !== valueAt(seed, key)) {
        const instead =
          stage === 'optimizer'
            ? 'set its learning rate, momentum and decay with plainRecipe({ lr, momentum, weightDecay })'
            : stage === 'ema'
              ? 'it runs no EMA unless plainRecipe({ ema: true })'
              : 'its loss is the mean over the batch';
        throw new Error(
          `Trainer: hyp.${key} is ${value}, but the ${recipe.name} recipe's ${stage} stage does not use it (${instead}); ` +
            `leave it at the seed's ${valueAt(seed, key)}, or train with recipe: 'seed'`,
        );
      }
    }
  }
}

function valueAt(hyp: Hyp, path: string): unknown {
  return path.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], hyp);
}
