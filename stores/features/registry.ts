/**
 * The feature registry in Postgres (tables `feature_entities`, `feature_views`,
 * `feature_services`, migration 0003). `applyFeatureDefinitions` makes the registry equal to the
 * definitions a project declares in code, in one transaction: new items are created, changed ones
 * updated (their version is `definitionVersion`, so it changes exactly when the definition does),
 * unchanged ones left alone, and — unlike Feast's `feast apply` — items no longer declared are
 * deleted. Concurrent applies are serialised by a transaction-scoped advisory lock.
 */
import type pg from 'pg';
import type {
  Entity,
  FeatureDefinitions,
  FeatureDefinitionsInput,
  FeatureService,
  FeatureView,
} from '../../lib/features/definitions.js';
import { definitionVersion, entitySchema, featureServiceSchema, featureViewSchema } from '../../lib/features/definitions.js';
import type { DefinitionKind } from '../../lib/features/validate.js';
import { definitionKey, validateFeatureDefinitions } from '../../lib/features/validate.js';
import type { Db, DbClient } from '../db.js';
import { withTransaction } from '../db.js';

export { definitionKey, resolveFeatureRefs, validateFeatureDefinitions } from '../../lib/features/validate.js';
export type { DefinitionKind, FeatureSelection, FeatureViewGroup, ResolvedFeatures } from '../../lib/features/validate.js';

/** Items as `kind/name` (`entity/customer`, `feature_view/customer_stats`, `feature_service/churn`), sorted. */
export interface ApplyResult {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

/** What the registry holds, with each item's version keyed by `kind/name`. */
export interface StoredFeatureDefinitions extends FeatureDefinitions {
  versions: Record<string, string>;
}

type Queryable = Pick<pg.Pool | pg.PoolClient | pg.Client, 'query'>;

/** Two-key advisory lock space, apart from the migration lock's one-key space. */
const REGISTRY_LOCK = [0x6b65656c, 3] as const;

const TABLES: ReadonlyArray<{ kind: DefinitionKind; table: string }> = [
  { kind: 'entity', table: 'feature_entities' },
  { kind: 'feature_view', table: 'feature_views' },
  { kind: 'feature_service', table: 'feature_services' },
];

export interface ApplyOptions {
  /**
   * Delete registry items the input does not declare (default true: the registry mirrors the
   * project). False adds and updates only, for a self-contained set such as a bundled example
   * that must not remove a project's own views.
   */
  prune?: boolean;
}

/**
 * Validates `input` (zod schemas, then cross references; failures are `InvalidInput` naming the
 * item and field) and makes the registry hold exactly these definitions.
 */
export async function applyFeatureDefinitions(db: Db, input: FeatureDefinitionsInput, options: ApplyOptions = {}): Promise<ApplyResult> {
  const prune = options.prune ?? true;
  const definitions = validateFeatureDefinitions(input);
  const items: Record<DefinitionKind, Array<Entity | FeatureView | FeatureService>> = {
    entity: definitions.entities,
    feature_view: definitions.featureViews,
    feature_service: definitions.featureServices,
  };
  return withTransaction(db, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [...REGISTRY_LOCK]);
    const result: ApplyResult = { created: [], updated: [], deleted: [], unchanged: [] };
    for (const { kind, table } of TABLES) {
      await applyKind(client, kind, table, items[kind], result, prune);
    }
    return result;
  });
}

async function applyKind(
  client: DbClient,
  kind: DefinitionKind,
  table: string,
  items: ReadonlyArray<Entity | FeatureView | FeatureService>,
  result: ApplyResult,
  prune: boolean,
): Promise<void> {
  const { rows } = await client.query<{ name: string; version: string }>(`SELECT name, version FROM ${table}`);
  const stored = new Map(rows.map((r) => [r.name, r.version]));
  const wanted = new Set(items.map((item) => item.name));
  for (const item of [...items].sort((a, b) => compare(a.name, b.name))) {
    const version = definitionVersion(item);
    const key = definitionKey(kind, item.name);
    const current = stored.get(item.name);
    if (current === version) {
      result.unchanged.push(key);
      continue;
    }
    await client.query(
      `INSERT INTO ${table} (name, definition, version) VALUES ($1, $2::jsonb, $3)
       ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, version = EXCLUDED.version, updated_at = now()`,
      [item.name, JSON.stringify(item), version],
    );
    (current === undefined ? result.created : result.updated).push(key);
  }
  if (!prune) return;
  const gone = [...stored.keys()].filter((name) => !wanted.has(name)).sort(compare);
  if (gone.length) {
    await client.query(`DELETE FROM ${table} WHERE name = ANY($1::text[])`, [gone]);
    result.deleted.push(...gone.map((name) => definitionKey(kind, name)));
  }
}

/** Every definition in the registry, sorted by name, with its stored version. */
export async function loadFeatureDefinitions(db: Queryable): Promise<StoredFeatureDefinitions> {
  const versions: Record<string, string> = {};
  const load = async <T>(kind: DefinitionKind, table: string, parse: (value: unknown) => T): Promise<T[]> => {
    const { rows } = await db.query<{ name: string; definition: unknown; version: string }>(
      `SELECT name, definition, version FROM ${table} ORDER BY name COLLATE "C"`,
    );
    return rows.map((row) => {
      versions[definitionKey(kind, row.name)] = row.version;
      return parse(row.definition);
    });
  };
  const entities = await load('entity', 'feature_entities', (v) => entitySchema.parse(v));
  const featureViews = await load('feature_view', 'feature_views', (v) => featureViewSchema.parse(v));
  const featureServices = await load('feature_service', 'feature_services', (v) => featureServiceSchema.parse(v));
  return { entities, featureViews, featureServices, versions };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
