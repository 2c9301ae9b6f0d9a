/**
 * `npm run bench:gateway`: prediction throughput and latency of the gateway, against a bare Hono
 * app and against the FastAPI + scikit-learn design Keel replaces. The server under test is pinned
 * to CPU 0 and wrk (Debian's `wrk`) to CPU 1, 50 connections; the first four scenarios run
 * interleaved for --rounds rounds (default 3) and each figure is the median round:
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
 * Options: --seconds N (measured seconds per scenario and round, default 10), --rounds N (default 3),
 * --connections N (default 50),
 * --only bare,bareOnnx,keel,keelEnriched,seedDesign (some scenarios; saved as gateway-partial.json), --profile
 * (every Node server writes V8 CPU profiles to bench/results/profiles/<bare|bareOnnx|gateway>/).
 * Database: DATABASE_URL, else the configured (embedded) one; the bench works in its own database
 * `keel_bench_gateway`, recreated each run.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
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
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});
/** `--only bare,keel`: run just these scenarios (profiling, quick checks). */
const ONLY = args.only ? new Set(args.only.split(',')) : undefined;
const runs = (scenario: string) => !ONLY || ONLY.has(scenario);
/**
 * `--profile`: each Node server writes V8 CPU profiles of its run to bench/results/profiles/<scenario>/
 * (one per thread; the main thread's is the `.0.` file).
 */
const profileFlags = (scenario: string) => (args.profile ? ['--cpu-prof', `--cpu-prof-dir=${path.join(RESULTS, 'profiles', scenario)}`] : []);
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error(`--rounds must be a positive integer, got ${args.rounds}`);
  process.exit(2);
}
const CONNECTIONS = Number(args.connections);

function log(message: string): void {
  console.log(`[bench:gateway] ${message}`);
}

function show(name: string, f: Figures | null): void {
  if (!f) return log(`${name.padEnd(13)} skipped`);
  const cpu = f.cpu ? `, CPU ${f.cpu.userUs} + ${f.cpu.systemUs} µs user + system per request` : '';
  log(`${name.padEnd(13)} ${String(f.rps).padStart(7)} req/s   p50 ${f.p50Ms.toFixed(2)} ms   p99 ${f.p99Ms.toFixed(2)} ms   (${f.requests} requests, ${f.non2xx} non-2xx${cpu})`);
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

  // (a), the floor and (b)/(c) run interleaved, round by round, each server started once: this
  // VM's speed drifts by ±25 % over minutes (mostly the kernel's cost of each loopback write), so
  // one scenario after another would compare different machines. Each figure is the median round.
  type Scenario = 'bare' | 'bareOnnx' | 'keel' | 'keelEnriched';
  const rounds: Record<Scenario, Figures[]> = { bare: [], bareOnnx: [], keel: [], keelEnriched: [] };
  const servers: ChildProcess[] = [];
  const targets: Array<{ scenario: Scenario; url: string; bodies: string[]; server: ChildProcess }> = [];
  let restorePostgres = () => {};
  let before = 0;
  try {
    if (runs('bare')) {
      const port = await freePort();
      servers.push(await startPinned('bare hono', [process.execPath, ...GATEWAY_NODE_FLAGS, ...profileFlags('bare'), '--import', 'tsx', path.join(BENCH_DIR, 'gateway', 'bare-hono.ts')], { ...process.env, PORT: String(port) }, `http://127.0.0.1:${port}/v1/models/x/predict`));
      targets.push({ scenario: 'bare', url: `http://127.0.0.1:${port}/v1/models/churn_ab/predict`, bodies: featureBodies, server: servers.at(-1)! });
    }
    // The floor under (b): the bare app scoring the same models, nothing else.
    if (runs('bareOnnx')) {
      const port = await freePort();
      const env = { ...process.env, PORT: String(port), DATABASE_URL: url, KEEL_ARTIFACTS: `file://${artifactsDir}`, MODEL: 'churn_ab', VERSIONS: `${gbdt.version},${logreg.version}` };
      servers.push(await startPinned('bare hono + onnxruntime', [process.execPath, ...GATEWAY_NODE_FLAGS, ...profileFlags('bareOnnx'), '--import', 'tsx', path.join(BENCH_DIR, 'gateway', 'bare-onnx.ts')], env, `http://127.0.0.1:${port}/v1/models/x/predict`));
      targets.push({ scenario: 'bareOnnx', url: `http://127.0.0.1:${port}/v1/models/churn_ab/predict`, bodies: featureBodies, server: servers.at(-1)! });
    }
    // (b) and (c): the gateway as `keel up` runs it, with its V8 flags.
    if (runs('keel') || runs('keelEnriched')) {
      const port = await freePort();
      servers.push(await startPinned('gateway', [process.execPath, ...GATEWAY_NODE_FLAGS, ...profileFlags('gateway'), path.join(REPO, 'bin', 'keel.js'), 'gateway'], gatewayEnv(url, artifactsDir, port), `http://127.0.0.1:${port}/readyz`));
      if (runs('keel')) targets.push({ scenario: 'keel', url: `http://127.0.0.1:${port}/v1/models/churn_ab/predict`, bodies: featureBodies, server: servers.at(-1)! });
      if (runs('keelEnriched')) targets.push({ scenario: 'keelEnriched', url: `http://127.0.0.1:${port}/v1/models/churn_online/predict`, bodies: entityBodies, server: servers.at(-1)! });
      restorePostgres = await isolatePostgres(db, log);
      before = await countPredictions(db);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const { scenario, url: target, bodies, server } of targets) {
        const figures = wrk(target, bodies, SECONDS, CONNECTIONS, server.pid);
        rounds[scenario].push(figures);
        show(`${scenario}${ROUNDS > 1 ? ` #${round}` : ''}`, figures);
      }
    }
    // The gateway flushes its prediction log on SIGTERM.
    for (const child of servers) await stop(child);
    if (runs('keel') || runs('keelEnriched')) {
      const logged = (await countPredictions(db)) - before;
      log(`prediction log: ${logged} rows written for the gateway runs (warm-up runs included)`);
    }
  } finally {
    for (const child of servers) await stop(child);
    restorePostgres();
  }
  const results: Record<Scenario | 'seedDesign', Figures | null> = {
    bare: medianRound(rounds.bare),
    bareOnnx: medianRound(rounds.bareOnnx),
    keel: medianRound(rounds.keel),
    keelEnriched: medianRound(rounds.keelEnriched),
    seedDesign: null,
  };

  // (d) the seed design
  const python = '/usr/bin/python3';
  const hasPython = runs('seedDesign') && spawnSync(python, ['-c', 'import fastapi, uvicorn, sklearn, pandas']).status === 0;
  if (hasPython) {
    const port = await freePort();
    const csv = path.join(artifactsDir, 'train.csv');
    writeFileSync(csv, tableToCsv(table));
    const child = await startPinned('fastapi', [python, path.join(BENCH_DIR, 'gateway', 'seed_fastapi.py'), csv, String(port)], process.env, `http://127.0.0.1:${port}/docs`);
    try {
      results.seedDesign = wrk(`http://127.0.0.1:${port}/v1/models/churn_ab/predict`, featureBodies, SECONDS, CONNECTIONS, child.pid);
    } finally {
      await stop(child);
    }
    show('seedDesign', results.seedDesign);
  } else if (runs('seedDesign')) {
    log('seedDesign skipped: /usr/bin/python3 lacks fastapi, uvicorn, sklearn or pandas (apt-get install python3-fastapi python3-uvicorn python3-sklearn)');
  }

  if (ROUNDS > 1) for (const scenario of ['bare', 'bareOnnx', 'keel', 'keelEnriched'] as const) if (results[scenario]) show(`${scenario} median`, results[scenario]);
  const ratio = (a: Figures | null, b: Figures | null) => (a && b ? Math.round((a.rps / b.rps) * 100) / 100 : null);
  const perRound = (a: Figures[], b: Figures[]) => a.map((f, i) => ratio(f, b[i] ?? null));
  const ratios = { keelVsBare: ratio(results.keel, results.bare), keelVsSeedDesign: ratio(results.keel, results.seedDesign) };
  log(`keel / bare: ${ratios.keelVsBare} (target ≥ 0.8, with p99 ≤ 20 ms); keel / seed design: ${ratios.keelVsSeedDesign} (target ≥ 20)`);
  const floor = { bareOnnxVsBare: ratio(results.bareOnnx, results.bare), keelVsBareOnnx: ratio(results.keel, results.bareOnnx) };
  if (results.bareOnnx) log(`bare + onnxruntime / bare: ${floor.bareOnnxVsBare} (the most any onnxruntime-node gateway of these models gets); keel / bare + onnxruntime: ${floor.keelVsBareOnnx}`);
  const roundRatios = { keelVsBare: perRound(rounds.keel, rounds.bare), bareOnnxVsBare: perRound(rounds.bareOnnx, rounds.bare), keelVsBareOnnx: perRound(rounds.keel, rounds.bareOnnx) };
  if (ROUNDS > 1 && rounds.keel.length && rounds.bare.length) log(`keel / bare by round: ${roundRatios.keelVsBare.join(', ')}; bare + onnxruntime / bare by round: ${roundRatios.bareOnnxVsBare.join(', ')}`);
  const strip = (f: Figures | null) => (f ? { rps: f.rps, p50Ms: f.p50Ms, p99Ms: f.p99Ms } : null);
  mkdirSync(RESULTS, { recursive: true });
  const out = {
    bare: strip(results.bare),
    keel: strip(results.keel),
    keelEnriched: strip(results.keelEnriched),
    seedDesign: strip(results.seedDesign),
    ratios,
    floor: { bareOnnx: strip(results.bareOnnx), ...floor },
    details: { ...results, rounds, roundRatios, seconds: SECONDS, connections: CONNECTIONS, serverCpu: SERVER_CPU, loadCpu: LOAD_CPU, at: new Date().toISOString(), load: os.loadavg() },
  };
  // A partial run (--only) or a profiled one does not replace the saved figures.
  const file = ONLY || args.profile ? 'gateway-partial.json' : 'gateway.json';
  writeFileSync(path.join(RESULTS, file), JSON.stringify(out, null, 2) + '\n');
  log(`wrote ${path.relative(REPO, path.join(RESULTS, file))}`);
  await db.end();
}

/** The round with the median requests/s (the lower middle one of an even count); null when none ran. */
function medianRound(figures: Figures[]): Figures | null {
  if (figures.length === 0) return null;
  return [...figures].sort((a, b) => a.rps - b.rps)[Math.floor((figures.length - 1) / 2)]!;
}

async function countPredictions(db: ReturnType<typeof createDb>): Promise<number> {
  const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM predictions');
  return Number(rows[0]!.n);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
