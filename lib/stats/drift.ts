/**
 * Per-column and dataset drift, following Evidently's defaults
 * (evidently/legacy/calculations/stattests/registry.py `_get_default_stattest`): with a reference
 * of <= 1000 values, KS for numerical columns with > 5 distinct values, else chi-squared (z-test
 * for proportions with <= 2 distinct values); with a larger reference, Wasserstein distance normed
 * by the reference std for numerical columns with > 5 distinct values, else Jensen–Shannon.
 * Thresholds: 0.05 on p-values, 0.1 on distances. PSI and every method selectable per column.
 * Missing values (null, undefined, NaN, ±Infinity) are dropped first and counted.
 */
import { InvalidInput } from '../errors.js';
import { categoryCounts, categoryShares, fillZeroShares, quantileShares, sturgesShares } from './binning.js';
import type { Category, Shares } from './binning.js';
import { jensenShannonDistance, populationStabilityIndex, wassersteinNormedSorted } from './distances.js';
import { ksTestSorted } from './ks.js';
import { chiSquareAgainstReference, evidentlyZPValue, twoProportionZ } from './proportions.js';

export type ColumnType = 'numerical' | 'categorical';
export type DriftMethod = 'ks' | 'chisquare' | 'z' | 'wasserstein' | 'jensenshannon' | 'psi';
export type RawValue = number | string | boolean | null | undefined;

export interface DriftColumnInput {
  name: string;
  type: ColumnType;
  reference: ArrayLike<RawValue>;
  current: ArrayLike<RawValue>;
  /** Default: Evidently's choice (see the module comment). */
  method?: DriftMethod;
  /** Default: the method's (0.05 for p-values, 0.1 for distances). */
  threshold?: number;
  /** PSI only: 'quantile' (default: `bins` reference-quantile bins) or 'evidently' (Evidently's binning). */
  psiBinning?: 'quantile' | 'evidently';
  /** PSI with quantile binning: number of bins (default 10). */
  bins?: number;
}

/**
 * `ok`: tested. `empty`: the reference or the current sample has no non-missing value (no test, no
 * drift). `constant`: both samples hold one and the same value (no test: no drift, p-value 1 / distance 0).
 */
export type ColumnStatus = 'ok' | 'empty' | 'constant';

export interface ColumnDrift {
  column: string;
  type: ColumnType;
  method: DriftMethod;
  status: ColumnStatus;
  /**
   * KS D, chi-squared, z, normed Wasserstein, Jensen–Shannon distance or PSI; null when not tested.
   * Chi-squared is Infinity (p-value 0) when the current sample has a category the reference lacks, as in scipy.
   */
  statistic: number | null;
  /** For ks / chisquare / z; null for distances and untested columns. */
  pValue: number | null;
  threshold: number;
  /** p-value methods: pValue below threshold (KS: at or below, as Evidently); distances: statistic >= threshold. */
  drift: boolean;
  /** Non-missing values used. */
  n: { reference: number; current: number };
  missing: { reference: number; current: number };
}

const P_VALUE_METHODS = new Set<DriftMethod>(['ks', 'chisquare', 'z']);
/** Evidently's StatTest default thresholds. */
export const DEFAULT_THRESHOLDS: Record<DriftMethod, number> = {
  ks: 0.05,
  chisquare: 0.05,
  z: 0.05,
  wasserstein: 0.1,
  jensenshannon: 0.1,
  psi: 0.1,
};
/** Evidently switches from tests to distances above this many reference values. */
const SMALL_REFERENCE = 1000;
/** Numerical columns with more distinct values than this are treated as continuous. */
const FEW_VALUES = 5;
/** get_binned_data histograms numerical columns with more distinct reference values than this. */
const HISTOGRAM_MIN_VALUES = 20;

function isMissing(v: RawValue): v is null | undefined {
  return v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v));
}

/** A column's non-missing values: sorted float64 for numerical columns, an array for categorical ones. */
type Sample = { kind: 'numerical'; values: Float64Array } | { kind: 'categorical'; values: Category[] };

interface Cleaned {
  sample: Sample;
  size: number;
  missing: number;
}

function clean(column: string, type: ColumnType, which: 'reference' | 'current', raw: ArrayLike<RawValue>): Cleaned {
  let missing = 0;
  if (type === 'numerical') {
    const values = new Float64Array(raw.length);
    let n = 0;
    for (let i = 0; i < raw.length; i++) {
      const v = raw[i];
      if (isMissing(v)) missing++;
      else if (typeof v !== 'number') {
        throw new InvalidInput(`drift column ${column}: ${which}[${i}] is a ${typeof v}; a numerical column holds numbers`, column);
      } else values[n++] = v;
    }
    const sorted = values.subarray(0, n).sort();
    return { sample: { kind: 'numerical', values: sorted }, size: n, missing };
  }
  const values: Category[] = [];
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    if (isMissing(v)) missing++;
    else values.push(v);
  }
  return { sample: { kind: 'categorical', values }, size: values.length, missing };
}

/** Distinct values of both samples together, counting no further than `cap` + 1 for sorted numbers. */
function distinctCount(a: Sample, b: Sample, cap: number): number {
  if (a.kind === 'numerical' && b.kind === 'numerical') {
    const x = a.values;
    const y = b.values;
    let i = 0;
    let j = 0;
    let count = 0;
    while ((i < x.length || j < y.length) && count <= cap) {
      const v = j >= y.length || (i < x.length && x[i]! <= y[j]!) ? x[i]! : y[j]!;
      count++;
      while (i < x.length && x[i] === v) i++;
      while (j < y.length && y[j] === v) j++;
    }
    return count;
  }
  const seen = new Set<Category>(asCategories(a));
  for (const v of asCategories(b)) seen.add(v);
  return seen.size;
}

function asCategories(s: Sample): Category[] {
  return s.kind === 'categorical' ? s.values : Array.from(s.values);
}

function asNumbers(s: Sample): Float64Array {
  if (s.kind !== 'numerical') throw new Error('unreachable: a numerical method on a categorical sample');
  return s.values;
}

/** Evidently's `_get_default_stattest` for a column with `distinct` values and `referenceSize` reference rows. */
export function defaultDriftMethod(type: ColumnType, referenceSize: number, distinct: number): DriftMethod {
  if (referenceSize <= SMALL_REFERENCE) {
    if (type === 'numerical' && distinct > FEW_VALUES) return 'ks';
    return distinct > 2 ? 'chisquare' : 'z';
  }
  if (type === 'numerical' && distinct > FEW_VALUES) return 'wasserstein';
  return 'jensenshannon';
}

/** Evidently's get_binned_data: histogram for numerical columns with > 20 distinct reference values, else categories. */
function evidentlyShares(reference: Sample, current: Sample): Shares {
  if (reference.kind === 'numerical' && distinctCount(reference, { kind: 'numerical', values: new Float64Array(0) }, HISTOGRAM_MIN_VALUES) > HISTOGRAM_MIN_VALUES) {
    return sturgesShares(reference.values, asNumbers(current));
  }
  return categoryShares(asCategories(reference), asCategories(current));
}

/** Evidently's `_z_stat_test`: the first of the sorted categories against the rest. */
function zTest(reference: Category[], current: Category[]): { statistic: number; pValue: number } {
  const keys = [...new Set([...reference, ...current])].sort(compareCategories);
  const first = keys[0];
  let x1 = 0;
  for (const v of reference) if (v !== first) x1++;
  let x2 = 0;
  for (const v of current) if (v !== first) x2++;
  const z = twoProportionZ(x1, reference.length, x2, current.length);
  return { statistic: z, pValue: evidentlyZPValue(z) };
}

/** Python's sorted() order for numbers and strings; numbers before strings when mixed. */
function compareCategories(a: Category, b: Category): number {
  if (typeof a === typeof b) return a < b ? -1 : a > b ? 1 : 0;
  return typeof a === 'number' ? -1 : typeof b === 'number' ? 1 : String(a) < String(b) ? -1 : 1;
}

function runMethod(input: DriftColumnInput, method: DriftMethod, reference: Sample, current: Sample) {
  switch (method) {
    case 'ks': {
      numericalOnly(input, method);
      const r = ksTestSorted(asNumbers(reference), asNumbers(current));
      return { statistic: r.statistic, pValue: r.pValue };
    }
    case 'wasserstein':
      numericalOnly(input, method);
      return { statistic: wassersteinNormedSorted(asNumbers(reference), asNumbers(current)), pValue: null };
    case 'chisquare': {
      const c = categoryCounts(asCategories(reference), asCategories(current));
      const r = chiSquareAgainstReference(c.reference, c.current);
      return { statistic: r.statistic, pValue: r.pValue };
    }
    case 'z':
      return zTest(asCategories(reference), asCategories(current));
    case 'jensenshannon': {
      const shares = evidentlyShares(reference, current);
      return { statistic: jensenShannonDistance(shares.reference, shares.current), pValue: null };
    }
    case 'psi': {
      const shares = psiShares(input, reference, current);
      fillZeroShares(shares.reference);
      fillZeroShares(shares.current);
      return { statistic: populationStabilityIndex(shares.reference, shares.current), pValue: null };
    }
  }
}

function psiShares(input: DriftColumnInput, reference: Sample, current: Sample): Shares {
  if (reference.kind === 'categorical' || input.psiBinning === 'evidently') return evidentlyShares(reference, current);
  const bins = input.bins ?? 10;
  if (!Number.isInteger(bins) || bins < 1) throw new InvalidInput(`drift column ${input.name}: bins must be an integer >= 1, got ${bins}`, 'bins');
  return quantileShares(reference.values, asNumbers(current), bins);
}

function numericalOnly(input: DriftColumnInput, method: DriftMethod): void {
  if (input.type !== 'numerical') {
    throw new InvalidInput(`drift column ${input.name}: method ${method} applies to numerical columns only`, 'method');
  }
}

/** Drift of one column; never throws on missing, empty or constant data (see ColumnStatus). */
export function columnDrift(input: DriftColumnInput): ColumnDrift {
  const ref = clean(input.name, input.type, 'reference', input.reference);
  const cur = clean(input.name, input.type, 'current', input.current);
  const distinct = distinctCount(ref.sample, cur.sample, FEW_VALUES);
  const method = input.method ?? defaultDriftMethod(input.type, ref.size, distinct);
  const threshold = input.threshold ?? DEFAULT_THRESHOLDS[method];
  if (!(threshold >= 0) || !Number.isFinite(threshold)) {
    throw new InvalidInput(`drift column ${input.name}: threshold must be a finite number >= 0, got ${threshold}`, 'threshold');
  }
  const isTest = P_VALUE_METHODS.has(method);
  const base = {
    column: input.name,
    type: input.type,
    method,
    threshold,
    n: { reference: ref.size, current: cur.size },
    missing: { reference: ref.missing, current: cur.missing },
  };
  if (ref.size === 0 || cur.size === 0) {
    return { ...base, status: 'empty', statistic: null, pValue: null, drift: false };
  }
  if (distinct === 1) {
    return { ...base, status: 'constant', statistic: 0, pValue: isTest ? 1 : null, drift: false };
  }
  const { statistic, pValue } = runMethod(input, method, ref.sample, cur.sample);
  let drift: boolean;
  if (pValue === null) drift = statistic >= threshold;
  else drift = method === 'ks' ? pValue <= threshold : pValue < threshold;
  return { ...base, status: 'ok', statistic, pValue, drift };
}

export interface DatasetDrift {
  columns: ColumnDrift[];
  /** Columns that could be tested (status ok or constant). */
  evaluated: number;
  drifted: number;
  /** drifted / evaluated (0 when nothing could be evaluated). */
  share: number;
  shareThreshold: number;
  /** share >= shareThreshold, and at least one column evaluated. */
  drift: boolean;
}

/** Dataset drift: the share of drifted columns among those evaluated, against `shareThreshold` (default 0.5, Evidently's). */
export function datasetDrift(columns: DriftColumnInput[], options: { shareThreshold?: number } = {}): DatasetDrift {
  const shareThreshold = options.shareThreshold ?? 0.5;
  if (!(shareThreshold > 0 && shareThreshold <= 1)) {
    throw new InvalidInput(`dataset drift: shareThreshold must be in (0, 1], got ${shareThreshold}`, 'shareThreshold');
  }
  const results = columns.map(columnDrift);
  const evaluated = results.filter((r) => r.status !== 'empty').length;
  const drifted = results.filter((r) => r.drift).length;
  const share = evaluated === 0 ? 0 : drifted / evaluated;
  return { columns: results, evaluated, drifted, share, shareThreshold, drift: evaluated > 0 && share >= shareThreshold };
}
