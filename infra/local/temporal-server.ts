import { Connection } from '@temporalio/client';
import { ManagedProcess } from './processes.js';
import { waitUntil } from './ports.js';

/** Search attributes every Keel namespace has: workflows upsert them, the UI filters by them. */
export const KEEL_SEARCH_ATTRIBUTES = { KeelModel: 'Keyword', KeelVersion: 'Int', KeelStage: 'Keyword' } as const;

export interface DevServerOptions {
  binary: string;
  port: number;
  /** Omit for a headless server (tests). */
  uiPort?: number;
  /** Persist state in this SQLite file; omit for an in-memory server that forgets on exit. */
  dbFile?: string;
  namespace: string;
  logFile: string;
  runDir?: string;
  ip?: string;
}

/** Starts `temporal server start-dev` and resolves once its frontend answers for the namespace. */
export async function startTemporalDevServer(options: DevServerOptions): Promise<ManagedProcess> {
  const server = spawnTemporalDevServer(options);
  try {
    await waitForTemporalDevServer(server, options);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}

/** Starts `temporal server start-dev` without waiting: the caller can stop it while it comes up. */
export function spawnTemporalDevServer(options: DevServerOptions): ManagedProcess {
  const ip = options.ip ?? '127.0.0.1';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(options.port), '--namespace', options.namespace];
  args.push(...(options.uiPort ? ['--ui-port', String(options.uiPort)] : ['--headless']));
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  for (const [name, type] of Object.entries(KEEL_SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  args.push('--log-level', 'warn');
  return ManagedProcess.start('temporal', options.binary, args, { logFile: options.logFile, runDir: options.runDir });
}

/** Resolves once the server's frontend answers for the namespace; throws if it exits first. */
export async function waitForTemporalDevServer(server: ManagedProcess, options: DevServerOptions): Promise<void> {
  const ip = options.ip ?? '127.0.0.1';
  await waitUntil(
    async () => {
      if (!server.running) throw new Error('exited');
      return namespaceReady(`${ip}:${options.port}`, options.namespace);
    },
    120_000, // a first start on a busy 2-core machine (fresh SQLite file, namespace, search attributes) can take a while
    `Temporal dev server (log: ${options.logFile})`,
  );
}

async function namespaceReady(address: string, namespace: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1_000 });
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } finally {
    await connection.close();
  }
}

/**
 * Registers Keel's search attributes on a namespace that lacks them (a production cluster; the
 * dev server gets them at start). Existing ones are left alone.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<string[]> {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const typeCode = { Keyword: 2, Int: 3 } as const; // temporal.api.enums.v1.IndexedValueType
  const missing = Object.entries(KEEL_SEARCH_ATTRIBUTES).filter(([name]) => !known.has(name));
  if (missing.length === 0) return [];
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map(([name, type]) => [name, typeCode[type]])),
  });
  return missing.map(([name]) => name);
}
