/**
 * Quantiles and order statistics as numpy computes them.
 */

/**
 * np.quantile(sorted, q) with numpy's default method 'linear' (Hyndman & Fan type 7): the value at
 * virtual index (n − 1)·q, interpolated from the nearer end as numpy's _lerp does, so results agree
 * bit for bit. `sorted` must be ascending, non-empty and NaN-free.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const last = sorted.length - 1;
  const virtual = last * q;
  if (virtual >= last) return sorted[last]!;
  if (virtual <= 0) return sorted[0]!;
  const below = Math.floor(virtual);
  const gamma = virtual - below;
  const a = sorted[below]!;
  const b = sorted[below + 1]!;
  const diff = b - a;
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

/** np.quantile(values, q, method='linear') of unsorted values (copies and sorts). */
export function quantile(values: ArrayLike<number>, q: number): number {
  return quantileSorted(Float64Array.from(values).sort(), q);
}
