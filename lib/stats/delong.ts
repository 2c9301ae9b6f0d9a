/**
 * DeLong's test for ROC AUCs (DeLong, DeLong & Clarke-Pearson, Biometrics 1988) with the fast
 * midrank computation of Sun & Xu (IEEE SPL 2014). Candidate and control score different requests,
 * so their AUCs are independent: the unpaired test adds the two variances.
 */
import type { Labels } from '../ml/types.js';
import { normalPValue } from './proportions.js';
import type { Alternative } from './proportions.js';

export interface AucEstimate {
  auc: number;
  /** DeLong's variance S10/m + S01/n (NaN with fewer than 2 positives or 2 negatives). */
  variance: number;
  positives: number;
  negatives: number;
}

/** Midranks (1-based, ties averaged) of `values`, written into `out` at the positions of `values`. */
function midranks(values: Float64Array, out: Float64Array): void {
  const n = values.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => values[a]! - values[b]!);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j < n && values[order[j]!] === values[order[i]!]) j++;
    const rank = 0.5 * (i + j - 1) + 1;
    for (let k = i; k < j; k++) out[order[k]!] = rank;
    i = j;
  }
}

function sampleVariance(x: Float64Array): number {
  let sum = 0;
  for (const v of x) sum += v;
  const mean = sum / x.length;
  let squares = 0;
  for (const v of x) squares += (v - mean) ** 2;
  return squares / (x.length - 1);
}

/** AUC (ties count half, as sklearn's roc_auc_score) and DeLong's variance. Labels 0/1, finite scores. */
export function delongAuc(y: Labels, score: Float64Array): AucEstimate {
  let m = 0;
  for (let i = 0; i < y.length; i++) m += y[i]!;
  const n = y.length - m;
  const positives = new Float64Array(m);
  const negatives = new Float64Array(n);
  for (let i = 0, a = 0, b = 0; i < y.length; i++) {
    if (y[i] === 1) positives[a++] = score[i]!;
    else negatives[b++] = score[i]!;
  }
  if (m === 0 || n === 0) return { auc: Number.NaN, variance: Number.NaN, positives: m, negatives: n };
  const all = new Float64Array(m + n);
  all.set(positives);
  all.set(negatives, m);
  const tz = new Float64Array(m + n);
  const tx = new Float64Array(m);
  const ty = new Float64Array(n);
  midranks(all, tz);
  midranks(positives, tx);
  midranks(negatives, ty);
  const v10 = new Float64Array(m);
  const v01 = new Float64Array(n);
  let rankSum = 0;
  for (let i = 0; i < m; i++) {
    v10[i] = (tz[i]! - tx[i]!) / n;
    rankSum += tz[i]!;
  }
  for (let j = 0; j < n; j++) v01[j] = 1 - (tz[m + j]! - ty[j]!) / m;
  const auc = (rankSum - (m * (m + 1)) / 2) / (m * n);
  const variance = m > 1 && n > 1 ? sampleVariance(v10) / m + sampleVariance(v01) / n : Number.NaN;
  return { auc, variance, positives: m, negatives: n };
}

export interface AucComparison {
  control: AucEstimate;
  candidate: AucEstimate;
  /** AUC_candidate − AUC_control. */
  difference: number;
  z: number;
  pValue: number;
}

/**
 * Unpaired DeLong test of AUC_candidate − AUC_control: z = Δ / sqrt(var_control + var_candidate).
 * `alternative` 'less' asks whether the candidate is worse.
 */
export function delongUnpaired(
  control: { y: Labels; score: Float64Array },
  candidate: { y: Labels; score: Float64Array },
  alternative: Alternative = 'two-sided',
): AucComparison {
  const a = delongAuc(control.y, control.score);
  const b = delongAuc(candidate.y, candidate.score);
  const difference = b.auc - a.auc;
  const z = difference / Math.sqrt(a.variance + b.variance);
  return { control: a, candidate: b, difference, z, pValue: normalPValue(z, alternative) };
}
