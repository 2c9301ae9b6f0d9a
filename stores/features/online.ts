/**
 * Online feature reads (Feast's `get_online_features`): the latest materialized values per entity
 * from `online_features` (migration 0004), with each view's TTL applied at read time, so that the
 * online answer agrees with what point-in-time retrieval (historical.ts) gives at the same moment.
 *
 * For every requested entity and view:
 *   - no row in `online_features`: every feature of the view is null, status `missing`;
 *   - a row whose `event_timestamp < now − TTL` (TTL > 0; TTL 0 never expires): null, status
 *     `expired` — exactly the rows the offline join leaves out (its bound `>= ts − TTL` is
 *     inclusive, and the comparison is done by Postgres on the stored microsecond timestamp);
 *   - otherwise the stored values, status `present` (a value may itself be null, as offline). A
 *     feature the row does not hold (the view gained it since the last materialization) is null,
 *     status `missing`.
 * Values come back as historical retrieval's table cells do: numbers (int64 and float64), booleans,
 * strings, timestamps as epoch milliseconds, null for null.
 *
 * What a row holds is the latest value as of the view's materialization watermark: reads at a
 * `now` before a stored row's event time still see that row (the online store keeps one value per
 * entity, not history).
 *
 * One query per call whatever the number of views and entities (a named prepared statement: the
 * plan is made once per connection), against the primary key (view, entity_key). Definitions come
 * from the registry and are cached per pool for `registryCacheMs` (default 5 s), or are passed in.
 */
import type { CellValue } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { Entity, FeatureDefinitions, FeatureValueType, FeatureView } from '../../lib/features/definitions.js';
import { definitionVersion } from '../../lib/features/definitions.js';
import type { FeatureSelection, ResolvedFeatures } from '../../lib/features/validate.js';
import { resolveFeatureRefs } from '../../lib/features/validate.js';
import type { Db } from '../db.js';
import type { StoredFeatureDefinitions } from './registry.js';
import { loadFeatureDefinitions } from './registry.js';

export type OnlineFeatureStatus = 'present' | 'expired' | 'missing';

/** An entity as given: its join keys by name (other members are ignored). */
export type EntityKeyValues = Readonly<Record<string, unknown>>;

export interface OnlineFeaturesOptions {
  /** `view:feature` references, or a feature service by name. */
  features: FeatureSelection;
  /** One object per entity with its join keys, e.g. `{customer_id: 42}`; answered in this order. */
  entities: readonly EntityKeyValues[];
  /** The moment TTLs are measured from; default now. */
  now?: Date;
  /** Name values `view__feature` instead of `feature`; default false (as historical retrieval). */
  fullFeatureNames?: boolean;
  /** Use these (already validated, e.g. `loadFeatureDefinitions`) instead of the registry. */
  definitions?: FeatureDefinitions;
  /** How long registry definitions are reused, in ms; default 5000, 0 = read the registry now. */
  registryCacheMs?: number;
}

export interface OnlineViewState {
  status: OnlineFeatureStatus;
  /** The stored row's event / created timestamps (ISO), also for an expired row; null when missing. */
  eventTimestamp: string | null;
  createdTimestamp: string | null;
}

export interface OnlineFeatureRow {
  /** The entity's join keys, normalised (int64 keys as numbers, string keys as strings). */
  entity: Record<string, number | string>;
  /** The canonical entity key (`online_features.entity_key`). */
  entityKey: string;
  /** By output name (`feature`, or `view__feature` with fullFeatureNames), in request order. */
  values: Record<string, CellValue>;
  statuses: Record<string, OnlineFeatureStatus>;
  views: Record<string, OnlineViewState>;
}

export interface OnlineFeaturesResult {
  entity: string;
  entityKeys: string[];
  /** `view:feature` references in request order. */
  features: string[];
  /** Output names, parallel to `features`. */
  names: string[];
  featureViews: Array<{ name: string; version: string }>;
  now: string;
  rows: OnlineFeatureRow[];
}

const READ_SQL = `SELECT o.view, o.entity_key, o.features, o.event_timestamp, o.created_timestamp,
       (v.ttl > 0 AND o.event_timestamp < $3::timestamptz - v.ttl * interval '1 second') AS expired
  FROM unnest($1::text[], $2::float8[]) AS v(view, ttl)
  JOIN online_features o ON o.view = v.view AND o.entity_key = ANY($4::text[])`;

interface StoredRow {
  view: string;
  entity_key: string;
  features: Record<string, unknown>;
  event_timestamp: Date;
  created_timestamp: Date | null;
  expired: boolean;
}

/** The latest online values of `features` for every entity, TTL applied at `now` (see the module comment). */
export async function getOnlineFeatures(db: Db, options: OnlineFeaturesOptions): Promise<OnlineFeaturesResult> {
  if (!options || typeof options !== 'object') throw new InvalidInput('online read options must be an object');
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new InvalidInput('now must be a valid Date', 'now');
  if (!Array.isArray(options.entities)) throw new InvalidInput('entities must be an array of {joinKey: value} objects', 'entities');
  const definitions = options.definitions ?? (await cachedFeatureDefinitions(db, options.registryCacheMs ?? DEFAULT_CACHE_MS));
  const { resolved, outputs, views, versions } = plan(definitions, options.features, options.fullFeatureNames ?? false);
  const { entity } = resolved;

  const keyed = options.entities.map((values, i) => normaliseEntity(entity, values, i));
  const stored = new Map<string, StoredRow>();
  if (keyed.length > 0) {
    const uniqueKeys = [...new Set(keyed.map((k) => k.entityKey))];
    const { rows } = await db.query<StoredRow>({
      name: 'keel_online_features_read',
      text: READ_SQL,
      values: [views.map((v) => v.name), views.map((v) => v.ttlSeconds), now.toISOString(), uniqueKeys],
    });
    for (const row of rows) stored.set(`${row.view}\u0000${row.entity_key}`, row);
  }

  const rows = keyed.map(({ entity: keys, entityKey }) => {
    const viewStates: Record<string, OnlineViewState> = {};
    const rowsByView = new Map<string, StoredRow | undefined>();
    for (const view of views) {
      const row = stored.get(`${view.name}\u0000${entityKey}`);
      rowsByView.set(view.name, row);
      viewStates[view.name] = {
        status: row === undefined ? 'missing' : row.expired ? 'expired' : 'present',
        eventTimestamp: row ? row.event_timestamp.toISOString() : null,
        createdTimestamp: row?.created_timestamp ? row.created_timestamp.toISOString() : null,
      };
    }
    const values: Record<string, CellValue> = {};
    const statuses: Record<string, OnlineFeatureStatus> = {};
    for (const output of outputs) {
      const row = rowsByView.get(output.view);
      let status = viewStates[output.view]!.status;
      if (status === 'present' && !Object.hasOwn(row!.features, output.feature)) status = 'missing';
      statuses[output.name] = status;
      values[output.name] = status === 'present' ? decodeValue(row!.features[output.feature], output.type) : null;
    }
    return { entity: keys, entityKey, values, statuses, views: viewStates };
  });

  return {
    entity: entity.name,
    entityKeys: entity.joinKeys.map((k) => k.name),
    features: resolved.refs,
    names: outputs.map((o) => o.name),
    featureViews: views.map((v, i) => ({ name: v.name, version: versions[i]! })),
    now: now.toISOString(),
    rows,
  };
}

interface ReadPlan {
  resolved: ResolvedFeatures;
  outputs: Array<{ ref: string; view: string; feature: string; type: FeatureValueType; name: string }>;
  views: FeatureView[];
  versions: string[];
}

/** Resolved selections per definitions object (the registry cache hands out the same object for a while). */
const plans = new WeakMap<FeatureDefinitions, Map<string, ReadPlan>>();

function plan(definitions: FeatureDefinitions, selection: FeatureSelection, fullNames: boolean): ReadPlan {
  const cacheKey = `${fullNames ? 1 : 0}${JSON.stringify(selection)}`;
  let perDefinitions = plans.get(definitions);
  const cached = perDefinitions?.get(cacheKey);
  if (cached) return cached;
  const resolved = resolveFeatureRefs(definitions, selection);
  const outputs = resolved.refs.map((ref) => {
    const [view, feature] = ref.split(':') as [string, string];
    const group = resolved.groups.find((g) => g.view.name === view)!;
    const type = group.features.find((f) => f.name === feature)!.type;
    return { ref, view, feature, type, name: fullNames ? `${view}__${feature}` : feature };
  });
  const owner = new Map<string, string>();
  for (const output of outputs) {
    const other = owner.get(output.name);
    if (other) {
      throw new InvalidInput(
        `features ${other} and ${output.ref} would both be named ${output.name}; pass fullFeatureNames to name them view__feature`,
        'features',
      );
    }
    owner.set(output.name, output.ref);
  }
  const views = resolved.groups.map((g) => g.view);
  const stored = (definitions as Partial<StoredFeatureDefinitions>).versions;
  const versions = views.map((v) => stored?.[`feature_view/${v.name}`] ?? definitionVersion(v));
  const result = { resolved, outputs, views, versions };
  if (!perDefinitions) {
    perDefinitions = new Map();
    plans.set(definitions, perDefinitions);
  }
  if (perDefinitions.size < 1000) perDefinitions.set(cacheKey, result);
  return result;
}

/**
 * The canonical text of an entity (`online_features.entity_key`): the JSON array of its join-key
 * values in the entity's join-key order, as JSON.stringify writes it — `[42]`, `["acme",7]`. The
 * materializer builds the same text in SQL (`'[' || concat_ws(',', to_json(k)::text, …) || ']'`;
 * Postgres escapes JSON strings exactly as JSON.stringify does).
 */
export function encodeEntityKey(entity: Entity, values: EntityKeyValues): string {
  return normaliseEntity(entity, values, 0).entityKey;
}

/** Checks and normalises one entity's join keys: int64 from a safe integer (or its decimal text), string from text (or a finite number). */
function normaliseEntity(entity: Entity, values: EntityKeyValues, index: number): { entity: Record<string, number | string>; entityKey: string } {
  if (!values || typeof values !== 'object' || Array.isArray(values)) {
    throw new InvalidInput(`entities[${index}] must be an object with the join keys of entity ${entity.name}`, `entities[${index}]`);
  }
  const keys: Record<string, number | string> = {};
  const list: Array<number | string> = [];
  for (const key of entity.joinKeys) {
    const field = `entities[${index}].${key.name}`;
    const raw = values[key.name];
    if (raw === undefined || raw === null) {
      throw new InvalidInput(`entities[${index}] has no ${key.name}, the join key of entity ${entity.name}`, field);
    }
    let value: number | string;
    if (key.type === 'int64') {
      value = typeof raw === 'string' && /^-?\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : (raw as number);
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        throw new InvalidInput(`entities[${index}].${key.name}: ${JSON.stringify(raw)} is not an int64 (a safe integer)`, field);
      }
    } else if (typeof raw === 'string') {
      value = raw;
    } else if (typeof raw === 'number' && Number.isFinite(raw)) {
      value = String(raw);
    } else {
      throw new InvalidInput(`entities[${index}].${key.name}: ${JSON.stringify(raw)} is not a string`, field);
    }
    keys[key.name] = value;
    list.push(value);
  }
  return { entity: keys, entityKey: JSON.stringify(list) };
}

/** A stored JSON value as historical retrieval's table cell: float8 non-finite values are stored as text ("NaN" reads as null). */
function decodeValue(value: unknown, type: FeatureValueType): CellValue {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'float64':
    case 'int64':
    case 'timestamp': {
      const n = typeof value === 'number' ? value : Number(value);
      return Number.isNaN(n) ? null : n;
    }
    case 'bool':
      return Boolean(value);
    case 'string':
      return String(value);
  }
}

// ---------------------------------------------------------------------------------------------

const DEFAULT_CACHE_MS = 5_000;
interface CacheEntry {
  at: number;
  definitions: Promise<FeatureDefinitions>;
  refreshing?: Promise<void>;
}
const cache = new WeakMap<Db, CacheEntry>();

/**
 * The registry's definitions, reused for `maxAgeMs` (shared by online reads and the gateway's
 * enrichment, so both see the same objects and the store's read plans stay cached). Once stale, the cached ones are still answered
 * while one background reload runs (a read never waits for the registry, except the first).
 */
export async function cachedFeatureDefinitions(db: Db, maxAgeMs: number = DEFAULT_CACHE_MS): Promise<FeatureDefinitions> {
  const cached = cache.get(db);
  const now = performance.now();
  if (cached && maxAgeMs > 0) {
    if (now - cached.at >= maxAgeMs && !cached.refreshing) {
      cached.refreshing = loadFeatureDefinitions(db).then(
        (definitions) => {
          if (cache.get(db) === cached) cache.set(db, { at: performance.now(), definitions: Promise.resolve(definitions) });
        },
        () => {
          cached.refreshing = undefined;
        },
      );
    }
    return cached.definitions;
  }
  const entry: CacheEntry = { at: now, definitions: loadFeatureDefinitions(db) };
  cache.set(db, entry);
  entry.definitions.catch(() => {
    if (cache.get(db) === entry) cache.delete(db);
  });
  return entry.definitions;
}

/** Forgets the cached registry definitions of `db` (e.g. right after `applyFeatureDefinitions`). */
export function clearOnlineDefinitionsCache(db: Db): void {
  cache.delete(db);
}
