/**
 * What made a workflow fail, in parts an API caller may see (type, step, field, the kind of
 * infrastructure cause: none of them holds data values or program output) and the full message
 * for operators (the CLI, logs). Shared by `keel train` and `POST /v1/pipelines/train?wait=true`.
 */
import type { KeelConfig } from './config.js';
import { BAD_INPUT_TYPES } from './errors.js';
import { ActivityFailure, ApplicationFailure, CancelledFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';


export interface WorkflowFailureSummary {
  /** The failure's type: `InvalidInput`, `NotFound`, an error name such as `Error`, or `Timeout`, `Canceled`, `Terminated`. */
  type: string;
  kind: 'badInput' | 'infrastructure' | 'canceled' | 'failed';
  /** The pipeline step or activity that failed, when known. */
  step?: string;
  /** The input field the failure names, when it names one. */
  field?: string;
  /** A value-free statement of what was wrong, when the failing code gave one (`KeelError.publicMessage`). */
  publicMessage?: string;
  /** For infrastructure failures: what was unavailable, e.g. `Postgres unreachable (connection refused)`. Value-free. */
  cause?: string;
  /** The failure's own message: may quote data values or program output — for operators only. */
  detail: string;
}

/** A service the caller knows the address of, to name it when an error quotes that address. */
export interface KnownService {
  name: string;
  /** A URL or `host:port` (e.g. DATABASE_URL, S3_ENDPOINT). */
  address: string;
}

/** Postgres and the artifact store by address, so a failure quoting one can name it. */
export function knownServices(config: Pick<KeelConfig, 'database' | 'artifacts'>): KnownService[] {
  const services = [{ name: 'Postgres', address: config.database.url }];
  if (config.artifacts.s3Endpoint) services.push({ name: 'the artifact store', address: config.artifacts.s3Endpoint });
  return services;
}

/** Summarises the cause of a `WorkflowFailedError` (pass its `cause`). */
export function summarizeWorkflowFailure(failure: unknown, services: readonly KnownService[] = []): WorkflowFailureSummary {
  const chain: unknown[] = [];
  for (let e: unknown = failure; e instanceof Error && chain.length < 20; e = e.cause) chain.push(e);
  const root = (chain.at(-1) ?? failure) as Error | undefined;
  // The outermost application failure's message (the pipeline prefixes the step), else the root's.
  const told = chain.find((e) => e instanceof ApplicationFailure) ?? root;
  const detail = told instanceof Error ? told.message || told.name : String(failure);
  const step = chain.map(stepOf).find((s) => s !== undefined);
  const field = chain.map((e) => detailOf(e, 'field')).find((f) => f !== undefined);
  const publicMessage = chain.map((e) => detailOf(e, 'publicMessage')).find((m) => m !== undefined);
  const top = chain[0];
  if (top instanceof CancelledFailure || top instanceof TerminatedFailure) {
    return { type: top instanceof CancelledFailure ? 'Canceled' : 'Terminated', kind: 'canceled', step, detail };
  }
  const badInput = chain.find((e): e is ApplicationFailure => e instanceof ApplicationFailure && BAD_INPUT_TYPES.includes(e.type ?? ''));
  if (badInput) return { type: badInput.type!, kind: 'badInput', step, field, ...(publicMessage ? { publicMessage } : {}), detail };
  const timeout = chain.find((e) => e instanceof TimeoutFailure);
  if (timeout) return { type: 'Timeout', kind: 'infrastructure', step, cause: 'timed out: no worker finished the step in time (is a worker polling its task queue?)', detail };
  const type = root instanceof ApplicationFailure ? (root.type ?? 'Error') : root instanceof Error ? root.name : 'Error';
  const cause = infrastructureCause(root, services);
  return { type, kind: cause ? 'infrastructure' : 'failed', step, cause, detail };
}

/**
 * The kind of infrastructure problem behind an error, from its name, code, message and stack
 * (e.g. `Postgres unreachable (connection refused)`); undefined when it does not look like one.
 * The answer is a fixed phrase, never text from the error.
 */
export function infrastructureCause(error: unknown, services: readonly KnownService[] = []): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  const text = `${error.name} ${typeof code === 'string' ? code : ''} ${error.message}\n${error.stack ?? ''}`;
  if (/CredentialsProviderError|Could not load credentials/.test(text)) return 'no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an AWS profile)';
  if (/\bENOSPC\b|no space left on device/i.test(text)) return 'disk full (ENOSPC)';
  if (/\bEPERM\b|\bEACCES\b|operation not permitted/i.test(text)) return 'permission denied (EPERM / EACCES)';
  const connection = CONNECTION_PROBLEMS.find(([pattern]) => pattern.test(text))?.[1];
  const service = SERVICES.find(([pattern]) => pattern.test(text))?.[1] ?? serviceAt(error.message, services);
  if (service && connection) return `${service} unreachable (${connection})`;
  if (service === 'Postgres' && /\b57P0[1-3]\b|database system is (shutting down|starting up)|terminating connection/i.test(text)) return 'Postgres unavailable (restarting)';
  if (service === 'the artifact store' && /ServiceUnavailable|SlowDown|InternalError|\b5\d\d\b/.test(error.name)) return 'the artifact store unavailable';
  if (connection) return `a service the step uses is unreachable (${connection})`;
  return undefined;
}

const CONNECTION_PROBLEMS: Array<[RegExp, string]> = [
  [/ECONNREFUSED/, 'connection refused'],
  [/ECONNRESET|socket hang up|Connection terminated/i, 'connection lost'],
  [/ETIMEDOUT|connection timeout|timeout expired/i, 'connection timed out'],
  [/ENOTFOUND|EAI_AGAIN/, 'host not found'],
  [/EHOSTUNREACH|ENETUNREACH/, 'host unreachable'],
];

/** Which service an error came from, by the client library in its stack or its own wording. */
const SERVICES: Array<[RegExp, string]> = [
  [/node_modules\/pg(-pool)?\/|\bpostgres(ql)?\b|\b57P0\d\b/i, 'Postgres'],
  [/@aws-sdk|@smithy|stores\/artifacts|S3ServiceException|NoSuchBucket/, 'the artifact store'],
];

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** The known service whose host and port the message quotes (`connect ECONNREFUSED 127.0.0.1:5432`). */
function serviceAt(message: string, services: readonly KnownService[]): string | undefined {
  const quoted = /((?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})\b/.exec(message);
  if (!quoted) return undefined;
  const [, host, port] = quoted;
  return services.find((s) => {
    const at = endpointOf(s.address);
    return at !== undefined && at.port === port && (at.host === host || (LOOPBACK.has(at.host) && LOOPBACK.has(host!)));
  })?.name;
}

function endpointOf(address: string): { host: string; port: string } | undefined {
  try {
    const url = new URL(address.includes('://') ? address : `tcp://${address}`);
    const port = url.port || { 'postgres:': '5432', 'postgresql:': '5432', 'http:': '80', 'https:': '443' }[url.protocol];
    return port ? { host: url.hostname, port } : undefined;
  } catch {
    return undefined;
  }
}

function stepOf(e: unknown): string | undefined {
  const details = e instanceof ApplicationFailure ? (e.details?.[0] as { step?: unknown } | undefined) : undefined;
  if (typeof details?.step === 'string') return details.step;
  return e instanceof ActivityFailure ? e.activityType : undefined;
}

/** A text item of an application failure's details (`{step, field}` from the pipeline, `{field, publicMessage}` from activities). */
function detailOf(e: unknown, key: 'field' | 'publicMessage'): string | undefined {
  const details = e instanceof ApplicationFailure ? (e.details?.[0] as Record<string, unknown> | undefined) : undefined;
  const value = details?.[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
