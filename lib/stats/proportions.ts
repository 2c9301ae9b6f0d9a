/**
 * Tests on counts: the pooled two-proportion z statistic (Evidently's proportions_diff_z_stat_ind,
 * statsmodels' proportions_ztest) and Evidently's chi-squared goodness of fit of current category
 * counts against the reference proportions.
 */
import { chiSquareSf, normalCdf, normalSf } from './special.js';

export type Alternative = 'two-sided' | 'greater' | 'less';

/**
 * z = (p1 − p2) / sqrt(P(1 − P)(1/n1 + 1/n2)) with the pooled P = (x1 + x2) / (n1 + n2):
 * Evidently's proportions_diff_z_stat_ind (sample 1 = reference) and statsmodels.stats.proportion.
 * proportions_ztest([x1, x2], [n1, n2]). NaN when P is 0 or 1 (no variance).
 */
export function twoProportionZ(x1: number, n1: number, x2: number, n2: number): number {
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const pooled = (p1 * n1 + p2 * n2) / (n1 + n2);
  return (p1 - p2) / Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
}

/** The p-value of a standard-normal statistic (accurate in the far tails: sf, not 1 − cdf). */
export function normalPValue(z: number, alternative: Alternative = 'two-sided'): number {
  if (alternative === 'greater') return normalSf(z);
  if (alternative === 'less') return normalCdf(z);
  return Math.min(1, 2 * normalSf(Math.abs(z)));
}

/**
 * Evidently's proportions_diff_z_test, two-sided, exactly as written there: 2 · (1 − Φ(|z|)) (so
 * p-values below ~1e-16 come out 0, as in Evidently).
 */
export function evidentlyZPValue(z: number): number {
  return 2 * (1 - normalCdf(Math.abs(z)));
}

export interface ChiSquareResult {
  statistic: number;
  pValue: number;
  df: number;
}

/**
 * Evidently's `_chi_stat_test`: expected counts are the reference counts scaled by
 * n_current / n_reference, then scipy.stats.chisquare(observed, expected): Σ (o − e)² / e with
 * k − 1 degrees of freedom. A category absent from the reference makes the statistic infinite
 * (p = 0), as in scipy; a single category has no degrees of freedom (p NaN, as in scipy).
 */
export function chiSquareAgainstReference(referenceCounts: Float64Array, currentCounts: Float64Array): ChiSquareResult {
  let nRef = 0;
  let nCur = 0;
  for (let i = 0; i < referenceCounts.length; i++) {
    nRef += referenceCounts[i]!;
    nCur += currentCounts[i]!;
  }
  const scale = nCur / nRef;
  let statistic = 0;
  for (let i = 0; i < referenceCounts.length; i++) {
    const expected = referenceCounts[i]! * scale;
    const d = currentCounts[i]! - expected;
    statistic += (d * d) / expected;
  }
  const df = referenceCounts.length - 1;
  return { statistic, pValue: df > 0 ? chiSquareSf(statistic, df) : Number.NaN, df };
}
