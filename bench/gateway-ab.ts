/**
 * `node --import tsx bench/gateway-ab.ts <checkout> <checkout>… [--rounds 4] [--seconds 6]`:
 * scenario (b) of `npm run bench:gateway` — the 90/10 gbdt / logreg split, logging on, features in
 * the request — against the gateway of several checkouts (e.g. a `git worktree` of an older commit
 * and this one), interleaved round by round on the same database and models. On a shared machine
 * requests/s drift by ±25 % over minutes, so two single runs cannot tell a 10 % change; alternating
 * checkouts and reading the gateway's own CPU time per request (from /proc) can.
 * `<checkout>:NAME=VALUE` (or `:NAME`, meaning NAME=1) sets an environment variable for that
 * gateway, to compare settings, e.g. `. .:KEEL_MICRO_BATCH_ROWS=16`; `<checkout>:--flag` adds a
 * Node / V8 flag, e.g. `. .:--single-threaded-gc`. Prints each round and the medians; writes bench/results/gateway-ab.json.
 * Database: DATABASE_URL, else the configured one; works in its own database `keel_bench_gateway_ab`.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GATEWAY_NODE_FLAGS } from '../api/node-flags.js';
import { freePort } from '../infra/local/ports.js';
import { loadConfig } from '../lib/config.js';
import { openArtifactStore } from '../stores/artifacts/index.js';
import { createDb } from '../stores/db.js';
import { migrate } from '../stores/migrate.js';
import { gatewayEnv, isolatePostgres, need, recreateDatabase, registerAbModels, startPinned, stop, wrk } from './gateway/harness.js';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '4' }, seconds: { type: 'string', default: '6' }, connections: { type: 'string', default: '50' } },
});
const log = (message: string) => console.log(`[bench:gateway-ab] ${message}`);

interface Round {
  checkout: string;
  round: number;
  rps: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  userCpuUsPerRequest: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  if (positionals.length === 0) throw new Error('name at least one checkout, e.g. bench/gateway-ab.ts /tmp/keel-old .');
  for (const binary of ['wrk', 'taskset']) if (!need(binary)) throw new Error(`${binary} is needed`);
  const checkouts = positionals.map((spec) => {
    const [dir, setting] = spec.split(':');
    // `:--flag` is a V8 / Node flag for that gateway (NODE_OPTIONS refuses many V8 flags).
    if (setting?.startsWith('--')) return { label: spec, dir: path.resolve(dir!), env: {}, nodeFlags: [setting] };
    const [name, value = '1'] = setting ? setting.split('=') : [];
    return { label: spec, dir: path.resolve(dir!), env: name ? { [name]: value } : {}, nodeFlags: [] as string[] };
  });
  const url = await recreateDatabase(process.env.DATABASE_URL ?? loadConfig().database.url, 'keel_bench_gateway_ab');
  await migrate(url);
  const db = createDb({ url });
  const artifactsDir = mkdtempSync(path.join(os.tmpdir(), 'keel-bench-ab-'));
  const artifacts = openArtifactStore({ uri: `file://${artifactsDir}`, region: 'us-east-1' });
  log('training the models (gbdt 100 trees + logreg)');
  const { featureBodies } = await registerAbModels({ db, artifacts });
  const restorePostgres = await isolatePostgres(db, log);
  const rounds: Round[] = [];
  try {
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const checkout of checkouts) {
        const port = await freePort();
        const env = gatewayEnv(url, artifactsDir, port, checkout.env);
        const command = [process.execPath, ...GATEWAY_NODE_FLAGS, ...checkout.nodeFlags, path.join(checkout.dir, 'bin', 'keel.js'), 'gateway'];
        const child = await startPinned(checkout.label, command, env, `http://127.0.0.1:${port}/readyz`, checkout.dir);
        try {
          const figures = wrk(`http://127.0.0.1:${port}/v1/models/churn_ab/predict`, featureBodies, Number(args.seconds), Number(args.connections), child.pid);
          const cpu = figures.cpu!;
          const result = {
            checkout: checkout.label,
            round,
            rps: figures.rps,
            p99Ms: figures.p99Ms,
            cpuUsPerRequest: Math.round((cpu.userUs + cpu.systemUs) * 10) / 10,
            userCpuUsPerRequest: cpu.userUs,
          };
          rounds.push(result);
          log(`round ${round} ${checkout.label}: ${result.rps} req/s, p99 ${result.p99Ms} ms, ${result.cpuUsPerRequest} µs CPU per request (${result.userCpuUsPerRequest} user)`);
        } finally {
          await stop(child);
        }
      }
    }
  } finally {
    restorePostgres();
    await db.end();
  }
  const summary = checkouts.map(({ label }) => {
    const mine = rounds.filter((r) => r.checkout === label);
    return {
      checkout: label,
      medianRps: median(mine.map((r) => r.rps)),
      medianCpuUsPerRequest: median(mine.map((r) => r.cpuUsPerRequest)),
      medianUserCpuUsPerRequest: median(mine.map((r) => r.userCpuUsPerRequest)),
    };
  });
  for (const s of summary) log(`${s.checkout}: median ${s.medianRps} req/s, ${s.medianCpuUsPerRequest} µs CPU per request (${s.medianUserCpuUsPerRequest} user)`);
  // The machine's speed drifts between rounds more than most changes move it; within a round the
  // checkouts ran a minute apart, so the median of the per-round differences is the sharper figure.
  const [first, ...others] = checkouts;
  const paired = others.map(({ label }) => {
    const deltas = rounds
      .filter((r) => r.checkout === label)
      .map((r) => {
        const base = rounds.find((b) => b.checkout === first!.label && b.round === r.round)!;
        return { cpu: r.cpuUsPerRequest - base.cpuUsPerRequest, rps: (r.rps - base.rps) / base.rps };
      });
    return { checkout: label, versus: first!.label, medianCpuUsDelta: median(deltas.map((d) => d.cpu)), medianRpsChange: median(deltas.map((d) => d.rps)) };
  });
  for (const p of paired) {
    log(`${p.checkout} vs ${p.versus}, median of per-round differences: ${p.medianCpuUsDelta > 0 ? '+' : ''}${p.medianCpuUsDelta.toFixed(1)} µs CPU per request, ${p.medianRpsChange > 0 ? '+' : ''}${(p.medianRpsChange * 100).toFixed(1)} % req/s`);
  }
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'gateway-ab.json'), `${JSON.stringify({ at: new Date().toISOString(), seconds: Number(args.seconds), summary, paired, rounds }, null, 2)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
