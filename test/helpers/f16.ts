/**
 * The oracle for the tensor-core (f16 operand, f32 accumulation) convolutions: f16 rounding of f32 data, and the
 * bound within which two f32 accumulations of the same f16 products may differ.
 *
 * Why this bound (docs/tensor-cores.md has the derivation): a product of two f16 values is exact in f32 (11 + 11
 * significant bits <= 24), so a tensor-core convolution and the same convolution on the cpu backend of the
 * f16-rounded operands differ only by the rounding of their f32 sums, taken in different orders. For a sum of n
 * products with unit roundoff u = 2^-24, each differs from the exact sum by at most gamma * S, S = sum |a_i b_i|.
 * The worst case gamma = n u / (1 - n u) is too loose to catch a missing term of a long sum, so the bound is the
 * probabilistic one of Higham and Mary (SIAM J. Sci. Comput. 41(5), 2019, Theorem 3.1): with rounding errors
 * independent and of mean zero, |error| <= gamma~(lambda) S with gamma~(lambda) = exp(lambda sqrt(n) u + n u^2 /
 * (1 - u)) - 1, failing with probability at most 2n exp(-lambda^2 (1 - u)^2 / 2) per element: under 1e-10 at
 * lambda = 8 for any n below a million. Two sums (the kernel's and the oracle's) each within it differ by at
 * most twice it.
 * @internal
 */

/** f32's unit roundoff. */
export const F32_UNIT_ROUNDOFF = 2 ** -24;
/** The probabilistic bound's lambda: per-element failure probability under 2n e^-32. */
export const ORACLE_LAMBDA = 8;

/** `value` rounded to the nearest f16 (ties to even), as WGSL's `f16(v)` converts on IEEE hardware; subnormals kept. */
export function roundToF16(value: number): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const magnitude = Math.abs(value);
  // 65504 is f16's largest; from 65520 (half an ulp above) on, the nearest is infinity.
  if (magnitude >= 65520) return Math.sign(value) * Infinity;
  let exponent = Math.floor(Math.log2(magnitude));
  if (2 ** exponent > magnitude) exponent--;
  else if (2 ** (exponent + 1) <= magnitude) exponent++;
  // 10 fraction bits; below 2^-14 the spacing stays 2^-24 (subnormals).
  const quantum = 2 ** (Math.max(exponent, -14) - 10);
  const scaled = magnitude / quantum; // exact: a power-of-two scaling
  let whole = Math.floor(scaled);
  const rest = scaled - whole;
  if (rest > 0.5 || (rest === 0.5 && whole % 2 === 1)) whole++;
  return Math.sign(value) * whole * quantum;
}

/** Every element of `values` rounded to f16 (held as f32). */
export function roundArrayToF16(values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = roundToF16(values[i]!);
  return out;
}

/** Higham and Mary's gamma~_n(lambda): the relative bound of one f32 sum of n terms (see the module comment). */
export function probabilisticGamma(n: number, lambda = ORACLE_LAMBDA): number {
  const u = F32_UNIT_ROUNDOFF;
  return Math.expm1(lambda * Math.sqrt(n) * u + (n * u * u) / (1 - u));
}

/**
 * The largest |actual - expected| / (2 gamma~_n S) over the elements, where S is `absSums` (the same convolution
 * of the operands' absolute values): at most 1 when `actual` and `expected` are two f32 accumulations of the same
 * exact products, each of at most `n` additions. Infinity for a non-finite `actual`.
 */
export function accumulationErrorRatio(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  absSums: ArrayLike<number>,
  n: number,
): number {
  if (actual.length !== expected.length || actual.length !== absSums.length) {
    throw new Error(`accumulationErrorRatio: lengths ${actual.length}, ${expected.length} and ${absSums.length} differ`);
  }
  const gamma = 2 * probabilisticGamma(n);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    if (!Number.isFinite(a)) return Infinity;
    const diff = Math.abs(a - expected[i]!);
    if (diff === 0) continue;
    worst = Math.max(worst, diff / (gamma * absSums[i]!));
  }
  return worst;
}

/**
 * The max relative error (with maxRelativeError's floor of a tenth of the reference's RMS) that rounding the operands
 * of a convolution to f16 may cause: each product is off by at most 2 * 2^-11 relative, and with the roundings
 * independent the sum is off by a standard deviation of at most sqrt(2/3) * 2^-11 times sqrt(sum (a_i b_i)^2), which
 * is about the output's RMS. Eight standard deviations against the floor: 8 * 0.817 * 2^-11 / 0.1 = 0.032. Measured on
 * Mesa 26's lavapipe: at most 0.0098 (one convolution), 0.0084 (a ConvGroup's outputs and gradients).
 */
export const F16_OPERAND_TOLERANCE = 0.032;
