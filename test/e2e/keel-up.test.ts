import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import pg from 'pg';
import { embeddedDatabaseUrl } from '../../lib/config.js';
import { freePort, isPortFree } from '../../infra/local/ports.js';
import { rootDataHome } from '../../infra/local/postgres.js';
import { isAlive } from '../../infra/local/processes.js';
import { REPO_ROOT, temporalCliPath } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';

const KEEL = path.join(REPO_ROOT, 'bin', 'keel.js');

interface Ports {
  gateway: number;
  temporal: number;
  ui: number;
  pg: number;
}

async function stackEnv(home: string, ports: Ports): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'KEEL_ARTIFACTS', 'S3_ENDPOINT']) delete env[name];
  return {
    ...env,
    KEEL_HOME: home,
    PORT: String(ports.gateway),
    KEEL_TEMPORAL_PORT: String(ports.temporal),
    KEEL_TEMPORAL_UI_PORT: String(ports.ui),
    KEEL_PG_PORT: String(ports.pg),
    TEMPORAL_CLI_PATH: process.env.KEEL_TEST_TEMPORAL_CLI ?? (await temporalCliPath()),
  };
}

async function freePorts(): Promise<Ports> {
  return { gateway: await freePort(), temporal: await freePort(), ui: await freePort(), pg: await freePort() };
}

class KeelUp {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [KEEL, 'up'], { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  async ready(timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes('Press Ctrl-C to stop everything')) {
      if (this.child.exitCode !== null) throw new Error(`keel up exited ${this.child.exitCode}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`keel up not ready in time: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  get stackCheckId(): string {
    return /stack check (\S+) passed/.exec(this.stdout)![1]!;
  }
}

/** Every process `keel up` started: the pid files it keeps, plus the Postgres postmaster. */
function stackPids(home: string, pgData: string): number[] {
  const runDir = path.join(home, 'run');
  const pids = readdirSync(runDir).map((f) => Number(readFileSync(path.join(runDir, f), 'utf8')));
  pids.push(Number(readFileSync(path.join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0]));
  return pids;
}

describe('keel up (the whole local stack on embedded defaults)', () => {
  const home = path.join(tempDir('keel-up-'), '.keel');
  const pgHome = process.getuid?.() === 0 ? rootDataHome(home) : home;
  after(() => {
    rmSync(path.dirname(home), { recursive: true, force: true });
    if (pgHome !== home) rmSync(pgHome, { recursive: true, force: true });
  });

  it('starts from nothing, serves, stops cleanly on SIGINT and keeps its data across restarts', async () => {
    const ports = await freePorts();
    const env = await stackEnv(home, ports);
    assert.equal(existsSync(home), false);

    const first = new KeelUp(env);
    try {
      await first.ready();
    } catch (error) {
      first.child.kill('SIGKILL');
      throw error;
    }
    assert.match(first.stdout, new RegExp(`Temporal Web UI http://127\\.0\\.0\\.1:${ports.ui}`));
    assert.match(first.stdout, new RegExp(`Gateway         http://127\\.0\\.0\\.1:${ports.gateway}`));
    assert.ok(first.stdout.includes(`(data: ${path.join(pgHome, 'pg')})`), first.stdout);
    assert.equal((await fetch(`http://127.0.0.1:${ports.gateway}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${ports.gateway}/readyz`)).status, 200);
    const ui = await fetch(`http://127.0.0.1:${ports.ui}/`);
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /<html/i);
    assert.ok(existsSync(path.join(home, 'temporal.db')));

    const pids = stackPids(home, path.join(pgHome, 'pg'));
    assert.equal(pids.length, 4, 'gateway, workers, Temporal and Postgres');
    first.child.kill('SIGINT');
    assert.equal(await first.exited, 0, first.stderr);
    assert.match(first.stderr, /stopping gateway[\s\S]*stopping workers[\s\S]*stopping Temporal dev server[\s\S]*stopping PostgreSQL/);
    for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} outlived keel up`);
    for (const port of Object.values(ports)) assert.equal(await isPortFree(port), true, `port ${port} still held`);

    const second = new KeelUp(env);
    try {
      await second.ready();
      assert.match(second.stderr, /migrations: 0 applied/);
      const db = new pg.Client({ connectionString: embeddedDatabaseUrl(ports.pg) });
      await db.connect();
      const { rows } = await db.query<{ workflow_id: string }>('SELECT DISTINCT workflow_id FROM stack_checks');
      await db.end();
      assert.deepEqual(new Set(rows.map((r) => r.workflow_id)), new Set([first.stackCheckId, second.stackCheckId]));
      const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
      const client = new Client({ connection });
      const earlier = await client.workflow.getHandle(first.stackCheckId).describe();
      assert.equal(earlier.status.name, 'COMPLETED');
      await connection.close();
    } finally {
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.stderr);
    }
  });

  it('a port already in use gives one line naming the setting, and starts nothing', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const busy = (holder.address() as net.AddressInfo).port;
    const ports = { ...(await freePorts()), gateway: busy };
    const home2 = path.join(tempDir('keel-up-busy-'), '.keel');
    try {
      const run = new KeelUp(await stackEnv(home2, ports));
      assert.equal(await run.exited, 1);
      assert.equal(
        run.stderr.trim(),
        `keel: port ${busy} (Keel gateway) is already in use on 127.0.0.1: stop whatever holds it (is another "keel up" running?) or set PORT to a free port`,
      );
    } finally {
      holder.close();
      rmSync(path.dirname(home2), { recursive: true, force: true });
    }
  });

  it('an unreachable DATABASE_URL gives one line saying what to do', async () => {
    const home3 = path.join(tempDir('keel-up-nodb-'), '.keel');
    try {
      const env = { ...(await stackEnv(home3, await freePorts())), DATABASE_URL: `postgres://keel:secret@127.0.0.1:${await freePort()}/keel` };
      const run = new KeelUp(env);
      assert.equal(await run.exited, 1);
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, /^keel: cannot reach DATABASE_URL postgres:\/\/keel:\*\*\*@127\.0\.0\.1:\d+\/keel .*unset DATABASE_URL to use the embedded Postgres$/);
    } finally {
      rmSync(path.dirname(home3), { recursive: true, force: true });
    }
  });
});
