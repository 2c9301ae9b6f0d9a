/**
 * `npm run bench:train [-- --rows 200000] [-- --large]`: trains Keel's `gbdt` and `logreg` on a
 * seeded synthetic binary problem and, where Debian's python3-sklearn is present, scikit-learn's
 * HistGradientBoostingClassifier and LogisticRegression on the same bytes with matched
 * parameters; then measures batch scoring through onnxruntime-node. Prints a table and writes
 * bench/results/train.json. Numbers, not assertions: targets are read by people.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { fitGbdt } from '../lib/ml/gbdt/index.js';
import { fitLogisticRegression } from '../lib/ml/logreg.js';
import { rocAuc } from '../lib/ml/metrics.js';
import type { BinaryClassifier, Matrix } from '../lib/ml/types.js';
import { syntheticProblem, type SyntheticProblem } from './synthetic.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(BENCH_DIR, 'results');
const PYTHON = '/usr/bin/python3';

const GBDT_PARAMS = {
  maxIter: 100,
  learningRate: 0.1,
  maxLeafNodes: 31,
  minSamplesLeaf: 20,
  l2Regularization: 0,
  maxBins: 255,
  earlyStopping: false,
  seed: 0,
} as const;
const LOGREG_PARAMS = { C: 1 } as const;

interface Fit {
  fitSeconds: number;
  testAuc: number;
  peakRssMb: number;
}

function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

async function timeFit(fit: () => Promise<BinaryClassifier> | BinaryClassifier, test: SyntheticProblem) {
  const started = performance.now();
  const model = await fit();
  const fitSeconds = (performance.now() - started) / 1000;
  return { model, fit: { fitSeconds, testAuc: rocAuc(test.y, model.predictProba(test.x)), peakRssMb: peakRssMb() } };
}

function writeRaw(prefix: string, problem: SyntheticProblem): void {
  writeFileSync(`${prefix}.x.f64`, new Uint8Array(problem.x.data.buffer));
  writeFileSync(`${prefix}.y.u8`, problem.y);
}

function runSklearn(dataDir: string, cols: number): Record<'gbdt' | 'logreg', { fitSeconds: number; testAuc: number }> | null {
  const probe = spawnSync(PYTHON, ['-c', 'import sklearn'], { encoding: 'utf8' });
  if (probe.status !== 0) return null;
  const result = spawnSync(
    PYTHON,
    [path.join(BENCH_DIR, 'sklearn_train.py'), dataDir, String(cols), JSON.stringify({ gbdt: GBDT_PARAMS, logreg: LOGREG_PARAMS })],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  );
  if (result.status !== 0) throw new Error(`scikit-learn run failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<'gbdt' | 'logreg', { fitSeconds: number; testAuc: number }>;
}

/** Rows per second of `session.run` over `x` in batches of `batch` rows (after one warm-up batch). */
async function scoringRate(onnx: Uint8Array, x: Matrix, batch = 100_000): Promise<number> {
  const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 2 });
  const input = Float32Array.from(x.data);
  const run = (from: number, rows: number) =>
    session.run({ input: new ort.Tensor('float32', input.subarray(from * x.cols, (from + rows) * x.cols), [rows, x.cols]) });
  await run(0, Math.min(batch, x.rows));
  const started = performance.now();
  for (let from = 0; from < x.rows; from += batch) await run(from, Math.min(batch, x.rows - from));
  const seconds = (performance.now() - started) / 1000;
  await session.release();
  return x.rows / seconds;
}

async function benchmark(rows: number) {
  const testRows = Math.round(rows / 4);
  const train = syntheticProblem(rows, 1);
  const test = syntheticProblem(testRows, 2);
  const dataDir = path.join(RESULTS, `data-${rows}`);
  mkdirSync(dataDir, { recursive: true });
  writeRaw(path.join(dataDir, 'train'), train);
  writeRaw(path.join(dataDir, 'test'), test);

  process.stderr.write(`[bench] ${rows} × ${train.x.cols}: fitting keel logreg\n`);
  const logreg = await timeFit(() => fitLogisticRegression(train.x, train.y, LOGREG_PARAMS), test);
  process.stderr.write(`[bench] fitting keel gbdt\n`);
  const gbdt = await timeFit(() => fitGbdt(train.x, train.y, GBDT_PARAMS), test);
  process.stderr.write(`[bench] fitting scikit-learn\n`);
  const sklearn = runSklearn(dataDir, train.x.cols);

  process.stderr.write(`[bench] scoring through onnxruntime-node\n`);
  const depth6 = await fitGbdt(train.x, train.y, { ...GBDT_PARAMS, maxDepth: 6, maxLeafNodes: 64 });
  const scoringRows = syntheticProblem(1_000_000, 3);
  const scoring = {
    logregRowsPerSec: await scoringRate(logreg.model.toOnnx(), scoringRows.x),
    gbdtRowsPerSec: await scoringRate(depth6.toOnnx(), scoringRows.x),
    gbdtTrees: 100,
    gbdtMaxDepth: 6,
  };
  const entry = (keel: Fit, reference: { fitSeconds: number; testAuc: number } | null) => ({
    keel,
    sklearn: reference,
    fitRatio: reference ? keel.fitSeconds / reference.fitSeconds : null,
    aucDelta: reference ? keel.testAuc - reference.testAuc : null,
  });
  return {
    rows,
    features: train.x.cols,
    testRows,
    gbdt: entry(gbdt.fit, sklearn?.gbdt ?? null),
    logreg: entry(logreg.fit, sklearn?.logreg ?? null),
    scoring,
  };
}

function printTable(result: Awaited<ReturnType<typeof benchmark>>): void {
  const f = (v: number | null | undefined, digits = 3) => (v === null || v === undefined ? '—' : v.toFixed(digits));
  const lines = [
    `\n${result.rows} training rows × ${result.features} features (test ${result.testRows})`,
    'model   keel fit s  sklearn fit s  ratio  keel AUC  sklearn AUC  ΔAUC     keel peak RSS MB',
  ];
  for (const name of ['gbdt', 'logreg'] as const) {
    const r = result[name];
    lines.push(
      `${name.padEnd(7)} ${f(r.keel.fitSeconds, 2).padStart(10)} ${f(r.sklearn?.fitSeconds, 2).padStart(14)} ${f(r.fitRatio, 2).padStart(6)} ${f(r.keel.testAuc, 4).padStart(9)} ${f(r.sklearn?.testAuc, 4).padStart(12)} ${f(r.aucDelta, 4).padStart(7)} ${f(r.keel.peakRssMb, 0).padStart(10)}`,
    );
  }
  lines.push(
    `scoring (onnxruntime-node, batches of 100 000): logreg ${Math.round(result.scoring.logregRowsPerSec).toLocaleString('en')} rows/s, gbdt (100 trees, depth 6) ${Math.round(result.scoring.gbdtRowsPerSec).toLocaleString('en')} rows/s`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

const { values } = parseArgs({ options: { rows: { type: 'string', default: '200000' }, large: { type: 'boolean', default: false } } });
const sizes = [Number(values.rows), ...(values.large ? [1_000_000] : [])];
if (sizes.some((n) => !Number.isInteger(n) || n < 1000)) {
  process.stderr.write('bench:train: --rows must be a whole number ≥ 1000\n');
  process.exit(2);
}
mkdirSync(RESULTS, { recursive: true });
const runs = [];
for (const rows of sizes) {
  const result = await benchmark(rows);
  printTable(result);
  runs.push(result);
}
const out = path.join(RESULTS, 'train.json');
const main = runs[0]!;
writeFileSync(
  out,
  `${JSON.stringify({ machine: { cpus: (await import('node:os')).availableParallelism(), node: process.version }, gbdt: main.gbdt, logreg: main.logreg, scoring: main.scoring, runs }, null, 2)}\n`,
);
process.stdout.write(`\nwrote ${out}${existsSync(PYTHON) ? '' : ' (no /usr/bin/python3: scikit-learn columns empty)'}\n`);
