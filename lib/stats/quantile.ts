/**
 * Quantiles as numpy computes them: np.quantile with its default method 'linear' (Hyndman & Fan
 * type 7), bit for bit — lib/data/profile.ts's quantileSorted, plus an unsorted convenience.
 */
import { quantileSorted } from '../data/profile.js';

export { quantileSorted };

/** np.quantile(values, q, method='linear') of unsorted, NaN-free values (copies and sorts). */
export function quantile(values: ArrayLike<number>, q: number): number {
  return quantileSorted(Float64Array.from(values).sort(), q);
}
