import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { InvalidInput } from './errors.js';

/** Where the process reads its settings from: environment variables and the working folder. */
export interface ConfigSource {
  env: Record<string, string | undefined>;
  cwd: string;
}

const port = (name: string, fallback: number) =>
  z.coerce
    .number({ error: `${name} must be a port number` })
    .int(`${name} must be a whole number`)
    .min(1, `${name} must be between 1 and 65535`)
    .max(65535, `${name} must be between 1 and 65535`)
    .default(fallback);

const positiveInt = (name: string, fallback: number) =>
  z.coerce
    .number({ error: `${name} must be a number` })
    .int(`${name} must be a whole number`)
    .min(1, `${name} must be at least 1`)
    .default(fallback);

const envSchema = z.object({
  KEEL_HOME: z.string().optional(),
  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY: z.string().min(1).optional(),
  KEEL_TEMPORAL_PORT: port('KEEL_TEMPORAL_PORT', 7233),
  KEEL_TEMPORAL_UI_PORT: port('KEEL_TEMPORAL_UI_PORT', 8233),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'DATABASE_URL must start with postgres:// or postgresql://')
    .optional(),
  KEEL_PG_PORT: port('KEEL_PG_PORT', 54329),
  KEEL_ARTIFACTS: z
    .string()
    .regex(/^(file|s3):\/\//, 'KEEL_ARTIFACTS must be a file:// or s3:// URI')
    .optional(),
  S3_ENDPOINT: z.url('S3_ENDPOINT must be a URL such as http://127.0.0.1:9000').optional(),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  PORT: port('PORT', 8080),
  KEEL_HOST: z.string().min(1).default('127.0.0.1'),
  KEEL_GATEWAY_ID: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'KEEL_GATEWAY_ID must be 1–128 characters of A-Z a-z 0-9 . _ : -').optional(),
  KEEL_MAX_BODY_BYTES: positiveInt('KEEL_MAX_BODY_BYTES', 1024 * 1024),
  KEEL_MAX_BATCH_ROWS: positiveInt('KEEL_MAX_BATCH_ROWS', 1000),
  KEEL_PREDICT_TIMEOUT_MS: positiveInt('KEEL_PREDICT_TIMEOUT_MS', 5000),
  KEEL_BATCH_WAIT_MS: z.coerce
    .number({ error: 'KEEL_BATCH_WAIT_MS must be a number of milliseconds' })
    .min(0, 'KEEL_BATCH_WAIT_MS must be 0 or more')
    .max(100, 'KEEL_BATCH_WAIT_MS must be at most 100')
    .default(0),
  KEEL_MICRO_BATCH_ROWS: positiveInt('KEEL_MICRO_BATCH_ROWS', 256),
  KEEL_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'KEEL_LOG_LEVEL must be fatal, error, warn, info, debug, trace or silent' }).default('info'),
  KEEL_AUTH: z.enum(['keys', 'open-loopback'], { error: 'KEEL_AUTH must be keys or open-loopback' }).optional(),
  KEEL_FEATURE_MODULES: z.string().optional(),
  KEEL_DUCKDB_AUTO_MIN_ROWS: positiveInt('KEEL_DUCKDB_AUTO_MIN_ROWS', 50_000),
  KEEL_API_KEY_GRACE_SECONDS: z.coerce
    .number({ error: 'KEEL_API_KEY_GRACE_SECONDS must be a number of seconds' })
    .min(0, 'KEEL_API_KEY_GRACE_SECONDS must be 0 or more')
    .default(300),
  KEEL_TRAINER_COMMANDS: z.string().optional(),
  KEEL_DATA_ROOTS: z.string().optional(),
  KEEL_DATA_SCHEMAS: z
    .string()
    .regex(/^\s*[a-z_][a-z0-9_]{0,62}\s*(,\s*[a-z_][a-z0-9_]{0,62}\s*)*$/, 'KEEL_DATA_SCHEMAS must be a comma-separated list of schema names (lower case letters, digits, underscores)')
    .optional(),
  KEEL_START_TIMEOUT_SECONDS: positiveInt('KEEL_START_TIMEOUT_SECONDS', 300),
});

/**
 * How the gateway authenticates: `keys` — an API key on every endpoint; `open-loopback` — predict
 * and feedback need no key from a loopback client (admin and approver endpoints always do).
 */
export type AuthMode = 'keys' | 'open-loopback';

export interface TemporalConfig {
  /** host:port of the frontend; when `embedded`, the dev server `keel up` starts. */
  address: string;
  namespace: string;
  embedded: boolean;
  uiPort: number;
  apiKey?: string;
  tls?: { certPath: string; keyPath: string };
}

export interface DatabaseConfig {
  /** Connection string every process uses; for the embedded server it is derived from the port. */
  url: string;
  embedded: boolean;
  embeddedPort: number;
}

export interface ArtifactsConfig {
  /** `file:///abs/path` or `s3://bucket/prefix`. */
  uri: string;
  s3Endpoint?: string;
  region: string;
}

/**
 * What a training worker may do on its host: powers of the worker's operator, never of whoever
 * starts a pipeline (see README "Security model").
 */
export interface WorkerConfig {
  /** Absolute paths: programs or scripts (files) and folders (everything under them) the `command` trainer may run; bare names are looked up on PATH. */
  trainerCommands: string[];
  /** Absolute folders `file://` training data may be read from. */
  dataRoots: string[];
  /** Postgres schemas training tables may be read from (`pg_*` and `information_schema` never). */
  dataSchemas: string[];
}

/** The checkout Keel runs from: its bundled examples and its `data/` folder are the workers' defaults. */
const CHECKOUT = fileURLToPath(new URL('../', import.meta.url));

export interface KeelConfig {
  /** Local state: Temporal database, embedded Postgres, artifacts, cached binaries. */
  home: string;
  temporal: TemporalConfig;
  database: DatabaseConfig;
  artifacts: ArtifactsConfig;
  /** `auth` defaults to `open-loopback` on the embedded database (no DATABASE_URL), else `keys`. */
  gateway: {
    host: string;
    port: number;
    auth: AuthMode;
    /** Names this instance in gateway_instances and its spill file; default `<hostname>:<port>`. */
    id?: string;
    limits: { maxBodyBytes: number; maxBatchRows: number; timeoutMs: number };
    /** Micro-batching wait for single rows, ms (0 = the next event-loop turn). */
    batchWaitMs: number;
    /** Rows per micro-batched onnxruntime run at most (`KEEL_MICRO_BATCH_ROWS`). */
    microBatchRows: number;
    logLevel: string;
  };
  features: FeaturesConfig;
  worker: WorkerConfig;
  /** `keel up`: how long a start may take once the binaries are present, ms. */
  launcher: { startTimeoutMs: number };
  /** Gateway API keys while Postgres is unreachable. */
  apiKeys: {
    /** A key verified this recently keeps working (revocation applies once Postgres answers again). */
    graceMs: number;
  };
}

export interface FeaturesConfig {
  /** Absolute paths of the feature modules whose on-demand features workers and the gateway register (`KEEL_FEATURE_MODULES`). */
  modules: string[];
  /** Engine `auto` of historical retrieval runs DuckDB from this many entity rows (`KEEL_DUCKDB_AUTO_MIN_ROWS`). */
  duckdbAutoMinRows: number;
}

/** The embedded Postgres credentials: local-only, loopback-bound, created by `keel up`. */
export const EMBEDDED_PG = { user: 'keel', password: 'keel', database: 'keel' } as const;

export function embeddedDatabaseUrl(port: number, database: string = EMBEDDED_PG.database): string {
  return `postgres://${EMBEDDED_PG.user}:${EMBEDDED_PG.password}@127.0.0.1:${port}/${database}`;
}

/** Reads settings from the environment; the only place that knows variable names and defaults. */
export function loadConfig(source: ConfigSource = { env: process.env, cwd: process.cwd() }): KeelConfig {
  const parsed = envSchema.safeParse(source.env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    throw new InvalidInput(`${field}: ${issue.message}`, field);
  }
  const env = parsed.data;
  const home = path.resolve(source.cwd, env.KEEL_HOME ?? '.keel');
  const tls =
    env.TEMPORAL_TLS_CERT && env.TEMPORAL_TLS_KEY
      ? { certPath: env.TEMPORAL_TLS_CERT, keyPath: env.TEMPORAL_TLS_KEY }
      : undefined;
  if (Boolean(env.TEMPORAL_TLS_CERT) !== Boolean(env.TEMPORAL_TLS_KEY)) {
    throw new InvalidInput('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together', 'TEMPORAL_TLS_CERT');
  }
  const artifactsUri = env.KEEL_ARTIFACTS ?? `file://${path.join(home, 'artifacts')}`;
  return {
    home,
    temporal: {
      address: env.TEMPORAL_ADDRESS ?? `127.0.0.1:${env.KEEL_TEMPORAL_PORT}`,
      namespace: env.TEMPORAL_NAMESPACE,
      embedded: env.TEMPORAL_ADDRESS === undefined,
      uiPort: env.KEEL_TEMPORAL_UI_PORT,
      apiKey: env.TEMPORAL_API_KEY,
      tls,
    },
    database: {
      url: env.DATABASE_URL ?? embeddedDatabaseUrl(env.KEEL_PG_PORT),
      embedded: env.DATABASE_URL === undefined,
      embeddedPort: env.KEEL_PG_PORT,
    },
    artifacts: { uri: resolveFileUri(artifactsUri, source.cwd), s3Endpoint: env.S3_ENDPOINT, region: env.AWS_REGION },
    gateway: {
      host: env.KEEL_HOST,
      port: env.PORT,
      auth: env.KEEL_AUTH ?? (env.DATABASE_URL === undefined ? 'open-loopback' : 'keys'),
      id: env.KEEL_GATEWAY_ID,
      limits: { maxBodyBytes: env.KEEL_MAX_BODY_BYTES, maxBatchRows: env.KEEL_MAX_BATCH_ROWS, timeoutMs: env.KEEL_PREDICT_TIMEOUT_MS },
      batchWaitMs: env.KEEL_BATCH_WAIT_MS,
      microBatchRows: env.KEEL_MICRO_BATCH_ROWS,
      logLevel: env.KEEL_LOG_LEVEL,
    },
    features: {
      modules: featureModules(env.KEEL_FEATURE_MODULES, source.cwd),
      duckdbAutoMinRows: env.KEEL_DUCKDB_AUTO_MIN_ROWS,
    },
    apiKeys: { graceMs: env.KEEL_API_KEY_GRACE_SECONDS * 1000 },
    worker: {
      trainerCommands: env.KEEL_TRAINER_COMMANDS === undefined ? [path.join(CHECKOUT, 'examples')] : commandEntries(listOf(env.KEEL_TRAINER_COMMANDS), source.cwd),
      dataRoots: env.KEEL_DATA_ROOTS === undefined ? [path.join(CHECKOUT, 'data'), home] : listOf(env.KEEL_DATA_ROOTS).map((root) => path.resolve(source.cwd, root)),
      dataSchemas: env.KEEL_DATA_SCHEMAS === undefined ? ['public', 'churn'] : listOf(env.KEEL_DATA_SCHEMAS),
    },
    launcher: { startTimeoutMs: env.KEEL_START_TIMEOUT_SECONDS * 1000 },
  };
}

/** `KEEL_FEATURE_MODULES`: comma-separated paths (relative ones against the working folder). */
function featureModules(value: string | undefined, cwd: string): string[] {
  return [...new Set(listOf(value ?? '').map((p) => path.resolve(cwd, p)))];
}

/** A comma-separated variable's entries, trimmed, empty ones dropped. */
function listOf(value: string): string[] {
  return value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
}

/** Entries with a `/` are paths (relative ones against `cwd`); bare names stay names, looked up on PATH when checked. */
function commandEntries(entries: string[], cwd: string): string[] {
  return entries.map((entry) => (entry.includes('/') ? path.resolve(cwd, entry) : entry));
}

/** `file://.keel/artifacts` (relative) becomes an absolute `file:///…` URI. */
function resolveFileUri(uri: string, cwd: string): string {
  if (!uri.startsWith('file://')) return uri;
  const rest = uri.slice('file://'.length);
  return `file://${path.resolve(cwd, decodeURIComponent(rest))}`;
}
