/**
 * Errors in each prediction protocol's own shape. Keel's body is `{error: {code, message, field?}}`;
 * the Open Inference Protocol's is `{"error": "<message>"}` and MLflow's scoring server's is
 * `{"error_code": "BAD_REQUEST", "message": "…"}`. A route renders its errors with its protocol's
 * renderer (`errorResponse(…, render)`), and the refusals of shared checks (auth guard, body limit),
 * which answer in Keel's shape, are re-rendered by `renderRefusal` — only when a check refuses,
 * so a request that passes costs nothing more.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { errorBody } from '../errors.js';

export interface ErrorDetail {
  code: string;
  message: string;
  field?: string;
}

/** Builds a protocol's error answer; may map the status (e.g. 422 → 400 where the protocol says 400). */
export type ErrorRenderer = (c: Context, status: ContentfulStatusCode, error: ErrorDetail) => Response;

/** Keel's own shape. */
export const keelErrors: ErrorRenderer = (c, status, error) => c.json(errorBody(error.code, error.message, error.field), status);

/** Input errors are 400 in both protocols (Keel answers 422 for a well-formed body it refuses). */
const inputStatus = (status: ContentfulStatusCode): ContentfulStatusCode => (status === 422 ? 400 : status);

/** Open Inference Protocol v2: `{"error": "<message string>"}`, 400 for bad input. */
export const oipErrors: ErrorRenderer = (c, status, error) => c.json({ error: error.message }, inputStatus(status));

/** MLflow's error codes (mlflow/exceptions.py) for the statuses Keel answers; every other 4xx is BAD_REQUEST. */
const MLFLOW_ERROR_CODES: Partial<Record<number, string>> = {
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'RESOURCE_DOES_NOT_EXIST',
  500: 'INTERNAL_ERROR',
  503: 'TEMPORARILY_UNAVAILABLE',
};

/** MLflow's scoring server: `{"error_code", "message"}`, 400 BAD_REQUEST for bad input. */
export const mlflowErrors: ErrorRenderer = (c, status, error) => {
  const mapped = inputStatus(status);
  return c.json({ error_code: MLFLOW_ERROR_CODES[mapped] ?? 'BAD_REQUEST', message: error.message }, mapped);
};

/**
 * The renderer of the protocol that owns `path` (the route's path or the request's): OIP under
 * `/v2`, MLflow on `/invocations`; undefined for Keel's own paths.
 */
export function protocolErrorsFor(path: string): ErrorRenderer | undefined {
  if (path === '/v2' || path.startsWith('/v2/')) return oipErrors;
  if (path === '/invocations') return mlflowErrors;
  return undefined;
}

/**
 * A shared check's refusal (Keel's shape) in a protocol's shape, with the same status and headers
 * (`WWW-Authenticate`, `Connection: close`).
 */
export async function renderRefusal(c: Context, refused: Response, render: ErrorRenderer): Promise<Response> {
  const body = (await refused.json().catch(() => undefined)) as { error?: Partial<ErrorDetail> } | undefined;
  const detail = body?.error;
  const error: ErrorDetail =
    typeof detail?.message === 'string' && typeof detail.code === 'string'
      ? { code: detail.code, message: detail.message }
      : { code: 'HttpError', message: `the request was refused (HTTP ${refused.status})` };
  const shaped = render(c, refused.status as ContentfulStatusCode, error);
  refused.headers.forEach((value, name) => {
    if (name !== 'content-type' && name !== 'content-length' && !shaped.headers.has(name)) shaped.headers.set(name, value);
  });
  return shaped;
}
