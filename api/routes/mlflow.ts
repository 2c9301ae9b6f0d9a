/**
 * MLflow's scoring server (`mlflow models serve`, mlflow/pyfunc/scoring_server), so tools written
 * for it can call Keel:
 *
 *   GET  /ping, /health   200 with "\n" once the gateway serves its models (else 503)
 *   GET  /version         Keel's version as text (MLflow answers its own version there)
 *   POST /invocations     Content-Type application/json (charset utf-8 only) with one of
 *       {"dataframe_split": {"columns": [...], "data": [[...], ...]}}
 *       {"dataframe_records": [{...}, ...]}
 *       {"instances": [{...}, ...]}   or rows as arrays in the model's feature order
 *       {"inputs": {"feature": [values...], ...}}   (columnar) or a list as for instances
 *     (and optional "params", ignored), or text/csv: a header row, then one row per prediction
 *     (what pandas' DataFrame.to_csv() writes; see serving/mlflow-csv.ts).
 *
 * The model: `?model=name`, else the `x-keel-model` header, else the only model this gateway
 * routes. The answer is `{"predictions": [p, ...]}` with P(y = 1) per row (what a pyfunc wrapping
 * `predict_proba(x)[:, 1]` returns; the 0/1 decision and the version are in the v1 / v2 answers).
 * The request id goes out in `x-request-id`; rows of one request share one variant. Every refusal,
 * auth and body limit included, is MLflow's `{"error_code", "message"}`: 400 BAD_REQUEST for bad
 * input, 415 (also BAD_REQUEST; MLflow answers it as plain text) for a content type other than
 * JSON or CSV, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 RESOURCE_DOES_NOT_EXIST, 413,
 * 503 TEMPORARILY_UNAVAILABLE.
 */
import { Hono, type Context } from 'hono';
import { InvalidInput } from '../../lib/errors.js';
import { KEEL_VERSION } from '../../lib/version.js';
import type { PredictionRouteDeps } from '../serving/http.js';
import { answer, errorResponse, parseBody, parseJsonText, requestIdFor, runPrediction, variantFor } from '../serving/http.js';
import { csvRows } from '../serving/mlflow-csv.js';
import { mlflowErrors } from '../serving/protocol-errors.js';
import { primaryModel } from '../serving/predictor.js';
import type { MlflowRequest } from '../serving/request-schemas.js';
import { MLFLOW_LAYOUTS } from '../serving/request-schemas.js';
import { ServingError } from '../serving/serving-errors.js';
import type { ServingSnapshot } from '../serving/types.js';

export interface MlflowRoutesDeps extends PredictionRouteDeps {
  serving: { current(): ServingSnapshot; ready(): boolean };
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

/** The body's format from its Content-Type, as MLflow reads it: JSON or CSV, UTF-8 only; else 415. */
export function bodyFormat(contentType: string | undefined): 'json' | 'csv' {
  const [mime = '', ...parameters] = (contentType ?? '').split(';').map((part) => part.trim());
  for (const parameter of parameters) {
    if (parameter === '') continue; // "application/json;" as MLflow's own docs send it
    const [key = '', value = ''] = parameter.split('=', 2).map((part) => part.trim().toLowerCase());
    if (key !== 'charset') throw unsupportedMediaType(`the content type parameter ${key.slice(0, 40)} is not supported (only charset=utf-8)`);
    if (value.replace(/"/g, '') !== 'utf-8') throw unsupportedMediaType('the scoring server only reads UTF-8 (charset=utf-8)');
  }
  switch (mime.toLowerCase()) {
    case 'application/json':
      return 'json';
    case 'text/csv':
      return 'csv';
    default:
      throw unsupportedMediaType(`send Content-Type application/json or text/csv${mime ? '' : ' (none was sent)'}`);
  }
}

const unsupportedMediaType = (message: string) => new ServingError(415, 'UnsupportedMediaType', message, 'content-type');

/** The model `/invocations` answers for: `?model=`, else `x-keel-model`, else the only routed model. */
function modelName(c: Context, snapshot: ServingSnapshot): string {
  const name = c.req.query('model') ?? c.req.header('x-keel-model');
  if (name !== undefined) return name;
  const models = [...snapshot.routing.keys()];
  if (models.length !== 1) {
    throw new ServingError(
      422,
      'InvalidInput',
      `name the model with ?model= or x-keel-model (this gateway routes ${models.length === 0 ? 'no models' : models.join(', ')})`,
      'model',
    );
  }
  return models[0]!;
}

export function mlflowRoutes(deps: MlflowRoutesDeps) {
  const app = new Hono();
  // MLflow answers "\n" as application/json: healthy once the model is loaded.
  const ping = (c: Context) => c.body('\n', deps.serving.ready() ? 200 : 503, { 'content-type': 'application/json' });
  app.get('/ping', ping);
  app.get('/health', ping);
  app.get('/version', (c) => c.text(KEEL_VERSION));
  app.post('/invocations', async (c) => {
    let requestId: string | undefined;
    try {
      const format = bodyFormat(c.req.header('content-type'));
      const snapshot = deps.serving.current();
      const name = modelName(c, snapshot);
      const text = await c.req.text();
      requestId = requestIdFor(c, undefined);
      const variant = await variantFor(c, deps);
      const model = primaryModel(snapshot, name);
      const records =
        format === 'csv'
          ? csvRows(text, new Map(model.featureSpec.features.map((f) => [f.name, f.type])))
          : mlflowRows(parseMlflowBody(parseJsonText(text)), model.featureNames);
      if (records.length === 0) throw new InvalidInput('the request holds no rows', 'data');
      const rows = records.map((features, i) => ({ features, label: records.length > 1 ? `row ${i}` : undefined }));
      const result = await runPrediction(deps, { model: name, requestId, rows, variant, protocol: 'mlflow' });
      return answer({ predictions: result.rows.map((r) => r.probability) }, requestId);
    } catch (error) {
      return errorResponse(c, error, deps.metrics, deps.logError, requestId, mlflowErrors);
    }
  });
  return app;
}
