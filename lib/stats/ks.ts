/**
 * Two-sample Kolmogorov–Smirnov test, two-sided, as scipy 1.10's `ks_2samp(a, b, method='auto')`:
 * the statistic from one merge walk over the two sorted samples (O((n+m) log(n+m)) for the sorts,
 * no allocation per element), an exact p-value when max(n, m) <= 10000, else the asymptotic
 * kstwo.sf(d, round(n·m / (n+m))). Inputs must be finite (drop missing values first).
 */
import { InvalidInput } from '../errors.js';
import { kolmogorovSf } from './kolmogorov.js';

export interface KsResult {
  /** sup |F_a − F_b|. */
  statistic: number;
  pValue: number;
  /** Which p-value scipy's 'auto' picked (exact falls back to asymptotic on overflow, as scipy). */
  method: 'exact' | 'asymptotic';
  /**
   * The smallest pooled value where the supremum is reached, and +1 when F_a − F_b is positive
   * there (scipy's statistic_location / sign; on ties scipy may name another value of equal D).
   */
  location: number;
  sign: 1 | -1;
}

/** scipy's MAX_AUTO_N: above it 'auto' goes asymptotic. */
const MAX_EXACT_N = 10000;

/** A sorted copy (typed-array numeric sort). */
export function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/** The KS statistic of two sorted, non-empty samples, with scipy's tie handling (searchsorted side='right'). */
export function ksStatisticSorted(a: Float64Array, b: Float64Array): Omit<KsResult, 'pValue' | 'method'> {
  const n1 = a.length;
  const n2 = b.length;
  let i = 0;
  let j = 0;
  let maxDiff = -Infinity;
  let maxAt = Number.NaN;
  let minDiff = Infinity;
  let minAt = Number.NaN;
  while (i < n1 || j < n2) {
    // The next distinct value of the pooled sample; both ECDFs are read just after it.
    const v = j >= n2 || (i < n1 && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    while (i < n1 && a[i]! <= v) i++;
    while (j < n2 && b[j]! <= v) j++;
    const diff = i / n1 - j / n2;
    if (diff > maxDiff) {
      maxDiff = diff;
      maxAt = v;
    }
    if (diff < minDiff) {
      minDiff = diff;
      minAt = v;
    }
  }
  const minS = Math.min(Math.max(-minDiff, 0), 1);
  if (minS > maxDiff) return { statistic: minS, location: minAt, sign: -1 };
  return { statistic: maxDiff, location: maxAt, sign: 1 };
}

/** ks_2samp(a, b) on two sorted, non-empty, finite samples. */
export function ksTestSorted(a: Float64Array, b: Float64Array): KsResult {
  // As scipy: the test is undefined on an empty sample.
  if (a.length === 0 || b.length === 0) throw new InvalidInput('KS test: a sample is empty', a.length === 0 ? 'a' : 'b');
  const found = ksStatisticSorted(a, b);
  const n1 = a.length;
  const n2 = b.length;
  let d = found.statistic;
  if (Math.max(n1, n2) <= MAX_EXACT_N) {
    const exact = exactKsPValue(n1, n2, d);
    if (exact.ok) return { ...found, statistic: exact.d, pValue: exact.pValue, method: 'exact' };
    d = exact.d;
  }
  const [m, n] = n1 >= n2 ? [n1, n2] : [n2, n1];
  const en = (m * n) / (m + n);
  return { ...found, statistic: d, pValue: kolmogorovSf(roundHalfEven(en), d), method: 'asymptotic' };
}

/** ks_2samp(a, b): sorts copies of both samples first. */
export function ksTest(a: ArrayLike<number>, b: ArrayLike<number>): KsResult {
  return ksTestSorted(sortedCopy(a), sortedCopy(b));
}

/** np.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** scipy's _attempt_exact_2kssamp, two-sided: d is snapped to the lattice h / lcm(n1, n2). */
function exactKsPValue(n1: number, n2: number, d: number): { ok: boolean; d: number; pValue: number } {
  const g = gcd(n1, n2);
  const lcm = (n1 / g) * n2;
  const h = roundHalfEven(d * lcm);
  const snapped = h / lcm;
  if (h === 0) return { ok: true, d: snapped, pValue: 1 };
  const p = n1 === n2 ? probOutsideSquare(n1, h) : probOutsideInside(n1, n2, g, h);
  if (!Number.isFinite(p) || p < 0 || p > 1) return { ok: false, d: snapped, pValue: Number.NaN };
  return { ok: true, d: snapped, pValue: p };
}

/** scipy's _compute_prob_outside_square: Pr(D_{n,n} >= h/n) by a Horner-like alternating sum. */
function probOutsideSquare(n: number, h: number): number {
  let P = 0;
  for (let k = Math.floor(n / h); k >= 0; k--) {
    let p1 = 1;
    for (let j = 0; j < h; j++) p1 = ((n - k * h - j) * p1) / (n + k * h + j + 1);
    P = p1 * (1 - P);
  }
  return 2 * P;
}

/**
 * scipy's _compute_outer_prob_inside_method: 1 − (lattice paths staying strictly inside
 * |x/m − y/n| < h/lcm) / C(m+n, n), by Viehmann's recursion for the complement, one sliding column.
 */
function probOutsideInside(m0: number, n0: number, g: number, h: number): number {
  const [m, n] = m0 >= n0 ? [m0, n0] : [n0, m0];
  const mg = m / g;
  const ng = n / g;
  let minj = 0;
  let maxj = Math.min(Math.ceil(h / mg), n + 1);
  let curlen = maxj - minj;
  const lenA = Math.min(2 * maxj + 2, n + 1);
  const A = new Float64Array(lenA).fill(1);
  A.fill(0, minj, maxj);
  for (let i = 1; i <= m; i++) {
    const lastminj = minj;
    const lastlen = curlen;
    minj = Math.min(Math.max(Math.floor((ng * i - h) / mg) + 1, 0), n);
    maxj = Math.min(Math.ceil((ng * i + h) / mg), n + 1);
    if (maxj <= minj) return 1;
    let val = minj === 0 ? 0 : 1;
    for (let jj = 0; jj < maxj - minj; jj++) {
      const j = jj + minj;
      val = (A[jj + minj - lastminj]! * i + val * j) / (i + j);
      A[jj] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) A.fill(1, maxj - minj, maxj - minj + (lastlen - curlen));
  }
  return A[maxj - minj - 1]!;
}
