import { describe, expect, it } from 'vitest';
import { meanAndVariance, perExampleLoss } from '../../src/train/metrics.js';

describe('metrics', () => {
  it('meanAndVariance uses the unbiased variance, like torch.var', () => {
    // mean 0.931; squared deviations sum to 2.6e-5, divided by n - 1 = 3.
    const r = meanAndVariance([0.93, 0.935, 0.928, 0.931]);
    expect(r.mean).toBeCloseTo(0.931, 12);
    expect(r.variance).toBeCloseTo(2.6e-5 / 3, 12);
    expect(r.std).toBeCloseTo(Math.sqrt(2.6e-5 / 3), 12);
    expect(r.count).toBe(4);
    expect(Number.isNaN(meanAndVariance([1]).variance)).toBe(true);
    expect(() => meanAndVariance([])).toThrow(/non-empty array/);
    expect(() => meanAndVariance([1, Number.NaN])).toThrow(/finite numbers/);
  });

  it("perExampleLoss undoes the seed's batch scaling", () => {
    // Seed: 1024 examples, loss = sum(ce) * 512/1024, logged as loss / (1024 * 0.5) = mean ce.
    expect(perExampleLoss(1.5 * 1024 * 0.5, 1024)).toBeCloseTo(1.5, 12);
    expect(perExampleLoss(10, 4, 1)).toBe(2.5);
    expect(() => perExampleLoss(1, 0)).toThrow(/batchSize must be a positive integer/);
  });
});
