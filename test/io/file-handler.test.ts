import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileHandler } from '../../src/node.js';
import { useBackend } from '../helpers/backends.js';

const REPO = resolve(__dirname, '../..');
const CHILD = join(REPO, 'test/helpers/file-handler-child.ts');

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

  it("saves into a directory holding other files and leaves them alone (as tfjs-node's file:// handler does)", async () => {
    await useBackend('cpu');
    const model = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
    const dir = mkdtempSync(join(tmpdir(), 'tfjs-dataflow-'));
    writeFileSync(join(dir, 'results.csv'), 'epoch,acc\n1,0.5\n');
    mkdirSync(join(dir, 'notes'));
    writeFileSync(join(dir, 'notes', 'todo.txt'), 'keep me');
    await model.save(fileHandler(dir));
    await model.save(fileHandler(dir));
    expect(readdirSync(dir).sort()).toEqual(['model.json', 'notes', 'results.csv', 'weights.bin']);
    expect(readFileSync(join(dir, 'results.csv'), 'utf8')).toBe('epoch,acc\n1,0.5\n');
    expect(readFileSync(join(dir, 'notes', 'todo.txt'), 'utf8')).toBe('keep me');
    expect((await tfl.loadLayersModel(fileHandler(dir))).countParams()).toBe(3);
    // The weights of another save of the same size (a save cut off between its two renames) are refused, not mixed in.
    const other = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [2], units: 1 })] });
    const otherDir = join(dir, 'other');
    await other.save(fileHandler(otherDir));
    writeFileSync(join(dir, 'weights.bin'), readFileSync(join(otherDir, 'weights.bin')));
    await expect(fileHandler(dir).load!()).rejects.toThrow(
      `fileHandler: the weights file ${join(dir, 'weights.bin')} does not match the SHA-256 that ${join(dir, 'model.json')} records`,
    );
  });

  const canMount = spawnSync('unshare', ['-rm', 'true']).status === 0;
  it.skipIf(!canMount)(
    `a full disk: the error names the file and the cause, no partial file is left, the saved model stays${canMount ? '' : ' (skipped: no user namespaces to mount a small tmpfs)'}`,
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'tfjs-dataflow-full-'));
      const script = `mount -t tmpfs -o size=256k none '${dir}' && exec '${process.execPath}' --import tsx '${CHILD}' fill '${dir}'`;
      const result = spawnSync('unshare', ['-rm', 'sh', '-c', script], { cwd: REPO, encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as {
        replaceError: string;
        afterReplace: string[];
        same: boolean;
        firstError: string;
        freshExists: boolean;
        entries: string[];
      };
      expect(report.replaceError).toMatch(
        new RegExp(`^cannot write ${dir}/model/weights\\.bin\\.tmp-\\d+: the disk is full \\(ENOSPC\\)$`),
      );
      expect(report.afterReplace).toEqual(['model.json', 'weights.bin']);
      expect(report.same).toBe(true);
      expect(report.firstError).toMatch(new RegExp(`^cannot write ${dir}/fresh/weights\\.bin\\.tmp-\\d+: the disk is full \\(ENOSPC\\)$`));
      // A first save that did not fit leaves no folder behind.
      expect(report.freshExists).toBe(false);
      expect(report.entries).toEqual(['model']);
    },
  );
});
