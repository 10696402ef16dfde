/** Eigendecomposition of a real symmetric matrix, in PyTorch's `torch.linalg.eigh` convention. */
export interface SymmetricEigen {
  /** Matrix size n. */
  n: number;
  /** The n eigenvalues, ascending. */
  eigenvalues: Float64Array;
  /** Row-major n×n matrix whose column j is the unit eigenvector of eigenvalue j. */
  eigenvectors: Float64Array;
}

/** Options of {@link eighSymmetric}: when the Jacobi iteration stops. */
export interface EighOptions {
  /** Most Jacobi sweeps before giving up; default 100 (a 12x12 matrix converges in under 10). */
  maxSweeps?: number;
  /** Relative tolerance on the off-diagonal norm; default 1e-15. */
  tolerance?: number;
}

/**
 * Symmetric eigendecomposition on the host by the cyclic Jacobi method, in float64:
 * what `torch.linalg.eigh(cov, UPLO='U')` does in the seed's whitening init, for the
 * small (12x12) patch covariances. Only the upper triangle is read, as with UPLO='U'.
 * Eigenvalues come back ascending and eigenvectors as columns, as PyTorch returns them;
 * each eigenvector's sign is arbitrary, as in any solver.
 *
 * @param matrix Row-major n×n values (only the upper triangle is used).
 * @param n The matrix size; `matrix.length` must be n².
 */
export function eighSymmetric(matrix: ArrayLike<number>, n: number, options: EighOptions = {}): SymmetricEigen {
  if (!Number.isInteger(n) || n <= 0) throw new Error(`eighSymmetric: argument 'n' must be a positive integer, got ${n}`);
  if (matrix == null || matrix.length !== n * n) {
    throw new Error(`eighSymmetric: argument 'matrix' must hold n*n = ${n * n} values, got ${matrix == null ? matrix : matrix.length}`);
  }
  const maxSweeps = options.maxSweeps ?? 100;
  const tolerance = options.tolerance ?? 1e-15;
  const a = new Float64Array(n * n);
  let norm = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = matrix[i * n + j]!;
      if (!Number.isFinite(v)) throw new Error(`eighSymmetric: argument 'matrix' holds a non-finite value ${v} at [${i},${j}]`);
      a[i * n + j] = v;
      a[j * n + i] = v;
      norm += (i === j ? 1 : 2) * v * v;
    }
  }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;

  let converged = n === 1 || norm === 0;
  for (let sweep = 0; sweep < maxSweeps && !converged; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += 2 * a[p * n + q]! ** 2;
    if (off <= tolerance * tolerance * norm) {
      converged = true;
      break;
    }
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        // Rotation angle that zeroes a[p][q]: t = tan(φ), the smaller root of t² + 2θt − 1 = 0.
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!;
          const akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!;
          const aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  if (!converged) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += 2 * a[p * n + q]! ** 2;
    if (off > 1e-20 * norm)
      throw new Error(`eighSymmetric: Jacobi iteration did not converge in ${maxSweeps} sweeps (off-diagonal norm ${Math.sqrt(off)})`);
  }

  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[i * n + i]! - a[j * n + j]!);
  const eigenvalues = new Float64Array(n);
  const eigenvectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    eigenvalues[dst] = a[src * n + src]!;
    for (let k = 0; k < n; k++) eigenvectors[k * n + dst] = v[k * n + src]!;
  });
  return { n, eigenvalues, eigenvectors };
}
