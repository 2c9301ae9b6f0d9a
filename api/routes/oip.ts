/**
 * The Open Inference Protocol v2 (KServe "V2", JSON over REST), answered by the same predictor as
 * `/v1/models/:name/predict`:
 *
 *   GET  /v2/health/live, /v2/health/ready
 *   GET  /v2/models/:name            metadata: inputs (one per request feature), outputs
 *   GET  /v2/models/:name/ready
 *   POST /v2/models/:name/infer
 *
 * Inputs are either one tensor per feature (name = feature, shape [N] or [N, 1]; BYTES for
 * categories and ISO timestamps, BOOL for booleans, any numeric type for numbers), or — for a model
 * without category features — one numeric tensor [N, F] in the model's feature order. The answer
 * has `probability` FP64 [N] and `prediction` INT64 [N] (or the outputs the request names), with
 * `model_name`, `model_version`, `id` and `parameters.variant`. Rows of one request share one unit
 * id (the request id), so they are all answered by one version. Errors keep Keel's body
 * `{error: {code, message, field?}}` (OIP's `{error: "…"}` is a plain string; ours has it as
 * `error.message`).
 */
import { Hono } from 'hono';
import { InvalidInput } from '../../lib/errors.js';
import type { EnrichDeps, RowRequest } from '../serving/enrich.js';
import { inputPlan } from '../serving/enrich.js';
import type { PredictionRouteDeps } from '../serving/http.js';
import { answer, errorResponse, parseBody, readJsonBody, requestIdFor, runPrediction, variantFor } from '../serving/http.js';
import { primaryModel, resolveRouting } from '../serving/predictor.js';
import type { OipInput } from '../serving/request-schemas.js';
import { oipInferRequestSchema } from '../serving/request-schemas.js';
import type { ServedModel, ServingSnapshot } from '../serving/types.js';

export interface OipRoutesDeps extends PredictionRouteDeps {
  serving: { current(): ServingSnapshot; ready(): boolean };
  enrich: EnrichDeps;
}

const NUMERIC = new Set(['INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'FP16', 'FP32', 'FP64']);

/** The OIP datatype of each request feature. */
export function oipDatatype(type: string | undefined): string {
  switch (type) {
    case 'boolean':
      return 'BOOL';
    case 'category':
      return 'BYTES';
    case 'timestamp':
      return 'INT64';
    default:
      return 'FP64';
  }
}

function metadata(model: ServedModel, enrich: EnrichDeps, snapshot: ServingSnapshot) {
  const plan = inputPlan(model, enrich.onDemand);
  const types = new Map(model.featureSpec.features.map((f) => [f.name, f.type]));
  const routing = resolveRouting(snapshot, model.model);
  return {
    name: model.model,
    versions: [...routing.live, ...routing.shadow].map((t) => String(t.version)),
    platform: 'onnxruntime',
    inputs: [...plan.allowed].map((name) => ({ name, datatype: oipDatatype(types.get(name)), shape: [-1] })),
    outputs: [
      { name: 'probability', datatype: 'FP64', shape: [-1] },
      { name: 'prediction', datatype: 'INT64', shape: [-1] },
    ],
    parameters: { feature_order: [...model.featureNames], live_version: model.version },
  };
}

/** The request's tensors as rows of `{feature: value}`. */
export function tensorsToRows(inputs: readonly OipInput[], model: ServedModel): Array<Record<string, unknown>> {
  const features = model.featureNames;
  const single = inputs.length === 1 ? inputs[0]! : undefined;
  if (single && single.shape.length === 2 && single.shape[1]! > 1 && !features.includes(single.name)) {
    return matrixRows(single, model);
  }
  let n: number | undefined;
  const columns = inputs.map((input) => {
    const field = `inputs.${input.name}`;
    if (input.shape.length === 2 && input.shape[1] !== 1) {
      throw new InvalidInput(`input ${input.name}: shape [${input.shape.join(', ')}]; a feature tensor is [N] or [N, 1]`, field);
    }
    const rows = input.shape[0]!;
    if (n !== undefined && rows !== n) throw new InvalidInput(`input ${input.name} has ${rows} rows, the others ${n}`, field);
    n = rows;
    return { name: input.name, values: flatValues(input, rows) };
  });
  const names = new Set<string>();
  for (const c of columns) {
    if (names.has(c.name)) throw new InvalidInput(`input ${c.name} is given twice`, `inputs.${c.name}`);
    names.add(c.name);
  }
  return Array.from({ length: n ?? 0 }, (_, r) => Object.fromEntries(columns.map((c) => [c.name, c.values[r]])));
}

function matrixRows(input: OipInput, model: ServedModel): Array<Record<string, unknown>> {
  const [n, f] = input.shape as [number, number];
  const field = `inputs.${input.name}`;
  if (f !== model.featureNames.length) {
    throw new InvalidInput(`input ${input.name}: [N, ${f}] but the model takes ${model.featureNames.length} features (${model.featureNames.join(', ')})`, field);
  }
  if (!NUMERIC.has(input.datatype)) throw new InvalidInput(`input ${input.name}: a [N, F] tensor must be numeric (FP32 / FP64), not ${input.datatype}`, field);
  const category = model.featureSpec.features.find((s) => s.type !== 'number');
  if (category) {
    throw new InvalidInput(
      `input ${input.name}: the model has a ${category.type} feature ${category.name}; send one tensor per feature (BYTES for categories)`,
      field,
    );
  }
  const values = flatValues(input, n * f);
  return Array.from({ length: n }, (_, r) => Object.fromEntries(model.featureNames.map((name, c) => [name, values[r * f + c]])));
}

/** The tensor's data, flat, checked against its shape and datatype. */
function flatValues(input: OipInput, expected: number): unknown[] {
  const field = `inputs.${input.name}`;
  const flat: unknown[] = [];
  for (const item of input.data) {
    if (Array.isArray(item)) {
      for (const inner of item) {
        if (Array.isArray(inner)) throw new InvalidInput(`input ${input.name}: data nested deeper than its shape`, field);
        flat.push(inner);
      }
    } else {
      flat.push(item);
    }
    if (flat.length > expected) break;
  }
  if (flat.length !== expected) {
    throw new InvalidInput(`input ${input.name}: shape [${input.shape.join(', ')}] needs ${expected} values, data has ${flat.length > expected ? 'more' : flat.length}`, field);
  }
  for (const value of flat) {
    if (value === null) continue;
    const ok = input.datatype === 'BYTES' ? typeof value === 'string' : input.datatype === 'BOOL' ? typeof value === 'boolean' : typeof value === 'number';
    if (!ok) throw new InvalidInput(`input ${input.name}: ${JSON.stringify(value)?.slice(0, 40)} is not ${input.datatype}`, field);
  }
  return flat;
}

export function oipRoutes(deps: OipRoutesDeps) {
  const app = new Hono();
  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', (c) => {
    const ready = deps.serving.ready();
    return c.json({ ready }, ready ? 200 : 503);
  });
  app.get('/v2', (c) => c.json({ name: 'keel', version: '0.1.0', extensions: [] }));
  app.get('/v2/models/:name', async (c) => {
    try {
      const snapshot = deps.serving.current();
      return c.json(metadata(primaryModel(snapshot, c.req.param('name')), deps.enrich, snapshot));
    } catch (error) {
      return errorResponse(c, error, deps.metrics, deps.logError);
    }
  });
  app.get('/v2/models/:name/ready', async (c) => {
    try {
      const model = primaryModel(deps.serving.current(), c.req.param('name'));
      return c.json({ name: model.model, ready: true });
    } catch (error) {
      return errorResponse(c, error, deps.metrics, deps.logError);
    }
  });
  app.post('/v2/models/:name/infer', async (c) => {
    let requestId: string | undefined;
    try {
      const name = c.req.param('name');
      const body = parseBody(oipInferRequestSchema, await readJsonBody(c));
      requestId = requestIdFor(c, body.id);
      const variant = await variantFor(c, deps);
      const wanted = new Set(body.outputs?.map((o) => o.name) ?? ['probability', 'prediction']);
      const unknown = [...wanted].filter((o) => o !== 'probability' && o !== 'prediction');
      if (unknown.length) throw new InvalidInput(`unknown output ${unknown.join(', ')} (outputs: probability, prediction)`, 'outputs');
      // Tensors are laid out by the live model's features; every live version of a model takes the same request fields.
      const rows: RowRequest[] = tensorsToRows(body.inputs, primaryModel(deps.serving.current(), name)).map((features, i, all) => ({
        features,
        label: all.length > 1 ? `row ${i}` : undefined,
      }));
      if (rows.length === 0) throw new InvalidInput('the input tensors hold no rows', 'inputs');
      const result = await runPrediction(deps, { model: name, requestId, rows, variant, protocol: 'v2' });
      const n = result.rows.length;
      const outputs = [];
      if (wanted.has('probability')) outputs.push({ name: 'probability', datatype: 'FP64', shape: [n], data: result.rows.map((r) => r.probability) });
      if (wanted.has('prediction')) outputs.push({ name: 'prediction', datatype: 'INT64', shape: [n], data: result.rows.map((r) => r.prediction) });
      const first = result.rows[0]!;
      return answer(
        {
          model_name: name,
          model_version: String(first.model_version),
          id: requestId,
          parameters: { variant: first.variant },
          outputs,
        },
        requestId,
      );
    } catch (error) {
      return errorResponse(c, error, deps.metrics, deps.logError, requestId);
    }
  });
  return app;
}
