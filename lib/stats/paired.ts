/**
 * Comparisons of two models' scores on the same requests (shadow mode): agreement of their
 * decisions at a threshold, mean absolute score difference, and the paired-bootstrap AUC difference.
 */
import { InvalidInput } from '../errors.js';
import type { Labels } from '../ml/types.js';
import { pairedBootstrap } from './bootstrap.js';
import type { BootstrapOptions, BootstrapResult } from './bootstrap.js';
import { delongAuc } from './delong.js';

function sameLength(a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length) throw new InvalidInput(`paired scores: ${a.length} control values but ${b.length} candidate values`, 'candidate');
}

/** Share of requests on which both models decide the same (score >= threshold means positive). */
export function agreementRate(control: ArrayLike<number>, candidate: ArrayLike<number>, threshold: number): number {
  sameLength(control, candidate);
  let same = 0;
  for (let i = 0; i < control.length; i++) if (control[i]! >= threshold === candidate[i]! >= threshold) same++;
  return same / control.length;
}

/** mean |candidate − control| over the paired requests. */
export function meanAbsoluteDifference(control: ArrayLike<number>, candidate: ArrayLike<number>): number {
  sameLength(control, candidate);
  let sum = 0;
  for (let i = 0; i < control.length; i++) sum += Math.abs(candidate[i]! - control[i]!);
  return sum / control.length;
}

/**
 * Paired bootstrap of AUC(candidate) − AUC(control) on the same labelled requests (seeded);
 * resamples with a single class are skipped.
 */
export function pairedAucDifference(
  y: Labels,
  control: Float64Array,
  candidate: Float64Array,
  options: BootstrapOptions = {},
): BootstrapResult {
  sameLength(control, candidate);
  sameLength(y, control);
  const yb = new Uint8Array(y.length);
  const cb = new Float64Array(y.length);
  const db = new Float64Array(y.length);
  return pairedBootstrap(
    y.length,
    (rows) => {
      for (let i = 0; i < rows.length; i++) {
        yb[i] = y[rows[i]!]!;
        cb[i] = control[rows[i]!]!;
        db[i] = candidate[rows[i]!]!;
      }
      return delongAuc(yb, db).auc - delongAuc(yb, cb).auc;
    },
    options,
  );
}
