/**
 * Real services for tests. `test/run.ts` starts each once and exports its address; a test file
 * run on its own starts what it needs itself (and kills it when the process exits).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LocalPostgres } from '../../infra/local/postgres.js';
import { locateBinary, MINIO, TEMPORAL_CLI } from '../../infra/local/pinned-binaries.js';
import { freePort } from '../../infra/local/ports.js';
import { startMinio } from '../../infra/local/minio.js';
import { startTemporalDevServer } from '../../infra/local/temporal-server.js';
import { atExit, tempDir } from './temp.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Pinned binaries are cached per checkout, like `keel up` does. */
const BIN_DIR = path.join(REPO_ROOT, '.keel', 'bin');
const progress = (line: string) => process.stderr.write(`[test services] ${line}\n`);

export interface TestTemporal {
  address: string;
  namespace: string;
}
export interface TestS3 {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  bucket: string;
}

export function temporalCliPath(): Promise<string> {
  return locateBinary(TEMPORAL_CLI, { binDir: BIN_DIR, progress });
}

export function minioPath(): Promise<string> {
  return locateBinary(MINIO, { binDir: BIN_DIR, progress });
}

let temporal: Promise<TestTemporal> | undefined;
/** `TEMPORAL_ADDRESS` when set, else an in-memory dev server from the pinned CLI. */
export function testTemporal(): Promise<TestTemporal> {
  temporal ??= (async () => {
    const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    if (process.env.TEMPORAL_ADDRESS) return { address: process.env.TEMPORAL_ADDRESS, namespace };
    const started = await startTestTemporal();
    // Killed at exit; unreferenced so a test file run on its own ends when its tests do.
    started.unref();
    atExit(() => started.kill());
    return started;
  })();
  return temporal;
}

export async function startTestTemporal(): Promise<TestTemporal & { kill: () => void; unref: () => void; stop: () => Promise<void> }> {
  const port = await freePort();
  const server = await startTemporalDevServer({
    binary: await temporalCliPath(),
    port,
    namespace: 'default',
    logFile: path.join(tempDir('keel-test-temporal-'), 'temporal.log'),
  });
  return {
    address: `127.0.0.1:${port}`,
    namespace: 'default',
    kill: () => killGroup(server.pid),
    unref: () => server.unref(),
    stop: () => server.stop(),
  };
}

let database: Promise<string> | undefined;
/** `DATABASE_URL` when set, else an embedded PostgreSQL 18 in a throwaway folder. */
export function testDatabaseUrl(): Promise<string> {
  database ??= (async () => {
    if (process.env.DATABASE_URL) return process.env.DATABASE_URL;
    const started = await startTestPostgres();
    atExit(() => started.kill());
    return started.url;
  })();
  return database;
}

export async function startTestPostgres(): Promise<{ url: string; kill: () => void; stop: () => Promise<void> }> {
  const pgHome = tempDir('keel-test-pg-');
  const port = await freePort();
  const postgres = await LocalPostgres.start({ home: pgHome, pgHome, port });
  return {
    url: postgres.url,
    // pg_ctl's immediate mode: the folder is thrown away, nothing to keep.
    kill: () => void spawnSync('pkill', ['-KILL', '-f', `-D ${postgres.dataDir}`]),
    stop: () => postgres.stop(),
  };
}

/** A new, empty database on the server behind `baseUrl`; dropped by `drop()`. */
export async function freshDatabase(baseUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `keel_test_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: baseUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

let s3: Promise<TestS3> | undefined;
/** The S3 server the runner started (`KEEL_TEST_S3_*`), else a MinIO of our own. */
export function testS3(): Promise<TestS3> {
  s3 ??= (async () => {
    const env = process.env;
    if (env.KEEL_TEST_S3_ENDPOINT && env.KEEL_TEST_S3_ACCESS_KEY && env.KEEL_TEST_S3_SECRET_KEY) {
      return {
        endpoint: env.KEEL_TEST_S3_ENDPOINT,
        accessKey: env.KEEL_TEST_S3_ACCESS_KEY,
        secretKey: env.KEEL_TEST_S3_SECRET_KEY,
        region: 'us-east-1',
        bucket: env.KEEL_TEST_S3_BUCKET ?? 'keel-test',
      };
    }
    const started = await startTestMinio();
    started.unref();
    atExit(() => started.kill());
    return started;
  })();
  return s3;
}

export async function startTestMinio(): Promise<TestS3 & { kill: () => void; unref: () => void; stop: () => Promise<void> }> {
  const dir = tempDir('keel-test-minio-');
  const minio = await startMinio({
    binary: await minioPath(),
    dataDir: path.join(dir, 'data'),
    logFile: path.join(dir, 'minio.log'),
  });
  const bucket = 'keel-test';
  await minio.createBucket(bucket);
  return {
    endpoint: minio.endpoint,
    accessKey: minio.accessKey,
    secretKey: minio.secretKey,
    region: minio.region,
    bucket,
    kill: () => killGroup(minio.process.pid),
    unref: () => minio.process.unref(),
    stop: () => minio.stop(),
  };
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** A task queue no other test uses, so workers never steal each other's tasks. */
export function uniqueTaskQueue(name: string): string {
  return `${name}-${randomUUID()}`;
}
