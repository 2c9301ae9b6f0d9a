/**
 * Binary log loss in the raw score z (log-odds): its baseline, gradients and hessians, its
 * value for early stopping, and scikit-learn's early-stopping rule.
 */
import type { Labels } from '../types.js';

/** Log-odds of the (weighted) positive rate, the rate clipped away from 0 and 1 like sklearn. */
export function logOdds(y: Labels, w: Float64Array | undefined): number {
  let positive = 0;
  let total = 0;
  for (let i = 0; i < y.length; i++) {
    const wi = w ? w[i]! : 1;
    positive += wi * y[i]!;
    total += wi;
  }
  const rate = Math.min(Math.max(positive / total, Number.EPSILON), 1 - Number.EPSILON);
  return Math.log(rate / (1 - rate));
}

/**
 * Gradient p − y and hessian p(1 − p) of the loss in z, times the row's weight (interleaved per
 * row: gradient at 2i, hessian at 2i + 1, stored as float32), from each row's
 * odds against, e = exp(−z): p = 1 / (1 + e). Training tracks e rather than z so that a tree
 * costs one exp per leaf (e · exp(−leaf value)) instead of one per row.
 */
export function computeGradients(oddsAgainst: Float64Array, y: Labels, w: Float64Array | undefined, gradHess: Float32Array): void {
  for (let i = 0; i < oddsAgainst.length; i++) {
    const p = 1 / (1 + oddsAgainst[i]!);
    const wi = w ? w[i]! : 1;
    gradHess[2 * i] = (p - y[i]!) * wi;
    gradHess[2 * i + 1] = p * (1 - p) * wi;
  }
}

/** Keeps tracked odds finite and non-zero (p is then exactly 0 or 1 anyway), so a later leaf can move them back. */
export const MIN_ODDS = 1e-300;
export const MAX_ODDS = 1e300;

/** Mean (weighted) log loss of raw scores: softplus(z) − y·z, computed without overflow. */
export function logLoss(y: Labels, raw: Float64Array, w: Float64Array | undefined): number {
  let sum = 0;
  let total = 0;
  for (let i = 0; i < raw.length; i++) {
    const z = raw[i]!;
    const softplus = z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
    const wi = w ? w[i]! : 1;
    sum += wi * (softplus - y[i]! * z);
    total += wi;
  }
  return sum / total;
}

/**
 * sklearn's `_should_stop` on losses (lower is better): stop when none of the last `n` losses
 * improves on the one just before them by more than `tol`.
 */
export function shouldStop(losses: readonly number[], n: number, tol: number): boolean {
  if (losses.length < n + 1) return false;
  const reference = losses[losses.length - n - 1]! - tol;
  for (let i = losses.length - n; i < losses.length; i++) if (losses[i]! < reference) return false;
  return true;
}
