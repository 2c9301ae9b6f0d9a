/**
 * Errors of the prediction path that are not the caller's input (lib/errors InvalidInput → 422):
 * each carries its HTTP status, so every protocol answers the same code with the same status.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { KeelError } from '../../lib/errors.js';

export class ServingError extends KeelError {
  constructor(
    readonly status: ContentfulStatusCode,
    code: string,
    message: string,
    field?: string,
  ) {
    super(code, message, field);
  }
}

export const modelNotFound = (model: string) => new ServingError(404, 'NotFound', `model ${model} is not served by this gateway`, 'model');
export const noLiveVersion = (model: string) =>
  new ServingError(503, 'NoLiveVersion', `model ${model} has no live version loaded (no champion alias or routes, or it is still loading)`);
export const forbiddenVariant = () =>
  new ServingError(403, 'Forbidden', 'the x-keel-variant header is allowed only to admin keys', 'x-keel-variant');
export const batchTooLarge = (rows: number, max: number) =>
  new ServingError(413, 'BatchTooLarge', `the request holds ${rows} rows; at most ${max} rows per request`, 'instances');
export const requestTimeout = (ms: number) => new ServingError(503, 'Timeout', `no answer within ${ms} ms; try again`);
