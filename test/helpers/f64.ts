/**
 * Float64 references computed in JavaScript, independent of every tfjs backend (the cpu backend included): the
 * oracle the fused-kernel suites hold each backend's float32 results to, within bounds derived from f32's unit
 * roundoff (each suite's comment has its derivation). @internal
 */

/** f32's unit roundoff, 2^-24. */
export const U32 = 2 ** -24;

/**
 * The worst-case relative error bound of a float32 sum of n terms in any order, gamma_n = n u / (1 - n u) (Higham,
 * Accuracy and Stability of Numerical Algorithms, 2nd ed., Lemma 3.1), against sum |terms|.
 */
export function gammaN(n: number): number {
  return (n * U32) / (1 - n * U32);
}

/** The largest absolute error of the erf that tfjs computes on every backend (Abramowitz and Stegun 7.1.26). */
export const TFJS_ERF_ABS_ERROR = 1.5e-7;

/** erf(x) to float64 precision: its Maclaurin series below |x| = 3, the continued fraction of erfc above. */
export function erf64(x: number): number {
  const a = Math.abs(x);
  if (a < 3) {
    // erf x = 2/sqrt(pi) sum_k (-1)^k x^(2k+1) / (k! (2k+1)); terms fall below 1e-17 of the sum well before k = 80.
    let term = a;
    let sum = a;
    for (let k = 1; k < 100; k++) {
      term *= (-a * a) / k;
      const next = term / (2 * k + 1);
      sum += next;
      if (Math.abs(next) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  // erfc a = exp(-a^2)/sqrt(pi) * 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))), evaluated from the tail.
  let f = a;
  for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** Exact GELU, z Phi(z), in float64. */
export function gelu64(z: number): number {
  return 0.5 * z * (1 + erf64(z * Math.SQRT1_2));
}

/** d/dz gelu(z) = Phi(z) + z phi(z), in float64. */
export function geluGrad64(z: number): number {
  return 0.5 * (1 + erf64(z * Math.SQRT1_2)) + (z * Math.exp(-0.5 * z * z)) / Math.sqrt(2 * Math.PI);
}
