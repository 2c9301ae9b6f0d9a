/**
 * Turning a reference and a current sample into aligned shares per bin or category, the input of
 * PSI and the Jensen–Shannon distance. Mirrors Evidently's `get_binned_data`
 * (evidently/legacy/calculations/stattests/utils.py), plus PSI's classic reference-quantile bins.
 */
import { equalWidthHistogram, quantileSorted } from '../data/profile.js';

export type Category = string | number | boolean;

export interface Shares {
  reference: Float64Array;
  current: Float64Array;
  /** What each position holds: a category, or the [lower, upper) edges of a numeric bin. */
  labels: Array<Category | [number, number]>;
}

function counts<T>(values: ArrayLike<T>, index: Map<T, number>, size: number): Float64Array {
  const out = new Float64Array(size);
  for (let i = 0; i < values.length; i++) out[index.get(values[i]!)!]!++;
  return out;
}

function toShares(c: Float64Array, n: number): Float64Array {
  for (let i = 0; i < c.length; i++) c[i]! /= n;
  return c;
}

export interface CategoryCounts {
  reference: Float64Array;
  current: Float64Array;
  labels: Category[];
}

/** Count of each category seen in either sample, aligned (0 where a sample lacks it), in order of first appearance. */
export function categoryCounts<T extends Category>(reference: ArrayLike<T>, current: ArrayLike<T>): CategoryCounts {
  const index = new Map<T, number>();
  for (const sample of [reference, current]) {
    for (let i = 0; i < sample.length; i++) if (!index.has(sample[i]!)) index.set(sample[i]!, index.size);
  }
  return { reference: counts(reference, index, index.size), current: counts(current, index, index.size), labels: [...index.keys()] };
}

/**
 * Share of each category seen in either sample (Evidently's branch for categorical columns and
 * numerical columns with <= 20 reference values): count / sample size, 0 where a sample lacks it.
 */
export function categoryShares<T extends Category>(reference: ArrayLike<T>, current: ArrayLike<T>): Shares {
  const c = categoryCounts(reference, current);
  return { reference: toShares(c.reference, reference.length), current: toShares(c.current, current.length), labels: c.labels };
}

/**
 * Evidently's branch for numerical columns with > 20 distinct reference values:
 * np.histogram_bin_edges(concat(reference, current), bins='sturges'), then np.histogram of each
 * sample divided by its size. Inputs sorted ascending and finite.
 */
export function sturgesShares(reference: Float64Array, current: Float64Array): Shares {
  const size = reference.length + current.length;
  let first = Math.min(reference[0]!, current[0]!);
  let last = Math.max(reference[reference.length - 1]!, current[current.length - 1]!);
  if (first === last) {
    first -= 0.5;
    last += 0.5;
  }
  // numpy's sturges width, and the bin count it derives from it (not always ceil(log2(n) + 1)).
  const width = (last - first) / (Math.log2(size) + 1);
  const bins = width ? Math.ceil((last - first) / width) : 1;
  const ref = equalWidthHistogram(reference, first, last, bins);
  const cur = equalWidthHistogram(current, first, last, bins);
  const labels: Array<[number, number]> = [];
  for (let i = 0; i < bins; i++) labels.push([ref.edges[i]!, ref.edges[i + 1]!]);
  return {
    reference: toShares(Float64Array.from(ref.counts), reference.length),
    current: toShares(Float64Array.from(cur.counts), current.length),
    labels,
  };
}

/**
 * PSI's classic binning: `bins` reference-quantile bins (np.quantile 'linear' at 1/bins … (bins−1)/bins,
 * duplicate edges merged), open-ended at both sides so every current value lands somewhere; a
 * value on an inner edge goes to the upper bin (np.searchsorted side='right'). Inputs sorted, finite.
 */
export function quantileShares(reference: Float64Array, current: Float64Array, bins: number): Shares {
  const inner: number[] = [];
  for (let k = 1; k < bins; k++) {
    const edge = quantileSorted(reference, k / bins);
    if (inner.length === 0 || edge > inner[inner.length - 1]!) inner.push(edge);
  }
  const histogram = (sorted: Float64Array) => {
    const c = new Float64Array(inner.length + 1);
    let b = 0;
    for (let i = 0; i < sorted.length; i++) {
      while (b < inner.length && sorted[i]! >= inner[b]!) b++;
      c[b]!++;
    }
    return toShares(c, sorted.length);
  };
  const bounds = [-Infinity, ...inner, Infinity];
  const labels: Array<[number, number]> = [];
  for (let i = 0; i + 1 < bounds.length; i++) labels.push([bounds[i]!, bounds[i + 1]!]);
  return { reference: histogram(reference), current: histogram(current), labels };
}

/**
 * Evidently's `feel_zeroes`: empty bins get a small share so log ratios stay finite — the smallest
 * non-zero share / 10⁶ when that share is <= 0.0001, else 0.0001. In place; returns its argument.
 */
export function fillZeroShares(shares: Float64Array): Float64Array {
  let smallest = Infinity;
  for (const s of shares) if (s !== 0 && s < smallest) smallest = s;
  if (smallest === Infinity) return shares;
  const floor = smallest <= 0.0001 ? smallest / 1e6 : 0.0001;
  for (let i = 0; i < shares.length; i++) if (shares[i] === 0) shares[i] = floor;
  return shares;
}
