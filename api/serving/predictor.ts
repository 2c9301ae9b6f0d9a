/**
 * The prediction core every protocol shares (v1, OIP v2, MLflow): routing from the current serving
 * snapshot, input preparation (enrichment, on-demand, encoding), scoring, the answer, the log, the
 * metrics, and shadow scoring after the answer.
 *
 * Never the wrong model: the snapshot is read once per request, so every row of a request is
 * scored by a version of that one snapshot, and each answer row carries the version that scored
 * it. Rows are routed one by one by their unit id (the entity key when the row has one, else the
 * request id): a batch of customers sends each to that customer's variant, and rows of the same
 * target are scored in one onnxruntime run.
 *
 * Shadow versions score the same prepared rows after the answer has been built: the caller never
 * waits for them and never sees them; their failures are counted and logged.
 */
import type { GatewayMetrics } from '../metrics.js';
import { encodeFeatureRows, modelHandlesMissing } from './encode-request.js';
import type { EnrichDeps, PreparedRow, RowRequest } from './enrich.js';
import { entityUnitId, prepareFeatureRow, prepareRows } from './enrich.js';
import { modelNotFound, noLiveVersion, ServingError } from './serving-errors.js';
import type { FeaturePresence, ModelRouting, PredictionRecord, RouteMode, RouteTarget, ServedModel, ServingSnapshot } from './types.js';
import { modelKey } from './types.js';

/** The routing helper's pickers (api/serving/routing.ts). */
export interface TargetPicker {
  pickLiveTarget(routing: ModelRouting, unitId: string): RouteTarget;
  /** The target named by variant name or version number, live or shadow; undefined when none. */
  pickExplicitVariant(routing: ModelRouting, variantOrVersion: string): RouteTarget | undefined;
}

export interface PredictorDeps {
  serving: { current(): ServingSnapshot };
  picker: TargetPicker;
  /** The prediction log boundary: synchronous, never throws into the request. */
  log: { append(record: PredictionRecord): void };
  metrics: GatewayMetrics;
  enrich: EnrichDeps;
  /** Where shadow failures go (never to the caller). */
  logShadowError?: (error: unknown, context: { model: string; version: number; requestId: string }) => void;
}

export interface PredictInput {
  model: string;
  requestId: string;
  rows: readonly RowRequest[];
  /** From `x-keel-variant`, already authorised (admin). */
  variant?: string;
  protocol: 'v1' | 'v2' | 'mlflow';
}

/**
 * Set when the caller has been answered 503 Timeout: nothing is logged or counted then. A plain
 * flag, not an AbortSignal: creating an AbortController costs more than the rest of a request.
 */
export interface PredictSignal {
  readonly aborted: boolean;
}

export interface RowAnswer {
  prediction: 0 | 1;
  probability: number;
  model_version: number;
  variant: string;
  request_id: string;
  /** `{entity}` rows: how many of the model's online features were present / expired / missing. */
  features?: FeaturePresence;
}

export interface PredictResult {
  model: string;
  requestId: string;
  rows: RowAnswer[];
}

/** A model's decision threshold: the spec's `threshold` when it carries one, else 0.5. */
export function thresholdOf(model: ServedModel): number {
  const t = model.featureSpec.threshold;
  return typeof t === 'number' && t > 0 && t < 1 ? t : 0.5;
}

/** The routing of `model` in the snapshot, or 404 / 503. */
export function resolveRouting(snapshot: ServingSnapshot, model: string): ModelRouting {
  const routing = snapshot.routing.get(model);
  if (!routing) throw modelNotFound(model);
  if (routing.live.length === 0) throw noLiveVersion(model);
  return routing;
}

/** The served model of a target; a routing entry whose model is absent is a 503, never another version. */
export function servedModelOf(snapshot: ServingSnapshot, model: string, target: RouteTarget): ServedModel {
  const served = snapshot.models.get(modelKey(model, target.version));
  if (!served) throw noLiveVersion(model);
  return served;
}

/** The model a metadata or readiness endpoint describes: the first live target (the default answerer). */
export function primaryModel(snapshot: ServingSnapshot, model: string): ServedModel {
  const routing = resolveRouting(snapshot, model);
  return servedModelOf(snapshot, model, routing.live[0]!);
}

export interface Predictor {
  predict(input: PredictInput, signal?: PredictSignal): Promise<PredictResult>;
  /** Shadow work started and not yet finished (tests and drain wait on it). */
  idle(): Promise<void>;
}

export function createPredictor(deps: PredictorDeps): Predictor {
  const pending = new Set<Promise<void>>();

  /**
   * Not async itself: an async function returning another's promise costs two more turns of the
   * microtask queue per request. Errors before the first await still reject, never throw.
   */
  function predict(input: PredictInput, signal?: PredictSignal): Promise<PredictResult> {
    try {
      const started = performance.now();
      const snapshot = deps.serving.current();
      const routing = resolveRouting(snapshot, input.model);
      if (input.rows.length === 1 && input.variant === undefined && input.rows[0]!.entity === undefined) {
        return predictOneRow(input, snapshot, routing, started, signal);
      }
      return predictRows(input, snapshot, routing, started, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Any request: rows routed one by one, each target's rows scored in one run. */
  async function predictRows(input: PredictInput, snapshot: ServingSnapshot, routing: ModelRouting, started: number, signal?: PredictSignal): Promise<PredictResult> {
    const rowIds = input.rows.length === 1 ? [input.requestId] : input.rows.map((_, i) => `${input.requestId}:${i}`);

    // Route every row, then score each target's rows together.
    let pinned: RouteTarget | undefined;
    if (input.variant !== undefined) {
      pinned = deps.picker.pickExplicitVariant(routing, input.variant);
      if (!pinned) {
        const known = [...routing.live, ...routing.shadow].map((t) => `${t.variant} (v${t.version})`).join(', ');
        throw new ServingError(422, 'UnknownVariant', `model ${input.model} has no variant or version ${input.variant} (routed: ${known})`, 'x-keel-variant');
      }
    }
    const groups = routeRows(input, routing, pinned, deps.picker);

    const answers = new Array<RowAnswer>(input.rows.length);
    const prepared = new Array<PreparedRow>(input.rows.length);
    const ts = new Date();
    const scored: Array<{ target: RouteTarget; served: ServedModel; indexes: number[]; probabilities: Float64Array }> = [];
    for (const { target, indexes } of groups) {
      const served = servedModelOf(snapshot, input.model, target);
      const requests = indexes.length === input.rows.length ? input.rows : indexes.map((i) => input.rows[i]!);
      const ready = prepareRows(deps.enrich, served, requests);
      const rows = Array.isArray(ready) ? ready : await ready;
      const probabilities = await score(served, rows, requests);
      for (let j = 0; j < rows.length; j++) prepared[indexes[j]!] = rows[j]!;
      scored.push({ target, served, indexes, probabilities });
    }
    throwIfTimedOut(signal);
    const latencyMs = performance.now() - started;
    for (const { target, served, indexes, probabilities } of scored) {
      for (let j = 0; j < indexes.length; j++) {
        const i = indexes[j]!;
        answers[i] = answerAndLog(rowIds[i]!, served, target, prepared[i]!, probabilities[j]!, latencyMs, ts);
      }
      deps.metrics.countPredictions(input.model, served.version, target.variant, indexes.length);
    }
    deps.metrics.latency.observe({ model: input.model, protocol: input.protocol }, latencyMs / 1000);

    if (routing.shadow.length > 0) scheduleShadows(snapshot, routing, input, rowIds);
    return { model: input.model, requestId: input.requestId, rows: answers };
  }

  /**
   * The common request, one row with its features and no pinned variant, without the batch
   * bookkeeping (groups, per-row arrays): the same routing, checks, answer, log record and
   * metrics as `predict`, with fewer allocations on the hot path.
   */
  async function predictOneRow(input: PredictInput, snapshot: ServingSnapshot, routing: ModelRouting, started: number, signal?: PredictSignal): Promise<PredictResult> {
    const row = input.rows[0]!;
    const target = deps.picker.pickLiveTarget(routing, input.requestId);
    const served = servedModelOf(snapshot, input.model, target);
    const prepared = prepareFeatureRow(deps.enrich, served, row);
    // A labelled row is a batch of one (`instances[0]`): messages name it as the batch path does.
    const encoded = encodeFeatureRows([prepared.values], served.featureSpec, {
      allowMissing: modelHandlesMissing(served.signature.kind),
      rowLabel: row.label === undefined ? undefined : rowLabel.bind(input.rows),
    });
    const probability = await served.predictOne(encoded.data);
    throwIfTimedOut(signal);
    const latencyMs = performance.now() - started;
    const answer = answerAndLog(input.requestId, served, target, prepared, probability, latencyMs, new Date());
    deps.metrics.countPredictions(input.model, served.version, target.variant, 1);
    deps.metrics.latency.observe({ model: input.model, protocol: input.protocol }, latencyMs / 1000);
    if (routing.shadow.length > 0) scheduleShadows(snapshot, routing, input, [input.requestId]);
    return { model: input.model, requestId: input.requestId, rows: [answer] };
  }

  /** A row's answer, logged as a live record (also when an admin pinned a shadow variant). */
  function answerAndLog(requestId: string, served: ServedModel, target: RouteTarget, prepared: PreparedRow, probability: number, latencyMs: number, ts: Date): RowAnswer {
    const prediction = probability > thresholdOf(served) ? 1 : 0;
    deps.log.append(record(requestId, served, target, 'live', prepared, { prediction, probability }, latencyMs, ts));
    const answer: RowAnswer = { prediction, probability, model_version: served.version, variant: target.variant, request_id: requestId };
    if (prepared.presence) answer.features = prepared.presence;
    return answer;
  }

  /** Shadow targets score the same request rows after the answer is on its way. */
  function scheduleShadows(snapshot: ServingSnapshot, routing: ModelRouting, input: PredictInput, rowIds: string[]): void {
    const work = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      for (const target of routing.shadow) {
        const served = snapshot.models.get(modelKey(input.model, target.version));
        try {
          if (!served) throw new Error(`shadow version ${target.version} is not loaded`);
          const started = performance.now();
          // Re-prepared by the shadow's own spec (it may read other features or on-demand functions).
          const rows = await prepareRows(deps.enrich, served, input.rows);
          const probabilities = await score(served, rows, input.rows);
          const latencyMs = performance.now() - started;
          const ts = new Date();
          const threshold = thresholdOf(served);
          rows.forEach((row, i) => {
            const probability = probabilities[i]!;
            deps.log.append(record(rowIds[i]!, served, target, 'shadow', row, { prediction: probability > threshold ? 1 : 0, probability }, latencyMs, ts));
          });
          deps.metrics.shadowPredictions.inc({ model: input.model, version: String(target.version), variant: target.variant }, rows.length);
        } catch (error) {
          deps.metrics.shadowErrors.inc({ model: input.model, version: String(target.version) });
          deps.logShadowError?.(error, { model: input.model, version: target.version, requestId: input.requestId });
        }
      }
    });
    pending.add(work);
    void work.finally(() => pending.delete(work));
  }

  return {
    predict,
    idle: async () => {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

/** Checked right before the log (no await in between): a timed-out answer is never logged. */
function throwIfTimedOut(signal: PredictSignal | undefined): void {
  if (signal?.aborted) throw new ServingError(503, 'Timeout', 'the request timed out');
}

/** Rows grouped by the target that scores them: one group per target, rows in request order. */
function routeRows(input: PredictInput, routing: ModelRouting, pinned: RouteTarget | undefined, picker: TargetPicker): Array<{ target: RouteTarget; indexes: number[] }> {
  if (input.rows.length === 1) return [{ target: targetOf(input, input.rows[0]!, routing, pinned, picker), indexes: [0] }];
  const groups = new Map<RouteTarget, number[]>();
  input.rows.forEach((row, i) => {
    const target = targetOf(input, row, routing, pinned, picker);
    const list = groups.get(target);
    if (list) list.push(i);
    else groups.set(target, [i]);
  });
  return [...groups].map(([target, indexes]) => ({ target, indexes }));
}

/** The pinned target, else the live target owning the row's unit (its entity key, else the request id). */
function targetOf(input: PredictInput, row: RowRequest, routing: ModelRouting, pinned: RouteTarget | undefined, picker: TargetPicker): RouteTarget {
  return pinned ?? picker.pickLiveTarget(routing, row.entity ? entityUnitId(row.entity) : input.requestId);
}

async function score(served: ServedModel, rows: PreparedRow[], requests: readonly RowRequest[]): Promise<Float64Array> {
  const values = rows.map((r) => r.values);
  const labelled = requests.some(hasLabel);
  const encoded = encodeFeatureRows(values, served.featureSpec, {
    allowMissing: modelHandlesMissing(served.signature.kind),
    rowLabel: labelled ? rowLabel.bind(requests) : undefined,
  });
  if (encoded.rows === 1) return Float64Array.of(await served.predictOne(encoded.data));
  return served.predictMany(encoded.data, encoded.rows);
}

// Module-level, not closures per request: the gateway runs under tsx, whose keepNames wraps every
// closure created in a call with a defineProperty.
function hasLabel(row: RowRequest): boolean {
  return row.label !== undefined;
}
function rowLabel(this: readonly RowRequest[], i: number): string | undefined {
  return this[i]?.label;
}

function record(
  requestId: string,
  served: ServedModel,
  target: RouteTarget,
  mode: RouteMode,
  row: PreparedRow,
  output: Record<string, unknown>,
  latencyMs: number,
  ts: Date,
): PredictionRecord {
  const { model, version } = served;
  const { variant } = target;
  const { values: features, requestJson, presence } = row;
  if (requestJson !== undefined) return { requestId, model, version, variant, mode, features, requestJson, output, latencyMs, ts };
  if (presence !== undefined) return { requestId, model, version, variant, mode, features, output, latencyMs, ts, presence };
  return { requestId, model, version, variant, mode, features, output, latencyMs, ts };
}
