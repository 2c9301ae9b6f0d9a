/**
 * Micro-batching: single rows that arrive within `maxWaitMs` of each other are scored in one
 * onnxruntime run, so concurrent requests share one call's fixed cost (tensor creation, the native
 * hop, session bookkeeping). A batch runs when it holds `maxBatchRows` rows or when the wait ends;
 * `maxWaitMs` 0 runs it on the next turn of the event loop (setImmediate), which batches exactly
 * the requests that arrived together without adding any timer delay. One run at a time per model:
 * rows that arrive while a run is under way form the next batch.
 */
export interface MicroBatcherOptions {
  /** Values per row. */
  cols: number;
  maxWaitMs: number;
  maxBatchRows: number;
  run: (data: Float64Array, rows: number) => Promise<Float64Array>;
}

export interface MicroBatcherStats {
  rows: number;
  runs: number;
  largestBatch: number;
}

export interface MicroBatcher {
  submit(row: Float64Array): Promise<number>;
  stats(): MicroBatcherStats;
}

interface Pending {
  row: Float64Array;
  resolve: (p: number) => void;
  reject: (error: unknown) => void;
}

export function createMicroBatcher({ cols, maxWaitMs, maxBatchRows, run }: MicroBatcherOptions): MicroBatcher {
  let queue: Pending[] = [];
  let scheduled = false;
  let running = false;
  const stats: MicroBatcherStats = { rows: 0, runs: 0, largestBatch: 0 };

  const schedule = () => {
    if (scheduled || running) return;
    scheduled = true;
    if (maxWaitMs <= 0) setImmediate(flush);
    else setTimeout(flush, maxWaitMs);
  };

  const flush = () => {
    scheduled = false;
    if (running || queue.length === 0) return;
    const batch = queue.length > maxBatchRows ? queue.splice(0, maxBatchRows) : queue;
    if (batch === queue) queue = [];
    const data = new Float64Array(batch.length * cols);
    batch.forEach((p, i) => data.set(p.row, i * cols));
    running = true;
    stats.runs++;
    stats.rows += batch.length;
    stats.largestBatch = Math.max(stats.largestBatch, batch.length);
    run(data, batch.length).then(
      (out) => batch.forEach((p, i) => p.resolve(out[i]!)),
      (error: unknown) => batch.forEach((p) => p.reject(error)),
    ).finally(() => {
      running = false;
      // Rows that queued during the run go at once: they have waited long enough.
      if (queue.length) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  };

  return {
    submit(row) {
      if (row.length !== cols) return Promise.reject(new Error(`row has ${row.length} values, the model takes ${cols}`));
      return new Promise<number>((resolve, reject) => {
        queue.push({ row, resolve, reject });
        if (queue.length >= maxBatchRows && !running) {
          scheduled = false;
          flush();
        } else schedule();
      });
    },
    stats: () => ({ ...stats }),
  };
}
