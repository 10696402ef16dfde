// The custom-block example: a user-defined ResidualBlock in SpeedyConvNet's dataflow, trained
// with the seed's recipe for a few epochs, saved and loaded back. Run it with
//   npx tsx examples/custom-block/index.ts [--backend wasm] [--epochs 3] [--data <cifar-10-batches-bin>] [--save <dir>]
//     [--focal-gamma 2] [--optimizer sgd|adam|tfjs-adam] [--adam-lr 0.002]
// Without --data it trains on synthetic images (no download); docs/extending.md walks through it.
// --focal-gamma and --optimizer swap stages of the recipe (the loss, the optimiser) for the example's own (stages.ts).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { parseArgs } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BACKEND_NAMES,
  fileHandler,
  formatTableHeader,
  formatTableRow,
  initBackend,
  loadCifar10,
  predictWithFlipTTA,
  type BackendName,
  type TrainStages,
} from '../../src/node.js';
import { customBlockNet, evaluateCustomBlockNet, initCustomBlockNet, syntheticDataset, trainCustomBlockNet } from './model.js';
import { adamStage, focalLoss, tfjsOptimizerStage } from './stages.js';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'auto' },
    epochs: { type: 'string', default: '3' },
    'batch-size': { type: 'string', default: '64' },
    data: { type: 'string' },
    'train-limit': { type: 'string', default: '2048' },
    save: { type: 'string' },
    'focal-gamma': { type: 'string' },
    optimizer: { type: 'string', default: 'sgd' },
    'adam-lr': { type: 'string', default: '0.002' },
  },
});
const backend = values.backend as BackendName;
if (!(BACKEND_NAMES as readonly string[]).includes(backend))
  throw new Error(`--backend must be one of ${BACKEND_NAMES.join(', ')}, got '${backend}'`);
const epochs = Number(values.epochs);
const batchSize = Number(values['batch-size']);
// The recipe's stages: the seed's wherever no flag swaps one (the Trainer takes any stage through its options).
const stages: TrainStages = {};
if (values['focal-gamma'] != null) stages.loss = focalLoss(Number(values['focal-gamma']));
const adamLr = Number(values['adam-lr']);
if (values.optimizer === 'adam') stages.optimizer = adamStage({ lr: adamLr });
else if (values.optimizer === 'tfjs-adam') stages.optimizer = tfjsOptimizerStage(() => tf.train.adam(adamLr), adamLr);
else if (values.optimizer !== 'sgd') throw new Error(`--optimizer must be sgd, adam or tfjs-adam, got '${values.optimizer}'`);

const report = await initBackend(backend);
console.log(`backend: ${report.backend} (${report.reason})`);

// data -> model -> init -> train -> eval -> save/load
let train: { images: tf.Tensor4D; targets: tf.Tensor2D };
let evalSet: { images: tf.Tensor4D; targets: tf.Tensor2D };
if (values.data) {
  const limit = Number(values['train-limit']);
  const cifar = await loadCifar10({ dir: values.data, trainLimit: limit, evalLimit: Math.min(limit, 2000) });
  const onBackend = cifar.toBackend({ padAmount: 0 }); // trainCustomBlockNet pads the training images itself
  train = onBackend.train;
  evalSet = onBackend.eval;
  console.log(`CIFAR-10 from ${cifar.source}: ${train.images.shape[0]} training, ${evalSet.images.shape[0]} eval images`);
} else {
  ({ train, eval: evalSet } = syntheticDataset(512, 256, 32, 10, 1));
  console.log('synthetic data: 512 training, 256 eval images of 32x32 (pass --data <dir> for CIFAR-10)');
}

const net = customBlockNet({ imageSize: 32, widths: [32, 64, 128], seed: 0 });
await initCustomBlockNet(net, train.images);
console.log(
  `model: ${net.model.countParams()} parameters, ${net.model.trainableWeights.length} trainable tensors; the residual blocks hold:`,
);
for (const block of net.blocks) console.log(`  ${block.name}: ${block.weights.map((w) => w.name).join(', ')}`);

console.log(`eval accuracy before training: ${(await evaluateCustomBlockNet(net, evalSet)).toFixed(4)}`);
if (stages.loss) console.log(`loss stage: focal loss, gamma ${values['focal-gamma']} (examples/custom-block/stages.ts)`);
if (stages.optimizer) console.log(`optimizer stage: ${values.optimizer}, lr ${adamLr} (examples/custom-block/stages.ts)`);
console.log(formatTableHeader());
const result = await trainCustomBlockNet(
  net,
  { train, eval: evalSet },
  {
    hyp: { opt: { batchSize }, misc: { trainEpochs: epochs } },
    stages,
    callbacks: {
      onEpochEnd: (r) =>
        console.log(
          formatTableRow(
            {
              epoch: r.epoch,
              train_loss: r.trainLoss,
              val_loss: r.valLoss,
              train_acc: r.trainAcc,
              val_acc: r.valAcc,
              ema_val_acc: r.emaValAcc,
              total_time_seconds: r.totalTimeSeconds,
            },
            r.epoch === Math.ceil(epochs) - 1,
          ),
        ),
    },
  },
);
const last = result.records.at(-1)!;
console.log(
  `${result.stopReason}: ${last.steps} steps in ${result.totalTimeSeconds.toFixed(1)} s; eval accuracy ${last.valAcc.toFixed(4)} (EMA ${last.emaValAcc?.toFixed(4) ?? '-'})`,
);

// Save and load: ResidualBlock is registered with tf.serialization, so loadLayersModel rebuilds it.
const dir = values.save ?? (await mkdtemp(join(tmpdir(), 'custom-block-')));
await net.model.save(fileHandler(dir));
const loaded = await tfl.loadLayersModel(fileHandler(dir));
// The discrete actions are noisy at inference (as the seed), so compare the weights, not the outputs.
let same = loaded.weights.length === net.model.weights.length;
for (const [i, w] of net.model.weights.entries()) {
  const other = loaded.weights[i]!;
  const equal = tf.tidy(() => tf.all(tf.equal(w.read(), other.read())));
  same &&= w.originalName === other.originalName && (await equal.data())[0] === 1;
  equal.dispose();
}
const probe = tf.tidy(() => predictWithFlipTTA(loaded, tf.slice(evalSet.images, 0, 4)));
console.log(
  `saved to ${dir} and loaded back: ${loaded.weights.length} weights, identical names and values: ${same}; loaded model predicts ${probe.shape.join('x')} logits`,
);
if (!values.save) await rm(dir, { recursive: true, force: true });

tf.dispose([probe, train.images, train.targets, evalSet.images, evalSet.targets]);
loaded.dispose();
net.model.dispose();
