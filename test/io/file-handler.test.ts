import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileHandler } from '../../src/node.js';
import { useBackend } from '../helpers/backends.js';

describe('fileHandler', () => {
  it('saves a LayersModel to a directory and loads it back to the same predictions', async () => {
    await useBackend('cpu');
    const model = tfl.sequential({
      layers: [tfl.layers.dense({ inputShape: [4], units: 3, activation: 'relu' }), tfl.layers.dense({ units: 2 })],
    });
    const dir = join(mkdtempSync(join(tmpdir(), 'tfjs-dataflow-')), 'model');
    await model.save(fileHandler(dir));
    expect(readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
    // Saving again replaces the directory in one rename, leaving no staging folders behind.
    await model.save(fileHandler(dir));
    expect(readdirSync(join(dir, '..'))).toEqual(['model']);
    const loaded = await tfl.loadLayersModel(fileHandler(dir));
    const x = tf.tensor2d([
      [1, -2, 3, 0.5],
      [0, 1, -1, 2],
    ]);
    expect(await (loaded.predict(x) as tf.Tensor).data()).toEqual(await (model.predict(x) as tf.Tensor).data());
  });

  it('names the missing file when loading from a directory without a model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tfjs-dataflow-'));
    await expect(fileHandler(dir).load!()).rejects.toThrow(`fileHandler: cannot read ${join(dir, 'model.json')}`);
    expect(existsSync(join(dir, 'model.json'))).toBe(false);
  });

  it('names the weights file and what is wrong with it when it is truncated, instead of a raw tfjs error', async () => {
    await useBackend('cpu');
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [4], units: 3 })] });
    const dir = join(mkdtempSync(join(tmpdir(), 'tfjs-dataflow-')), 'model');
    await model.save(fileHandler(dir));
    const weights = join(dir, 'weights.bin');
    const full = readFileSync(weights);
    expect(full.byteLength).toBe((4 * 3 + 3) * 4);
    writeFileSync(weights, full.subarray(0, 40));
    await expect(tfl.loadLayersModel(fileHandler(dir))).rejects.toThrow(
      `fileHandler: the weights file ${weights} has 40 bytes, but ${join(dir, 'model.json')} describes 60 bytes of weights: ` +
        'it is truncated (an interrupted copy?) or belongs to another model. Save the model again or restore a complete copy.',
    );
    writeFileSync(join(dir, 'model.json'), '{"modelTopology": ');
    await expect(fileHandler(dir).load!()).rejects.toThrow(`fileHandler: ${join(dir, 'model.json')} is not valid JSON`);
  });

  it('says "did you mean DIR/model" when given the folder above a saved model', async () => {
    await useBackend('cpu');
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
    const run = mkdtempSync(join(tmpdir(), 'tfjs-dataflow-'));
    await model.save(fileHandler(join(run, 'model')));
    await expect(fileHandler(run).load!()).rejects.toThrow(`It has model/model.json: did you mean ${join(run, 'model')}?`);
  });
});
