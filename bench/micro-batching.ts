/**
 * `node --import tsx bench/micro-batching.ts [--seconds 3] [--clients 1,8,32,128]`: does
 * micro-batching pay? K clients each send single rows in a closed loop (next row once the last
 * answer is back) to one model, scored either one onnxruntime run per row (unbatched) or through
 * the gateway's micro-batcher (api/serving/micro-batcher.ts) with maxWaitMs 0 (next event-loop
 * turn) and 1 ms. Models: logistic regression and a 100-tree GBDT on 20 features, session
 * options as the gateway uses them (one intra-op thread). Reports rows/s and per-row latency
 * p50 / p99 and the mean batch size. Prints a table and writes bench/results/micro-batching.json.
 * Numbers, not assertions: on a shared 2-core machine they vary by ±20 %.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createMicroBatcher } from '../api/serving/micro-batcher.js';
import { fitGbdt } from '../lib/ml/gbdt/index.js';
import { fitLogisticRegression } from '../lib/ml/logreg.js';
import { loadOnnxScorer } from '../lib/onnx/scorer.js';
import { syntheticProblem } from './synthetic.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(BENCH_DIR, 'results');
const COLS = 20;

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '2' }, clients: { type: 'string', default: '1,8,32,128' } },
});
const seconds = Number(values.seconds);
const clientCounts = values.clients!.split(',').map(Number);

type Score = (row: Float64Array) => Promise<number>;

interface Measurement {
  model: string;
  mode: string;
  clients: number;
  rowsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  meanBatch: number;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

async function closedLoop(score: Score, clients: number, rows: Float64Array[], ms: number): Promise<{ count: number; latencies: number[] }> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  let next = 0;
  const client = async () => {
    while (performance.now() < end) {
      const row = rows[next++ % rows.length]!;
      const start = performance.now();
      await score(row);
      latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return { count: latencies.length, latencies };
}

async function main(): Promise<void> {
  const train = syntheticProblem(5_000, 1, COLS);
  const pool = syntheticProblem(2_000, 2, COLS);
  const rows = Array.from({ length: pool.x.rows }, (_, r) => pool.x.data.slice(r * COLS, (r + 1) * COLS));
  const names = Array.from({ length: COLS }, (_, i) => `f${i}`);
  const models = [
    { name: 'logreg', onnx: fitLogisticRegression(train.x, train.y, { C: 1 }).toOnnx() },
    { name: 'gbdt-100', onnx: (await fitGbdt(train.x, train.y, { maxIter: 100, maxLeafNodes: 31, earlyStopping: false, seed: 0 })).toOnnx() },
  ];
  const results: Measurement[] = [];
  for (const m of models) {
    const scorer = await loadOnnxScorer(m.onnx, names, {
      sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' },
    });
    const many = (data: Float64Array, n: number) => scorer.predictProba({ data, rows: n, cols: COLS, names });
    const modes: Array<{ mode: string; make: () => { score: Score; meanBatch: () => number } }> = [
      { mode: 'unbatched', make: () => ({ score: async (row) => (await many(row, 1))[0]!, meanBatch: () => 1 }) },
      ...[0, 1].map((maxWaitMs) => ({
        mode: `batched wait ${maxWaitMs} ms`,
        make: () => {
          const batcher = createMicroBatcher({ cols: COLS, maxWaitMs, maxBatchRows: 256, run: many });
          return { score: (row: Float64Array) => batcher.submit(row), meanBatch: () => batcher.stats().rows / Math.max(1, batcher.stats().runs) };
        },
      })),
    ];
    for (const clients of clientCounts) {
      for (const { mode, make } of modes) {
        await closedLoop(make().score, clients, rows, 200); // warm-up
        const fresh = make();
        const { count, latencies } = await closedLoop(fresh.score, clients, rows, seconds * 1_000);
        latencies.sort((a, b) => a - b);
        const result = {
          model: m.name,
          mode,
          clients,
          rowsPerSec: Math.round(count / seconds),
          p50Ms: Number(quantile(latencies, 0.5).toFixed(3)),
          p99Ms: Number(quantile(latencies, 0.99).toFixed(3)),
          meanBatch: Number(fresh.meanBatch().toFixed(1)),
        };
        results.push(result);
        console.log(
          `${m.name.padEnd(9)} ${mode.padEnd(19)} clients ${String(clients).padStart(4)}  ${String(result.rowsPerSec).padStart(8)} rows/s  p50 ${result.p50Ms.toFixed(3)} ms  p99 ${result.p99Ms.toFixed(3)} ms  mean batch ${result.meanBatch}`,
        );
      }
    }
    await scorer.release();
  }
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    path.join(RESULTS, 'micro-batching.json'),
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, seconds, results }, null, 2)}\n`,
  );
  console.log(`wrote ${path.relative(process.cwd(), path.join(RESULTS, 'micro-batching.json'))}`);
}

await main();
