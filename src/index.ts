// Public, browser-safe API: re-exports only.

// Backends
export { initBackend } from './backend/browser.js';
export { throwIfWebGPUFailed } from './backend/device-errors.js';
export {
  BACKEND_NAMES,
  BackendUnavailableError,
  describeAdapter,
  type AdapterDescription,
  type BackendName,
  type BackendReport,
  type ConcreteBackend,
  type InitBackendOptions,
} from './backend/init.js';
export { installWasmTrainingKernels, uninstallWasmTrainingKernels } from './backend/kernels/wasm/index.js';
export { installWebGPUTrainingKernels, uninstallWebGPUTrainingKernels } from './backend/kernels/webgpu/index.js';
export type { ConvPrecision } from './backend/kernels/webgpu/conv_precision.js';
export { uninstallLibraryKernels, type InstallLibraryKernelsOptions } from './backend/kernels/index.js';
export { KernelCounter, type KernelCounts } from './backend/counter.js';

// Ops
export { DeviceRandom, RANDOM_KERNEL, type DeviceRandomState } from './ops/random.js';
export { setGlobalSeed, globalRandom } from './ops/global-random.js';
export { stopGradient } from './ops/stop-gradient.js';
export { simulateDiscreteAction, unbiasedStd, type SimulateDiscreteActionOptions } from './ops/discrete-action.js';
export { gelu } from './ops/gelu.js';
export { batchNorm, batchNormGelu, type BatchNormState, type BatchNormVariable } from './ops/batch-norm.js';
export { globalMaxPool, maxPool2 } from './ops/pooling.js';
export { crossEntropy, seedLoss, accuracy, type SeedLossArgs } from './ops/loss.js';
export { deviceScalar, deviceScalarCount, releaseDeviceScalars } from './ops/constants.js';

// Layers
export { WhiteningConv, type WhiteningConvArgs } from './layers/whitening.js';
export { BatchNorm, type BatchNormArgs } from './layers/batch-norm.js';
export { Conv, torchDefaultInitializer, type ConvArgs } from './layers/conv.js';
export { Linear, type LinearArgs } from './layers/linear.js';
export { CompositeLayer } from './layers/composite.js';
export { ConvGroup, type ConvGroupArgs } from './layers/conv-group.js';
export { DiscreteAction, findDiscreteActions, type DiscreteActionArgs } from './layers/discrete-action.js';
export { withInferenceNoise, type InferenceNoiseOptions } from './layers/inference-noise.js';
export { Gelu } from './layers/gelu.js';
export { MaxPool2, GlobalMaxPool } from './layers/pooling.js';
export type { CallKwargs, LayerArgs } from './layers/types.js';

// Initialisation
export { fitWhitening, setWhiteningConv, canonicalizeSigns, type FitWhiteningOptions, type WhiteningFit } from './init/whitening.js';
export { eighSymmetric, type SymmetricEigen, type EighOptions } from './init/eigh.js';
export { diracInit, diracRenormInit, initConvGroupDirac } from './init/dirac.js';

// Augmentation
export { randomSquareMasks, squareMasks, type SquareStarts } from './augment/masks.js';
export { batchCrop, drawCrops, cropImages } from './augment/crop.js';
export { batchFlipLR, drawFlips, flipImages } from './augment/flip.js';
export { batchCutmix, drawCutmix, cutmixImages, cutmixTargets, type CutmixDraws } from './augment/cutmix.js';
export {
  drawEpochPlan,
  drawOrder,
  applyEpochPlan,
  applyEpochPlanRows,
  disposeEpochPlan,
  type EpochPlan,
  type EpochPlanArgs,
} from './augment/plan.js';
export { reflectPad } from './augment/pad.js';

// Data
export {
  parseCifar10Batch,
  concatCifar10Splits,
  cifar10Stats,
  cifar10ToBackend,
  cifar10ToCompactBackend,
  cifar10Dataset,
  CIFAR10_CLASSES,
  CIFAR10_FILES,
  CIFAR10_TRAIN_FILES,
  CIFAR10_EVAL_FILES,
  CIFAR10_IMAGE_SIZE,
  CIFAR10_CHANNELS,
  CIFAR10_IMAGE_BYTES,
  CIFAR10_RECORD_BYTES,
  CIFAR10_RECORDS_PER_FILE,
  type Cifar10Split,
  type Cifar10Stats,
  type Cifar10Tensors,
  type Cifar10OnBackend,
  type Cifar10Dataset,
  type DataFileDigest,
  type Cifar10ToBackendOptions,
  type Cifar10ToCompactBackendOptions,
  type Cifar10CompactOnBackend,
  type ParseCifar10Options,
} from './data/cifar10.js';
export {
  parseCifar100Batch,
  parseCifar100LabelNames,
  firstCifar100Images,
  CIFAR100_FILES,
  CIFAR100_TRAIN_FILES,
  CIFAR100_EVAL_FILES,
  CIFAR100_LABEL_NAME_FILES,
  CIFAR100_RECORDS,
  CIFAR100_RECORD_BYTES,
  CIFAR100_CLASS_COUNTS,
  type Cifar100Split,
  type Cifar100LabelKind,
  type ParseCifar100Options,
} from './data/cifar100.js';
export {
  CompactImages,
  compactImages,
  decodePlanRows,
  isCompactImages,
  normalisationTable,
  type CompactImagesOptions,
} from './data/compact.js';
export {
  epochBatches,
  seedSchedule,
  epochFraction,
  epochExamples,
  stepsInEpoch,
  type EpochBatchesArgs,
  type BatchAugmentation,
  sliceImages,
  type LabelledImages,
  type CompactLabelledImages,
  type AnyLabelledImages,
  type ImageSet,
  type Batch,
  type SeedSchedule,
} from './data/batches.js';

// Training
export { OneCycle, type OneCycleArgs, type LrSchedule, type AnnealStrategy } from './train/one-cycle.js';
export { SGD, splitBiasGroups, type SGDGroupArgs, type SGDState, type NamedWeight } from './train/sgd.js';
export { NetworkEMA, emaDecayAt, isFrozenBySeed, type NetworkEMAArgs, type WeightedNetwork, type EmaDecaySchedule } from './train/ema.js';
export { meanAndVariance, perExampleLoss } from './train/metrics.js';
export { variableGrads } from './train/variable-grads.js';
export {
  Trainer,
  NonFiniteLossError,
  DEFAULT_MAX_LOSS_RISE,
  type TrainOptions,
  type TrainCallbacks,
  type TrainResult,
  type EpochRecord,
  type StepInfo,
  type StopReason,
} from './train/trainer.js';
export { trainSchedule } from './train/schedule.js';
export {
  SEED_STAGES,
  STAGE_NAMES,
  seedLossStage,
  seedBatchesStage,
  seedBatches,
  seedOptimizerStage,
  seedEmaStage,
  seedEvaluateStage,
  type TrainStages,
  type StageName,
  type StageContext,
  type LossStage,
  type BatchesStage,
  type BatchesStageArgs,
  type SeedBatchesOptions,
  type LossStageArgs,
  type OptimizerStage,
  type EmaStage,
  type EvaluateStage,
} from './train/stages.js';
export type { StageState, StageCheckpoint, TrainOptimizer, TrainEMA } from './train/contracts.js';
export {
  SEED_RECIPE,
  PLAIN_RECIPE_DEFAULTS,
  plainRecipe,
  plainLossStage,
  plainOptimizerStage,
  noEmaStage,
  recipeFor,
  type Recipe,
  type RecipeName,
  type RecipeOption,
  type PlainRecipeOptions,
  type TrainRecipe,
} from './train/recipes.js';
export type { TrainData, TrainableNet } from './train/trainable.js';
export { CHECKPOINT_VERSION, type CheckpointSchedule, type TrainCheckpoint } from './train/checkpoint.js';
export { predictWithFlipTTA } from './train/flip-tta.js';
export { TABLE_COLUMNS, formatTableHeader, formatTableRow, type TableColumn, type TableRow } from './train/table.js';
export { curvesSvg, type CurvePanel, type CurveSeries } from './train/curves-svg.js';

// Models
export {
  SEED_HYP,
  resolveHyp,
  checkHyp,
  checkHypFitsImages,
  blockDepths,
  type HypCheckOptions,
  type Hyp,
  type HypOverrides,
  type OptHyp,
  type NetHyp,
  type MiscHyp,
  type EmaHyp,
} from './models/hyp.js';
export {
  speedyConvNet,
  fitSpeedyConvNetWhitening,
  type SpeedyConvNet,
  type SpeedyConvNetMode,
  type SpeedyConvNetOptions,
} from './models/speedy-convnet.js';
