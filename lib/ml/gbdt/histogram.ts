/**
 * Gradient histograms: per feature and bin, (sum of gradients, sum of hessians, count) of the
 * rows of a node. The builds run on the main thread and in the worker pool alike, and each
 * feature is always summed by one thread in row order, so threading never changes a bit; the
 * wasm kernels and the JavaScript loops here add the same values in the same order, too.
 */
import type { HistogramKernels, WasmMemory } from './histogram-wasm.js';
import { createSharedMemory, kernelsFor } from './histogram-wasm.js';

/** Doubles per bin: sum of gradients, sum of hessians, row count. */
export const BIN_STRIDE = 3;
/** Bins per feature: up to 255 non-missing bins plus the missing-value bin. */
export const HIST_BINS = 256;
/** Doubles per feature in a histogram buffer. */
export const FEATURE_STRIDE = HIST_BINS * BIN_STRIDE;

/** What a histogram build reads and writes: binned data and gradients of the training rows. */
export interface HistogramSource {
  /** Column-major bins: feature f of row r at f · nRows + r. */
  binned: Uint8Array;
  nRows: number;
  nFeatures: number;
  /** The partition: rows of a node are rows[start … start + count). */
  rows: Uint32Array;
  /** Room for the right-hand rows while a node's rows are partitioned. */
  scratch: Uint32Array;
  /**
   * Per row r: gradient at 2r, hessian at 2r + 1, as float32 like scikit-learn's (sums are
   * float64): half the memory traffic of the histogram loops, one 8-byte load per row.
   */
  gradHess: Float32Array;
  /** Where every build writes: feature f at f · FEATURE_STRIDE. */
  out: Float64Array;
  /** When set, every array above is a view of this memory and the wasm kernels run. */
  memory?: WasmMemory;
}

/**
 * Allocates a source for nRows × nFeatures: in one shared wasm memory when wasm32 can hold it
 * (and `wasm`), else in SharedArrayBuffers (`shared`) or plain arrays, for the JavaScript loops.
 */
export function allocateSource(nRows: number, nFeatures: number, shared: boolean, wasm = true): HistogramSource {
  const sizes = { out: nFeatures * FEATURE_STRIDE * 8, gradHess: nRows * 8, rows: nRows * 4, binned: nRows * nFeatures };
  const memory = wasm ? createSharedMemory(sizes.out + sizes.gradHess + 2 * sizes.rows + sizes.binned) : undefined;
  if (memory) {
    let at = 0;
    const take = <T>(Type: new (buffer: ArrayBufferLike, offset: number, length: number) => T, bytes: number, length: number): T => {
      const view = new Type(memory.buffer, at, length);
      at += bytes;
      return view;
    };
    // float64 arrays first so that every view is aligned
    return {
      out: take(Float64Array, sizes.out, nFeatures * FEATURE_STRIDE),
      gradHess: take(Float32Array, sizes.gradHess, 2 * nRows),
      rows: take(Uint32Array, sizes.rows, nRows),
      scratch: take(Uint32Array, sizes.rows, nRows),
      binned: take(Uint8Array, sizes.binned, nRows * nFeatures),
      nRows,
      nFeatures,
      memory,
    };
  }
  return {
    out: allocate(Float64Array, nFeatures * FEATURE_STRIDE, shared),
    gradHess: allocate(Float32Array, 2 * nRows, shared),
    rows: allocate(Uint32Array, nRows, shared),
    scratch: new Uint32Array(nRows),
    binned: allocate(Uint8Array, nRows * nFeatures, shared),
    nRows,
    nFeatures,
  };
}

interface TypedArrayType<T> {
  new (length: number): T;
  new (buffer: SharedArrayBuffer): T;
  readonly BYTES_PER_ELEMENT: number;
}

/** A zeroed typed array of `length`, over shared memory when `shared` (workers can then read it). */
export function allocate<T>(Type: TypedArrayType<T>, length: number, shared: boolean): T {
  return shared ? new Type(new SharedArrayBuffer(length * Type.BYTES_PER_ELEMENT)) : new Type(length);
}

/**
 * Histograms of features features[from … to) over the node rows[start … start + count) into
 * `src.out`. `contiguous` means the node is rows start … start + count − 1 themselves (the root
 * without row subsampling): no indirection.
 */
export function buildHistograms(
  src: HistogramSource,
  start: number,
  count: number,
  contiguous: boolean,
  features: Int32Array,
  from: number,
  to: number,
): void {
  if (src.memory) {
    buildWithKernels(kernelsFor(src.memory), src, start, count, contiguous, features, from, to);
    return;
  }
  const { binned, nRows, rows, out } = src;
  for (let k = from; k < to; k++) {
    const f = features[k]!;
    const base = f * FEATURE_STRIDE;
    out.fill(0, base, base + FEATURE_STRIDE);
    const col = f * nRows;
    const gh = src.gradHess;
    for (let i = start; i < start + count; i++) {
      const r = contiguous ? i : rows[i]!;
      const at = base + binned[col + r]! * BIN_STRIDE;
      out[at] = out[at]! + gh[2 * r]!;
      out[at + 1] = out[at + 1]! + gh[2 * r + 1]!;
      out[at + 2] = out[at + 2]! + 1;
    }
  }
}

/** The same builds through the wasm loops, four features per pass where there are four. */
function buildWithKernels(
  kernels: HistogramKernels,
  src: HistogramSource,
  start: number,
  count: number,
  contiguous: boolean,
  features: Int32Array,
  from: number,
  to: number,
): void {
  const { binned, nRows, out } = src;
  const column = (k: number) => binned.byteOffset + features[k]! * nRows;
  const target = (k: number) => out.byteOffset + features[k]! * FEATURE_STRIDE * 8;
  for (let k = from; k < to; k++) {
    const base = features[k]! * FEATURE_STRIDE;
    out.fill(0, base, base + FEATURE_STRIDE);
  }
  // contiguous rows start at row `start`; indexed rows read gradients at their row id
  const gh = src.gradHess.byteOffset + (contiguous ? start * 8 : 0);
  const rows = src.rows.byteOffset + start * 4;
  let k = from;
  for (; k + 4 <= to; k += 4) {
    if (contiguous) {
      kernels.contiguous4(column(k) + start, column(k + 1) + start, column(k + 2) + start, column(k + 3) + start, target(k), target(k + 1), target(k + 2), target(k + 3), gh, count);
    } else {
      kernels.indexed4(column(k), column(k + 1), column(k + 2), column(k + 3), target(k), target(k + 1), target(k + 2), target(k + 3), rows, gh, count);
    }
  }
  for (; k < to; k++) {
    if (contiguous) kernels.contiguous1(column(k) + start, target(k), gh, count);
    else kernels.indexed1(column(k), target(k), rows, gh, count);
  }
}

/** sibling = parent − child for the given features (the histogram subtraction trick). */
export function subtractHistograms(parent: Float64Array, child: Float64Array, features: Int32Array, out: Float64Array): void {
  for (let k = 0; k < features.length; k++) {
    const base = features[k]! * FEATURE_STRIDE;
    for (let j = base; j < base + FEATURE_STRIDE; j++) out[j] = parent[j]! - child[j]!;
  }
}

/** Copies the sections of `features` from `from` to `to`. */
export function copyHistograms(from: Float64Array, features: Int32Array, to: Float64Array): void {
  for (let k = 0; k < features.length; k++) {
    const base = features[k]! * FEATURE_STRIDE;
    to.set(from.subarray(base, base + FEATURE_STRIDE), base);
  }
}
