/**
 * Request rows → the model's features as training saw them: `{entity}` rows read the feature
 * views named in the model's feature spec from the online store (one query for the whole request,
 * each view's TTL applied at read time exactly as point-in-time retrieval applies it: an expired or
 * missing row gives nulls), request `features` are laid over them (a request value wins), then the
 * model's on-demand functions run in spec order (`computeOnDemandRow`, the code the training set
 * was built with). A model whose on-demand code hash differs from the function running here is
 * refused (503 `OnDemandMismatch`), never served with a different transformation.
 *
 * Which names a caller may send: the model's features and the on-demand functions' inputs, minus
 * the on-demand outputs (computed, never sent). Which names a caller must send: the same set minus
 * what the online views provide for an `{entity}` row.
 *
 * Each `{entity}` row counts the model's online features present / expired / missing (a feature
 * the request sends counts as present). A row with none present is refused, 422 `EntityNotFound`
 * (no online row: never materialized) or `FeaturesExpired` (some expired, none present), naming
 * the entity, unless the model is set to be served anyway (stores/model-options.ts). One refused
 * row refuses the whole request.
 */
import type { CellValue } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { Entity, FeatureDefinitions } from '../../lib/features/definitions.js';
import type { OnDemandFeature } from '../../lib/features/on-demand.js';
import { checkOnDemandSpec, computeOnDemandRow } from '../../lib/features/on-demand.js';
import type { Db } from '../../stores/db.js';
import { cachedFeatureDefinitions, getOnlineFeatures } from '../../stores/features/online.js';
import { cachedModelsServedWithoutFeatures } from '../../stores/model-options.js';
import { checkFeatureNames } from './encode-request.js';
import type { OnlineReader } from './online-reads.js';
import { ServingError } from './serving-errors.js';
import type { FeaturePresence, ServedModel } from './types.js';

export interface EnrichDeps {
  /** The online store; needed only for `{entity}` rows. */
  db?: Db;
  /** On-demand functions running in this process, by name (`onDemandRegistry`). */
  onDemand: ReadonlyMap<string, OnDemandFeature>;
  /** How long feature definitions (and per-model options) read from the registry are reused, ms; default 5 000. */
  definitionsCacheMs?: number;
  now?: () => Date;
  /** Coalesces the reads of concurrent requests (online-reads.ts); without it each request reads alone. */
  reader?: OnlineReader;
}

export interface RowRequest {
  features?: Readonly<Record<string, unknown>>;
  entity?: Readonly<Record<string, unknown>>;
  /** Names the row in messages, e.g. `instances[3]`. */
  label?: string;
  /** The request's JSON text when its `features` member is this row's `features` (see PreparedRow). */
  requestJson?: string;
}

export interface PreparedRow {
  /** Every model feature by name, after enrichment and on-demand functions. */
  values: Record<string, CellValue>;
  /** For `{entity}` rows: how many of the model's online features were present / expired / missing. */
  presence?: FeaturePresence;
  /**
   * The request's JSON text when its `features` member holds exactly `values` (every feature of
   * the model sent, nothing else, no on-demand function): the prediction log stores the features
   * from this text instead of serialising the numbers again.
   */
  requestJson?: string;
}

/** What a model takes from a request, worked out once per loaded model. */
interface InputPlan {
  onDemand: OnDemandFeature[];
  /** Names a caller may send. */
  allowed: Set<string>;
  /** Names a `{features}` row must send. */
  required: string[];
}

const plans = new WeakMap<ServedModel, InputPlan>();

/** The model's input plan; a 503 when its on-demand functions are not the ones running here. */
export function inputPlan(model: ServedModel, registry: ReadonlyMap<string, OnDemandFeature>): InputPlan {
  const cached = plans.get(model);
  if (cached) return cached;
  const entries = model.featureSpec.onDemand ?? [];
  try {
    checkOnDemandSpec(entries, [...registry.values()]);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new ServingError(503, 'OnDemandMismatch', `model ${model.model} v${model.version} cannot be served here: ${message}`);
  }
  const onDemand = entries.map((e) => registry.get(e.name)!);
  const outputs = new Set(onDemand.map((d) => d.name));
  const allowed = new Set<string>();
  for (const name of model.featureNames) if (!outputs.has(name)) allowed.add(name);
  for (const def of onDemand) for (const input of def.inputs) if (!outputs.has(input)) allowed.add(input);
  const plan = { onDemand, allowed, required: [...allowed] };
  plans.set(model, plan);
  return plan;
}

/** A sticky unit id for an entity whatever the model: its keys sorted, with their values as text. */
export function entityUnitId(entity: Readonly<Record<string, unknown>>): string {
  return Object.keys(entity)
    .sort()
    .map((k) => `${k}=${String(entity[k])}`)
    .join('&');
}

/** Every row with the model's features filled (see the module comment). */
export function prepareRows(deps: EnrichDeps, model: ServedModel, rows: readonly RowRequest[]): PreparedRow[] | Promise<PreparedRow[]> {
  const plan = inputPlan(model, deps.onDemand);
  let entityRows: number[] | undefined;
  for (let i = 0; i < rows.length; i++) if (rows[i]!.entity) (entityRows ??= []).push(i);
  // Rows that carry all their features are prepared at once: no promise, no extra turn of the loop.
  if (!entityRows) return rows.map((row) => prepareRow(model, plan, row));
  const withEntity = entityRows;
  return readOnline(deps, model, plan, withEntity.map((i) => rows[i]!)).then((online) => {
    const onlineByRow = new Map(withEntity.map((row, j) => [row, j]));
    const prepared = rows.map((row, i) => {
      const j = onlineByRow.get(i);
      return prepareRow(model, plan, row, j === undefined ? undefined : { read: online, j });
    });
    const empty = withEntity.findIndex((i) => prepared[i]!.presence!.present === 0);
    if (empty === -1) return prepared;
    return cachedModelsServedWithoutFeatures(deps.db!, deps.definitionsCacheMs ?? 5_000).then((allowed) => {
      if (allowed.has(model.model)) return prepared;
      const i = withEntity[empty]!;
      throw noOnlineFeatures(model, rows[i]!, online.rows[empty]!.entity, prepared[i]!.presence!);
    });
  });
}

/** 422 for an entity row none of whose online features is present: names the entity (the caller's own key), never a value. */
function noOnlineFeatures(model: ServedModel, row: RowRequest, entity: Readonly<Record<string, number | string>>, presence: FeaturePresence): ServingError {
  const where = row.label ? `${row.label}.entity` : 'entity';
  const total = presence.expired + presence.missing;
  const allow = `or serve it anyway: keel models ${model.model} --serve-without-features on`;
  if (presence.expired > 0) {
    return new ServingError(
      422,
      'FeaturesExpired',
      `${where} ${JSON.stringify(entity)}: none of the ${total} online features of model ${model.model} is present (${presence.expired} expired, ${presence.missing} missing); materialize its feature views again, send its features, ${allow}`,
      where,
    );
  }
  return new ServingError(
    422,
    'EntityNotFound',
    `${where} ${JSON.stringify(entity)} is not in the online store: none of the ${total} online features of model ${model.model} is there; send its features, ${allow}`,
    where,
  );
}

/** One row that carries its features (no entity): prepared at once, as `prepareRows` does. */
export function prepareFeatureRow(deps: EnrichDeps, model: ServedModel, row: RowRequest): PreparedRow {
  return prepareRow(model, inputPlan(model, deps.onDemand), row);
}

function prepareRow(model: ServedModel, plan: InputPlan, row: RowRequest, online?: { read: OnlineRead; j: number }): PreparedRow {
  const where = row.label;
  const features = row.features ?? {};
  let values: Record<string, CellValue | undefined>;
  let presence: FeaturePresence | undefined;
  if (online === undefined) {
    // The common case, every feature sent and fine, in one pass; else the checks that say what is wrong.
    const exact = sendsExactly(features, plan);
    if (!exact) {
      checkScalars(features, where);
      checkFeatureNames(features, plan.allowed, plan.required, where);
    }
    if (plan.onDemand.length === 0) {
      const values = pick(model.featureNames, features as Record<string, CellValue>);
      return row.requestJson !== undefined && exact ? { values, requestJson: row.requestJson } : { values };
    }
    values = { ...(features as Record<string, CellValue>) };
  } else {
    checkScalars(features, where);
    const { read, j } = online;
    checkFeatureNames(features, plan.allowed, read.requiredBesidesOnline, where);
    values = { ...read.rows[j]!.values, ...(features as Record<string, CellValue>) };
    presence = { present: 0, expired: 0, missing: 0 };
    const statuses = read.rows[j]!.statuses;
    // A feature the request sends is not read from the store: it is present.
    for (const name in statuses) presence[Object.hasOwn(features, name) ? 'present' : statuses[name]!]++;
  }
  const used = pick(model.featureNames, plan.onDemand.length ? computeOnDemandRow(values, plan.onDemand) : (values as Record<string, CellValue>));
  return presence ? { values: used, presence } : { values: used };
}

/** True when `features` holds exactly the plan's names, each a scalar (null, text, boolean, finite number). */
function sendsExactly(features: Readonly<Record<string, unknown>>, plan: InputPlan): boolean {
  let count = 0;
  for (const name in features) {
    if (!Object.hasOwn(features, name) || !plan.allowed.has(name)) return false;
    const value = features[name];
    if (!(value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))) return false;
    count++;
  }
  return count === plan.required.length;
}

/** The model's features by name, in its order; a missing one is null. */
function pick(names: readonly string[], from: Readonly<Record<string, CellValue | undefined>>): Record<string, CellValue> {
  const used: Record<string, CellValue> = {};
  for (const name of names) used[name] = from[name] ?? null;
  return used;
}

function checkScalars(features: Readonly<Record<string, unknown>>, where: string | undefined): void {
  for (const [name, value] of Object.entries(features)) {
    if (value === null || typeof value === 'string' || typeof value === 'boolean') continue;
    if (typeof value === 'number') {
      if (Number.isFinite(value)) continue;
      throw new InvalidInput(`${where ? `${where}: ` : ''}feature ${name}: the value is not a finite number`, where ? `${where}.${name}` : name);
    }
    throw new InvalidInput(
      `${where ? `${where}: ` : ''}feature ${name}: ${Array.isArray(value) ? 'an array' : `a value of type ${typeof value}`} is not a feature value (number, text, boolean or null)`,
      where ? `${where}.${name}` : name,
    );
  }
}

interface OnlinePlan {
  entity: Entity;
  refs: string[];
  names: Set<string>;
  requiredBesidesOnline: string[];
}

/** Online refs per (model, definitions): recomputed when the registry's definitions object changes. */
const onlinePlans = new WeakMap<ServedModel, { definitions: FeatureDefinitions; plan: OnlinePlan }>();

function onlinePlan(model: ServedModel, plan: InputPlan, definitions: FeatureDefinitions): OnlinePlan {
  const cached = onlinePlans.get(model);
  if (cached?.definitions === definitions) return cached.plan;
  const specViews = model.featureSpec.featureViews ?? [];
  if (specViews.length === 0) {
    throw new InvalidInput(`model ${model.model} v${model.version} reads no feature views online; send features instead of entity`, 'entity');
  }
  const needed = new Set([...plan.allowed]);
  const refs: string[] = [];
  const names = new Set<string>();
  let entityName: string | undefined;
  for (const specView of specViews) {
    const view = definitions.featureViews.find((v) => v.name === specView.name);
    if (!view) throw new ServingError(503, 'FeatureViewMissing', `feature view ${specView.name} (used by ${model.model} v${model.version}) is not in the feature registry`);
    entityName ??= view.entity;
    for (const feature of view.features) {
      if ((specView.features === undefined || specView.features.includes(feature.name)) && needed.has(feature.name) && !names.has(feature.name)) {
        refs.push(`${view.name}:${feature.name}`);
        names.add(feature.name);
      }
    }
  }
  const entity = definitions.entities.find((e) => e.name === entityName)!;
  const requiredBesidesOnline = plan.required.filter((n) => !names.has(n));
  const result = { entity, refs, names, requiredBesidesOnline };
  onlinePlans.set(model, { definitions, plan: result });
  return result;
}

type OnlineRead = Awaited<ReturnType<typeof readOnline>>;

async function readOnline(deps: EnrichDeps, model: ServedModel, plan: InputPlan, rows: RowRequest[]) {
  if (!deps.db) throw new ServingError(503, 'OnlineStoreUnavailable', 'this gateway has no online store; send features instead of entity');
  const definitions = await cachedFeatureDefinitions(deps.db, deps.definitionsCacheMs ?? 5_000);
  const online = onlinePlan(model, plan, definitions);
  const joinKeys = new Set(online.entity.joinKeys.map((k) => k.name));
  rows.forEach((row) => {
    const unknown = Object.keys(row.entity!).filter((k) => !joinKeys.has(k));
    if (unknown.length > 0) {
      const where = row.label ? `${row.label}.entity` : 'entity';
      throw new InvalidInput(`${where}: unknown key ${unknown.join(', ')} (entity ${online.entity.name} has join keys ${[...joinKeys].join(', ')})`, `${where}.${unknown[0]}`);
    }
  });
  let result;
  try {
    const entities = rows.map((r) => r.entity!);
    result = deps.reader
      ? { rows: await deps.reader.read({ features: online.refs, entities, definitions }) }
      : await getOnlineFeatures(deps.db, { features: online.refs, entities, definitions, now: deps.now?.() });
  } catch (error) {
    // The store names the entity by its index in this read; name it as the caller sent it.
    if (error instanceof InvalidInput && error.field?.startsWith('entities[')) {
      const index = Number(/^entities\[(\d+)\]/.exec(error.field)?.[1] ?? 0);
      const where = rows[index]?.label ? `${rows[index]!.label}.entity` : 'entity';
      throw new InvalidInput(error.message.replace(/^entities\[\d+\]/, where), error.field.replace(/^entities\[\d+\]/, where));
    }
    throw error;
  }
  return { rows: result.rows, requiredBesidesOnline: online.requiredBesidesOnline };
}

