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
import { isAlive, readPidRecord } from '../../infra/local/processes.js';
import { REPO_ROOT, temporalCliPath } from '../helpers/services.js';
import { runKeel } from '../helpers/keel-cli.js';
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

  /** `group`: its own process group, which `signalGroup` reaches whole, as a terminal's Ctrl-C does. */
  constructor(env: NodeJS.ProcessEnv, command: readonly string[] = [process.execPath, KEEL, 'up'], group = false) {
    this.child = spawn(command[0]!, command.slice(1), { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: group });
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

  signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      // The whole group is gone already.
    }
  }

  /** Resolves when stderr has matched `pattern`; throws if keel up exits first or it takes longer than `timeoutMs`. */
  async stderrMatches(pattern: RegExp, timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.stderr)) {
      if (this.child.exitCode !== null) throw new Error(`keel up exited ${this.child.exitCode} before ${pattern}: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`no ${pattern} from keel up in time: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The exit code, or null (after SIGKILL) if keel up has not exited within `timeoutMs`. */
  async exitWithin(timeoutMs: number): Promise<number | null | 'hung'> {
    const timer = new Promise<'hung'>((r) => setTimeout(() => r('hung'), timeoutMs).unref());
    const result = await Promise.race([this.exited, timer]);
    if (result === 'hung') this.child.kill('SIGKILL');
    return result;
  }

  get stackCheckId(): string {
    return /stack check (\S+) passed/.exec(this.stdout)![1]!;
  }
}

/** Every process `keel up` started: the pid files it keeps, plus the Postgres postmaster. */
function stackPids(home: string, pgData: string): number[] {
  const runDir = path.join(home, 'run');
  const pids = readdirSync(runDir).map((f) => readPidRecord(path.join(runDir, f))!.pid);
  pids.push(Number(readFileSync(path.join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0]));
  return pids;
}

/** The pid a child's pid file names, once keel up has written it. */
async function pidFromFile(pidFile: string, run: KeelUp, timeoutMs = 180_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const record = existsSync(pidFile) ? readPidRecord(pidFile) : undefined;
    if (record) return record.pid;
    if (run.child.exitCode !== null) throw new Error(`keel up exited ${run.child.exitCode} before writing ${pidFile}: ${run.stderr}`);
    if (Date.now() > deadline) throw new Error(`no ${pidFile} in time: ${run.stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The commands of README.md's blocks marked `<!-- e2e: quick-start … -->`, in order: continuation
 * lines joined, comments dropped, `a && b` split in two.
 */
function readmeQuickStart(): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/<!-- e2e: quick-start[^>]*-->\n```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks
    .flatMap((block) => block.replace(/\\\n\s*/g, ' ').split('\n'))
    .map((line) => line.replace(/(^|\s+)#.*$/, '').trim())
    .filter(Boolean)
    .flatMap((line) => line.split(' && ').map((command) => command.trim()));
}

/** Runs one README command as a user would in a shell, against the stack on `gatewayPort`. */
async function runReadmeCommand(command: string, env: NodeJS.ProcessEnv, gatewayPort: number): Promise<string> {
  // curl exits non-zero on an HTTP error status (a 401 or 422 fails the test, not just the answer).
  const line = command.replaceAll('localhost:8080', `localhost:${gatewayPort}`).replace(/^curl /, 'curl --fail-with-body ');
  const child = spawn('bash', ['-c', line], { env, cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 0, `README command failed (exit ${code}): ${command}\n${stdout}\n${stderr}`);
  return stdout;
}

describe('keel up (the whole local stack on embedded defaults)', () => {
  const home = path.join(tempDir('keel-up-'), '.keel');
  const pgHome = process.getuid?.() === 0 ? rootDataHome(home) : home;
  /** Started by the first test with the README's `npm start`, used by the next ones, stopped by the last. */
  let running: { stack: KeelUp; env: NodeJS.ProcessEnv; ports: Ports } | undefined;
  const quickStart = readmeQuickStart();
  after(async () => {
    if (running && running.stack.child.exitCode === null && running.stack.child.signalCode === null) {
      running.stack.signalGroup('SIGTERM');
      await running.stack.exitWithin(120_000);
    }
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

    // The README's two commands: `npm ci` (done: node_modules are installed), `npm start`, `npm test` (this suite).
    assert.deepEqual(quickStart.slice(0, 4), ['npm ci', 'npm start', 'npm ci', 'npm test']);
    const second = new KeelUp(env, ['npm', 'start'], true);
    running = { stack: second, env, ports };
    await second.ready();
    assert.match(second.stderr, /migrations: 0 applied/);
    const db = new pg.Client({ connectionString: embeddedDatabaseUrl(ports.pg) });
    await db.connect();
    const { rows } = await db.query<{ workflow_id: string }>('SELECT DISTINCT workflow_id FROM stack_checks');
    // The role Keel connects as is no superuser and cannot read password hashes.
    const role = await db.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
    await assert.rejects(db.query('SELECT * FROM pg_catalog.pg_authid'), /permission denied/);
    await db.end();
    assert.deepEqual(role.rows, [{ rolsuper: false }]);
    assert.deepEqual(new Set(rows.map((r) => r.workflow_id)), new Set([first.stackCheckId, second.stackCheckId]));
    const connection = await Connection.connect({ address: `127.0.0.1:${ports.temporal}` });
    const client = new Client({ connection });
    const earlier = await client.workflow.getHandle(first.stackCheckId).describe();
    assert.equal(earlier.status.name, 'COMPLETED');
    await connection.close();
  });

  it("runs every command of the README's quick-start as written (no key needed on loopback)", async () => {
    const { stack, env, ports } = running!;
    assert.equal(stack.child.exitCode, null, stack.stderr);
    const commands = quickStart.slice(4);
    assert.ok(commands.some((c) => c.startsWith('npx keel train')) && commands.some((c) => c.startsWith('curl ')), commands.join('\n'));
    for (const command of commands) {
      const output = await runReadmeCommand(command, env, ports.gateway);
      if (command.startsWith('curl ')) assert.match(output, /"prediction":[01]/, `${command}\n${output}`);
    }
  });

  it('restarts an embedded Postgres or Temporal that dies, saying so, and the stack serves again', async () => {
    const { stack, env, ports } = running!;
    const postmaster = Number(readFileSync(path.join(pgHome, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(postmaster, 'SIGKILL');
    await stack.stderrMatches(/keel up: PostgreSQL died; restarting it in 1 s \(restart 1 of 5; log: .*pg\.log\)\n/);
    await stack.stderrMatches(/keel up: PostgreSQL is back\n/);
    const deadline = Date.now() + 60_000;
    while ((await fetch(`http://127.0.0.1:${ports.gateway}/readyz`).then((r) => r.status, () => 0)) !== 200) {
      assert.ok(Date.now() < deadline, 'the gateway did not become ready again after Postgres came back');
      await new Promise((r) => setTimeout(r, 500));
    }

    const temporal = readPidRecord(path.join(home, 'run', 'temporal.pid'))!.pid;
    process.kill(temporal, 'SIGKILL');
    await stack.stderrMatches(/keel up: Temporal dev server died \(signal SIGKILL\); restarting it in 1 s \(restart 1 of 5; log: .*temporal\.log\)\n/);
    await stack.stderrMatches(/keel up: Temporal dev server is back\n/);
    // The same workers and gateway, reconnected: the stack check passes again.
    const doctor = await runKeel(['doctor', '--timeout', '120'], env);
    assert.equal(doctor.code, 0, doctor.stderr);
    assert.equal((await fetch(`http://127.0.0.1:${ports.gateway}/readyz`)).status, 200);
  });

  it('stops on Ctrl-C at the terminal running npm start, leaving nothing running', async () => {
    const { stack, ports } = running!;
    const pids = stackPids(home, path.join(pgHome, 'pg'));
    stack.signalGroup('SIGINT'); // npm and keel up both get it, as from a terminal
    assert.notEqual(await stack.exitWithin(120_000), 'hung', stack.stderr);
    // npm may exit before keel up has finished stopping (its output still reaches the pipe); keel up says when it has.
    const deadline = Date.now() + 120_000;
    while (!/stopped; data is kept for the next start/.test(stack.stderr)) {
      assert.ok(Date.now() < deadline, stack.stderr);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} outlived keel up`);
    for (const port of Object.values(ports)) assert.equal(await isPortFree(port), true, `port ${port} still held`);
  });

  describe('a start that cannot finish', () => {
    const startHome = path.join(tempDir('keel-up-start-'), '.keel');
    const startPgHome = process.getuid?.() === 0 ? rootDataHome(startHome) : startHome;
    after(() => {
      rmSync(path.dirname(startHome), { recursive: true, force: true });
      if (startPgHome !== startHome) rmSync(startPgHome, { recursive: true, force: true });
    });

    it('a worker process that dies during start fails it at once, in one line naming it and its log', async () => {
      const run = new KeelUp(await stackEnv(startHome, await freePorts()));
      const workers = await pidFromFile(path.join(startHome, 'run', 'workers.pid'), run);
      const others = stackPids(startHome, path.join(startPgHome, 'pg')).filter((pid) => pid !== workers);
      process.kill(workers, 'SIGKILL');
      assert.equal(await run.exitWithin(120_000), 1, run.stderr);
      assert.equal(run.stderr.trim().split('\n').at(-1), `keel: workers exited during start (signal SIGKILL); see ${path.join(startHome, 'logs', 'workers.log')}`);
      assert.doesNotMatch(run.stdout, /Keel is running/);
      for (const pid of others) assert.equal(isAlive(pid), false, `process ${pid} outlived keel up`);
    });

    it('Ctrl-C while the workers hang during start stops everything and exits', async () => {
      const run = new KeelUp(await stackEnv(startHome, await freePorts()));
      const workers = await pidFromFile(path.join(startHome, 'run', 'workers.pid'), run);
      process.kill(workers, 'SIGSTOP'); // alive but never polling: the stack check cannot finish
      await run.stderrMatches(/checking that the workers serve both task queues/);
      const pids = stackPids(startHome, path.join(startPgHome, 'pg'));
      run.child.kill('SIGINT');
      assert.equal(await run.exitWithin(120_000), 1, run.stderr);
      assert.equal(run.stderr.trim().split('\n').at(-1), 'keel: start interrupted by SIGINT; everything it had started is stopped');
      assert.doesNotMatch(run.stdout, /Keel is running/);
      for (const pid of pids) assert.equal(isAlive(pid), false, `process ${pid} outlived keel up`);
    });
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
