/** The run directory on disk: JSON written atomically, and checkpoints (JSON + binary tensors) that survive a crash mid-write. */
import * as tf from '@tensorflow/tfjs-core';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { TrainCheckpoint } from '../../src/node.js';

const CHECKPOINT_JSON = 'checkpoint.json';
const CHECKPOINT_BIN = 'tensors.bin';
const CHECKPOINT_FORMAT = 'tfjs-dataflow-cifar10-checkpoint';

/** Writes `text` to `path` through a temporary file and a rename, so readers never see half a file. */
export async function writeFileAtomic(path: string, text: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, text);
  await rename(temp, path);
}

export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Reads a JSON file, or undefined when it does not exist. */
export async function readJsonIfExists<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** What a checkpoint holds besides the trainer's state: the run's config (resume checks it) and why it was written. */
export interface CheckpointMeta<C> {
  config: C;
  /** 'epoch-end' after each epoch, 'interrupted' on Ctrl-C (mid-epoch). */
  reason: 'epoch-end' | 'interrupted';
  savedAt: string;
}

interface CheckpointJson<C> extends CheckpointMeta<C> {
  format: typeof CHECKPOINT_FORMAT;
  trainer: Omit<TrainCheckpoint, 'tensors'>;
  weightSpecs: tf.io.WeightsManifestEntry[];
}

/**
 * Writes `checkpoint` into `dir` (checkpoint.json + tensors.bin, via tf.io.encodeWeights):
 * first into a temporary sibling directory, then renamed over the old one, so a crash or
 * a second Ctrl-C mid-write leaves the previous checkpoint intact.
 */
export async function writeCheckpoint<C>(dir: string, checkpoint: TrainCheckpoint, meta: CheckpointMeta<C>): Promise<void> {
  const { tensors, ...trainer } = checkpoint;
  const { data, specs } = await tf.io.encodeWeights(tensors);
  const json: CheckpointJson<C> = { format: CHECKPOINT_FORMAT, ...meta, trainer, weightSpecs: specs };
  const staging = `${dir}.saving-${process.pid}`;
  const previous = `${dir}.previous-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  await writeFile(join(staging, CHECKPOINT_BIN), new Uint8Array(data as ArrayBuffer));
  await writeFile(join(staging, CHECKPOINT_JSON), `${JSON.stringify(json, null, 1)}\n`);
  await rm(previous, { recursive: true, force: true });
  await rename(dir, previous).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
  await rename(staging, dir);
  await rm(previous, { recursive: true, force: true });
}

/** Reads a checkpoint written by {@link writeCheckpoint}, or undefined when `dir` holds none. The caller disposes `checkpoint.tensors`. */
export async function readCheckpoint<C>(dir: string): Promise<{ checkpoint: TrainCheckpoint; meta: CheckpointMeta<C> } | undefined> {
  const json = await readJsonIfExists<CheckpointJson<C>>(join(dir, CHECKPOINT_JSON));
  if (json === undefined) return undefined;
  if (json.format !== CHECKPOINT_FORMAT) throw new Error(`${join(dir, CHECKPOINT_JSON)} is not a CIFAR-10 CLI checkpoint (format '${String(json.format)}')`);
  const bytes = await readFile(join(dir, CHECKPOINT_BIN));
  const data = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const tensors = tf.io.decodeWeights(data, json.weightSpecs);
  return {
    checkpoint: { ...json.trainer, tensors },
    meta: { config: json.config, reason: json.reason, savedAt: json.savedAt },
  };
}
