/**
 * A small pool of worker threads that build histograms over chunks of features, sharing the
 * binned data, partition and gradients through SharedArrayBuffers. The main thread takes the
 * first chunk itself and waits on an Atomics counter for the rest, so a build stays synchronous
 * and each feature is still summed by one thread in row order (bit-identical to one thread).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { HistogramSource } from './histogram.js';
import { allocate, buildHistograms } from './histogram.js';

/** Slots of the shared control block. */
export const CTRL = {
  generation: 0,
  pending: 1,
  start: 2,
  count: 3,
  contiguous: 4,
  nFeatures: 5,
  stop: 6,
  participants: 7,
  size: 8,
} as const;

/** What every worker gets once, at start: views over shared memory. */
export interface PoolWorkerData {
  control: Int32Array;
  source: HistogramSource;
  features: Int32Array;
  /** This worker's chunk index (the main thread is chunk 0). */
  index: number;
}

/** How long the main thread waits for a worker's chunk before declaring the pool broken. */
const WORKER_TIMEOUT_MS = 120_000;

/** Feature positions [from, to) of chunk `index` of `participants` over `nFeatures`. */
export function chunkOf(index: number, participants: number, nFeatures: number): [number, number] {
  return [Math.floor((index * nFeatures) / participants), Math.floor(((index + 1) * nFeatures) / participants)];
}

export class HistogramPool {
  private constructor(
    private readonly workers: Worker[],
    private readonly control: Int32Array,
    private readonly source: HistogramSource,
    /** Shared list of the features to build. */
    readonly features: Int32Array,
  ) {}

  /** Number of threads building histograms, the main thread included. */
  get participants(): number {
    return this.workers.length + 1;
  }

  /**
   * Starts `nWorkers` workers over `source` (whose arrays must all be shared memory) and waits
   * until each is ready. Throws when workers cannot start; callers then work single-threaded.
   */
  static async start(source: HistogramSource, nWorkers: number): Promise<HistogramPool> {
    const control = allocate(Int32Array, CTRL.size, true);
    control[CTRL.participants] = nWorkers + 1;
    const features = allocate(Int32Array, source.nFeatures, true);
    const entry = workerEntry();
    const workers: Worker[] = [];
    try {
      const ready: Array<Promise<void>> = [];
      for (let w = 0; w < nWorkers; w++) {
        const data: PoolWorkerData = { control, source, features, index: w + 1 };
        const worker = new Worker(BOOTSTRAP, { eval: true, workerData: { ...entry, data } });
        worker.unref();
        workers.push(worker);
        ready.push(
          new Promise<void>((resolve, reject) => {
            worker.once('message', () => resolve());
            worker.once('error', reject);
            worker.once('exit', (code) => reject(new Error(`gbdt histogram worker exited with code ${code} before it was ready`)));
          }),
        );
      }
      await Promise.all(ready);
    } catch (error) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw error;
    }
    return new HistogramPool(workers, control, source, features);
  }

  /**
   * Builds histograms of the first `nFeatures` entries of `this.features` over the node
   * rows[start … start + count) into `source.out`.
   */
  build(start: number, count: number, contiguous: boolean, nFeatures: number): void {
    const c = this.control;
    c[CTRL.start] = start;
    c[CTRL.count] = count;
    c[CTRL.contiguous] = contiguous ? 1 : 0;
    c[CTRL.nFeatures] = nFeatures;
    Atomics.store(c, CTRL.pending, this.workers.length);
    Atomics.add(c, CTRL.generation, 1);
    Atomics.notify(c, CTRL.generation);
    const [from, to] = chunkOf(0, this.participants, nFeatures);
    buildHistograms(this.source, start, count, contiguous, this.features, from, to);
    for (;;) {
      const pending = Atomics.load(c, CTRL.pending);
      if (pending === 0) return;
      if (Atomics.wait(c, CTRL.pending, pending, WORKER_TIMEOUT_MS) === 'timed-out') {
        throw new Error('a gbdt histogram worker stopped responding');
      }
    }
  }

  async close(): Promise<void> {
    Atomics.store(this.control, CTRL.stop, 1);
    Atomics.add(this.control, CTRL.generation, 1);
    Atomics.notify(this.control, CTRL.generation);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * The worker module next to this one, and (when it is TypeScript, run through tsx) the loader
 * the worker must register first: workers do not inherit the parent's `--import tsx` hooks.
 */
function workerEntry(): { entry: string; loader?: string } {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  const entry = new URL(`./histogram-worker${ext}`, import.meta.url).href;
  return ext === '.ts' ? { entry, loader: import.meta.resolve('tsx/esm/api') } : { entry };
}

/** Worker bootstrap (evaluated as CommonJS): register the loader if needed, then run the entry. */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.loader) (await import(workerData.loader)).register();
  await import(workerData.entry);
})().catch((error) => { setImmediate(() => { throw error; }); });
`;
