/**
 * The Open Inference Protocol v2 (KServe "V2", JSON over REST; kserve/open-inference-protocol
 * `specification/protocol/inference_rest.md`), answered by the same predictor as
 * `/v1/models/:name/predict`:
 *
 *   GET  /v2 (and /v2/)                        server metadata {name, version, extensions}
 *   GET  /v2/health/live, /v2/health/ready     {live} / {ready} (503 until models are loaded)
 *   GET  /v2/models/:name[/versions/:v]        model metadata: name, versions, platform, inputs, outputs
 *   GET  /v2/models/:name[/versions/:v]/ready  {name, ready}
 *   POST /v2/models/:name[/versions/:v]/infer
 *
 * Inputs: for a model whose request features are all numbers (booleans and timestamps as numbers
 * too), one tensor `input` [N, F] (any numeric datatype) in the column order metadata gives
 * (`parameters.input_columns`); for any model, one tensor per feature (name = feature, shape [N]
 * or [N, 1]; BYTES for categories and ISO timestamps, BOOL for booleans, numeric types for
 * numbers). Metadata lists one complete set of inputs a client can send as listed: the [N, F]
 * tensor when the model allows it, else the per-feature tensors. The answer has `probability`
 * FP64 [N] and `prediction` INT64 [N] (or the outputs the request names), with `model_name`,
 * `model_version`, `id` and `parameters.variant`. Rows of one request share one unit id (the
 * request id), so they are all answered by one version.
 *
 * Without a version the routing picks it (as on v1). A version in the path pins that version (live
 * or shadow), which, like `x-keel-variant`, only admin callers may do: metadata lists `versions`
 * only to them, so every version listed is one the caller can request. Errors are the protocol's
 * `{"error": "<message>"}`, 400 for any bad request (malformed tensors included), and the auth and
 * body-limit refusals are rendered the same way (protocol-errors.ts; unknown /v2 paths by app.ts).
 */
import { Hono, type Context } from 'hono';
import { InvalidInput } from '../../lib/errors.js';
import { KEEL_VERSION } from '../../lib/version.js';
import type { EnrichDeps, RowRequest } from '../serving/enrich.js';
import { inputPlan } from '../serving/enrich.js';
import type { PredictionRouteDeps } from '../serving/http.js';
import { answer, errorResponse, parseBody, readJsonBody, requestIdFor, runPrediction, variantFor } from '../serving/http.js';
import { oipErrors } from '../serving/protocol-errors.js';
import { primaryModel, resolveRouting, servedModelOf } from '../serving/predictor.js';
import type { OipInput } from '../serving/request-schemas.js';
import { oipInferRequestSchema } from '../serving/request-schemas.js';
import { modelNotFound, ServingError } from '../serving/serving-errors.js';
import type { RouteTarget, ServedModel, ServingSnapshot } from '../serving/types.js';

export interface OipRoutesDeps extends PredictionRouteDeps {
  serving: { current(): ServingSnapshot; ready(): boolean };
  enrich: EnrichDeps;
}

type InputPlan = ReturnType<typeof inputPlan>;

/** The name of the one-tensor [N, F] input. */
export const MATRIX_INPUT = 'input';

/** The platform name the protocol gives ONNX models served by ONNX Runtime. */
export const OIP_PLATFORM = 'onnx_onnxv1';

const INTEGER = new Set(['INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);
const NUMERIC = new Set([...INTEGER, 'FP16', 'FP32', 'FP64']);

/** Feature types a numeric tensor can carry (booleans as 0/1, timestamps as epoch ms). */
const MATRIX_TYPES = new Set(['number', 'boolean', 'timestamp']);

const OUTPUTS = [
  { name: 'probability', datatype: 'FP64', shape: [-1] },
  { name: 'prediction', datatype: 'INT64', shape: [-1] },
];

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

/** Whether a per-feature tensor of `datatype` can carry a feature of `type`. */
function datatypeFits(datatype: string, type: string | undefined): boolean {
  switch (type) {
    case 'category':
      return datatype === 'BYTES';
    case 'boolean':
      return datatype === 'BOOL' || NUMERIC.has(datatype);
    case 'timestamp':
      return datatype === 'BYTES' || NUMERIC.has(datatype);
    case 'number':
      return NUMERIC.has(datatype);
    default:
      // An on-demand function's input that is not a model feature: its encoding is the function's.
      return true;
  }
}

/** A model's request layout: feature types by name, and the [N, F] tensor's columns when it has one. */
interface TensorLayout {
  types: ReadonlyMap<string, string>;
  /** In order; undefined when a request feature is not numeric (a category, an on-demand input). */
  columns: string[] | undefined;
}

// Per input plan, which inputPlan caches per served model: built once, not per request.
const layouts = new WeakMap<InputPlan, TensorLayout>();

export function tensorLayout(model: ServedModel, plan: InputPlan): TensorLayout {
  let layout = layouts.get(plan);
  if (!layout) {
    const types = new Map(model.featureSpec.features.map((f) => [f.name, f.type]));
    const columns = plan.required.every((name) => MATRIX_TYPES.has(types.get(name) ?? '')) ? plan.required : undefined;
    layouts.set(plan, (layout = { types, columns }));
  }
  return layout;
}

function metadata(model: ServedModel, plan: InputPlan, versions: string[] | undefined) {
  const { columns, types } = tensorLayout(model, plan);
  const inputs = columns
    ? [{ name: MATRIX_INPUT, datatype: 'FP64', shape: [-1, columns.length] }]
    : plan.required.map((name) => ({ name, datatype: oipDatatype(types.get(name)), shape: [-1] }));
  return {
    name: model.model,
    ...(versions ? { versions } : {}),
    platform: OIP_PLATFORM,
    inputs,
    outputs: OUTPUTS,
    // Parameter values are strings, numbers or booleans (the protocol's $parameters).
    parameters: { version: model.version, ...(columns ? { input_columns: columns.join(',') } : {}) },
  };
}

/** The routed target a path's version names (live or shadow), or 404. */
function targetOf(snapshot: ServingSnapshot, name: string, version: string): RouteTarget {
  const routing = snapshot.routing.get(name);
  if (!routing) throw modelNotFound(name);
  const targets = [...routing.live, ...routing.shadow];
  const target = targets.find((t) => String(t.version) === version);
  if (!target) {
    const which = /^\d{1,12}$/.test(version) ? `version ${version}` : 'such version';
    throw new ServingError(404, 'NotFound', `model ${name} has no ${which} on this gateway (versions: ${targets.map((t) => t.version).join(', ') || 'none'})`, 'version');
  }
  return target;
}

/** The model a path names: its version when it has one, else the first live version. */
function modelOf(snapshot: ServingSnapshot, name: string, version: string | undefined): { served: ServedModel; target?: RouteTarget } {
  if (version === undefined) return { served: primaryModel(snapshot, name) };
  const target = targetOf(snapshot, name, version);
  return { served: servedModelOf(snapshot, name, target), target };
}

/** The request's tensors as rows of `{feature: value}` for `model`. */
export function tensorsToRows(inputs: readonly OipInput[], model: ServedModel, plan: InputPlan): Array<Record<string, unknown>> {
  const single = inputs.length === 1 ? inputs[0]! : undefined;
  // The one-tensor form: named `input`, or any single 2-D tensor that is not a feature (as before `input` was named).
  if (single && !plan.allowed.has(single.name) && (single.name === MATRIX_INPUT || (single.shape.length === 2 && single.shape[1]! > 1))) {
    return matrixRows(single, model, plan);
  }
  const { types } = tensorLayout(model, plan);
  const names = new Set<string>();
  let n: number | undefined;
  const columns = inputs.map((input) => {
    const field = `inputs.${input.name}`;
    if (names.has(input.name)) throw new InvalidInput(`input ${input.name} is given twice`, field);
    names.add(input.name);
    if (!plan.allowed.has(input.name)) {
      const hint = input.name === MATRIX_INPUT ? `; the ${MATRIX_INPUT} [N, F] tensor must be the only input` : '';
      throw new InvalidInput(`unknown input ${input.name}${hint} (the model's inputs: ${plan.required.join(', ')})`, field);
    }
    if (input.shape.length === 2 && input.shape[1] !== 1) {
      throw new InvalidInput(`input ${input.name}: shape [${input.shape.join(', ')}]; a feature tensor is [N] or [N, 1]`, field);
    }
    const type = types.get(input.name);
    if (!datatypeFits(input.datatype, type)) {
      throw new InvalidInput(`input ${input.name}: datatype ${input.datatype}, but the feature is a ${type} (send ${oipDatatype(type)})`, field);
    }
    const rows = input.shape[0]!;
    if (n !== undefined && rows !== n) throw new InvalidInput(`input ${input.name} has ${rows} rows, the others ${n}`, field);
    n = rows;
    return { name: input.name, values: flatValues(input) };
  });
  const missing = plan.required.filter((name) => !names.has(name));
  if (missing.length > 0) throw new InvalidInput(`missing input${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`, `inputs.${missing[0]}`);
  return Array.from({ length: n ?? 0 }, (_, r) => Object.fromEntries(columns.map((c) => [c.name, c.values[r]])));
}

function matrixRows(input: OipInput, model: ServedModel, plan: InputPlan): Array<Record<string, unknown>> {
  const field = `inputs.${input.name}`;
  const { columns, types } = tensorLayout(model, plan);
  if (!columns) {
    const other = plan.required.find((name) => !MATRIX_TYPES.has(types.get(name) ?? ''))!;
    throw new InvalidInput(
      `input ${input.name}: the model takes ${other} as ${types.get(other) ?? 'an on-demand input'}, which a numeric [N, F] tensor cannot carry; send one tensor per feature (GET /v2/models/${model.model} lists them)`,
      field,
    );
  }
  if (input.shape.length !== 2 || input.shape[1] !== columns.length) {
    throw new InvalidInput(`input ${input.name}: shape [${input.shape.join(', ')}], but the model takes [N, ${columns.length}] (columns ${columns.join(', ')})`, field);
  }
  if (!NUMERIC.has(input.datatype)) throw new InvalidInput(`input ${input.name}: datatype ${input.datatype}; the [N, F] tensor is numeric (FP32, FP64 or an integer type)`, field);
  const [n, f] = input.shape as [number, number];
  const values = flatValues(input);
  return Array.from({ length: n }, (_, r) => Object.fromEntries(columns.map((name, c) => [name, values[r * f + c]])));
}

/**
 * The tensor's data, flat (row-major, nested as its shape or flattened, as the protocol allows),
 * checked against its shape and datatype. Messages name the element, never its value.
 */
function flatValues(input: OipInput): unknown[] {
  const field = `inputs.${input.name}`;
  const expected = input.shape.reduce((a, b) => a * b, 1);
  const width = input.shape.length === 2 ? input.shape[1]! : undefined;
  const flat: unknown[] = [];
  for (const item of input.data) {
    if (Array.isArray(item)) {
      if (width === undefined || item.length !== width || item.some(Array.isArray)) {
        throw new InvalidInput(`input ${input.name}: data is nested differently from shape [${input.shape.join(', ')}]`, field);
      }
      for (const inner of item) flat.push(inner);
    } else {
      flat.push(item);
    }
    if (flat.length > expected) break;
  }
  if (flat.length !== expected) {
    throw new InvalidInput(`input ${input.name}: shape [${input.shape.join(', ')}] holds ${expected} values, data has ${flat.length > expected ? 'more' : flat.length}`, field);
  }
  for (let i = 0; i < flat.length; i++) {
    const problem = elementProblem(flat[i], input.datatype);
    if (problem) throw new InvalidInput(`input ${input.name}: element ${i} ${problem}`, field);
  }
  return flat;
}

/** Why an element does not fit its datatype (null is a missing value), or undefined. */
function elementProblem(value: unknown, datatype: string): string | undefined {
  if (value === null) return undefined;
  const kind = typeof value === 'object' ? 'an object' : `a ${typeof value}`;
  if (datatype === 'BYTES') return typeof value === 'string' ? undefined : `is ${kind}, not a string (BYTES)`;
  if (datatype === 'BOOL') return typeof value === 'boolean' ? undefined : `is ${kind}, not a boolean (BOOL)`;
  if (typeof value !== 'number') return `is ${kind}, not a number (${datatype})`;
  if (INTEGER.has(datatype) && !Number.isInteger(value)) return `is not an integer (${datatype})`;
  if (datatype.startsWith('UINT') && value < 0) return `is negative (${datatype})`;
  return undefined;
}

export function oipRoutes(deps: OipRoutesDeps) {
  const app = new Hono();
  const fail = (c: Context, error: unknown, requestId?: string) => errorResponse(c, error, deps.metrics, deps.logError, requestId, oipErrors);

  app.get('/v2/health/live', (c) => c.json({ live: true }));
  app.get('/v2/health/ready', (c) => {
    const ready = deps.serving.ready();
    return c.json({ ready }, ready ? 200 : 503);
  });
  // The protocol's text says `v2`, its OpenAPI file `/v2/`.
  const server = (c: Context) => c.json({ name: 'keel', version: KEEL_VERSION, extensions: [] });
  app.get('/v2', server);
  app.get('/v2/', server);

  const describe = async (c: Context) => {
    try {
      const name = c.req.param('name')!;
      const snapshot = deps.serving.current();
      const { served } = modelOf(snapshot, name, c.req.param('version'));
      const routing = resolveRouting(snapshot, name);
      const versions = (await deps.canUseVariantHeader(c)) ? [...routing.live, ...routing.shadow].map((t) => String(t.version)) : undefined;
      return c.json(metadata(served, inputPlan(served, deps.enrich.onDemand), versions));
    } catch (error) {
      return fail(c, error);
    }
  };
  const ready = async (c: Context) => {
    try {
      const { served } = modelOf(deps.serving.current(), c.req.param('name')!, c.req.param('version'));
      return c.json({ name: served.model, ready: true });
    } catch (error) {
      return fail(c, error);
    }
  };
  const infer = async (c: Context) => {
    let requestId: string | undefined;
    try {
      const name = c.req.param('name')!;
      const body = parseBody(oipInferRequestSchema, await readJsonBody(c));
      requestId = requestIdFor(c, body.id);
      const wanted = new Set(body.outputs?.map((o) => o.name) ?? ['probability', 'prediction']);
      const unknown = [...wanted].filter((o) => o !== 'probability' && o !== 'prediction');
      if (unknown.length) throw new InvalidInput(`unknown output ${unknown.join(', ')} (outputs: probability, prediction)`, 'outputs');
      // Tensors are laid out by the named version, else the live model's features (every live
      // version of a model takes the same request fields).
      const { served, target } = modelOf(deps.serving.current(), name, c.req.param('version'));
      // A versioned path pins that version's variant; the route table lets only admin keys call it.
      const variant = target ? target.variant : await variantFor(c, deps);
      const records = tensorsToRows(body.inputs, served, inputPlan(served, deps.enrich.onDemand));
      if (records.length === 0) throw new InvalidInput('the input tensors hold no rows', 'inputs');
      const rows: RowRequest[] = records.map((features, i) => ({ features, label: records.length > 1 ? `row ${i}` : undefined }));
      const result = await runPrediction(deps, { model: name, requestId, rows, variant, protocol: 'v2' });
      const n = result.rows.length;
      const outputs = [];
      if (wanted.has('probability')) outputs.push({ name: 'probability', datatype: 'FP64', shape: [n], data: result.rows.map((r) => r.probability) });
      if (wanted.has('prediction')) outputs.push({ name: 'prediction', datatype: 'INT64', shape: [n], data: result.rows.map((r) => r.prediction) });
      const first = result.rows[0]!;
      return answer({ model_name: name, model_version: String(first.model_version), id: requestId, parameters: { variant: first.variant }, outputs }, requestId);
    } catch (error) {
      return fail(c, error, requestId);
    }
  };
  for (const model of ['/v2/models/:name', '/v2/models/:name/versions/:version']) {
    app.get(model, describe);
    app.get(`${model}/ready`, ready);
    app.post(`${model}/infer`, infer);
  }
  return app;
}
