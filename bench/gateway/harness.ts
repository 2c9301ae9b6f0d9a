/**
 * What the gateway benchmarks share (`bench/gateway.ts`, `bench/gateway-ab.ts`): servers pinned to
 * CPU 0, wrk pinned to CPU 1, a local Postgres moved off the server's core, and the scenario (b)
 * models with their request bodies.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { ArtifactStore } from '../../stores/artifacts/index.js';
import type { Db } from '../../stores/db.js';
import { setRoutes } from '../../stores/routes.js';
import { syntheticChurnTable } from '../../test/helpers/training-data.js';
import { registerServedModel } from '../../test/helpers/served-models.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
export const SERVER_CPU = '0';
export const LOAD_CPU = '1';

export interface Figures {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  non2xx: number;
  /** The server's CPU time per request in the measured run (user, system), when it was read. */
  cpu?: { userUs: number; systemUs: number };
}

export function need(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

/** Drops and creates `database` next to `baseUrl`'s; returns its URL. */
export async function recreateDatabase(baseUrl: string, database: string): Promise<string> {
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/** Starts `command` pinned to the server CPU (in `cwd`, default the repository) and waits until `probeUrl` answers below 500. */
export async function startPinned(name: string, command: string[], env: NodeJS.ProcessEnv, probeUrl: string, cwd = REPO): Promise<ChildProcess> {
  const child = spawn('taskset', ['-c', SERVER_CPU, ...command], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}: ${stderr}`);
    const ok = await fetch(probeUrl, { method: probeUrl.includes('/predict') ? 'POST' : 'GET', body: probeUrl.includes('/predict') ? '{}' : undefined })
      .then((r) => r.status < 500)
      .catch(() => false);
    if (ok) return child;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not become ready: ${stderr}`);
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

/**
 * User and system CPU time of a process, in ms (clock ticks of 10 ms). User time is the server's
 * own code; system time is mostly the kernel's loopback TCP, whose cost per write swings with how
 * the load generator is scheduled, so user time tells code changes apart more precisely.
 */
function cpuTimeMs(pid: number): { user: number; system: number } {
  const stat = procStat(pid);
  if (!stat) throw new Error(`process ${pid} is gone`);
  return { user: Number(stat[11]) * 10, system: Number(stat[12]) * 10 };
}

/** CPU µs per request of a server over a measured run, from two `cpuTimeMs` readings. */
function cpuPerRequest(before: { user: number; system: number }, after: { user: number; system: number }, requests: number): { userUs: number; systemUs: number } {
  const us = (ms: number) => Math.round((ms * 10_000) / requests) / 10;
  return { userUs: us(after.user - before.user), systemUs: us(after.system - before.system) };
}

/** `/proc/<pid>/stat` fields after the command name: [state, ppid, …]; undefined when unreadable. */
export function procStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * Moves a Postgres running on this machine (the postmaster and every process it forked, and so
 * every backend it forks later) onto the load generator's CPU at low priority, and returns how to
 * put it back. The prediction log makes Postgres busy (about a fifth of a core at 10 000
 * predictions/s); left to the scheduler it lands on the gateway's core half of the time and the
 * figures then measure the database as much as the gateway. Nothing happens for a remote database
 * or one whose processes this user may not change (the run then says so).
 */
export async function isolatePostgres(db: Db, log: (message: string) => void): Promise<() => void> {
  const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const postmaster = Number(procStat(rows[0]!.pid)?.[1]);
  const postmasterStat = Number.isInteger(postmaster) ? procStat(postmaster) : undefined;
  if (!postmasterStat) {
    log('Postgres is not a process of this machine: left where it runs');
    return () => undefined;
  }
  const family = () => [
    postmaster,
    ...readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .filter((pid) => procStat(pid)?.[1] === String(postmaster)),
  ];
  const affinity = /: (\S+)\s*$/.exec(spawnSync('taskset', ['-cp', String(postmaster)], { encoding: 'utf8' }).stdout)?.[1];
  const nice = postmasterStat[16] ?? '0';
  const apply = (cpus: string, priority: string) => {
    let ok = true;
    for (const pid of family()) {
      ok = spawnSync('taskset', ['-a', '-cp', cpus, String(pid)], { stdio: 'ignore' }).status === 0 && ok;
      ok = spawnSync('renice', ['-n', priority, '-p', String(pid)], { stdio: 'ignore' }).status === 0 && ok;
    }
    return ok;
  };
  if (!affinity || !apply(LOAD_CPU, '10')) {
    log('could not move Postgres to the load CPU (not permitted?): it shares the CPUs with the gateway');
    if (affinity) apply(affinity, nice);
    return () => undefined;
  }
  log(`Postgres (postmaster ${postmaster}) runs on CPU ${LOAD_CPU} at nice 10 for the run; CPU ${SERVER_CPU} is the gateway's alone`);
  return () => {
    apply(affinity, nice);
  };
}

function toMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!match) throw new Error(`cannot read wrk latency ${text}`);
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

/**
 * One wrk run pinned to the load CPU: `seconds` measured after a 3 s warm-up run; with `serverPid`,
 * the server's CPU time per request over the measured run goes in `cpu`.
 */
export function wrk(url: string, bodies: string[], seconds: number, connections: number, serverPid?: number): Figures {
  const bodiesFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'keel-bench-')), 'bodies.jsonl');
  writeFileSync(bodiesFile, bodies.join('\n') + '\n');
  const target = new URL(url);
  const env = { ...process.env, BODIES: bodiesFile, BENCH_PATH: target.pathname + target.search };
  const run = (duration: number) => {
    const result = spawnSync(
      'taskset',
      ['-c', LOAD_CPU, 'wrk', '-t1', `-c${connections}`, `-d${duration}s`, '--latency', '-s', path.join(HERE, 'requests.lua'), target.origin],
      { env, encoding: 'utf8' },
    );
    if (result.status !== 0) throw new Error(`wrk failed: ${result.stderr}`);
    return result.stdout;
  };
  run(3);
  const before = serverPid === undefined ? undefined : cpuTimeMs(serverPid);
  const out = run(seconds);
  const after = serverPid === undefined ? undefined : cpuTimeMs(serverPid);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1];
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1];
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  if (!p50 || !p99 || !Number.isFinite(rps)) throw new Error(`cannot read wrk output:\n${out}`);
  const cpu = before && after ? cpuPerRequest(before, after, requests) : undefined;
  return { rps: Math.round(rps), p50Ms: toMs(p50), p99Ms: toMs(p99), requests, non2xx, cpu };
}

/** The environment of a benchmarked `keel gateway`: its own database, artifacts and home, open on loopback. */
export function gatewayEnv(databaseUrl: string, artifactsDir: string, port: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...extra,
    DATABASE_URL: databaseUrl,
    KEEL_ARTIFACTS: `file://${artifactsDir}`,
    PORT: String(port),
    KEEL_HOST: '127.0.0.1',
    KEEL_AUTH: 'open-loopback',
    KEEL_HOME: mkdtempSync(path.join(os.tmpdir(), 'keel-bench-home-')),
    NODE_ENV: 'production',
  };
}

/**
 * Scenario (b)'s models: a 100-tree gbdt (variant control, 90 %) and a logreg (candidate, 10 %)
 * of `churn_ab` on a synthetic churn table, routed; and 1 000 `{features}` bodies of its rows.
 */
export async function registerAbModels(deps: { db: Db; artifacts: ArtifactStore }) {
  const table = syntheticChurnTable({ rows: 5_000, seed: 7 });
  const gbdt = await registerServedModel(deps, { model: 'churn_ab', trainer: 'gbdt', params: { maxIter: 100 }, table });
  const logreg = await registerServedModel(deps, { model: 'churn_ab', trainer: 'logreg', table });
  await setRoutes(
    deps.db,
    'churn_ab',
    [
      { version: gbdt.version, weight: 0.9, mode: 'live', variant: 'control' },
      { version: logreg.version, weight: 0.1, mode: 'live', variant: 'candidate' },
    ],
    { updatedBy: 'bench' },
  );
  const featureBodies = Array.from({ length: 1_000 }, (_, i) => {
    const row = Object.fromEntries(gbdt.featureNames.map((name) => [name, cell(table, name, i)]));
    return JSON.stringify({ features: row });
  });
  return { table, gbdt, logreg, featureBodies };
}

function cell(table: ReturnType<typeof syntheticChurnTable>, name: string, row: number): number | string | null {
  const column = table.columns.find((c) => c.name === name)!;
  if (column.type === 'category') return column.categories[column.codes[row]!] ?? null;
  if (column.type === 'number') {
    const value = column.values[row]!;
    return Number.isNaN(value) ? null : value;
  }
  throw new Error(`unexpected column type ${column.type}`);
}
