import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as lib from '../../src/node.js';
import { registerLayerClass } from '../../src/layers/registry.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/layers/model-0.1.0/', import.meta.url));
const LAYER_CLASSES = [
  'BatchNorm',
  'Conv',
  'ConvGroup',
  'DiscreteAction',
  'Gelu',
  'GlobalMaxPool',
  'Linear',
  'MaxPool2',
  'WhiteningConv',
] as const;

/** model.json's class names of the model's layers, in order. */
function classNames(topology: unknown): string[] {
  return ((topology as { config: { layers: { class_name: string }[] } }).config.layers ?? []).map((l) => l.class_name);
}

async function saveToMemory(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return saved!;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe("the layer classes' names in tfjs's serialization", () => {
  it("are the package's namespace and the class's name, registered as such", () => {
    const map = tf.serialization.SerializationMap.getMap().classNameMap;
    for (const name of LAYER_CLASSES) {
      // biome-ignore lint/performance/noDynamicNamespaceImportAccess: every layer class by name, in a test (no bundle)
      const cls = lib[name];
      expect(cls.className).toBe(`tfjs-dataflow>${name}`);
      expect(map[`tfjs-dataflow>${name}`]?.[0]).toBe(cls);
      expect(tf.serialization.getRegisteredName(cls)).toBe(`tfjs-dataflow>${name}`);
    }
  });

  it('leave the default layer names as tfjs-layers makes them (a valid tensor name, without the namespace)', () => {
    const conv = new lib.Conv({ filters: 2 });
    const group = new lib.ConvGroup({ channelsOut: 2 });
    expect(conv.name).toMatch(/^conv_Conv\d+$/);
    expect(group.name).toMatch(/^conv_group_ConvGroup\d+$/);
    expect(new lib.Conv({ filters: 2 }).name).not.toBe(conv.name);
    expect(new lib.Conv({ name: 'mine', filters: 2 }).name).toBe('mine');
  });

  it('a model saved now names them with the namespace and loads back', async () => {
    const input = tfl.input({ shape: [8, 8, 3] });
    const [y] = new lib.ConvGroup({ channelsOut: 2, statePredDim: 2, seed: 1 }).apply(input) as tfl.SymbolicTensor[];
    const x = new lib.GlobalMaxPool().apply(new lib.DiscreteAction({ seed: 2 }).apply(y!) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
    const model = tfl.model({ inputs: input, outputs: new lib.Linear({ units: 2, seed: 3 }).apply(x) as tfl.SymbolicTensor });
    const saved = await saveToMemory(model);
    expect(classNames(saved.modelTopology)).toEqual([
      'InputLayer',
      'tfjs-dataflow>ConvGroup',
      'tfjs-dataflow>DiscreteAction',
      'tfjs-dataflow>GlobalMaxPool',
      'tfjs-dataflow>Linear',
    ]);
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(saved));
    expect(loaded.layers[1]).toBeInstanceOf(lib.ConvGroup);
    model.dispose();
    loaded.dispose();
  });
});

describe('a model saved by tfjs-dataflow 0.1.0 (bare class names)', () => {
  it("loads with the package's classes, its weights and outputs as saved, and saves again under the namespace", async () => {
    const json = JSON.parse(readFileSync(`${FIXTURE}model.json`, 'utf8'));
    expect(classNames(json.modelTopology)).toEqual(expect.arrayContaining([...LAYER_CLASSES]));
    const model = await tfl.loadLayersModel(lib.fileHandler(FIXTURE));
    const byName = (n: string) => model.getLayer(n);
    expect(byName('whiten')).toBeInstanceOf(lib.WhiteningConv);
    expect(byName('group1')).toBeInstanceOf(lib.ConvGroup);
    expect(byName('action')).toBeInstanceOf(lib.DiscreteAction);
    expect(byName('conv')).toBeInstanceOf(lib.Conv);
    expect(byName('norm')).toBeInstanceOf(lib.BatchNorm);
    expect(byName('head')).toBeInstanceOf(lib.Linear);
    const expected = JSON.parse(readFileSync(`${FIXTURE}outputs.json`, 'utf8')) as { logits: number[]; statePrediction: number[] };
    const probe = tf.reshape(tf.linspace(-1, 1, 10 * 10 * 3), [1, 10, 10, 3]);
    const [logits, statePrediction] = model.predict(probe) as tf.Tensor[];
    const close = (a: ArrayLike<number>, b: number[]) =>
      Array.from(a).every((v, i) => Math.abs(v - b[i]!) <= 1e-6 + 1e-5 * Math.abs(b[i]!));
    expect(close(await logits!.data(), expected.logits)).toBe(true);
    expect(close(await statePrediction!.data(), expected.statePrediction)).toBe(true);
    const resaved = await saveToMemory(model);
    expect(
      classNames(resaved.modelTopology)
        .filter((n) => n !== 'InputLayer')
        .every((n) => n.startsWith('tfjs-dataflow>')),
    ).toBe(true);
    tf.dispose([probe, logits!, statePrediction!]);
    model.dispose();
  });

  it('the bare-name alias never takes a name another class registered first', () => {
    class Theirs extends tfl.layers.Layer {
      static className = 'TakenForClassNamesTest';
    }
    class Ours extends tfl.layers.Layer {
      static className = 'tfjs-dataflow>TakenForClassNamesTest';
    }
    tf.serialization.registerClass(Theirs);
    registerLayerClass(Ours, 'TakenForClassNamesTest');
    const map = tf.serialization.SerializationMap.getMap().classNameMap;
    expect(map.TakenForClassNamesTest?.[0]).toBe(Theirs);
    expect(map['tfjs-dataflow>TakenForClassNamesTest']?.[0]).toBe(Ours);
  });
});
