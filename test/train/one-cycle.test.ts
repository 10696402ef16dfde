import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OneCycle, type AnnealStrategy } from '../../src/train/one-cycle.js';
import * as lib from '../../src/index.js';

// Golden sequences from torch.optim.lr_scheduler.OneCycleLR (tools/reference/train_fixtures.py, no arguments).
interface Case {
  label: string;
  maxLr: number;
  totalSteps: number;
  pctStart: number;
  divFactor: number;
  finalDivFactor: number;
  anneal: AnnealStrategy;
  lrs: number[];
  raised: string;
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/train/onecycle.json', import.meta.url), 'utf8')) as { cases: Case[] };

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

describe('OneCycle matches torch OneCycleLR', () => {
  for (const c of fixture.cases) {
    it(`${c.label}: every step 0..${c.totalSteps} within 1e-9 relative`, () => {
      const sched = new OneCycle(c);
      expect(c.lrs).toHaveLength(c.totalSteps + 1);
      let worst = 0;
      for (let s = 0; s <= c.totalSteps; s++) {
        worst = Math.max(worst, relErr(sched.lrAt(s), c.lrs[s]!));
        // The stepping form walks the same sequence.
        expect(sched.lr).toBe(sched.lrAt(s));
        if (s < c.totalSteps) sched.step();
      }
      expect(worst).toBeLessThanOrEqual(1e-9);
      // torch raises on the step after totalSteps; so do both forms, and the schedule stays put.
      expect(c.raised).toContain(`total steps is ${c.totalSteps}`);
      expect(() => sched.step()).toThrow(/total steps is/);
      expect(() => sched.lrAt(c.totalSteps + 1)).toThrow(
        `tried to step ${c.totalSteps + 2} times. The specified number of total steps is ${c.totalSteps}`,
      );
      expect(sched.stepCount).toBe(c.totalSteps);
    });
  }

  it('OneCycle.seed reproduces the seed schedule (581 steps, ~0 -> max at 23% -> 0.07 x max)', () => {
    const seedCase = fixture.cases.find((c) => c.label === 'seed non-bias')!;
    const sched = OneCycle.seed(seedCase.maxLr, 581);
    for (let s = 0; s <= 581; s++) expect(relErr(sched.lrAt(s), seedCase.lrs[s]!)).toBeLessThanOrEqual(1e-9);
    expect(sched.lrAt(0)).toBeLessThan(1e-15);
    expect(relErr(sched.lrAt(580), 0.07 * seedCase.maxLr)).toBeLessThan(1e-9);
    const peak = Math.max(...seedCase.lrs);
    expect(relErr(peak, seedCase.maxLr)).toBeLessThan(1e-2);
  });
});

describe('OneCycle validation', () => {
  it('rejects invalid fractions and counts, naming the argument', () => {
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 10, pctStart: 1.5 })).toThrow(/pctStart must be a fraction in \[0, 1\], got 1.5/);
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 10, pctStart: -0.1 })).toThrow(/pctStart/);
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 10, pctStart: Number.NaN })).toThrow(/pctStart/);
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 0 })).toThrow(/totalSteps must be a positive integer, got 0/);
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 2.5 })).toThrow(/totalSteps/);
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 10, divFactor: 0 })).toThrow(/divFactor must be a positive finite number/);
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 10, finalDivFactor: -1 })).toThrow(/finalDivFactor/);
    expect(() => new OneCycle({ maxLr: Number.NaN, totalSteps: 10 })).toThrow(/maxLr/);
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 10, anneal: 'exp' as AnnealStrategy })).toThrow(/anneal must be 'linear' or 'cos'/);
    const s = new OneCycle({ maxLr: 1, totalSteps: 10 });
    expect(() => s.lrAt(-1)).toThrow(/non-negative integer/);
    expect(() => s.lrAt(1.5)).toThrow(/non-negative integer/);
  });

  it('refuses a negative maxLr (hostile review item 18)', () => {
    expect(() => new lib.OneCycle({ maxLr: -1, totalSteps: 10 })).toThrow('OneCycle: maxLr must be a finite number >= 0, got -1');
    expect(new lib.OneCycle({ maxLr: 0, totalSteps: 10 }).lr).toBe(0);
  });

  it('refuses divisors so small that the rates overflow to NaN', () => {
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 10, finalDivFactor: 1e-320 })).toThrow(
      'OneCycle: maxLr 1 / divFactor 25 / finalDivFactor 1e-320 is not finite: the divisors must not vanish',
    );
    expect(() => new OneCycle({ maxLr: 1e300, totalSteps: 10, divFactor: 1e-10 })).toThrow(/is not finite/);
    expect(() => new OneCycle({ maxLr: 1, totalSteps: 10, divFactor: '25' as never })).toThrow(
      'OneCycle: divFactor must be a positive finite number, got 25',
    );
  });

  it('reports a zero-length phase instead of returning NaN (torch divides by zero)', () => {
    const s = new OneCycle({ maxLr: 1, totalSteps: 10, pctStart: 0.1 });
    expect(() => s.lrAt(0)).toThrow(/zero length/);
  });

  it('setStep resumes mid-cycle', () => {
    const a = new OneCycle({ maxLr: 0.5, totalSteps: 20, anneal: 'linear' });
    const b = new OneCycle({ maxLr: 0.5, totalSteps: 20, anneal: 'linear' });
    for (let i = 0; i < 7; i++) a.step();
    b.setStep(7);
    expect(b.lr).toBe(a.lr);
    expect(() => b.setStep(21)).toThrow(/total steps/);
    expect(b.stepCount).toBe(7);
  });
});
