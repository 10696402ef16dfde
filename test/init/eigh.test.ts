import { describe, expect, it } from 'vitest';
import { eighSymmetric } from '../../src/init/eigh.js';
import { loadFixture, type Encoded } from '../layers/fixtures.js';

// Golden values: tools/reference/layers_fixtures.py (torch.linalg.eigh in float64 of a random 12x12 A Aᵀ/12), default args.
const fx = loadFixture<{ matrix: Encoded; eigenvalues: Encoded; eigenvectors: Encoded }>('eigh.json');

function reconstructionError(a: ArrayLike<number>, n: number, vals: Float64Array, vecs: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += vecs[i * n + k]! * vals[k]! * vecs[j * n + k]!;
      worst = Math.max(worst, Math.abs(s - a[i * n + j]!));
    }
  }
  return worst;
}

describe('eighSymmetric (Jacobi)', () => {
  it('matches torch.linalg.eigh on a 12x12 covariance-like matrix (eigenvectors up to sign)', () => {
    const n = 12;
    const { eigenvalues, eigenvectors } = eighSymmetric(fx.matrix.data, n);
    for (let i = 0; i < n; i++) expect(eigenvalues[i]).toBeCloseTo(fx.eigenvalues.data[i]!, 7);
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += eigenvectors[k * n + j]! * fx.eigenvectors.data[k * n + j]!;
      expect(Math.abs(dot)).toBeCloseTo(1, 7);
    }
    expect(reconstructionError(fx.matrix.data, n, eigenvalues, eigenvectors)).toBeLessThan(1e-10);
  });

  it('returns orthonormal eigenvectors, ascending eigenvalues, and handles degenerate and diagonal matrices', () => {
    const eye = eighSymmetric([2, 0, 0, 0, 2, 0, 0, 0, 2], 3);
    expect(Array.from(eye.eigenvalues)).toEqual([2, 2, 2]);
    const diag = eighSymmetric([3, 0, 0, 1], 2);
    expect(Array.from(diag.eigenvalues)).toEqual([1, 3]);
    expect(Array.from(diag.eigenvectors).map(Math.abs)).toEqual([0, 1, 1, 0]);
    const m = [4, 1, 2, 1, 3, 0.5, 2, 0.5, 5];
    const r = eighSymmetric(m, 3);
    for (let i = 0; i < 2; i++) expect(r.eigenvalues[i]!).toBeLessThanOrEqual(r.eigenvalues[i + 1]!);
    for (let a = 0; a < 3; a++) {
      for (let b = 0; b < 3; b++) {
        let dot = 0;
        for (let k = 0; k < 3; k++) dot += r.eigenvectors[k * 3 + a]! * r.eigenvectors[k * 3 + b]!;
        expect(dot).toBeCloseTo(a === b ? 1 : 0, 12);
      }
    }
    expect(reconstructionError(m, 3, r.eigenvalues, r.eigenvectors)).toBeLessThan(1e-12);
    expect(Array.from(eighSymmetric([5], 1).eigenvalues)).toEqual([5]);
  });

  it('reads only the upper triangle, as UPLO=U', () => {
    const upper = eighSymmetric([2, 1, 999, 2], 2);
    expect(upper.eigenvalues[0]).toBeCloseTo(1, 12);
    expect(upper.eigenvalues[1]).toBeCloseTo(3, 12);
  });

  it('rejects bad input, naming the argument', () => {
    expect(() => eighSymmetric([1, 2, 3], 2)).toThrow(/argument 'matrix' must hold n\*n = 4 values, got 3/);
    expect(() => eighSymmetric([1], 0)).toThrow(/argument 'n' must be a positive integer/);
    expect(() => eighSymmetric([1, Number.NaN, 0, 1], 2)).toThrow(/non-finite value NaN at \[0,1\]/);
  });
});
