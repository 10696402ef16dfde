/**
 * A child process for test/io/checkpoint-files.test.ts: `lock DIR HOLD_MS` takes the directory
 * lock (printing "locked" or "refused: <message>") and holds it; `fill DIR` writes a checkpoint
 * into a small file system until it is full (printing what happened as JSON).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { lockDirectory, readCheckpointFiles, writeCheckpointFiles, writeJsonAtomic } from '../../src/io/checkpoint-files.js';
import type { TrainCheckpoint } from '../../src/train/checkpoint.js';

const [mode, dir, arg] = process.argv.slice(2);

/** A checkpoint of `values` floats (its other fields as a Trainer writes them). */
function checkpointOf(values: number, step: number): TrainCheckpoint {
  return {
    version: 1,
    epoch: 0,
    epochStep: step,
    step,
    dataRandomAtEpochStart: { seed: 1, offset: 0 } as never,
    modelRandom: [],
    records: [],
    totalTimeSeconds: 0,
    sgd: { step, scheduleSteps: [] },
    emaActive: false,
    tensors: { 'weights/w': tf.fill([values], step) },
  };
}

if (mode === 'lock') {
  try {
    lockDirectory(dir!);
    process.stdout.write('locked\n');
    await new Promise((done) => setTimeout(done, Number(arg)));
  } catch (e) {
    process.stdout.write(`refused: ${(e as Error).message}\n`);
  }
} else if (mode === 'fill') {
  await tf.setBackend('cpu');
  const ckpt = join(dir!, 'checkpoint');
  const small = checkpointOf(1000, 1);
  await writeCheckpointFiles(ckpt, small, { config: {}, reason: 'epoch-end', savedAt: 'then' });
  let checkpointError = '';
  try {
    await writeCheckpointFiles(ckpt, checkpointOf(1_000_000, 2), { config: {}, reason: 'epoch-end', savedAt: 'now' });
  } catch (e) {
    checkpointError = (e as Error).message;
  }
  const afterCheckpoint = await readdir(dir!);
  const inCheckpoint = (await readdir(ckpt)).sort();
  const kept = await readCheckpointFiles(ckpt);
  let jsonError = '';
  try {
    await writeJsonAtomic(join(dir!, 'metrics.json'), { big: 'x'.repeat(1_000_000) });
  } catch (e) {
    jsonError = (e as Error).message;
  }
  process.stdout.write(
    `${JSON.stringify({ checkpointError, jsonError, afterCheckpoint, inCheckpoint, afterJson: await readdir(dir!), keptStep: kept?.checkpoint.step })}\n`,
  );
}
