import { describe, expect, it } from 'vitest';
import { stepTicks } from '../../examples/browser/charts.js';

describe("browser example: the charts' step axis", () => {
  it('labels whole steps, each once: an empty chart (one step of range) reads 0 1, not 0 0 1 1 1', () => {
    expect(stepTicks(1)).toEqual([0, 1]);
    expect(stepTicks(4)).toEqual([0, 1, 2, 3, 4]);
    expect(stepTicks(16)).toEqual([0, 5, 10, 15]);
    expect(stepTicks(581)).toEqual([0, 200, 400]);
    expect(stepTicks(0)).toEqual([0]);
    for (const xMax of [1, 2, 3, 7, 10, 33, 100, 999, 12_345]) {
      const ticks = stepTicks(xMax);
      expect(ticks.every(Number.isInteger), String(xMax)).toBe(true);
      expect(new Set(ticks).size).toBe(ticks.length);
      expect(ticks.length).toBeLessThanOrEqual(6);
      expect(ticks.at(-1)!).toBeLessThanOrEqual(xMax);
    }
  });
});
