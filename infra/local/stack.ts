import { GATEWAY_NODE_FLAGS } from '../../api/node-flags.js';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import type { KeelConfig } from '../../lib/config.js';
import { StackError } from '../../lib/errors.js';
import type { StackCheckResult } from '../../lib/schemas/stack-check.js';
import { openArtifactStore } from '../../stores/artifacts/index.js';
import { redactUrl, waitForDatabase } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { runStackCheck, temporalConnectionOptions } from '../../stores/temporal.js';
import { locateBinary, TEMPORAL_CLI } from './pinned-binaries.js';
import { assertPortFree, waitUntil } from './ports.js';
import { LocalPostgres } from './postgres.js';
import { ManagedProcess, reapLeftovers } from './processes.js';
import { RestartBudget } from './restart-budget.js';
import {
  ensureSearchAttributes,
  spawnTemporalDevServer,
  waitForTemporalDevServer,
  type DevServerOptions,
} from './temporal-server.js';

const KEEL_BIN = fileURLToPath(new URL('../../bin/keel.js', import.meta.url));

export interface LocalStackInfo {
  temporalAddress: string;
  temporalUi?: string;
  databaseUrl: string;
  postgresData?: string;
  artifacts: string;
  gateway: string;
  logs: string;
  stackCheck: StackCheckResult;
}

/** A step that has started something and knows how to stop it. */
interface Stoppable {
  name: string;
  stop: () => Promise<void>;
  /** Best effort without waiting on promises, for a launcher that is exiting abruptly. */
  stopNow: () => void;
}

/**
 * The whole local stack on embedded defaults (or on the servers the environment names):
 * Postgres, Temporal with its Web UI, migrations, workers on both task queues and the gateway.
 * Things stop in the reverse order they started: gateway, workers, Temporal, Postgres.
 *
 * A start ends early, stopping what it started, when `stop()` is called (Ctrl-C), when a child
 * exits, or when it passes `KEEL_START_TIMEOUT_SECONDS` (counted once the binaries are present).
 * Once up, `supervise()` restarts an embedded Postgres or Temporal that dies (with backoff, a few
 * times) and says why the stack must stop otherwise.
 */
export class LocalStack {
  private readonly started: Stoppable[] = [];
  /** Workers and gateway: the stack stops when one of them exits. */
  private readonly services: ManagedProcess[] = [];
  private postgres: LocalPostgres | undefined;
  private temporal: { server: ManagedProcess; options: DevServerOptions } | undefined;
  /** Work that may start a server after an aborted start gave up on it; stopping waits for it. */
  private readonly inFlight: Promise<unknown>[] = [];
  private readonly startAborted = new AbortController();
  private readonly stopRequested = resolvable<'stop'>();
  private starting: Promise<LocalStackInfo> | undefined;
  private stopping: Promise<void> | undefined;
  info: LocalStackInfo | undefined;

  constructor(
    private readonly config: KeelConfig,
    private readonly progress: (line: string) => void,
  ) {}

  start(): Promise<LocalStackInfo> {
    this.starting ??= this.startAll().catch(async (error: unknown) => {
      await this.stopStarted();
      throw error;
    });
    return this.starting;
  }

  /**
   * Runs until `stop()` (resolves undefined) or until the stack cannot go on (resolves with a
   * one-line reason): a worker or gateway exited, or Postgres / Temporal died too often.
   */
  async supervise(): Promise<string | undefined> {
    const budgets = { postgres: new RestartBudget(), temporal: new RestartBudget() };
    for (;;) {
      const event = await Promise.race([
        this.stopRequested.promise,
        ...this.services.map(async (child) => (await child.waitForExit(), { service: child })),
        ...(this.temporal ? [this.temporal.server.waitForExit().then(() => 'temporal' as const)] : []),
        ...(this.postgres ? [this.postgres.waitForExit().then(() => 'postgres' as const)] : []),
      ]);
      if (event === 'stop') return undefined;
      if (typeof event === 'object') {
        const { service } = event;
        return `${service.name} exited unexpectedly (${service.exitDescription}); see ${service.logFile}`;
      }
      const failure = await this.restart(event, event === 'postgres' ? budgets.postgres : budgets.temporal);
      if (failure !== undefined) return failure;
    }
  }

  /** Stops everything started so far, newest first; a start in progress gives up at once. */
  stop(): Promise<void> {
    this.startAborted.abort(new StackError('start interrupted'));
    this.stopRequested.resolve('stop');
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      await this.stopStarted();
    })();
    return this.stopping;
  }

  /**
   * For `process.on('exit')`: whatever is still running is told to stop, synchronously, so that
   * even a launcher that crashes leaves no orphans behind.
   */
  stopNow(): void {
    for (let step = this.started.pop(); step; step = this.started.pop()) step.stopNow();
  }

  private async stopStarted(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    for (let step = this.started.pop(); step; step = this.started.pop()) {
      this.progress(`stopping ${step.name}`);
      await step.stop().catch((error: unknown) => this.progress(`could not stop ${step.name}: ${String(error)}`));
    }
  }

  /** `work`, unless the start is aborted first (stop, a child exiting, the deadline). */
  private interruptible<T>(work: Promise<T>): Promise<T> {
    const signal = this.startAborted.signal;
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private abortStart(reason: string): void {
    if (!this.info) this.startAborted.abort(new StackError(reason));
  }

  /** A child that exits before the stack is up fails the start at once, naming it and its log. */
  private watchDuringStart(child: ManagedProcess, name: string): void {
    void child.waitForExit().then(() => this.abortStart(`${name} exited during start (${child.exitDescription}); see ${child.logFile}`));
  }

  private async startAll(): Promise<LocalStackInfo> {
    const { config, progress } = this;
    const runDir = path.join(config.home, 'run');
    const logs = path.join(config.home, 'logs');
    await mkdir(logs, { recursive: true });
    const leftovers = await reapLeftovers(runDir, ['gateway', 'workers', 'temporal']);
    if (leftovers.reaped.length) progress(`stopped ${leftovers.reaped.join(', ')} left running by an earlier keel up`);
    if (leftovers.foreign.length) progress(`left alone ${leftovers.foreign.join(', ')}: a stale pid file`);

    await assertPortFree(config.gateway.port, config.gateway.host, 'Keel gateway', 'PORT');
    if (config.temporal.embedded) {
      const [host, port] = splitAddress(config.temporal.address);
      await assertPortFree(port, host, 'Temporal frontend', 'KEEL_TEMPORAL_PORT');
      await assertPortFree(config.temporal.uiPort, host, 'Temporal Web UI', 'KEEL_TEMPORAL_UI_PORT');
    }
    // A first Go build of the Temporal CLI takes minutes and prints its own progress: before the deadline.
    const temporalBinary = config.temporal.embedded
      ? await this.interruptible(locateBinary(TEMPORAL_CLI, { binDir: path.join(config.home, 'bin'), progress }))
      : undefined;
    const deadlineAt = Date.now() + config.launcher.startTimeoutMs;
    const deadline = setTimeout(
      () => this.abortStart(`the stack did not come up within ${Math.round(config.launcher.startTimeoutMs / 1000)} s (KEEL_START_TIMEOUT_SECONDS); see the logs in ${logs}`),
      config.launcher.startTimeoutMs,
    );
    try {
      return await this.startServices({ runDir, logs, temporalBinary, deadlineAt });
    } finally {
      clearTimeout(deadline);
    }
  }

  private async startServices(at: { runDir: string; logs: string; temporalBinary?: string; deadlineAt: number }): Promise<LocalStackInfo> {
    const { config, progress } = this;
    const { runDir, logs } = at;
    const { url: databaseUrl, dataDir } = await this.interruptible(this.startPostgres());
    const migrations = await this.interruptible(migrate(databaseUrl));
    progress(`migrations: ${migrations.applied.length} applied, ${migrations.alreadyApplied} already in place`);

    await this.interruptible(this.startTemporal(logs, runDir, at.temporalBinary));
    const artifacts = await this.interruptible(this.prepareArtifacts());

    const childEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: config.temporal.address,
      TEMPORAL_NAMESPACE: config.temporal.namespace,
      KEEL_ARTIFACTS: artifacts,
      PORT: String(config.gateway.port),
      KEEL_HOST: config.gateway.host,
      // The gateway sees DATABASE_URL and would choose `keys`; the launcher's own choice holds.
      KEEL_AUTH: config.gateway.auth,
    };
    this.startAborted.signal.throwIfAborted();
    this.spawnChild('workers', ['worker'], childEnv, logs, runDir, 40_000);
    this.spawnChild('gateway', ['gateway'], childEnv, logs, runDir, 15_000, GATEWAY_NODE_FLAGS);

    const gateway = `http://${config.gateway.host}:${config.gateway.port}`;
    await this.interruptible(
      waitUntil(async () => (await fetch(`${gateway}/readyz`)).ok, Math.max(1_000, at.deadlineAt - Date.now()), `gateway (log: ${logs}/gateway.log)`),
    );
    progress('gateway ready; checking that the workers serve both task queues');
    const stackCheck = await this.interruptible(this.runStackCheck(Math.max(1, Math.round((at.deadlineAt - Date.now()) / 1000))));

    this.info = {
      temporalAddress: config.temporal.address,
      temporalUi: config.temporal.embedded
        ? `http://${splitAddress(config.temporal.address)[0]}:${config.temporal.uiPort}`
        : undefined,
      databaseUrl: redactUrl(databaseUrl),
      postgresData: dataDir,
      artifacts,
      gateway,
      logs,
      stackCheck,
    };
    return this.info;
  }

  private async startPostgres(): Promise<{ url: string; dataDir?: string }> {
    const { config, progress } = this;
    if (!config.database.embedded) {
      try {
        await waitForDatabase(config.database.url, 10_000);
      } catch (error) {
        throw new StackError(
          `cannot reach DATABASE_URL ${redactUrl(config.database.url)} (${(error as Error).message}): start that server, fix the URL, or unset DATABASE_URL to use the embedded Postgres`,
        );
      }
      return { url: config.database.url };
    }
    progress('starting embedded PostgreSQL');
    const starting = this.startLocalPostgres();
    this.inFlight.push(starting);
    const postgres = await starting;
    this.started.push({ name: 'PostgreSQL', stop: () => this.postgres!.stop(), stopNow: () => this.postgres!.stopSync() });
    if (postgres.adopted) progress(`PostgreSQL was already running from ${postgres.dataDir}; using it`);
    return { url: postgres.url, dataDir: postgres.dataDir };
  }

  private async startLocalPostgres(): Promise<LocalPostgres> {
    const { config, progress } = this;
    this.postgres = await LocalPostgres.start({ home: config.home, port: config.database.embeddedPort, progress });
    return this.postgres;
  }

  private async startTemporal(logs: string, runDir: string, binary: string | undefined): Promise<void> {
    const { config, progress } = this;
    if (binary) {
      progress(`starting Temporal dev server (${binary})`);
      const [ip, port] = splitAddress(config.temporal.address);
      const options: DevServerOptions = {
        binary,
        ip,
        port,
        uiPort: config.temporal.uiPort,
        dbFile: path.join(config.home, 'temporal.db'),
        namespace: config.temporal.namespace,
        logFile: path.join(logs, 'temporal.log'),
        runDir,
      };
      this.temporal = { server: spawnTemporalDevServer(options), options };
      this.watchDuringStart(this.temporal.server, 'Temporal dev server');
      this.started.push({
        name: 'Temporal dev server',
        stop: () => this.temporal!.server.stop('SIGTERM', 20_000),
        stopNow: () => this.temporal!.server.signal('SIGTERM'),
      });
      await waitForTemporalDevServer(this.temporal.server, options);
    }
    let connection: Connection;
    try {
      connection = await Connection.connect({ ...(await temporalConnectionOptions(config.temporal)), connectTimeout: 10_000 });
    } catch (error) {
      throw new StackError(
        `cannot reach Temporal at ${config.temporal.address} (${(error as Error).message}): start it, fix TEMPORAL_ADDRESS, or unset it to use the embedded dev server`,
      );
    }
    try {
      const added = await ensureSearchAttributes(connection, config.temporal.namespace);
      if (added.length) progress(`registered search attributes ${added.join(', ')}`);
    } finally {
      await connection.close();
    }
  }

  /** Brings a dead Postgres or Temporal back; returns why the stack must stop when it cannot. */
  private async restart(what: 'postgres' | 'temporal', budget: RestartBudget): Promise<string | undefined> {
    const name = what === 'postgres' ? 'PostgreSQL' : 'Temporal dev server';
    const log = what === 'postgres' ? this.postgres!.logFile : this.temporal!.options.logFile;
    const how = what === 'temporal' ? ` (${this.temporal!.server.exitDescription})` : '';
    for (;;) {
      const delayMs = budget.next();
      if (delayMs === undefined) {
        return `${name} died ${budget.limit} times within ${budget.windowMinutes} minutes; stopping everything (log: ${log})`;
      }
      this.progress(`${name} died${how}; restarting it in ${Math.round(delayMs / 1000)} s (restart ${budget.used} of ${budget.limit}; log: ${log})`);
      const stopped = await Promise.race([new Promise((r) => setTimeout(r, delayMs)), this.stopRequested.promise]);
      if (stopped === 'stop') return undefined;
      try {
        const restarting = what === 'postgres' ? this.startLocalPostgres() : this.restartTemporal();
        this.inFlight.push(restarting);
        await restarting;
        this.progress(`${name} is back`);
        return undefined;
      } catch (error) {
        this.progress(`${name} did not come back: ${(error as Error).message}`);
      }
    }
  }

  private async restartTemporal(): Promise<void> {
    const { options } = this.temporal!;
    const server = spawnTemporalDevServer(options);
    this.temporal = { server, options };
    await waitForTemporalDevServer(server, options);
  }

  private async prepareArtifacts(): Promise<string> {
    const store = openArtifactStore(this.config.artifacts);
    // A lookup proves the store is reachable (and, for S3, that the bucket and credentials work).
    await store.stat('0'.repeat(64)).catch((error: Error) => {
      throw new StackError(`artifact store ${store.rootUri} is not usable: ${error.message}`);
    });
    return store.rootUri;
  }

  private spawnChild(name: string, args: string[], env: NodeJS.ProcessEnv, logs: string, runDir: string, graceMs: number, nodeFlags: readonly string[] = []) {
    const child = ManagedProcess.start(name, process.execPath, [...nodeFlags, KEEL_BIN, ...args], {
      logFile: path.join(logs, `${name}.log`),
      runDir,
      env,
    });
    this.services.push(child);
    this.watchDuringStart(child, name);
    this.started.push({ name, stop: () => child.stop('SIGTERM', graceMs), stopNow: () => child.signal('SIGTERM') });
  }

  private async runStackCheck(timeoutSeconds: number): Promise<StackCheckResult> {
    try {
      return await runStackCheck(this.config.temporal, timeoutSeconds);
    } catch (error) {
      throw new StackError(
        `the workers did not complete the stack check (${(error as Error).message}); see ${path.join(this.config.home, 'logs', 'workers.log')}`,
      );
    }
  }
}

/** Node 20 has no Promise.withResolvers. */
function resolvable<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function splitAddress(address: string): [string, number] {
  const index = address.lastIndexOf(':');
  return [address.slice(0, index), Number(address.slice(index + 1))];
}
