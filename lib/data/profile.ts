/**
 * Data profiles: per-column summaries stored with each training set and used later as the drift
 * baseline, so the output is plain JSON (no NaN/Infinity: a statistic that does not exist is null).
 *
 * Numbers and timestamps (epoch ms): `count` non-null values (as pandas' describe), `nulls`,
 * min/max/mean, `std` the SAMPLE standard deviation (ddof = 1, pandas' describe; null below 2
 * values), quantiles with numpy's default linear interpolation, and a numpy-compatible fixed-bin
 * histogram (np.histogram(values, bins)). ±Infinity is a value (count, min, max, quantiles; a
 * non-finite statistic is written as null) but the histogram covers finite values only.
 * Categories and booleans: value frequencies, the most frequent first (ties by value), the rest
 * summed in `other`.
 */
import type { Column, Table } from './table.js';
import { compareText, nullCount } from './table.js';

export const PROFILE_VERSION = 1;

/** Quantile levels, keyed as they appear in the profile. */
export const PROFILE_QUANTILES = { p01: 0.01, p05: 0.05, p25: 0.25, p50: 0.5, p75: 0.75, p95: 0.95, p99: 0.99 } as const;

export type QuantileKey = keyof typeof PROFILE_QUANTILES;
export type Quantiles = Record<QuantileKey, number | null>;

export interface Histogram {
  /** bins + 1 edges; bin i is [edges[i], edges[i+1]), the last bin also includes its right edge. */
  edges: number[];
  counts: number[];
}

export interface NumericProfile {
  name: string;
  type: 'number' | 'timestamp';
  /** Non-null values. */
  count: number;
  nulls: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  /** Sample standard deviation (ddof = 1). */
  std: number | null;
  quantiles: Quantiles | null;
  histogram: Histogram | null;
}

export interface ValueCount {
  value: string;
  count: number;
}

export interface FrequencyProfile {
  name: string;
  type: 'category' | 'boolean';
  count: number;
  nulls: number;
  /** Distinct non-null values present. */
  distinct: number;
  /** The `topValues` most frequent values, most frequent first, ties in value order. */
  top: ValueCount[];
  /** Non-null values not in `top`. */
  other: number;
}

export type ColumnProfile = NumericProfile | FrequencyProfile;

export interface TableProfile {
  version: typeof PROFILE_VERSION;
  rowCount: number;
  columns: ColumnProfile[];
}

export interface ProfileOptions {
  /** Histogram bins, default 20. */
  bins?: number;
  /** Values listed per category/boolean column, default 50. */
  topValues?: number;
}

export function profileTable(table: Table, options: ProfileOptions = {}): TableProfile {
  return { version: PROFILE_VERSION, rowCount: table.rowCount, columns: table.columns.map((c) => profileColumn(c, options)) };
}

export function profileColumn(column: Column, options: ProfileOptions = {}): ColumnProfile {
  if (column.type === 'number' || column.type === 'timestamp') {
    return { name: column.name, type: column.type, ...numericSummary(column.values, options.bins ?? 20) };
  }
  return frequencyProfile(column, options.topValues ?? 50);
}

const jsonNumber = (value: number): number | null => (Number.isFinite(value) ? value : null);

/** The non-NaN values of `values`, sorted ascending. */
export function sortedValues(values: Float64Array): Float64Array {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) count++;
  const out = new Float64Array(count);
  let j = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) out[j++] = values[i]!;
  return out.sort();
}

export function numericSummary(values: Float64Array, bins: number): Omit<NumericProfile, 'name' | 'type'> {
  const sorted = sortedValues(values);
  const n = sorted.length;
  const nulls = values.length - n;
  if (n === 0) return { count: 0, nulls, min: null, max: null, mean: null, std: null, quantiles: null, histogram: null };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  const mean = sum / n;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (sorted[i]! - mean) ** 2;
  const quantiles = Object.fromEntries(
    Object.entries(PROFILE_QUANTILES).map(([key, q]) => [key, jsonNumber(quantileSorted(sorted, q))]),
  ) as Quantiles;
  return {
    count: n,
    nulls,
    min: jsonNumber(sorted[0]!),
    max: jsonNumber(sorted[n - 1]!),
    mean: jsonNumber(mean),
    std: n < 2 ? null : jsonNumber(Math.sqrt(squares / (n - 1))),
    quantiles,
    histogram: histogram(sorted, bins),
  };
}

/**
 * numpy.quantile(sorted, q) with the default 'linear' method: index (n - 1)·q between the two
 * neighbours, using numpy's lerp (from the upper neighbour when the weight is ≥ 0.5) so results match bit for bit.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const index = (n - 1) * q;
  const below = Math.min(Math.max(Math.floor(index), 0), n - 1);
  const above = Math.min(below + 1, n - 1);
  const weight = index - Math.floor(index);
  const a = sorted[below]!;
  const b = sorted[above]!;
  const diff = b - a;
  return weight >= 0.5 ? b - diff * (1 - weight) : a + diff * weight;
}

/**
 * np.histogram(values, bins) over the finite values: equal-width bins from min to max (± 0.5 when
 * they are equal), edges from np.linspace, the last bin closed. Null when there is no finite value.
 */
export function histogram(values: ArrayLike<number>, bins: number): Histogram | null {
  let first = Infinity;
  let last = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    if (v < first) first = v;
    if (v > last) last = v;
  }
  if (first > last) return null;
  if (first === last) {
    first -= 0.5;
    last += 0.5;
  }
  return equalWidthHistogram(values, first, last, bins);
}

/**
 * np.histogram(values, bins, range=(first, last)) for first < last: edges from np.linspace, the
 * last bin closed; non-finite values are skipped (values outside the range must not be passed).
 */
export function equalWidthHistogram(values: ArrayLike<number>, first: number, last: number, bins: number): Histogram {
  const edges = linspace(first, last, bins + 1);
  const counts = new Array<number>(bins).fill(0);
  const norm = bins / (last - first);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    let bin = Math.trunc((v - first) * norm);
    if (bin === bins) bin--;
    // As numpy: the scaled index can be one off within an ulp of an edge; the edges decide.
    if (v < edges[bin]!) bin--;
    if (v >= edges[bin + 1]! && bin !== bins - 1) bin++;
    counts[bin]!++;
  }
  return { edges, counts };
}

/** np.linspace(start, stop, num): i·step + start, the last one exactly stop. */
function linspace(start: number, stop: number, num: number): number[] {
  const div = num - 1;
  const delta = stop - start;
  const step = delta / div;
  const out = new Array<number>(num);
  for (let i = 0; i < num; i++) out[i] = step === 0 ? (i / div) * delta + start : i * step + start;
  out[num - 1] = stop;
  return out;
}

function frequencyProfile(column: Column & { type: 'category' | 'boolean' }, topValues: number): FrequencyProfile {
  const nulls = nullCount(column);
  const counts = new Map<string, number>();
  if (column.type === 'boolean') {
    let trues = 0;
    let falses = 0;
    for (const v of column.values) {
      if (v === 1) trues++;
      else if (v === 0) falses++;
    }
    if (trues) counts.set('true', trues);
    if (falses) counts.set('false', falses);
  } else {
    const byCode = new Float64Array(column.categories.length);
    for (const code of column.codes) if (code >= 0) byCode[code]!++;
    byCode.forEach((count, code) => {
      if (count > 0) counts.set(column.categories[code]!, count);
    });
  }
  const ranked = [...counts].map(([value, count]) => ({ value, count }));
  ranked.sort((a, b) => b.count - a.count || compareText(a.value, b.value));
  const top = ranked.slice(0, topValues);
  const total = ranked.reduce((sum, entry) => sum + entry.count, 0);
  const listed = top.reduce((sum, entry) => sum + entry.count, 0);
  return { name: column.name, type: column.type, count: total, nulls, distinct: ranked.length, top, other: total - listed };
}
