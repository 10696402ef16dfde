// The custom-block example: a user-defined ResidualBlock in SpeedyConvNet's dataflow, trained
// with the seed's recipe for a few epochs, saved and loaded back. Run it with
//   npx tsx examples/custom-block/index.ts [--backend wasm] [--epochs 3] [--data <cifar-10-batches-bin>] [--save <dir>]
//     [--focal-gamma 2] [--optimizer sgd|adam|tfjs-adam] [--adam-lr 0.002] [--brightness 0.2]
// Without --data it trains on synthetic images (no download); docs/extending.md walks through it; --help lists the flags.
// --focal-gamma, --optimizer and --brightness swap stages of the recipe (the loss, the optimiser, the batches with an
// augmentation added) for the example's own (stages.ts).
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fileHandler,
  formatTableHeader,
  formatTableRow,
  initBackend,
  loadCifar10,
  predictWithFlipTTA,
  type TrainStages,
} from '../../src/node.js';
import { UsageError, parseCustomBlockArgs, type CustomBlockConfig } from './args.js';
import { customBlockNet, evaluateCustomBlockNet, initCustomBlockNet, syntheticDataset, trainCustomBlockNet } from './model.js';
import { adamStage, brightnessStage, focalLoss, tfjsOptimizerStage } from './stages.js';

/** Runs the example; resolves to the exit code: 0 done, 1 failed, 2 a usage mistake. */
async function main(argv: readonly string[]): Promise<number> {
  try {
    const parsed = parseCustomBlockArgs(argv);
    if ('help' in parsed) {
      console.log(parsed.help);
      return 0;
    }
    await runExample(parsed.config);
    return 0;
  } catch (e) {
    const usage = e instanceof UsageError;
    console.error(`custom-block: ${(e as Error).message}${usage ? '\nRun with --help for usage.' : ''}`);
    if (!usage && process.env['DEBUG']) console.error((e as Error).stack);
    return usage ? 2 : 1;
  }
}

async function runExample({
  backend,
  epochs,
  batchSize,
  data,
  trainLimit,
  save,
  focalGamma,
  optimizer,
  adamLr,
  brightness,
}: CustomBlockConfig): Promise<void> {
  // The recipe's stages: the seed's wherever no flag swaps one (the Trainer takes any stage through its options).
  const stages: TrainStages = {};
  if (focalGamma !== undefined) stages.loss = focalLoss(focalGamma);
  if (optimizer === 'adam') stages.optimizer = adamStage({ lr: adamLr });
  else if (optimizer === 'tfjs-adam') stages.optimizer = tfjsOptimizerStage(() => tf.train.adam(adamLr), adamLr);
  if (brightness !== undefined) stages.batches = brightnessStage(brightness);

  const report = await initBackend(backend);
  console.log(`backend: ${report.backend} (${report.reason})`);

  // data -> model -> init -> train -> eval -> save/load
  let train: { images: tf.Tensor4D; targets: tf.Tensor2D };
  let evalSet: { images: tf.Tensor4D; targets: tf.Tensor2D };
  if (data) {
    const cifar = await loadCifar10({ dir: data, trainLimit, evalLimit: Math.min(trainLimit, 2000) });
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
  if (focalGamma !== undefined) console.log(`loss stage: focal loss, gamma ${focalGamma} (examples/custom-block/stages.ts)`);
  if (stages.optimizer) console.log(`optimizer stage: ${optimizer}, lr ${adamLr} (examples/custom-block/stages.ts)`);
  if (brightness !== undefined)
    console.log(`batches stage: the seed's plus a brightness jitter of +-${brightness} (examples/custom-block/stages.ts)`);
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
  const dir = save ?? (await mkdtemp(join(tmpdir(), 'custom-block-')));
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
  if (!save) await rm(dir, { recursive: true, force: true });

  tf.dispose([probe, train.images, train.targets, evalSet.images, evalSet.targets]);
  loaded.dispose();
  net.model.dispose();
}

// Explicit exit: backend worker threads would otherwise keep the process alive.
main(process.argv.slice(2)).then((code) => process.exit(code));
