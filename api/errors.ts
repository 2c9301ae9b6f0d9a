import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { KeelError } from '../lib/errors.js';

/** The one error body the gateway sends: `{error: {code, message, field?}}`, never a stack trace. */
export function errorBody(code: string, message: string, field?: string) {
  return { error: field ? { code, message, field } : { code, message } };
}

export function sendError(c: Context, status: ContentfulStatusCode, code: string, message: string, field?: string) {
  return c.json(errorBody(code, message, field), status);
}

const STATUS_BY_CODE: Record<string, ContentfulStatusCode> = {
  InvalidInput: 422,
  NotFound: 404,
  ArtifactNotFound: 404,
  ArtifactCorrupt: 503,
  StackError: 503,
};

/** Maps any thrown value to a JSON answer; unknown errors become a bare 500 and are logged. */
export function onGatewayError(log: (error: unknown) => void) {
  return (error: Error, c: Context) => {
    if (error instanceof HTTPException) {
      const status = error.status as ContentfulStatusCode;
      return sendError(c, status, status === 413 ? 'PayloadTooLarge' : 'HttpError', error.message || 'request rejected');
    }
    if (error instanceof KeelError) {
      return sendError(c, STATUS_BY_CODE[error.code] ?? 400, error.code, error.message, error.field);
    }
    log(error);
    return sendError(c, 500, 'Internal', 'internal error');
  };
}
