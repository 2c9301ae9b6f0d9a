/**
 * `POST /v1/models/:name/predict`: Keel's own protocol.
 *
 *   {"features": {...}}                    one row, every feature given
 *   {"entity": {"customer_id": 42}, "features"?: {...}}   one row, online features fill the rest
 *   {"instances": [row, ...]}              a batch; each row is {features}, {entity, features?}
 *                                          or a plain {feature: value} object
 *   "request_id" (optional, 1–128 of [A-Za-z0-9._:-]); else x-request-id; else a UUID.
 *
 * One row answers `{prediction, probability, model_version, variant, request_id}` (an `{entity}` row
 * also `features: {present, expired, missing}`, see serving/enrich.ts); a batch answers
 * `{request_id, predictions: [...]}`, row i carrying `request_id` `<id>:<i>` (what feedback uses).
 */
import { Hono } from 'hono';
import type { RowRequest } from '../serving/enrich.js';
import type { PredictionRouteDeps } from '../serving/http.js';
import { answer, errorResponse, parseBody, parseJsonText, requestIdFor, runPrediction, variantFor } from '../serving/http.js';
import { oneRowFeatures, predictRequestSchema } from '../serving/request-schemas.js';

/** An instance is `{features?, entity?}` when it has only those keys, holding objects; else it is the features. */
export function instanceRow(instance: Readonly<Record<string, unknown>>, label: string): RowRequest {
  const keys = Object.keys(instance);
  const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const wrapped = keys.length > 0 && keys.every((k) => (k === 'features' || k === 'entity') && isObject(instance[k]));
  if (!wrapped) return { features: instance, label };
  return {
    features: instance.features as Record<string, unknown> | undefined,
    entity: instance.entity as Record<string, unknown> | undefined,
    label,
  };
}

/** Auth and the body limit come from the route table (api/mount-routes.ts). */
export function predictRoutes(deps: PredictionRouteDeps) {
  const app = new Hono();
  app.post('/v1/models/:name/predict', async (c) => {
    let requestId: string | undefined;
    try {
      // The text is kept: the prediction log can store the features from it as they were sent.
      const text = await c.req.text();
      const json = parseJsonText(text);
      const common = oneRowFeatures(json);
      const body = common ?? parseBody(predictRequestSchema, json);
      requestId = requestIdFor(c, body.request_id);
      const pinned = variantFor(c, deps);
      const variant = pinned instanceof Promise ? await pinned : pinned;
      const batch = body.instances !== undefined;
      const rows: RowRequest[] = batch
        ? body.instances!.map((instance, i) => instanceRow(instance, `instances[${i}]`))
        : common
          ? // The body is `{"features": {...}}`: the log may store the features from its text.
            [{ features: body.features, requestJson: text }]
          : [{ features: body.features, entity: body.entity }];
      const result = await runPrediction(deps, { model: c.req.param('name'), requestId, rows, variant, protocol: 'v1' });
      if (!batch) return answer(result.rows[0]!, requestId);
      return answer({ request_id: requestId, model: result.model, predictions: result.rows }, requestId);
    } catch (error) {
      return errorResponse(c, error, deps.metrics, deps.logError, requestId);
    }
  });
  return app;
}
