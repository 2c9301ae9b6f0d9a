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
import { ensureSearchAttributes, startTemporalDevServer } from './temporal-server.js';

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
 */
export class LocalStack {
  private readonly started: Stoppable[] = [];
  private readonly children: ManagedProcess[] = [];
  private starting: Promise<LocalStackInfo> | undefined;
  private stopping: Promise<void> | undefined;
  private stopRequested = false;
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

  /** Resolves with the name of a child that exited while the stack was meant to be running. */
  async childExited(): Promise<string> {
    return Promise.race(this.children.map(async (child) => (await child.waitForExit(), child.name)));
  }

  /** Stops everything started so far, newest first; waits for a start in progress to give up. */
  stop(): Promise<void> {
    this.stopRequested = true;
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
    for (let step = this.started.pop(); step; step = this.started.pop()) {
      this.progress(`stopping ${step.name}`);
      await step.stop().catch((error: unknown) => this.progress(`could not stop ${step.name}: ${String(error)}`));
    }
  }

  /** Between start steps: a stop requested meanwhile ends the start. */
  private checkNotStopping(): void {
    if (this.stopRequested) throw new StackError('start interrupted');
  }

  private async startAll(): Promise<LocalStackInfo> {
    const { config, progress } = this;
    const runDir = path.join(config.home, 'run');
    const logs = path.join(config.home, 'logs');
    await mkdir(logs, { recursive: true });
    const reaped = await reapLeftovers(runDir, ['gateway', 'workers', 'temporal']);
    if (reaped.length) progress(`stopped ${reaped.join(', ')} left running by an earlier keel up`);

    await assertPortFree(config.gateway.port, config.gateway.host, 'Keel gateway', 'PORT');
    if (config.temporal.embedded) {
      const [host, port] = splitAddress(config.temporal.address);
      await assertPortFree(port, host, 'Temporal frontend', 'KEEL_TEMPORAL_PORT');
      await assertPortFree(config.temporal.uiPort, host, 'Temporal Web UI', 'KEEL_TEMPORAL_UI_PORT');
    }

    const { url: databaseUrl, dataDir } = await this.startPostgres();
    this.checkNotStopping();
    const migrations = await migrate(databaseUrl);
    progress(`migrations: ${migrations.applied.length} applied, ${migrations.alreadyApplied} already in place`);

    this.checkNotStopping();
    await this.startTemporal(logs, runDir);
    this.checkNotStopping();
    const artifacts = await this.prepareArtifacts();

    const childEnv = {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: config.temporal.address,
      TEMPORAL_NAMESPACE: config.temporal.namespace,
      KEEL_ARTIFACTS: artifacts,
      PORT: String(config.gateway.port),
      KEEL_HOST: config.gateway.host,
    };
    this.checkNotStopping();
    this.spawnChild('workers', ['worker'], childEnv, logs, runDir, 40_000);
    this.spawnChild('gateway', ['gateway'], childEnv, logs, runDir, 15_000, GATEWAY_NODE_FLAGS);

    const gateway = `http://${config.gateway.host}:${config.gateway.port}`;
    await waitUntil(async () => (await fetch(`${gateway}/readyz`)).ok, 60_000, `gateway (log: ${logs}/gateway.log)`);
    progress('gateway ready; checking that the workers serve both task queues');
    this.checkNotStopping();
    const stackCheck = await this.runStackCheck();

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
    const postgres = await LocalPostgres.start({
      home: config.home,
      port: config.database.embeddedPort,
      progress,
    });
    this.started.push({ name: 'PostgreSQL', stop: () => postgres.stop(), stopNow: () => postgres.stopSync() });
    if (postgres.adopted) progress(`PostgreSQL was already running from ${postgres.dataDir}; using it`);
    return { url: postgres.url, dataDir: postgres.dataDir };
  }

  private async startTemporal(logs: string, runDir: string): Promise<void> {
    const { config, progress } = this;
    if (config.temporal.embedded) {
      const binary = await locateBinary(TEMPORAL_CLI, { binDir: path.join(config.home, 'bin'), progress });
      progress(`starting Temporal dev server (${binary})`);
      const [ip, port] = splitAddress(config.temporal.address);
      const server = await startTemporalDevServer({
        binary,
        ip,
        port,
        uiPort: config.temporal.uiPort,
        dbFile: path.join(config.home, 'temporal.db'),
        namespace: config.temporal.namespace,
        logFile: path.join(logs, 'temporal.log'),
        runDir,
      });
      this.children.push(server);
      this.started.push({
        name: 'Temporal dev server',
        stop: () => server.stop('SIGTERM', 20_000),
        stopNow: () => server.signal('SIGTERM'),
      });
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
    this.children.push(child);
    this.started.push({ name, stop: () => child.stop('SIGTERM', graceMs), stopNow: () => child.signal('SIGTERM') });
  }

  private async runStackCheck(): Promise<StackCheckResult> {
    try {
      return await runStackCheck(this.config.temporal, 60);
    } catch (error) {
      throw new StackError(
        `the workers did not complete the stack check (${(error as Error).message}); see ${path.join(this.config.home, 'logs', 'workers.log')}`,
      );
    }
  }
}

function splitAddress(address: string): [string, number] {
  const index = address.lastIndexOf(':');
  return [address.slice(0, index), Number(address.slice(index + 1))];
}
