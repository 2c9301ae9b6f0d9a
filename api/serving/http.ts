/**
 * What the three prediction protocols share at the HTTP edge: reading a JSON body (malformed →
 * 400 `MalformedJson`), the request id, the admin-only `x-keel-variant` header, the batch limit,
 * the per-request timeout, and turning any error into Keel's JSON error body with the error
 * counted in `keel_prediction_errors_total{code}`.
 */
import { randomUUID } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { InvalidInput, KeelError } from '../../lib/errors.js';
import { requestHeader } from '../request-headers.js';
import type { GatewayMetrics } from '../metrics.js';
import type { Predictor, PredictInput, PredictResult } from './predictor.js';
import { createDeadlineQueue, type Deadline, type DeadlineQueue } from './deadlines.js';
import { keelErrors, type ErrorRenderer } from './protocol-errors.js';
import { describeIssue, requestIdSchema } from './request-schemas.js';
import { batchTooLarge, forbiddenVariant, requestTimeout, ServingError } from './serving-errors.js';

export interface ServingLimits {
  /** Rows per request; more is a 413 `BatchTooLarge`. Default 1 000. */
  maxBatchRows: number;
  /** Milliseconds a prediction may take; then 503 `Timeout`. Default 5 000. */
  timeoutMs: number;
}

export const DEFAULT_SERVING_LIMITS: ServingLimits = { maxBatchRows: 1_000, timeoutMs: 5_000 };

export interface PredictionRouteDeps {
  predictor: Predictor;
  metrics: GatewayMetrics;
  limits: ServingLimits;
  /** Whether the caller may pin a variant with `x-keel-variant` (admin only). */
  canUseVariantHeader: (c: Context) => boolean | Promise<boolean>;
  /** Unexpected errors (500s) go here with the request id. */
  logError?: (error: unknown, requestId?: string) => void;
}

/**
 * Runs Hono middleware (the body limit, an auth guard) as checks inside a route's one handler:
 * undefined when every check lets the request through, else the first refusal (a promise only
 * when a check had to wait). A route with a single handler takes Hono's direct dispatch, where
 * each middleware layer costs a compose step: the request logger and the body limit as layers
 * were ~14 % of a prediction's CPU (`npm run bench:gateway-ab`). A check that passes at once
 * returns `next()` itself, recognised here without a promise turn; one shared `next`, no closure
 * per request.
 */
export function refusal(c: Context, checks: ReadonlyArray<MiddlewareHandler | undefined>): Response | undefined | Promise<Response | undefined> {
  for (let i = 0; i < checks.length; i++) {
    const check = checks[i];
    if (!check) continue;
    const answer = check(c, passNext);
    if (answer === PASSED) continue;
    return settleRefusal(c, answer, checks, i + 1);
  }
  return undefined;
}

/** `next` for checks run by `refusal`: the same resolved promise every time, so passing is `=== PASSED`. */
const PASSED: Promise<void> = Promise.resolve();
function passNext(): Promise<void> {
  return PASSED;
}

/** A check that answered with a promise (it waited, or refused): its outcome, then the remaining checks. */
async function settleRefusal(
  c: Context,
  answer: ReturnType<MiddlewareHandler>,
  checks: ReadonlyArray<MiddlewareHandler | undefined>,
  from: number,
): Promise<Response | undefined> {
  const settled = await answer;
  // As in Hono's compose, a check that answers nothing and sets no response lets the request on
  // (ours always answer a Response when they refuse).
  if (settled === undefined && !c.finalized) {
    const rest = refusal(c, checks.slice(from));
    return rest instanceof Promise ? await rest : rest;
  }
  return settled ?? c.res;
}

/** The parsed JSON body; 400 `MalformedJson` when it is not JSON. */
export async function readJsonBody(c: Context): Promise<unknown> {
  return parseJsonText(await c.req.text());
}

/** The parsed JSON of a body's text (`await c.req.text()`); 400 `MalformedJson` when it is not JSON. */
export function parseJsonText(text: string): unknown {
  if (text.trim() === '') throw new ServingError(400, 'MalformedJson', 'the request body is empty; send a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ServingError(400, 'MalformedJson', `the request body is not valid JSON: ${reason.slice(0, 200)}`);
  }
}

/** Parses with a zod schema; the first issue becomes a 422 naming the field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const { message, field } = describeIssue(parsed.error);
  throw new InvalidInput(message, field);
}

/** The request id: the body's, else a valid `x-request-id` header, else a new UUID. */
export function requestIdFor(c: Context, fromBody: string | undefined): string {
  if (fromBody !== undefined) return fromBody;
  const header = requestHeader(c, 'x-request-id');
  if (header !== undefined) {
    if (!requestIdSchema.safeParse(header).success) {
      throw new InvalidInput('x-request-id must be 1–128 characters of A-Z a-z 0-9 . _ : -', 'x-request-id');
    }
    return header;
  }
  return randomUUID();
}

/**
 * The pinned variant from `x-keel-variant`, refused (403) unless the caller is admin; undefined at
 * once (no promise) when the header is absent, as on nearly every request.
 */
export function variantFor(c: Context, deps: PredictionRouteDeps): string | undefined | Promise<string> {
  const variant = requestHeader(c, 'x-keel-variant');
  if (variant === undefined || variant === '') return undefined;
  return allowedVariant(c, deps, variant);
}

async function allowedVariant(c: Context, deps: PredictionRouteDeps, variant: string): Promise<string> {
  if (!(await deps.canUseVariantHeader(c))) throw forbiddenVariant();
  return variant;
}

/**
 * Runs one prediction within the limits: one promise per request and an entry in the shared
 * deadline queue (serving/deadlines.ts), no timer, Promise.race or AbortController of its own:
 * this is the hot path of every prediction.
 */
export function runPrediction(deps: PredictionRouteDeps, input: PredictInput): Promise<PredictResult> {
  if (input.rows.length > deps.limits.maxBatchRows) return Promise.reject(batchTooLarge(input.rows.length, deps.limits.maxBatchRows));
  const { timeoutMs } = deps.limits;
  return new Promise<PredictResult>((resolve, reject) => {
    const call = new PendingCall(timeoutMs, reject);
    deadlinesFor(timeoutMs).add(call);
    // After a timeout the late result or failure has no one to go to: resolve/reject are no-ops then.
    deps.predictor.predict(input, call).then(
      (result) => {
        call.settled = true;
        resolve(result);
      },
      (error: unknown) => {
        call.settled = true;
        reject(error);
      },
    );
  });
}

/** A prediction waiting for its answer: its deadline, and the flag the predictor reads. */
class PendingCall implements Deadline {
  settled = false;
  /** Read by the predictor right before it logs: a timed-out answer is never logged. */
  aborted = false;
  constructor(
    private readonly timeoutMs: number,
    private readonly reject: (error: unknown) => void,
  ) {}

  expire(): void {
    this.aborted = true;
    this.reject(requestTimeout(this.timeoutMs));
  }
}

/** One queue per timeout length (a gateway has one). */
const deadlineQueues = new Map<number, DeadlineQueue>();
function deadlinesFor(timeoutMs: number): DeadlineQueue {
  let queue = deadlineQueues.get(timeoutMs);
  if (!queue) deadlineQueues.set(timeoutMs, (queue = createDeadlineQueue(timeoutMs)));
  return queue;
}

/**
 * A 200 JSON answer with `x-request-id`. Built as a Response with a plain header record, which
 * @hono/node-server writes straight to the socket; `c.header()` would build a web Headers object
 * per request and send the answer down its slow path.
 */
export function answer(body: unknown, requestId: string): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json', 'x-request-id': requestId } });
}

/**
 * Any error as Keel's JSON body (or a protocol's, with `render`): InvalidInput 422, ServingError
 * its own status, HTTPException (body limit) its status, anything else a logged 500 without
 * details. Counted by code; once the request id is known it is echoed in `x-request-id` and goes
 * with a logged 500.
 */
export function errorResponse(
  c: Context,
  error: unknown,
  metrics?: GatewayMetrics,
  logError?: (error: unknown, requestId?: string) => void,
  requestId?: string,
  render: ErrorRenderer = keelErrors,
): Response {
  const classified = classify(error);
  metrics?.errors.inc({ code: classified.code });
  if (classified.status >= 500 && classified.code === 'Internal') logError?.(error, requestId);
  if (requestId !== undefined) c.header('x-request-id', requestId);
  return render(c, classified.status, classified);
}

function classify(error: unknown): { status: ContentfulStatusCode; code: string; message: string; field?: string } {
  if (error instanceof ServingError) return { status: error.status, code: error.code, message: error.message, field: error.field };
  if (error instanceof HTTPException) {
    const status = error.status as ContentfulStatusCode;
    return { status, code: status === 413 ? 'PayloadTooLarge' : 'HttpError', message: error.message || 'request rejected' };
  }
  if (error instanceof KeelError) {
    const status = (STATUS_BY_CODE[error.code] ?? 400) as ContentfulStatusCode;
    return { status, code: error.code, message: error.message, field: error.field };
  }
  return { status: 500, code: 'Internal', message: 'internal error' };
}

const STATUS_BY_CODE: Record<string, number> = {
  InvalidInput: 422,
  NotFound: 404,
  ArtifactNotFound: 404,
  ArtifactCorrupt: 503,
  StackError: 503,
};

/** Bytes of an oversized body read and thrown away before answering 413 (beyond: the connection closes). */
const DISCARD_CAP_BYTES = 64 * 1024 * 1024;

/**
 * Refuses bodies over `maxBytes` with `tooLarge(c)` (413). Unlike `hono/body-limit` it reads the
 * refused body to its end (up to 64 MiB) before answering, with `Connection: close`: a client
 * still uploading would otherwise see the socket closed under it instead of the 413.
 */
export function bodySizeLimit(maxBytes: number, tooLarge: (c: Context) => Response): MiddlewareHandler {
  const refuse = async (c: Context, reader: ReadableStreamDefaultReader<Uint8Array>) => {
    await discard(reader);
    c.header('Connection', 'close');
    return tooLarge(c);
  };
  const readChunked = async (c: Context, next: () => Promise<void>) => {
    const body = c.req.raw.body;
    if (!body) return next();
    // No declared length (chunked): read up to the limit, then hand the buffered body on.
    const reader = body.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > maxBytes) return refuse(c, reader);
      chunks.push(value);
    }
    c.req.raw = new Request(c.req.raw, { body: Buffer.concat(chunks, size) });
    return next();
  };
  // Not async: a declared length within the limit (nearly every request) passes without a promise.
  return (c, next) => {
    // A declared length is checked without touching the body: `c.req.raw.body` would make
    // @hono/node-server build a full web Request and stream, and its fast body read is lost.
    const declared = requestHeader(c, 'content-length');
    if (declared !== undefined && requestHeader(c, 'transfer-encoding') === undefined) {
      if (Number(declared) <= maxBytes) return next();
      const body = c.req.raw.body;
      return body ? refuse(c, body.getReader()) : Promise.resolve(tooLarge(c));
    }
    return readChunked(c, next);
  };
}

async function discard(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.length;
      if (read > DISCARD_CAP_BYTES) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // the client went away: nothing to answer
  }
}
