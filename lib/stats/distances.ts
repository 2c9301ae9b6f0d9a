/**
 * Distances between a reference and a current distribution: Wasserstein-1 (scipy), its version
 * normed by the reference standard deviation (Evidently), the Jensen–Shannon distance (scipy) and
 * the Population Stability Index (Evidently's formula). Sorted inputs are ascending and finite.
 */

/** scipy.stats.wasserstein_distance(u, v) of two sorted samples: ∫ |F_u − F_v| over the pooled support. */
export function wassersteinSorted(u: Float64Array, v: Float64Array): number {
  const nu = u.length;
  const nv = v.length;
  let i = 0;
  let j = 0;
  let total = 0;
  let previous = Math.min(u[0]!, v[0]!);
  while (i < nu || j < nv) {
    const x = j >= nv || (i < nu && u[i]! <= v[j]!) ? u[i]! : v[j]!;
    // Between the previous pooled value and x both ECDFs are flat.
    total += Math.abs(i / nu - j / nv) * (x - previous);
    while (i < nu && u[i]! <= x) i++;
    while (j < nv && v[j]! <= x) j++;
    previous = x;
  }
  return total;
}

/** np.std(x) (ddof = 0) by two passes. */
export function standardDeviation(x: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i]!;
  const mean = sum / x.length;
  let squares = 0;
  for (let i = 0; i < x.length; i++) squares += (x[i]! - mean) ** 2;
  return Math.sqrt(squares / x.length);
}

/**
 * Evidently's `_wasserstein_distance_norm`: wasserstein_distance(reference, current) divided by
 * max(np.std(reference), 0.001), so a constant reference never divides by zero.
 */
export function wassersteinNormedSorted(reference: Float64Array, current: Float64Array): number {
  return wassersteinSorted(reference, current) / Math.max(standardDeviation(reference), 0.001);
}

/** p·log(p/q) with scipy.special.rel_entr's conventions (0 at p = 0). */
function relativeEntropy(p: number, q: number): number {
  if (p === 0) return 0;
  return p * Math.log(p / q);
}

/**
 * scipy.spatial.distance.jensenshannon(p, q) with base=None (natural log, as Evidently calls it):
 * both normalised to sum 1, then sqrt((KL(p‖m) + KL(q‖m)) / 2) with m = (p + q) / 2.
 */
export function jensenShannonDistance(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i]!;
    sq += q[i]!;
  }
  let left = 0;
  let right = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]! / sp;
    const b = q[i]! / sq;
    const m = (a + b) / 2;
    left += relativeEntropy(a, m);
    right += relativeEntropy(b, m);
  }
  return Math.sqrt((left + right) / 2);
}

/**
 * Evidently's `_psi`: Σ (reference − current) · ln(reference / current) over shares that already
 * had their zeros filled (fillZeroShares).
 */
export function populationStabilityIndex(reference: Float64Array, current: Float64Array): number {
  let psi = 0;
  for (let i = 0; i < reference.length; i++) psi += (reference[i]! - current[i]!) * Math.log(reference[i]! / current[i]!);
  return psi;
}
