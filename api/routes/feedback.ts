/**
 * `POST /v1/feedback`: labels that arrive after the prediction, by request id.
 *
 *   {"request_id": "r-1", "label": 1}                   one label (0 / 1 or false / true)
 *   {"feedback": [{"request_id": ..., "label": ...}]}   up to 1 000 labels, answered one by one
 *
 * A request id must have been served: logged in `predictions`, or still pending in this gateway's
 * prediction log (feedback may beat the flush); else 404. The first label is kept: the same label
 * again answers 200 `duplicate`, a different one 409 `Conflict` naming the stored label; a new one
 * answers 201 `recorded`. There is no deadline: a label is accepted as long as the prediction is
 * on record.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { Db } from '../../stores/db.js';
import { recordFeedback, type FeedbackOutcome } from '../../stores/feedback.js';
import { predictionExists } from '../../stores/predictions.js';
import { principalOf } from '../auth.js';
import { errorBody } from '../errors.js';
import { errorResponse, parseBody, readJsonBody } from '../serving/http.js';
import { requestIdSchema } from '../serving/request-schemas.js';
import { ServingError } from '../serving/serving-errors.js';

export const MAX_FEEDBACK_BATCH = 1_000;

const labelSchema = z
  .union([z.literal(0), z.literal(1), z.boolean()], { error: 'label must be 0, 1, true or false' })
  .transform((label) => (label === true ? 1 : label === false ? 0 : label));

const feedbackItemSchema = z.object({ request_id: requestIdSchema, label: labelSchema }).strict();

const feedbackBatchSchema = z
  .object({
    feedback: z
      .array(feedbackItemSchema)
      .min(1, 'feedback must hold at least one label')
      .max(MAX_FEEDBACK_BATCH, `at most ${MAX_FEEDBACK_BATCH} labels per request`),
  })
  .strict();

/** One label, or a batch when the body has a `feedback` key (so errors name the right field). */
export function parseFeedbackRequest(body: unknown): z.output<typeof feedbackItemSchema> | z.output<typeof feedbackBatchSchema> {
  const isBatch = body !== null && typeof body === 'object' && 'feedback' in body;
  return isBatch ? parseBody(feedbackBatchSchema, body) : parseBody(feedbackItemSchema, body);
}

export interface FeedbackRoutesDeps {
  db: Db;
  /** The prediction log: ids it still holds count as known. */
  log?: { has(requestId: string): boolean };
  logError?: (error: unknown, requestId?: string) => void;
}

type ItemResult =
  | { httpStatus: 200 | 201; body: { request_id: string; status: 'recorded' | 'duplicate'; label: number; recorded_at: string } }
  | { httpStatus: 404 | 409 | 503; body: { request_id: string; error: { code: string; message: string; field?: string } } };

export function feedbackRoutes(deps: FeedbackRoutesDeps) {
  const app = new Hono();

  const recordOne = async (c: Context, requestId: string, label: number): Promise<ItemResult> => {
    try {
      const known = deps.log?.has(requestId) === true || (await predictionExists(deps.db, requestId));
      if (!known) {
        return notOk(404, requestId, 'NotFound', `no prediction with request_id ${requestId}`, 'request_id');
      }
      const outcome = await recordFeedback(deps.db, { requestId, label, source: principalOf(c)?.keyId ?? null });
      return answer(requestId, outcome);
    } catch (error) {
      if (isUnavailable(error)) return notOk(503, requestId, 'Unavailable', 'the database is unavailable; try again');
      throw error;
    }
  };

  app.post('/v1/feedback', async (c) => {
    try {
      const body = parseFeedbackRequest(await readJsonBody(c));
      if ('request_id' in body) {
        const result = await recordOne(c, body.request_id, body.label);
        return c.json(result.body, result.httpStatus);
      }
      const results: ItemResult['body'][] = [];
      for (const item of body.feedback) results.push((await recordOne(c, item.request_id, item.label)).body);
      return c.json({ results });
    } catch (error) {
      if (error instanceof ServingError || !(error instanceof Error) || !isUnavailable(error)) {
        return errorResponse(c, error, undefined, deps.logError);
      }
      return c.json(errorBody('Unavailable', 'the database is unavailable; try again'), 503);
    }
  });
  return app;
}

function answer(requestId: string, outcome: FeedbackOutcome): ItemResult {
  const { label, ts } = outcome.feedback;
  if (outcome.status === 'conflict') {
    return notOk(409, requestId, 'Conflict', `request_id ${requestId} already has label ${label} (recorded ${ts.toISOString()}); the first label is kept`, 'label');
  }
  return {
    httpStatus: outcome.status === 'recorded' ? 201 : 200,
    body: { request_id: requestId, status: outcome.status, label, recorded_at: ts.toISOString() },
  };
}

function notOk(httpStatus: 404 | 409 | 503, requestId: string, code: string, message: string, field?: string): ItemResult {
  return { httpStatus, body: { request_id: requestId, ...errorBody(code, message, field) } };
}

/** Connection failures (server down, restarting, unreachable), as opposed to bugs. */
function isUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && (code.startsWith('08') || code.startsWith('57P') || ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code))) return true;
  return error instanceof Error && /Connection terminated|connection timeout/i.test(error.message);
}
