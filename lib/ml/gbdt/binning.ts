/**
 * Quantile binning of features, like scikit-learn's `_BinMapper`: per feature up to `maxBins`
 * bins for non-missing values plus one dedicated missing-value bin (index `maxBins`).
 *
 * Values are compared as float32 because the ONNX export does: a value goes to the first bin
 * whose threshold is >= Math.fround(value), and every threshold is a float32-representable
 * number, so "bin <= b" on training data is exactly "Math.fround(x) <= threshold[b]" at
 * prediction time, in TypeScript and in ONNX Runtime alike.
 */
import { InvalidInput } from '../../errors.js';
import type { Random } from '../random.js';
import type { Matrix } from '../types.js';

export interface BinMapper {
  /** Non-missing bins per feature are 0 … maxBins − 1; the missing-value bin is `maxBins`. */
  readonly maxBins: number;
  /** Per feature, strictly increasing float32-representable thresholds (nBinsNonMissing − 1 of them). */
  readonly thresholds: readonly Float64Array[];
}

/** Plain JSON of a bin mapper (infinite thresholds as strings, JSON has no Infinity). */
export interface BinMapperJson {
  maxBins: number;
  thresholds: Array<Array<number | string>>;
}

/**
 * A feature-major float32 copy of the rows `rows` of `x` (all when undefined): feature f of
 * row i at f · n + i. Float32 because that is what ONNX Runtime compares; one pass over x.
 */
export function toFloatColumns(x: Matrix, rows?: Uint32Array): Float32Array {
  const n = rows ? rows.length : x.rows;
  const cols = x.cols;
  const columns = new Float32Array(n * cols);
  for (let i = 0; i < n; i++) {
    const from = (rows ? rows[i]! : i) * cols;
    for (let f = 0; f < cols; f++) columns[f * n + i] = x.data[from + f]!;
  }
  return columns;
}

/**
 * Finds bin thresholds from float columns of n rows, using at most `sampleSize` rows chosen with
 * `rng` (quantiles of a sample are as good and much cheaper).
 */
export function fitBinMapper(columns: Float32Array, n: number, maxBins: number, sampleSize: number, rng: Random): BinMapper {
  const cols = n === 0 ? 0 : columns.length / n;
  const sample = n > sampleSize ? sampleWithoutReplacement(identity(n), sampleSize, rng) : undefined;
  const m = sample ? sample.length : n;
  const values = new Float32Array(m);
  const scratch = new Uint32Array(m);
  const thresholds: Float64Array[] = [];
  for (let f = 0; f < cols; f++) {
    const base = f * n;
    let kept = 0;
    for (let i = 0; i < m; i++) {
      const v = columns[base + (sample ? sample[i]! : i)]!;
      if (v === v) values[kept++] = v;
    }
    thresholds.push(featureThresholds(sortFloat32(values.subarray(0, kept), scratch), maxBins));
  }
  return { maxBins, thresholds };
}

/** Thresholds for one feature from its sorted float32 non-missing values. */
function featureThresholds(sorted: Float32Array, maxBins: number): Float64Array {
  const distinct: number[] = [];
  for (let i = 0; i < sorted.length && distinct.length <= maxBins; i++) {
    if (i === 0 || sorted[i] !== sorted[i - 1]) distinct.push(sorted[i]!);
  }
  const out: number[] = [];
  const push = (t: number) => {
    if (out.length === 0 || t > out[out.length - 1]!) out.push(t);
  };
  if (distinct.length <= maxBins) {
    for (let i = 1; i < distinct.length; i++) push(thresholdBetween(distinct[i - 1]!, distinct[i]!));
  } else {
    // numpy's percentile(method='midpoint') at 100·k/maxBins, k = 1 … maxBins − 1
    const last = sorted.length - 1;
    for (let k = 1; k < maxBins; k++) {
      const position = (k / maxBins) * last;
      const lo = Math.floor(position);
      const hi = Math.ceil(position);
      push(lo === hi ? sorted[lo]! : thresholdBetween(sorted[lo]!, sorted[hi]!));
    }
  }
  return Float64Array.from(out);
}

/** A float32 threshold t with lo <= t < hi, as close as float32 allows to their midpoint. */
function thresholdBetween(lo: number, hi: number): number {
  if (lo === hi) return lo;
  const t = Math.fround(lo / 2 + hi / 2);
  // rounding up to hi (adjacent float32s) or NaN (−∞ and +∞) falls back to lo
  return t >= lo && t < hi ? t : lo;
}

/**
 * Bins float columns of n rows into a column-major byte matrix of the same layout (feature f
 * of row i at f · n + i). `out` may be shared memory.
 */
export function binColumns(columns: Float32Array, n: number, mapper: BinMapper, out?: Uint8Array): Uint8Array {
  const cols = mapper.thresholds.length;
  const binned = out ?? new Uint8Array(n * cols);
  const missing = mapper.maxBins;
  // 255 thresholds padded with +∞ make the search a fixed 8 halvings
  const padded = new Float64Array(255);
  for (let f = 0; f < cols; f++) {
    padded.fill(Infinity).set(mapper.thresholds[f]!);
    const base = f * n;
    for (let i = 0; i < n; i++) {
      const v = columns[base + i]!;
      if (v !== v) {
        binned[base + i] = missing;
        continue;
      }
      // bin = number of thresholds below v, so bins are (thr[b − 1], thr[b]]; branch-free (3× faster)
      let b = +(v > padded[127]!) << 7;
      b += +(v > padded[b + 63]!) << 6;
      b += +(v > padded[b + 31]!) << 5;
      b += +(v > padded[b + 15]!) << 4;
      b += +(v > padded[b + 7]!) << 3;
      b += +(v > padded[b + 3]!) << 2;
      b += +(v > padded[b + 1]!) << 1;
      b += +(v > padded[b]!);
      binned[base + i] = b;
    }
  }
  return binned;
}

/** Per feature, 1 when some row of the binned matrix is in the missing-value bin. */
export function featuresWithMissing(binned: Uint8Array, nRows: number, nFeatures: number, missingBin: number): Uint8Array {
  const has = new Uint8Array(nFeatures);
  for (let f = 0; f < nFeatures; f++) {
    const base = f * nRows;
    for (let i = 0; i < nRows; i++) {
      if (binned[base + i] === missingBin) {
        has[f] = 1;
        break;
      }
    }
  }
  return has;
}

export function binMapperToJson(mapper: BinMapper): BinMapperJson {
  return { maxBins: mapper.maxBins, thresholds: mapper.thresholds.map((t) => Array.from(t, encodeFloat)) };
}

export function binMapperFromJson(json: BinMapperJson, field: string): BinMapper {
  if (!json || !Number.isInteger(json.maxBins) || !Array.isArray(json.thresholds)) {
    throw new InvalidInput(`${field} is not a gbdt bin mapper`, field);
  }
  return { maxBins: json.maxBins, thresholds: json.thresholds.map((t) => Float64Array.from(t, (v) => decodeFloat(v, field))) };
}

/** JSON has no ±Infinity: those are written as strings, every finite number as itself. */
export function encodeFloat(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

export function decodeFloat(v: number | string, field: string): number {
  if (typeof v === 'number') return v;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new InvalidInput(`${field} holds ${JSON.stringify(v)} where a number belongs`, field);
}

function identity(n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/**
 * Sorts float32 values ascending (LSD radix sort on order-preserving bit keys, three passes of
 * 11 bits): much faster than a comparison sort for the 200 000-row samples. No NaNs allowed.
 */
export function sortFloat32(values: Float32Array, scratch: Uint32Array): Float32Array {
  const n = values.length;
  let from = new Uint32Array(values.buffer, values.byteOffset, n);
  let to = scratch.subarray(0, n);
  // negative floats: flip all bits; positive: flip the sign bit; then unsigned order = float order
  for (let i = 0; i < n; i++) {
    const u = from[i]!;
    from[i] = u & 0x80000000 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
  }
  // the three digit histograms in one pass, then turned into start positions
  const counts = new Int32Array(3 * 2048);
  for (let i = 0; i < n; i++) {
    const key = from[i]!;
    counts[key & 0x7ff]!++;
    counts[2048 + ((key >>> 11) & 0x7ff)]!++;
    counts[4096 + (key >>> 22)]!++;
  }
  for (let pass = 0; pass < 3; pass++) {
    let sum = 0;
    for (let d = pass * 2048; d < (pass + 1) * 2048; d++) {
      const c = counts[d]!;
      counts[d] = sum;
      sum += c;
    }
  }
  for (let pass = 0; pass < 3; pass++) {
    const shift = 11 * pass;
    const offset = 2048 * pass;
    for (let i = 0; i < n; i++) {
      const key = from[i]!;
      to[counts[offset + ((key >>> shift) & 0x7ff)]!++] = key;
    }
    [from, to] = [to, from];
  }
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const key = from[i]!;
    bits[i] = key & 0x80000000 ? (key ^ 0x80000000) >>> 0 : ~key >>> 0;
  }
  return values;
}

/** `k` distinct entries of `from` (partial Fisher–Yates), returned in ascending order. */
function sampleWithoutReplacement(from: Uint32Array, k: number, rng: Random): Uint32Array {
  const pool = from.slice();
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(pool.length - i);
    const tmp = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = tmp;
  }
  return pool.subarray(0, k).sort();
}
