/**
 * `POST /invocations`: MLflow's scoring-server format, so tools written for `mlflow models serve`
 * can call Keel. The body is one of
 *
 *   {"dataframe_split": {"columns": [...], "data": [[...], ...]}}
 *   {"dataframe_records": [{...}, ...]}
 *   {"instances": [{...}, ...]}   or rows as arrays in the model's feature order
 *   {"inputs": {"feature": [values...], ...}}   (columnar) or a list as for instances
 *
 * The model: `?model=name`, else the `x-keel-model` header, else the only model this gateway
 * routes. The answer is `{"predictions": [p, ...]}` with P(y = 1) per row (what a pyfunc wrapping
 * `predict_proba(x)[:, 1]` returns; the 0/1 decision and the version are in the v1 / v2 answers).
 * The request id goes out in `x-request-id`; rows of one request share one variant.
 */
import { Hono } from 'hono';
import { InvalidInput } from '../../lib/errors.js';
import type { PredictionRouteDeps } from '../serving/http.js';
import { answer, errorResponse, parseBody, readJsonBody, requestIdFor, runPrediction, variantFor } from '../serving/http.js';
import { primaryModel } from '../serving/predictor.js';
import type { MlflowRequest } from '../serving/request-schemas.js';
import { MLFLOW_LAYOUTS } from '../serving/request-schemas.js';
import { ServingError } from '../serving/serving-errors.js';
import type { ServingSnapshot } from '../serving/types.js';

export interface MlflowRoutesDeps extends PredictionRouteDeps {
  serving: { current(): ServingSnapshot };
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The body's rows as `{feature: value}` records (`featureNames` orders positional rows). */
export function mlflowRows(body: MlflowRequest, featureNames: readonly string[]): Array<Record<string, unknown>> {
  if ('dataframe_split' in body) {
    const { columns, data } = body.dataframe_split;
    return data.map((row, i) => {
      if (row.length !== columns.length) {
        throw new InvalidInput(`dataframe_split.data[${i}] has ${row.length} values for ${columns.length} columns`, `dataframe_split.data[${i}]`);
      }
      return Object.fromEntries(columns.map((c, j) => [c, row[j]]));
    });
  }
  if ('dataframe_records' in body) return body.dataframe_records;
  if ('instances' in body) return listRows(body.instances, featureNames, 'instances');
  const inputs = body.inputs;
  if (Array.isArray(inputs)) return listRows(inputs, featureNames, 'inputs');
  // Columnar: {feature: [v0, v1, ...]}.
  const names = Object.keys(inputs);
  const lengths = names.map((n) => (Array.isArray(inputs[n]) ? (inputs[n] as unknown[]).length : -1));
  const bad = names.findIndex((_, i) => lengths[i] !== lengths[0] || lengths[i]! < 0);
  if (bad >= 0) throw new InvalidInput(`inputs.${names[bad]} must be a list as long as the other columns`, `inputs.${names[bad]}`);
  return Array.from({ length: lengths[0] ?? 0 }, (_, r) => Object.fromEntries(names.map((n) => [n, (inputs[n] as unknown[])[r]])));
}

function listRows(list: unknown[], featureNames: readonly string[], key: string): Array<Record<string, unknown>> {
  return list.map((item, i) => {
    if (isRecord(item)) return item;
    if (Array.isArray(item)) {
      if (item.length !== featureNames.length) {
        throw new InvalidInput(`${key}[${i}] has ${item.length} values; the model takes ${featureNames.length} (${featureNames.join(', ')})`, `${key}[${i}]`);
      }
      return Object.fromEntries(featureNames.map((n, j) => [n, item[j]]));
    }
    throw new InvalidInput(`${key}[${i}] must be an object of features or a list in feature order`, `${key}[${i}]`);
  });
}

/** One of the four layouts, picked by its key so that a refusal names the field that is wrong. */
export function parseMlflowBody(body: unknown): MlflowRequest {
  const keys = Object.keys(MLFLOW_LAYOUTS) as Array<keyof typeof MLFLOW_LAYOUTS>;
  const present = isRecord(body) ? keys.filter((k) => Object.hasOwn(body, k)) : [];
  if (present.length !== 1) {
    throw new InvalidInput(`the body must be a JSON object with exactly one of ${keys.join(', ')}`, present[1]);
  }
  return parseBody(MLFLOW_LAYOUTS[present[0]!], body) as MlflowRequest;
}

export function mlflowRoutes(deps: MlflowRoutesDeps) {
  const app = new Hono();
  app.post('/invocations', async (c) => {
    let requestId: string | undefined;
    try {
      const snapshot = deps.serving.current();
      let name = c.req.query('model') ?? c.req.header('x-keel-model');
      if (name === undefined) {
        const models = [...snapshot.routing.keys()];
        if (models.length !== 1) {
          throw new ServingError(
            422,
            'InvalidInput',
            `name the model with ?model= or x-keel-model (this gateway routes ${models.length === 0 ? 'no models' : models.join(', ')})`,
            'model',
          );
        }
        name = models[0]!;
      }
      const body = parseMlflowBody(await readJsonBody(c));
      requestId = requestIdFor(c, undefined);
      const variant = await variantFor(c, deps);
      const records = mlflowRows(body, primaryModel(snapshot, name).featureNames);
      if (records.length === 0) throw new InvalidInput('the request holds no rows', 'data');
      const rows = records.map((features, i) => ({ features, label: records.length > 1 ? `row ${i}` : undefined }));
      const result = await runPrediction(deps, { model: name, requestId, rows, variant, protocol: 'mlflow' });
      return answer({ predictions: result.rows.map((r) => r.probability) }, requestId);
    } catch (error) {
      return errorResponse(c, error, deps.metrics, deps.logError, requestId);
    }
  });
  return app;
}
