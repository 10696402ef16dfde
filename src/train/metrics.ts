/**
 * Mean and unbiased variance of a list of run results, as the seed reports its
 * accuracy battery (`torch.mean`, `torch.var`), plus the standard deviation.
 */
export function meanAndVariance(values: readonly number[]): {
  /** The mean. */
  mean: number;
  /** The unbiased variance (NaN for one value). */
  variance: number;
  /** Its square root. */
  std: number;
  /** Number of values. */
  count: number;
} {
  if (!Array.isArray(values) || values.length === 0 || !values.every(Number.isFinite)) {
    throw new Error(`meanAndVariance: values must be a non-empty array of finite numbers, got ${JSON.stringify(values)}`);
  }
  const n = values.length;
  const mean = values.reduce((s, v) => s + v, 0) / n;
  // torch.var is unbiased (divides by n - 1); a single run has no spread to estimate.
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : Number.NaN;
  return { mean, variance, std: Math.sqrt(variance), count: n };
}

/**
 * The seed's logged `train_loss`: the summed, batch-scaled training loss divided back to
 * a per-example value, `loss / (batchSize * batchScale)` with `batchScale = 512 / batchSize`.
 */
export function perExampleLoss(loss: number, batchSize: number, batchScale = 512 / batchSize): number {
  if (!(Number.isInteger(batchSize) && batchSize > 0))
    throw new Error(`perExampleLoss: batchSize must be a positive integer, got ${batchSize}`);
  return loss / (batchSize * batchScale);
}
