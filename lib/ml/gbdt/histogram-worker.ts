/**
 * Entry of a histogram pool worker: says it is ready, then sleeps on the shared control block
 * and builds its chunk of features each time the main thread bumps the generation.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { buildHistograms } from './histogram.js';
import type { PoolWorkerData } from './histogram-pool.js';
import { CTRL, chunkOf } from './histogram-pool.js';

const { control, source, features, index } = (workerData as { data: PoolWorkerData }).data;

// read before saying ready: the main thread bumps the generation only once all are ready
let seen = Atomics.load(control, CTRL.generation);
parentPort?.postMessage('ready');
for (;;) {
  Atomics.wait(control, CTRL.generation, seen);
  seen = Atomics.load(control, CTRL.generation);
  if (Atomics.load(control, CTRL.stop)) break;
  const [from, to] = chunkOf(index, control[CTRL.participants]!, control[CTRL.nFeatures]!);
  buildHistograms(source, control[CTRL.start]!, control[CTRL.count]!, control[CTRL.contiguous] === 1, features, from, to);
  if (Atomics.sub(control, CTRL.pending, 1) === 1) Atomics.notify(control, CTRL.pending);
}
