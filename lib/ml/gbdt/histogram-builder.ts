/**
 * Builds a node's histograms on the main thread, or across the worker pool when the node is big
 * enough for the hand-off to pay; both paths give the same bits.
 */
import type { HistogramSource } from './histogram.js';
import { buildHistograms, copyHistograms } from './histogram.js';
import type { HistogramPool } from './histogram-pool.js';

/** Below this many (row, feature) cells a node is cheaper to build on the main thread alone. */
export const DEFAULT_MIN_PARALLEL_CELLS = 1 << 16;

export class HistogramBuilder {
  constructor(
    readonly source: HistogramSource,
    private readonly pool?: HistogramPool,
    private readonly minParallelCells = DEFAULT_MIN_PARALLEL_CELLS,
  ) {}

  /** Histograms of `features` over the node rows[start … start + count) into `out`. */
  build(start: number, count: number, contiguous: boolean, features: Int32Array, out: Float64Array): void {
    const pool = this.pool;
    if (pool && features.length > 1 && count * features.length >= this.minParallelCells) {
      pool.features.set(features);
      pool.build(start, count, contiguous, features.length);
    } else {
      buildHistograms(this.source, start, count, contiguous, features, 0, features.length);
    }
    copyHistograms(this.source.out, features, out);
  }
}
