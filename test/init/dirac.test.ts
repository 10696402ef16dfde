import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { diracInit, diracRenormInit, initConvGroupDirac } from '../../src/init/dirac.js';
import { ConvGroup } from '../../src/layers/conv-group.js';
import { describeEachBackend } from '../helpers/backends.js';
import { maxRelativeError } from '../helpers/assert.js';
import { loadFixture, toTensor, values, type Encoded } from '../layers/fixtures.js';
import { liveTensors } from '../helpers/memory.js';

interface DiracCase {
  cout: number;
  cin: number;
  weight: Encoded;
  dirac: Encoded;
  renorm: Encoded;
  stdPre: number;
  meanPre: number;
}
// Golden values: tools/reference/layers_fixtures.py (torch.nn.init.dirac_ and the seed's renormalisation), default args.
const fx = loadFixture<{ scale: number; cases: DiracCase[] }>('dirac.json');

async function stdMean(t: tf.Tensor | number[]): Promise<[number, number]> {
  const v = Array.isArray(t) ? t : Array.from(await t.data());
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1));
  return [std, mean];
}

describeEachBackend('dirac init', () => {
  for (const c of fx.cases) {
    it(`matches torch for cout ${c.cout}, cin ${c.cin}: dirac positions, renormalised weight and its statistics`, async () => {
      const before = liveTensors();
      const w = toTensor(c.weight);
      const d = diracInit(w);
      expect(Array.from(await d.data())).toEqual(Array.from(values(c.dirac)));
      const r = diracRenormInit(w, fx.scale);
      expect(maxRelativeError(await r.data(), values(c.renorm))).toBeLessThanOrEqual(1e-5);
      const [std, mean] = await stdMean(r);
      expect(std).toBeCloseTo(c.stdPre, 6);
      expect(mean).toBeCloseTo(c.meanPre, 6);
      tf.dispose([w, d, r]);
      expect(liveTensors()).toBe(before);
    });
  }

  it("initConvGroupDirac: the seed's per-group init (conv1 renormalised dirac, conv2 pure dirac, wider state projection renormalised)", async () => {
    const wide = new ConvGroup({ channelsOut: 4, statePredDim: 6, seed: 1 });
    const narrow = new ConvGroup({ channelsOut: 4, statePredDim: 3, seed: 1 });
    for (const g of [wide, narrow]) g.apply(tfl.input({ shape: [8, 8, 3] }));
    const snapshot = async (g: ConvGroup) =>
      Promise.all([g.conv1, g.conv2, g.stateProject!].map(async (c) => Array.from(await c.weight.read().data())));
    const [w1, , wsWide] = await snapshot(wide);
    const [, , wsNarrow] = await snapshot(narrow);
    const before = liveTensors();
    initConvGroupDirac(wide);
    initConvGroupDirac(narrow);
    expect(liveTensors()).toBe(before);
    const [a1, a2, as] = await snapshot(wide);
    const dirac = diracInit(wide.conv2.weight.read());
    expect(a2).toEqual(Array.from(await dirac.data()));
    dirac.dispose();
    const [s1, m1] = await stdMean(w1!);
    const [t1, n1] = await stdMean(a1!);
    expect(t1).toBeCloseTo(s1, 6);
    expect(n1).toBeCloseTo(m1, 6);
    expect(a1).not.toEqual(w1);
    expect(as).not.toEqual(wsWide);
    // Not wider than conv2: the state projection keeps its init.
    expect((await snapshot(narrow))[2]).toEqual(wsNarrow);
    wide.dispose();
    narrow.dispose();
  });
});

describe('dirac init arguments', () => {
  it('rejects bad input, naming the argument', () => {
    const w3 = tf.zeros([3, 3, 2]);
    expect(() => diracInit(w3)).toThrow(
      /diracInit: argument 'weight' must be a conv kernel \[kh, kw, cin, cout\] of rank 4, got shape \[3,3,2\]/,
    );
    const wi = tf.zeros([3, 3, 2, 2], 'int32');
    expect(() => diracRenormInit(wi)).toThrow(/argument 'weight' must be float32, got dtype 'int32'/);
    const w = tf.zeros([3, 3, 2, 2]);
    expect(() => diracRenormInit(w, Number.NaN)).toThrow(/argument 'scale' must be a finite number/);
    expect(() => initConvGroupDirac(new ConvGroup({ channelsOut: 2 }))).toThrow(/is not built yet/);
    tf.dispose([w3, wi, w]);
  });
});
