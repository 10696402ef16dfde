/**
 * A child process for test/io/file-handler.test.ts: `fill DIR` saves a small model into DIR/model,
 * then models too large for DIR (a small file system) over it and into DIR/fresh, printing what
 * happened as JSON.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileHandler } from '../../src/io/file-handler.js';

const [mode, dir] = process.argv.slice(2);

/** A model of about `units` * 4 floats of weights. */
function modelOf(units: number): tfl.LayersModel {
  return tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units })] });
}

async function saveError(model: tfl.LayersModel, to: string): Promise<string> {
  try {
    await model.save(fileHandler(to));
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

if (mode === 'fill') {
  await tf.setBackend('cpu');
  const target = join(dir!, 'model');
  const small = modelOf(10);
  await small.save(fileHandler(target));
  const replaceError = await saveError(modelOf(100_000), target);
  const afterReplace = readdirSync(target).sort();
  const kept = await tfl.loadLayersModel(fileHandler(target));
  const x = tf.ones([1, 4]);
  const same = tf.all(tf.equal(kept.predict(x) as tf.Tensor, small.predict(x) as tf.Tensor)).dataSync()[0] === 1;
  const firstError = await saveError(modelOf(100_000), join(dir!, 'fresh'));
  process.stdout.write(
    `${JSON.stringify({ replaceError, afterReplace, same, firstError, freshExists: existsSync(join(dir!, 'fresh')), entries: readdirSync(dir!).sort() })}\n`,
  );
}
