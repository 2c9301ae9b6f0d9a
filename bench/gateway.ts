/**
 * `npm run bench:gateway`: prediction throughput and latency of the gateway, against a bare Hono
 * app and against the FastAPI + scikit-learn design Keel replaces. The server under test is pinned
 * to CPU 0 and wrk (Debian's `wrk`) to CPU 1, 50 connections, one scenario after another:
 *
 *   bare          a Hono app that parses the same body and answers the same shape, no model
 *   bareOnnx      (extra, the floor under keel) the bare app scoring the same two models with
 *                 onnxruntime-node the way the gateway does, and nothing else
 *   keel          the gateway: a 100-tree gbdt (90 %) and a logreg (10 %) A/B split, prediction
 *                 log on, features in the request
 *   keelEnriched  the gateway with `{entity}` requests: online features of three views from
 *                 Postgres + on-demand features, a 100-tree gbdt of the churn example
 *   seedDesign    FastAPI + uvicorn scoring a scikit-learn pipeline from a one-row pandas
 *                 DataFrame per request (null when python3-fastapi / -uvicorn / -sklearn are missing)
 *
 * Prints requests/s, p50 and p99 per scenario and the ratios, and writes bench/results/gateway.json.
 * Options: --seconds N (measured seconds per scenario, default 10), --connections N (default 50),
 * --only bare,bareOnnx,keel,keelEnriched,seedDesign (some scenarios; saved as gateway-partial.json), --profile
 * (the gateway writes a V8 CPU profile to bench/results/profiles/).
 * Database: DATABASE_URL, else the configured (embedded) one; the bench works in its own database
 * `keel_bench_gateway`, recreated each run.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GATEWAY_NODE_FLAGS } from '../api/node-flags.js';
import { tableToCsv } from '../lib/data/csv.js';
import { loadConfig } from '../lib/config.js';
import { openArtifactStore } from '../stores/artifacts/index.js';
import { createDb } from '../stores/db.js';
import { migrate } from '../stores/migrate.js';
import { freePort } from '../infra/local/ports.js';
import { registerChurnFeatureModel } from '../test/helpers/served-models.js';
import { type Figures, gatewayEnv, isolatePostgres, LOAD_CPU, need, recreateDatabase, registerAbModels, SERVER_CPU, startPinned, stop, wrk } from './gateway/harness.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(BENCH_DIR, '..');
const RESULTS = path.join(BENCH_DIR, 'results');
const DATABASE = 'keel_bench_gateway';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});
/** `--only bare,keel`: run just these scenarios (profiling, quick checks). */
const ONLY = args.only ? new Set(args.only.split(',')) : undefined;
const runs = (scenario: string) => !ONLY || ONLY.has(scenario);
/** `--profile`: the gateway writes a V8 CPU profile of its run to bench/results/profiles/. */
const PROFILE_FLAGS = args.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'profiles')}`] : [];
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);

function log(message: string): void {
  console.log(`[bench:gateway] ${message}`);
}

function show(name: string, f: Figures | null): void {
  if (!f) return log(`${name.padEnd(13)} skipped`);
  log(`${name.padEnd(13)} ${String(f.rps).padStart(7)} req/s   p50 ${f.p50Ms.toFixed(2)} ms   p99 ${f.p99Ms.toFixed(2)} ms   (${f.requests} requests, ${f.non2xx} non-2xx)`);
}

async function main(): Promise<void> {
  for (const binary of ['wrk', 'taskset']) {
    if (!need(binary)) throw new Error(`${binary} is needed (apt-get install ${binary === 'wrk' ? 'wrk' : 'util-linux'})`);
  }
  if (os.cpus().length < 2) log('fewer than 2 CPUs: server and load generator share one');
  const config = loadConfig();
  const url = await recreateDatabase(process.env.DATABASE_URL ?? config.database.url, DATABASE);
  await migrate(url);
  const db = createDb({ url });
  const artifactsDir = mkdtempSync(path.join(os.tmpdir(), 'keel-bench-gateway-'));
  const artifacts = openArtifactStore({ uri: `file://${artifactsDir}`, region: 'us-east-1' });

  log('training the models (gbdt 100 trees + logreg; churn example gbdt 100 trees on online features)');
  const { table, gbdt, logreg, featureBodies } = await registerAbModels({ db, artifacts });
  const enriched = await registerChurnFeatureModel({ db, artifacts }, { model: 'churn_online', params: { maxIter: 100 }, labelRows: 20_000, aliases: ['champion'] });

  // Request bodies: rows of the synthetic table / random customers of the example.
  const entityBodies = Array.from({ length: 1_000 }, (_, i) =>
    JSON.stringify({ entity: { customer_id: enriched.customerIds[(i * 7919) % enriched.customerIds.length] } }),
  );

  const results: Record<'bare' | 'bareOnnx' | 'keel' | 'keelEnriched' | 'seedDesign', Figures | null> = {
    bare: null,
    bareOnnx: null,
    keel: null,
    keelEnriched: null,
    seedDesign: null,
  };

  // (a) bare Hono
  if (runs('bare')) {
    const port = await freePort();
    const child = await startPinned('bare hono', [process.execPath, ...GATEWAY_NODE_FLAGS, '--import', 'tsx', path.join(BENCH_DIR, 'gateway', 'bare-hono.ts')], { ...process.env, PORT: String(port) }, `http://127.0.0.1:${port}/v1/models/x/predict`);
    try {
      results.bare = wrk(`http://127.0.0.1:${port}/v1/models/churn_ab/predict`, featureBodies, SECONDS, CONNECTIONS);
    } finally {
      await stop(child);
    }
    show('bare', results.bare);
  }

  // The floor under (b): the bare app scoring the same models, nothing else.
  if (runs('bareOnnx')) {
    const port = await freePort();
    const env = { ...process.env, PORT: String(port), DATABASE_URL: url, KEEL_ARTIFACTS: `file://${artifactsDir}`, MODEL: 'churn_ab', VERSIONS: `${gbdt.version},${logreg.version}` };
    const child = await startPinned('bare hono + onnxruntime', [process.execPath, ...GATEWAY_NODE_FLAGS, '--import', 'tsx', path.join(BENCH_DIR, 'gateway', 'bare-onnx.ts')], env, `http://127.0.0.1:${port}/v1/models/x/predict`);
    try {
      results.bareOnnx = wrk(`http://127.0.0.1:${port}/v1/models/churn_ab/predict`, featureBodies, SECONDS, CONNECTIONS);
    } finally {
      await stop(child);
    }
    show('bareOnnx', results.bareOnnx);
  }

  // (b) and (c): the gateway
  if (runs('keel') || runs('keelEnriched')) {
    const port = await freePort();
    const env = gatewayEnv(url, artifactsDir, port);
    // The gateway as `keel up` runs it, with its V8 flags.
    const child = await startPinned('gateway', [process.execPath, ...GATEWAY_NODE_FLAGS, ...PROFILE_FLAGS, path.join(REPO, 'bin', 'keel.js'), 'gateway'], env, `http://127.0.0.1:${port}/readyz`);
    const restorePostgres = await isolatePostgres(db, log);
    try {
      const before = await countPredictions(db);
      if (runs('keel')) {
        results.keel = wrk(`http://127.0.0.1:${port}/v1/models/churn_ab/predict`, featureBodies, SECONDS, CONNECTIONS);
        show('keel', results.keel);
      }
      if (runs('keelEnriched')) {
        results.keelEnriched = wrk(`http://127.0.0.1:${port}/v1/models/churn_online/predict`, entityBodies, SECONDS, CONNECTIONS);
        show('keelEnriched', results.keelEnriched);
      }
      await stop(child);
      const logged = (await countPredictions(db)) - before;
      log(`prediction log: ${logged} rows written for the gateway runs (warm-up runs included)`);
    } finally {
      await stop(child);
      restorePostgres();
    }
  }

  // (d) the seed design
  const python = '/usr/bin/python3';
  const hasPython = runs('seedDesign') && spawnSync(python, ['-c', 'import fastapi, uvicorn, sklearn, pandas']).status === 0;
  if (hasPython) {
    const port = await freePort();
    const csv = path.join(artifactsDir, 'train.csv');
    writeFileSync(csv, tableToCsv(table));
    const child = await startPinned('fastapi', [python, path.join(BENCH_DIR, 'gateway', 'seed_fastapi.py'), csv, String(port)], process.env, `http://127.0.0.1:${port}/docs`);
    try {
      results.seedDesign = wrk(`http://127.0.0.1:${port}/v1/models/churn_ab/predict`, featureBodies, SECONDS, CONNECTIONS);
    } finally {
      await stop(child);
    }
    show('seedDesign', results.seedDesign);
  } else if (runs('seedDesign')) {
    log('seedDesign skipped: /usr/bin/python3 lacks fastapi, uvicorn, sklearn or pandas (apt-get install python3-fastapi python3-uvicorn python3-sklearn)');
  }

  const ratio = (a: Figures | null, b: Figures | null) => (a && b ? Math.round((a.rps / b.rps) * 100) / 100 : null);
  const ratios = { keelVsBare: ratio(results.keel, results.bare), keelVsSeedDesign: ratio(results.keel, results.seedDesign) };
  log(`keel / bare: ${ratios.keelVsBare} (target ≥ 0.8, with p99 ≤ 20 ms); keel / seed design: ${ratios.keelVsSeedDesign} (target ≥ 20)`);
  const floor = { bareOnnxVsBare: ratio(results.bareOnnx, results.bare), keelVsBareOnnx: ratio(results.keel, results.bareOnnx) };
  if (results.bareOnnx) log(`bare + onnxruntime / bare: ${floor.bareOnnxVsBare} (the most any onnxruntime-node gateway of these models gets); keel / bare + onnxruntime: ${floor.keelVsBareOnnx}`);
  const strip = (f: Figures | null) => (f ? { rps: f.rps, p50Ms: f.p50Ms, p99Ms: f.p99Ms } : null);
  mkdirSync(RESULTS, { recursive: true });
  const out = {
    bare: strip(results.bare),
    keel: strip(results.keel),
    keelEnriched: strip(results.keelEnriched),
    seedDesign: strip(results.seedDesign),
    ratios,
    floor: { bareOnnx: strip(results.bareOnnx), ...floor },
    details: { ...results, seconds: SECONDS, connections: CONNECTIONS, serverCpu: SERVER_CPU, loadCpu: LOAD_CPU, at: new Date().toISOString(), load: os.loadavg() },
  };
  // A partial run (--only) or a profiled one does not replace the saved figures.
  const file = ONLY || args.profile ? 'gateway-partial.json' : 'gateway.json';
  writeFileSync(path.join(RESULTS, file), JSON.stringify(out, null, 2) + '\n');
  log(`wrote ${path.relative(REPO, path.join(RESULTS, file))}`);
  await db.end();
}

async function countPredictions(db: ReturnType<typeof createDb>): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM predictions');
  return Number(rows[0]!.n);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
