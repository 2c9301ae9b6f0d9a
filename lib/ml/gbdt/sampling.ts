/**
 * The fit's random choices. Each comes from its own stream seeded by (seed, stream id) alone,
 * so a fit resumed at iteration k draws exactly what an uninterrupted one would.
 */
import { InvalidInput } from '../../errors.js';
import { Random } from '../random.js';
import { stratifiedTrainTestSplit } from '../split.js';
import type { Labels } from '../types.js';

export const STREAM = { validation: 0, binning: 1, firstTree: 2 } as const;

/** A random stream for (seed, id), independent of the other ids' streams. */
export function stream(seed: number, id: number): Random {
  let h = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(id + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39);
  return new Random((h ^ (h >>> 15)) >>> 0);
}

/** The early-stopping hold-out: lib/ml/split.ts's stratified split, seeded from this fit's stream. */
export function stratifiedSplit(y: Labels, fraction: number, rng: Random): { train: Uint32Array; validation: Uint32Array } {
  try {
    const { train, test } = stratifiedTrainTestSplit(y, { testFraction: fraction, seed: rng.nextUint32() });
    return { train, validation: test };
  } catch (error) {
    if (error instanceof InvalidInput) throw new InvalidInput(`validationFraction ${fraction}: ${error.message}`, 'validationFraction');
    throw error;
  }
}

/** max(1, round(fraction × n)) features drawn without replacement, ascending. */
export function chooseFeatures(n: number, fraction: number, rng: Random): Int32Array {
  const all = Int32Array.from({ length: n }, (_, i) => i);
  if (fraction >= 1) return all;
  const k = Math.max(1, Math.round(fraction * n));
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(n - i);
    const tmp = all[i]!;
    all[i] = all[j]!;
    all[j] = tmp;
  }
  return all.slice(0, k).sort();
}

/** Writes this tree's rows (each kept with probability `fraction`) to `rows`, ascending; returns how many. */
export function chooseRows(n: number, fraction: number, rng: Random, rows: Uint32Array): number {
  if (fraction >= 1) {
    for (let i = 0; i < n; i++) rows[i] = i;
    return n;
  }
  let count = 0;
  for (let i = 0; i < n; i++) if (rng.next() < fraction) rows[count++] = i;
  return count;
}

/** values[rows[i]] for each i. */
export function pick<T extends Uint8Array | Float64Array>(values: T, rows: Uint32Array): T {
  const out = new (values.constructor as new (n: number) => T)(rows.length);
  for (let i = 0; i < rows.length; i++) out[i] = values[rows[i]!]!;
  return out;
}
