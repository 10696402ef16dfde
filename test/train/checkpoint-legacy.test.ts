// Checkpoints written before version 2 (the optimiser's state in `sgd` and `momentum/`, the EMA's in `ema/`) still
// resume: test/fixtures/train/checkpoint-v1/ holds one written by that Trainer on cpu (tools/fixtures/legacy-checkpoint.ts),
// mid-run and with the EMA started, and the same run's end. Restored here it carries every momentum buffer and EMA
// value into the stage checkpoint, and on cpu the run continues to the uninterrupted run's weights bit for bit.
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { readCheckpointFiles } from '../../src/io/checkpoint-files.js';
import type { TrainCheckpoint } from '../../src/train/checkpoint.js';
import { Trainer } from '../../src/train/trainer.js';
import { describeEachBackend } from '../helpers/backends.js';
import { LEGACY_HYP, LEGACY_SEED, legacyData, legacyModel } from '../helpers/legacy-run.js';
import { liveTensors } from '../helpers/memory.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/train/checkpoint-v1/', import.meta.url));

async function fixture(name: 'mid' | 'end'): Promise<TrainCheckpoint> {
  const read = await readCheckpointFiles(`${FIXTURE}${name}`);
  if (!read) throw new Error(`no checkpoint in ${FIXTURE}${name}`);
  return read.checkpoint;
}

const values = async (tensors: tf.NamedTensorMap, prefix: string): Promise<Record<string, number[]>> =>
  Object.fromEntries(
    await Promise.all(
      Object.entries(tensors)
        .filter(([k]) => k.startsWith(prefix))
        .map(async ([k, t]) => [k.slice(prefix.length), Array.from(await t.data())] as const),
    ),
  );

describeEachBackend('A version-1 checkpoint (sgd, momentum/, ema/)', (backend) => {
  it('resumes: the run continues from it to the end', async () => {
    const { data, dispose } = legacyData();
    // Other seeds everywhere: what the run continues from must come from the checkpoint.
    const resumed = new Trainer({ model: legacyModel(30), hyp: LEGACY_HYP }, data, { seed: LEGACY_SEED + 10 });
    const before = liveTensors();
    const mid = await fixture('mid');
    expect(mid).toMatchObject({ version: 1, epoch: 1, epochStep: 1, step: 4, emaActive: true, sgd: { step: 4, scheduleSteps: [4, 4] } });
    const [momentum, ema] = [await values(mid.tensors, 'momentum/'), await values(mid.tensors, 'ema/')];
    expect(Object.keys(momentum)).toHaveLength(5); // both SGD groups: conv weights and head, the batch norms' biases
    resumed.restore(mid);
    tf.dispose(Object.values(mid.tensors));

    // The state went to the optimizer and EMA stages: a checkpoint now is version 2 and holds it there, value for value.
    const again = resumed.checkpoint();
    expect(again.version).toBe(2);
    expect(again.sgd).toBeUndefined();
    expect(again.stages).toEqual({ optimizer: { step: 4, scheduleSteps: [4, 4] }, ema: null });
    expect(await values(again.tensors, 'stages/optimizer/momentum/')).toEqual(momentum);
    expect(await values(again.tensors, 'stages/ema/')).toEqual(ema);
    expect(Object.keys(again.tensors).filter((k) => !/^(weights|stages\/(optimizer|ema))\//.test(k))).toEqual([]);
    tf.dispose(Object.values(again.tensors));
    expect((await resumed.run()).stopReason).toBe('completed');
    const end = await fixture('end');
    const expected = await values(end.tensors, 'weights/');
    tf.dispose(Object.values(end.tensors));
    const actual = Object.fromEntries(
      await Promise.all(resumed.model.weights.map(async (w) => [w.originalName, Array.from(await w.read().data())] as const)),
    );
    expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
    // The fixture was written on cpu: there the resumed run is the uninterrupted one, bit for bit.
    if (backend === 'cpu') for (const [name, v] of Object.entries(expected)) expect(actual[name], name).toEqual(v);
    resumed.dispose();
    expect(liveTensors()).toBe(before);
    resumed.model.dispose();
    dispose();
  });

  it('is refused, before anything changes, where it does not fit: no sgd, an sgd field in version 2, another optimiser', async () => {
    const { data, dispose } = legacyData();
    const plain = new Trainer({ model: legacyModel(30), hyp: LEGACY_HYP }, data, { seed: LEGACY_SEED });
    // An optimiser of one's own that keeps no state a version-1 checkpoint could fill.
    const own = new Trainer({ model: legacyModel(30), hyp: LEGACY_HYP }, data, {
      seed: LEGACY_SEED,
      stages: {
        optimizer: () => ({
          step: () => undefined,
          saveState: () => ({ json: { kind: 'own' } }),
          loadState: (state) => {
            if ((state.json as { kind?: unknown } | null)?.kind !== 'own') throw new Error(`not my state: ${JSON.stringify(state.json)}`);
          },
        }),
      },
    });
    const mid = await fixture('mid');
    const before = liveTensors();
    const { sgd: _, ...withoutSgd } = mid;
    expect(() => plain.restore(withoutSgd)).toThrow(
      'Trainer.restore: a version-1 checkpoint must have sgd { step, scheduleSteps }, got undefined',
    );
    expect(() => plain.restore({ ...mid, version: 2 })).toThrow(
      /^Trainer\.restore: a version-2 checkpoint keeps the optimiser's state in stages\.optimizer/,
    );
    expect(() => plain.restore({ ...mid, sgd: { step: 4, scheduleSteps: [4] } })).toThrow(
      'Trainer.restore: the optimizer stage refused its state: SGD.loadState: expected { step, scheduleSteps } with 2 schedule steps',
    );
    expect(() => own.restore(mid)).toThrow(
      'Trainer.restore: the optimizer stage refused its state: not my state: {"step":4,"scheduleSteps":[4,4]}',
    );
    // Nothing moved: both still at step 0, without an EMA.
    for (const t of [plain, own]) {
      expect(t.networkEMA).toBeNull();
      const c = t.checkpoint();
      expect([c.step, c.emaActive]).toEqual([0, false]);
      tf.dispose(Object.values(c.tensors));
    }
    expect(liveTensors()).toBe(before);
    tf.dispose(Object.values(mid.tensors));
    for (const t of [plain, own]) {
      t.dispose();
      t.model.dispose();
    }
    dispose();
  });
});
