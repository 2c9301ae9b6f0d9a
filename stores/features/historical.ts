/**
 * Point-in-time-correct historical feature retrieval (Feast's `get_historical_features`), done in
 * Postgres with set-based SQL.
 *
 * For every entity row (join keys + timestamp `ts`) and every requested feature view, the value
 * is taken from the view's feature row with the same join keys and
 *   - `event_timestamp <= ts`, and, when the view's TTL is > 0, `event_timestamp >= ts − TTL`
 *     (both bounds inclusive);
 *   - with the backfill guard on (the default) and a view that declares `createdTimestamp`:
 *     `created_timestamp <= ts` or `created_timestamp IS NULL` — a row written after the moment
 *     being reconstructed (a backfill) was not known then and must not leak into training data;
 * and among those the latest `event_timestamp`, ties broken by the latest `created_timestamp`
 * (nulls rank last; rows equal in both are an arbitrary pick). No such row: every feature of the
 * view is null. A null join key or timestamp matches nothing. Entity rows are never dropped,
 * duplicated or reordered: the output holds every entity column in entity order, then one column
 * per requested feature in request order, named `feature` (or `view__feature` with
 * `fullFeatureNames`).
 *
 * How: one pg client, one REPEATABLE READ transaction (every view reads the same snapshot), the
 * entity rows in a TEMP table (`ON COMMIT DROP`) with their row number, then ONE query per view:
 *   - `lateral`: for each entity row, in (join keys, ts) order, `LEFT JOIN LATERAL (SELECT ets
 *     … WHERE keys = e.keys AND ets <= e.ts AND ets >= e.ts − ttl AND guard ORDER BY ets DESC
 *     LIMIT 1)` — a backward index scan that stops at the first eligible row — then, for views with
 *     a created timestamp, a second LATERAL probe for the latest created row at exactly that event
 *     timestamp. Needs a btree index on the source table's (join keys…, event timestamp); without
 *     one every probe would scan the table.
 *   - `distinct_on`: `SELECT DISTINCT ON (row) … FROM e LEFT JOIN source ON keys, time window
 *     (pre-filtered to the entity rows' time range) ORDER BY row, ets DESC, created DESC`: a hash
 *     join and a sort, whatever the indexes, but it joins every eligible row before picking one.
 * `strategy: 'auto'` (the default) picks `lateral` when the source table has that index, else
 * `distinct_on`. Recommended for every offline feature table:
 *   CREATE INDEX ON <table> (<join keys…>, <event timestamp>);
 * Keel never creates indexes on user tables.
 *
 * `engine` (default `postgres`): `duckdb` runs the same join in DuckDB, one query for every view,
 * over Parquet timelines of the views (stores/features/duckdb-engine.ts,
 * stores/features/parquet-export.ts; cached in the artifact store per view, definition version,
 * backfill guard and watermark; stale ones exported in parallel, each on its own connection), all
 * read in the same REPEATABLE READ snapshot; `auto` picks DuckDB for at least `autoMinRows`
 * (default `DUCKDB_AUTO_MIN_ROWS`) entity rows — in memory, or in the entity table as copied in
 * the snapshot — when `@duckdb/node-api` loads, else Postgres. Both
 * give the same values. `writeHistoricalFeaturesParquet` gives the training set as a Parquet file:
 * with DuckDB and in-memory entity rows, DuckDB writes it directly.
 *
 * Only parameterised SQL; table and column names come from validated definitions (identifiers
 * matching ^[a-z_][a-z0-9_]{0,62}$) and are always double-quoted.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { rename, rm, writeFile } from 'node:fs/promises';
import { tableToParquet } from '../../lib/data/parquet.js';
import type { Column, ColumnSchema, ColumnType, Table } from '../../lib/data/table.js';
import { categoryColumn, columnNames, createTable, findColumn, schemaOf } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type {
  Entity,
  FeatureDefinition,
  FeatureDefinitions,
  FeatureDefinitionsInput,
  FeatureValueType,
} from '../../lib/features/definitions.js';
import { definitionVersion, identifierSchema, tableNameSchema } from '../../lib/features/definitions.js';
import type { FeatureSelection, FeatureViewGroup, ResolvedFeatures } from '../../lib/features/validate.js';
import { resolveFeatureRefs, validateFeatureDefinitions } from '../../lib/features/validate.js';
import type { Db, DbClient } from '../db.js';
import { loadConfig } from '../../lib/config.js';
import type { ArtifactStore } from '../artifacts/index.js';
import { openArtifactStore } from '../artifacts/index.js';
import type { EngineColumn, EngineEntityRows, EngineView } from './duckdb-engine.js';
import { dropEntities, duckdbAvailable, duckdbConnect, joinViews, loadEntities, writeJoinedParquet } from './duckdb-engine.js';
import type { ViewExport } from './parquet-export.js';
import { ensureExportsTable, exportFeatureView } from './parquet-export.js';
import { loadFeatureDefinitions } from './registry.js';
import { featureColumnType, outputExpression, quote, quoteTable } from './sql.js';

export type HistoricalStrategy = 'lateral' | 'distinct_on';

export interface HistoricalFeaturesOptions {
  /**
   * The entity rows: an in-memory table, or a Postgres table or view (`table` or `schema.table`)
   * whose rows keep the order `SELECT *` reads them in (its scan order, which for a table need not
   * be insertion order: give it an id column and sort the result when order matters).
   */
  entities: { table: string } | { rows: Table };
  /** The entity rows' timestamp column; default `event_timestamp`. */
  timestampColumn?: string;
  /** `view:feature` references, or a feature service by name. */
  features: FeatureSelection;
  /** The definitions to use; default: the registry's (`loadFeatureDefinitions`). */
  definitions?: FeatureDefinitionsInput;
  /** Ignore feature rows created after the entity timestamp; default true. */
  backfillGuard?: boolean;
  /** Name feature columns `view__feature` instead of `feature`; default false. */
  fullFeatureNames?: boolean;
  /** Query shape per view; default `auto` (lateral where the source has the (keys, event ts) index). */
  strategy?: HistoricalStrategy | 'auto';
  /** Entity rows per INSERT into the temp table; default 50 000. */
  chunkSize?: number;
  /**
   * Where the join runs: `postgres` (default), `duckdb` (ASOF join over Parquet exports of the
   * views), or `auto` (DuckDB for at least `autoMinRows` entity rows when `@duckdb/node-api`
   * loads, else Postgres). Same results either way.
   */
  engine?: HistoricalEngine | 'auto';
  /** Engine `auto` runs DuckDB from this many entity rows; default `DUCKDB_AUTO_MIN_ROWS`. */
  autoMinRows?: number;
  /** Artifact store for the DuckDB engine's Parquet exports; default: the configured one (`KEEL_ARTIFACTS`). */
  artifacts?: ArtifactStore;
}

export type HistoricalEngine = 'postgres' | 'duckdb';

/** What a caller may ask for: an engine, or `auto`. */
export const HISTORICAL_ENGINES = ['auto', 'postgres', 'duckdb'] as const;

/** `engine: 'auto'` uses DuckDB from this many entity rows (unless `autoMinRows` says otherwise). */
export const DUCKDB_AUTO_MIN_ROWS = 50_000;

export interface HistoricalViewTiming {
  name: string;
  /** The Postgres strategy, or `asof` for the DuckDB engine. */
  strategy: HistoricalStrategy | 'asof';
  /** True when the source table has a btree index on (join keys…, event timestamp). */
  indexed: boolean;
  /**
   * The view's query; for the DuckDB engine (one query for every view, the Parquet output
   * included) an even share of it, after the entity rows are loaded and the exports are ready.
   */
  ms: number;
  /** DuckDB engine: the view's Parquet export, and whether this retrieval wrote it (else it came from the cache). */
  export?: { sha256: string; rowCount: number; watermark: string; exported: boolean; ms: number };
}

export interface HistoricalTimings {
  /** Catalog checks, the temp table, its inserts and ANALYZE. */
  entityLoadMs: number;
  views: HistoricalViewTiming[];
  totalMs: number;
}

export interface HistoricalFeaturesResult {
  table: Table;
  /** The views read, with the version of the definition used (as `definitionVersion` / the registry give it). */
  featureViews: Array<{ name: string; version: string }>;
  entity: string;
  /** The entity's join key names (entity columns of the output). */
  entityKeys: string[];
  /** The `view:feature` references, in output column order. */
  features: string[];
  /** The engine that ran the join. */
  engine: HistoricalEngine;
  timings: HistoricalTimings;
}

export interface HistoricalQueryPlan {
  view: string;
  strategy: HistoricalStrategy;
  indexed: boolean;
  sql: string;
  /** EXPLAIN output (with ANALYZE and BUFFERS when asked). */
  plan: string;
}

const ENTITY_TEMP_TABLE = 'keel_entity_rows';
const ROW = '__keel_row';
const TS = '__keel_ts';
const KEY = (i: number) => `__keel_k${i}`;
const DEFAULT_CHUNK = 50_000;

/** Point-in-time-correct feature values for every entity row (see the module comment for the rules). */
export async function getHistoricalFeatures(db: Db, options: HistoricalFeaturesOptions): Promise<HistoricalFeaturesResult> {
  const out = await run(db, options, { kind: 'table' });
  return out as HistoricalFeaturesResult;
}

export interface HistoricalParquetResult extends Omit<HistoricalFeaturesResult, 'table'> {
  /** The Parquet file written. */
  file: string;
  rowCount: number;
  /** The file's columns: the entity columns, then the features, as the table would have them. */
  columns: ColumnSchema[];
}

/**
 * The same training set as `getHistoricalFeatures`, written to the Parquet file `file` (the table
 * `tableToParquet` would write: same columns, types and values). With the DuckDB engine and
 * in-memory entity rows, DuckDB writes the file itself (COPY … TO) from one query joining every
 * view, and the values never pass through Node; otherwise the table is built and then written.
 * The file is written next to `file` and renamed into place.
 */
export async function writeHistoricalFeaturesParquet(
  db: Db,
  options: HistoricalFeaturesOptions & { file: string; rowGroupRows?: number },
): Promise<HistoricalParquetResult> {
  if (typeof options?.file !== 'string' || options.file === '') throw new InvalidInput('file must be a path', 'file');
  const temp = `${options.file}.${randomUUID()}.tmp`;
  try {
    const out = (await run(db, options, { kind: 'parquet', file: temp, rowGroupRows: options.rowGroupRows })) as
      | HistoricalFeaturesResult
      | HistoricalParquetResult;
    let result: HistoricalParquetResult;
    if ('table' in out) {
      const { table, ...rest } = out;
      await writeFile(temp, tableToParquet(table, { rowGroupRows: options.rowGroupRows }));
      result = { ...rest, file: options.file, rowCount: table.rowCount, columns: [...schemaOf(table)] };
    } else {
      result = { ...out, file: options.file };
    }
    await rename(temp, options.file);
    return result;
  } finally {
    await rm(temp, { force: true });
  }
}

/** The SQL and EXPLAIN (ANALYZE when `analyze`) of each view's query, on the same temp table a retrieval would use. */
export async function historicalQueryPlan(
  db: Db,
  options: HistoricalFeaturesOptions & { analyze?: boolean },
): Promise<HistoricalQueryPlan[]> {
  return (await run(db, options, { kind: 'explain', analyze: options.analyze ?? false })) as HistoricalQueryPlan[];
}

// ---------------------------------------------------------------------------------------------

interface CatalogColumn {
  name: string;
  /** typname of the column's type (of the base type for a domain). */
  type: string;
  /** pg_type.typcategory: N numeric, S string, B boolean, D date/time, E enum, U user (uuid), … */
  category: string;
  attnum: number;
}

interface CatalogTable {
  oid: number;
  columns: CatalogColumn[];
}

interface ViewPlan {
  group: FeatureViewGroup;
  indexed: boolean;
  strategy: HistoricalStrategy;
  sql: string;
  params: unknown[];
  /** Output slot of each selected feature, in the query's select order. */
  slots: number[];
}

interface OutputSpec {
  name: string;
  type: ColumnType;
}

const INTEGER_TYPES = new Set(['int2', 'int4', 'int8']);
const NUMBER_TYPES = new Set(['int2', 'int4', 'int8', 'float4', 'float8', 'numeric']);
const TIMESTAMP_TYPES = new Set(['timestamptz', 'timestamp', 'date']);


function isText(column: CatalogColumn): boolean {
  return column.category === 'S';
}

/**
 * The table column type a Postgres column becomes (as in stores/pg-table.ts): integers, floats
 * and numeric are numbers, bool is boolean, date / timestamp / timestamptz are timestamps and
 * anything else is a category of its text form.
 */
function columnTypeOf(column: CatalogColumn): ColumnType {
  if (NUMBER_TYPES.has(column.type)) return 'number';
  if (column.type === 'bool') return 'boolean';
  if (TIMESTAMP_TYPES.has(column.type)) return 'timestamp';
  return 'category';
}

/** Whether a Postgres column can hold a feature of `type` (a string feature: text, enum or uuid). */
function fitsFeatureType(column: CatalogColumn, type: FeatureValueType): boolean {
  if (type === 'string') return isText(column) || column.category === 'E' || column.type === 'uuid';
  return columnTypeOf(column) === featureColumnType(type);
}

async function readTable(client: DbClient, name: string, what: string, field: string): Promise<CatalogTable> {
  const { rows } = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [quoteTable(name)]);
  const oid = rows[0]?.oid;
  if (oid === null || oid === undefined) throw new InvalidInput(`${what}: table ${name} does not exist`, field);
  const columns = await client.query<CatalogColumn>(
    `SELECT a.attname AS name, bt.typname AS type, bt.typcategory AS category, a.attnum::int AS attnum
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
      WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [oid],
  );
  return { oid: Number(oid), columns: columns.rows };
}

/** True when a valid, non-partial btree index starts with the join keys (any order) then the event timestamp. */
async function hasPointInTimeIndex(client: DbClient, table: CatalogTable, keys: string[], eventTimestamp: string): Promise<boolean> {
  const attnum = (name: string) => table.columns.find((c) => c.name === name)?.attnum;
  const keyNums = new Set(keys.map(attnum));
  const tsNum = attnum(eventTimestamp);
  const { rows } = await client.query<{ keys: number[] }>(
    `SELECT i.indkey::int2[] AS keys
       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
      WHERE i.indrelid = $1::oid AND i.indisvalid AND i.indpred IS NULL AND am.amname = 'btree'`,
    [table.oid],
  );
  return rows.some(({ keys: columns }) => {
    if (columns.length < keyNums.size + 1) return false;
    const leading = new Set(columns.slice(0, keyNums.size));
    return [...keyNums].every((n) => leading.has(n!)) && columns[keyNums.size] === tsNum;
  });
}

function describeColumns(columns: readonly string[]): string {
  return columns.length ? columns.join(', ') : 'none';
}

type RunMode = { kind: 'table' } | { kind: 'explain'; analyze: boolean } | { kind: 'parquet'; file: string; rowGroupRows?: number };

async function run(
  db: Db,
  options: HistoricalFeaturesOptions,
  mode: RunMode,
): Promise<HistoricalFeaturesResult | HistoricalQueryPlan[] | Omit<HistoricalParquetResult, 'file'>> {
  const explain = mode.kind === 'explain' ? mode : undefined;
  const started = performance.now();
  if (!options || typeof options !== 'object') throw new InvalidInput('historical retrieval options must be an object');
  const timestampColumn = options.timestampColumn ?? 'event_timestamp';
  const backfillGuard = options.backfillGuard ?? true;
  const fullFeatureNames = options.fullFeatureNames ?? false;
  const strategyOption = options.strategy ?? 'auto';
  if (!['auto', 'lateral', 'distinct_on'].includes(strategyOption)) {
    throw new InvalidInput(`strategy must be auto, lateral or distinct_on, not ${String(strategyOption)}`, 'strategy');
  }
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new InvalidInput('chunkSize must be a positive integer', 'chunkSize');
  const source = options.entities as { table?: unknown; rows?: Table } | undefined;
  const entityTable = source && 'table' in source ? source.table : undefined;
  const entityRows = source && 'rows' in source ? source.rows : undefined;
  if ((entityTable === undefined) === (entityRows === undefined)) {
    throw new InvalidInput('entities must be {table: "schema.table"} or {rows: Table}', 'entities');
  }
  if (entityTable !== undefined && (typeof entityTable !== 'string' || !tableNameSchema.safeParse(entityTable).success)) {
    throw new InvalidInput(
      `entity table ${JSON.stringify(entityTable)} must be table or schema.table, each matching ^[a-z_][a-z0-9_]{0,62}$`,
      'entities.table',
    );
  }
  if (entityTable !== undefined && !identifierSchema.safeParse(timestampColumn).success) {
    throw new InvalidInput(`timestamp column ${JSON.stringify(timestampColumn)} must match ^[a-z_][a-z0-9_]{0,62}$`, 'timestampColumn');
  }

  const definitions: FeatureDefinitions = options.definitions
    ? validateFeatureDefinitions(options.definitions)
    : await loadFeatureDefinitions(db);
  const resolved = resolveFeatureRefs(definitions, options.features);
  const { entity } = resolved;
  const outputs = featureOutputs(resolved, fullFeatureNames);

  if (entityRows) checkEntityRows(entityRows, entity, timestampColumn);

  const engineOption = options.engine ?? 'postgres';
  if (!(HISTORICAL_ENGINES as readonly string[]).includes(engineOption)) {
    throw new InvalidInput(`engine must be auto, postgres or duckdb, not ${String(engineOption)}`, 'engine');
  }
  const autoMinRows = options.autoMinRows ?? DUCKDB_AUTO_MIN_ROWS;
  if (!Number.isInteger(autoMinRows) || autoMinRows < 0) throw new InvalidInput('autoMinRows must be a whole number, 0 or more', 'autoMinRows');
  let engine: HistoricalEngine = 'postgres';
  // `auto` over an entity table: decided once the table is copied and its rows counted.
  let decideAfterCopy = false;
  if (!explain) {
    if (engineOption === 'duckdb') {
      if (!(await duckdbAvailable())) throw new InvalidInput('engine duckdb: @duckdb/node-api cannot be loaded on this machine', 'engine');
      engine = 'duckdb';
    } else if (engineOption === 'auto' && (await duckdbAvailable())) {
      if (!entityRows) decideAfterCopy = true;
      else if (entityRows.rowCount >= autoMinRows) engine = 'duckdb';
    }
  }
  let artifacts: ArtifactStore | undefined;
  if (engine === 'duckdb' || decideAfterCopy) {
    artifacts = options.artifacts ?? openArtifactStore(loadConfig().artifacts);
    await ensureExportsTable(db);
  }

  const client = await db.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await client.query("SET LOCAL TimeZone = 'UTC'");
    // A synchronised seq scan may start mid-table: keep physical order for {table} entity rows.
    await client.query('SET LOCAL synchronize_seqscans = off');
    // These queries are index probes and joins, not expression-heavy scans: JIT compilation only
    // adds its compile time (measured: 50–300 ms per view query at 100 000 entity rows).
    await client.query('SET LOCAL jit = off');

    let entityColumns: CatalogColumn[] | undefined;
    let rowCount: number;
    if (entityRows) {
      checkCollisions(columnNames(entityRows), outputs);
      rowCount = engine === 'duckdb' ? entityRows.rowCount : await loadEntityRows(client, entityRows, entity, timestampColumn, chunkSize);
    } else {
      const table = await readTable(client, entityTable as string, 'entity rows', 'entities.table');
      entityColumns = table.columns;
      checkEntityTable(table, entity, timestampColumn, entityTable as string);
      checkCollisions(
        entityColumns.map((c) => c.name),
        outputs,
      );
      rowCount = await copyEntityTable(client, entityTable as string, entity, timestampColumn);
      if (decideAfterCopy && rowCount >= autoMinRows) engine = 'duckdb';
    }
    if (engine === 'postgres' || !entityRows) await client.query(`ANALYZE ${ENTITY_TEMP_TABLE}`);
    const entityLoaded = performance.now();

    const plans: ViewPlan[] = [];
    for (const group of resolved.groups) {
      plans.push(await planView(client, group, entity, resolved, backfillGuard, strategyOption));
    }

    if (explain) {
      const result: HistoricalQueryPlan[] = [];
      for (const plan of plans) {
        const verb = explain.analyze ? 'EXPLAIN (ANALYZE, BUFFERS)' : 'EXPLAIN';
        const { rows } = await client.query<{ 'QUERY PLAN': string }>(`${verb} ${plan.sql}`, plan.params);
        result.push({
          view: plan.group.view.name,
          strategy: plan.strategy,
          indexed: plan.indexed,
          sql: plan.sql,
          plan: rows.map((r) => r['QUERY PLAN']).join('\n'),
        });
      }
      await client.query('COMMIT');
      return result;
    }

    const common = {
      featureViews: resolved.groups.map((g) => ({ name: g.view.name, version: definitionVersion(g.view) })),
      entity: entity.name,
      entityKeys: entity.joinKeys.map((k) => k.name),
      features: resolved.refs,
      engine,
    };
    if (mode.kind === 'parquet' && engine === 'duckdb' && entityRows) {
      // DuckDB writes the file: the values never come back to Node.
      const entityInput = duckdbEntitiesFromTable(entityRows, entity, timestampColumn, true);
      const views = await runDuckDB(db, client, artifacts!, plans, entity, entityInput, backfillGuard, {
        parquet: { file: mode.file, names: outputs.map((o) => o.name), rowGroupRows: mode.rowGroupRows },
      });
      await client.query('COMMIT');
      return {
        ...common,
        rowCount,
        columns: [...schemaOf(entityRows), ...outputs.map((o) => ({ name: o.name, type: o.type }))],
        timings: { entityLoadMs: entityLoaded - started, views, totalMs: performance.now() - started },
      };
    }

    const buffers = outputs.map((o) => newBuffer(o.type, rowCount));
    const viewTimings: HistoricalViewTiming[] = [];
    if (engine === 'duckdb') {
      const entityInput = entityRows
        ? duckdbEntitiesFromTable(entityRows, entity, timestampColumn, false)
        : await duckdbEntitiesFromTemp(client, entity, rowCount);
      viewTimings.push(...(await runDuckDB(db, client, artifacts!, plans, entity, entityInput, backfillGuard, { buffers })));
    }
    for (const plan of engine === 'duckdb' ? [] : plans) {
      const viewStarted = performance.now();
      const { rows } = await client.query<unknown[]>({ text: plan.sql, values: plan.params, rowMode: 'array' });
      if (rows.length !== rowCount) {
        throw new Error(`feature view ${plan.group.view.name}: the join returned ${rows.length} rows for ${rowCount} entity rows`);
      }
      for (const row of rows) {
        const index = row[0] as number;
        for (let j = 0; j < plan.slots.length; j++) buffers[plan.slots[j]!]!.set(index, row[j + 1]);
      }
      viewTimings.push({
        name: plan.group.view.name,
        strategy: plan.strategy,
        indexed: plan.indexed,
        ms: performance.now() - viewStarted,
      });
    }

    let baseColumns: readonly Column[];
    if (entityRows) baseColumns = entityRows.columns;
    else baseColumns = await readEntityColumns(client, entityColumns!, rowCount);
    await client.query('COMMIT');

    const featureColumns = outputs.map((o, i) => buffers[i]!.finish(o.name));
    return {
      table: createTable([...baseColumns, ...featureColumns], rowCount),
      ...common,
      timings: {
        entityLoadMs: entityLoaded - started,
        views: viewTimings,
        totalMs: performance.now() - started,
      },
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Output column name and type per requested reference, in request order. */
function featureOutputs(resolved: ResolvedFeatures, fullFeatureNames: boolean): Array<OutputSpec & { ref: string }> {
  const byRef = new Map<string, FeatureDefinition>();
  for (const group of resolved.groups) for (const f of group.features) byRef.set(`${group.view.name}:${f.name}`, f);
  return resolved.refs.map((ref) => {
    const [view, feature] = ref.split(':') as [string, string];
    return {
      ref,
      name: fullFeatureNames ? `${view}__${feature}` : feature,
      type: featureColumnType(byRef.get(ref)!.type),
    };
  });
}

function checkCollisions(entityColumns: readonly string[], outputs: ReadonlyArray<OutputSpec & { ref: string }>): void {
  const owner = new Map<string, string>(entityColumns.map((name) => [name, `entity column ${name}`]));
  for (const output of outputs) {
    const other = owner.get(output.name);
    if (other) {
      throw new InvalidInput(
        `feature ${output.ref} and ${other} would both be output column ${output.name}; ` +
          'pass fullFeatureNames to name feature columns view__feature, or rename the entity column',
        'features',
      );
    }
    owner.set(output.name, `feature ${output.ref}`);
  }
}

function checkEntityRows(rows: Table, entity: Entity, timestampColumn: string): void {
  if (!rows || !Array.isArray(rows.columns) || !Number.isInteger(rows.rowCount)) {
    throw new InvalidInput('entities.rows must be a Table', 'entities.rows');
  }
  const names = columnNames(rows);
  const ts = findColumn(rows, timestampColumn);
  if (!ts) {
    throw new InvalidInput(
      `entity rows have no timestamp column ${timestampColumn} (columns: ${describeColumns(names)})`,
      'timestampColumn',
    );
  }
  if (ts.type !== 'timestamp') {
    throw new InvalidInput(`entity timestamp column ${timestampColumn} has type ${ts.type}, expected timestamp`, 'timestampColumn');
  }
  for (const key of entity.joinKeys) {
    const column = findColumn(rows, key.name);
    if (!column) {
      throw new InvalidInput(
        `entity rows have no column ${key.name}, the join key of entity ${entity.name} (columns: ${describeColumns(names)})`,
        key.name,
      );
    }
    if (key.type === 'int64') {
      if (column.type !== 'number') {
        throw new InvalidInput(
          `entity join key ${key.name} has type ${column.type}, but entity ${entity.name} declares it int64 (expected a number column)`,
          key.name,
        );
      }
      for (let i = 0; i < column.values.length; i++) {
        const v = column.values[i]!;
        if (!Number.isNaN(v) && !Number.isSafeInteger(v)) {
          throw new InvalidInput(`entity join key ${key.name} row ${i}: ${v} is not an int64`, key.name);
        }
      }
    } else if (column.type !== 'category') {
      throw new InvalidInput(
        `entity join key ${key.name} has type ${column.type}, but entity ${entity.name} declares it string (expected a category column)`,
        key.name,
      );
    }
  }
}

function checkEntityTable(table: CatalogTable, entity: Entity, timestampColumn: string, name: string): void {
  const names = table.columns.map((c) => c.name);
  for (const column of table.columns) {
    if (column.name.startsWith('__keel_')) {
      throw new InvalidInput(`entity table ${name}: column ${column.name} uses the reserved prefix __keel_`, 'entities.table');
    }
  }
  const ts = table.columns.find((c) => c.name === timestampColumn);
  if (!ts) {
    throw new InvalidInput(
      `entity table ${name} has no timestamp column ${timestampColumn} (columns: ${describeColumns(names)})`,
      'timestampColumn',
    );
  }
  if (!TIMESTAMP_TYPES.has(ts.type)) {
    throw new InvalidInput(
      `entity table ${name}: timestamp column ${timestampColumn} has type ${ts.type}, expected timestamptz, timestamp or date`,
      'timestampColumn',
    );
  }
  for (const key of entity.joinKeys) {
    const column = table.columns.find((c) => c.name === key.name);
    if (!column) {
      throw new InvalidInput(
        `entity table ${name} has no column ${key.name}, the join key of entity ${entity.name} (columns: ${describeColumns(names)})`,
        key.name,
      );
    }
    const fits = key.type === 'int64' ? INTEGER_TYPES.has(column.type) : isText(column);
    if (!fits) {
      throw new InvalidInput(
        `entity table ${name}: join key ${key.name} has type ${column.type}, but entity ${entity.name} declares it ${key.type}`,
        key.name,
      );
    }
  }
}

async function createEntityTempTable(client: DbClient, entity: Entity): Promise<void> {
  const keys = entity.joinKeys.map((k, i) => `${KEY(i)} ${k.type === 'int64' ? 'int8' : 'text'}`);
  await client.query(
    `CREATE TEMP TABLE ${ENTITY_TEMP_TABLE} (${ROW} int4 NOT NULL, ${TS} timestamptz, ${keys.join(', ')}) ON COMMIT DROP`,
  );
}

/** Loads the in-memory entity rows into the temp table in chunks (multi-row INSERT from unnest). */
async function loadEntityRows(client: DbClient, rows: Table, entity: Entity, timestampColumn: string, chunkSize: number): Promise<number> {
  await createEntityTempTable(client, entity);
  const ts = findColumn(rows, timestampColumn)!;
  const keys = entity.joinKeys.map((k) => findColumn(rows, k.name)!);
  const keyTypes = entity.joinKeys.map((k) => (k.type === 'int64' ? 'int8' : 'text'));
  const sql =
    `INSERT INTO ${ENTITY_TEMP_TABLE} (${ROW}, ${TS}, ${keys.map((_, i) => KEY(i)).join(', ')}) ` +
    `SELECT u.ord::int4 - 1 + $1::int4, u.ts, ${keys.map((_, i) => `u.k${i}`).join(', ')} ` +
    `FROM unnest($2::timestamptz[], ${keyTypes.map((t, i) => `$${i + 3}::${t}[]`).join(', ')}) ` +
    `WITH ORDINALITY AS u(ts, ${keys.map((_, i) => `k${i}`).join(', ')}, ord)`;
  for (let start = 0; start < rows.rowCount; start += chunkSize) {
    const end = Math.min(rows.rowCount, start + chunkSize);
    const times: Array<string | null> = new Array(end - start);
    const tsValues = (ts as Extract<Column, { type: 'timestamp' }>).values;
    for (let i = start; i < end; i++) {
      const v = tsValues[i]!;
      times[i - start] = Number.isFinite(v) ? new Date(v).toISOString() : null;
    }
    const keyArrays = keys.map((column) => {
      const values: Array<number | string | null> = new Array(end - start);
      if (column.type === 'category') {
        for (let i = start; i < end; i++) {
          const code = column.codes[i]!;
          values[i - start] = code < 0 ? null : column.categories[code]!;
        }
      } else {
        const numbers = (column as Extract<Column, { type: 'number' }>).values;
        for (let i = start; i < end; i++) values[i - start] = Number.isNaN(numbers[i]!) ? null : numbers[i]!;
      }
      return values;
    });
    await client.query(sql, [start, times, ...keyArrays]);
  }
  return rows.rowCount;
}

/** Copies a Postgres entity table (all its columns, in physical order) into the temp table. */
async function copyEntityTable(client: DbClient, table: string, entity: Entity, timestampColumn: string): Promise<number> {
  const keys = entity.joinKeys.map((k, i) => `s.${quote(k.name)}::${k.type === 'int64' ? 'int8' : 'text'} AS ${KEY(i)}`);
  const result = await client.query(
    `CREATE TEMP TABLE ${ENTITY_TEMP_TABLE} ON COMMIT DROP AS
       SELECT (row_number() OVER () - 1)::int4 AS ${ROW}, s.${quote(timestampColumn)}::timestamptz AS ${TS}, ${keys.join(', ')}, s.*
         FROM ${quoteTable(table)} s`,
  );
  return result.rowCount ?? 0;
}

/** The entity table's own columns, converted, in row order. */
async function readEntityColumns(client: DbClient, columns: CatalogColumn[], rowCount: number): Promise<Column[]> {
  if (columns.length === 0) return [];
  const types = columns.map(columnTypeOf);
  const select = columns.map((c, i) => outputExpression(`e.${quote(c.name)}`, types[i]!));
  const { rows } = await client.query<unknown[]>({
    text: `SELECT ${ROW}, ${select.join(', ')} FROM ${ENTITY_TEMP_TABLE} e`,
    rowMode: 'array',
  });
  const buffers = types.map((t) => newBuffer(t, rowCount));
  for (const row of rows) {
    const index = row[0] as number;
    for (let j = 0; j < buffers.length; j++) buffers[j]!.set(index, row[j + 1]);
  }
  return buffers.map((b, i) => b.finish(columns[i]!.name));
}

async function planView(
  client: DbClient,
  group: FeatureViewGroup,
  entity: Entity,
  resolved: ResolvedFeatures,
  backfillGuard: boolean,
  strategyOption: HistoricalStrategy | 'auto',
): Promise<ViewPlan> {
  const { view } = group;
  const what = `feature view ${view.name}`;
  const table = await readTable(client, view.source.table, what, 'features');
  const names = table.columns.map((c) => c.name);
  const find = (name: string) => table.columns.find((c) => c.name === name);
  const need = (name: string, role: string): CatalogColumn => {
    const column = find(name);
    if (!column) {
      throw new InvalidInput(
        `${what}: source table ${view.source.table} has no column ${name} (${role}; columns: ${describeColumns(names)})`,
        'features',
      );
    }
    return column;
  };
  for (const key of entity.joinKeys) {
    const column = need(key.name, `join key of entity ${entity.name}`);
    const fits = key.type === 'int64' ? INTEGER_TYPES.has(column.type) : isText(column);
    if (!fits) {
      throw new InvalidInput(
        `${what}: join key ${key.name} in ${view.source.table} has type ${column.type}, but entity ${entity.name} declares it ${key.type}`,
        'features',
      );
    }
  }
  const { eventTimestamp, createdTimestamp } = view.source;
  for (const [name, role] of [
    [eventTimestamp, 'event timestamp'],
    [createdTimestamp, 'created timestamp'],
  ] as const) {
    if (name === undefined) continue;
    const column = need(name, role);
    if (!TIMESTAMP_TYPES.has(column.type)) {
      throw new InvalidInput(
        `${what}: ${role} ${name} in ${view.source.table} has type ${column.type}, expected timestamptz, timestamp or date`,
        'features',
      );
    }
  }
  for (const feature of group.features) {
    const column = need(feature.name, `feature ${view.name}:${feature.name}`);
    if (!fitsFeatureType(column, feature.type)) {
      throw new InvalidInput(
        `${what}: feature ${feature.name} is declared ${feature.type}, but column ${feature.name} in ${view.source.table} has type ${column.type}`,
        'features',
      );
    }
  }

  const indexed = await hasPointInTimeIndex(
    client,
    table,
    entity.joinKeys.map((k) => k.name),
    eventTimestamp,
  );
  const strategy: HistoricalStrategy = strategyOption === 'auto' ? (indexed ? 'lateral' : 'distinct_on') : strategyOption;

  const ets = `f.${quote(eventTimestamp)}`;
  const cts = createdTimestamp === undefined ? undefined : `f.${quote(createdTimestamp)}`;
  const params: unknown[] = [];
  const conditions = entity.joinKeys.map((k, i) => `f.${quote(k.name)} = e.${KEY(i)}`);
  conditions.push(`${ets} <= e.${TS}`);
  let ttl = '';
  if (view.ttlSeconds > 0) {
    params.push(view.ttlSeconds);
    ttl = `($${params.length}::float8 * interval '1 second')`;
    conditions.push(`${ets} >= e.${TS} - ${ttl}`);
  }
  if (backfillGuard && cts) conditions.push(`(${cts} IS NULL OR ${cts} <= e.${TS})`);
  const order = [`${ets} DESC`, ...(cts ? [`${cts} DESC NULLS LAST`] : [])];
  const source = quoteTable(view.source.table);
  const featureTypes = group.features.map((f) => featureColumnType(f.type));

  let sql: string;
  if (strategy === 'lateral') {
    // Probe in index order (join keys, then time): neighbouring probes touch the same pages.
    const entityColumns = [ROW, TS, ...entity.joinKeys.map((_, i) => KEY(i))];
    const probeOrder = [...entity.joinKeys.map((_, i) => KEY(i)), TS];
    const probes = `(SELECT ${entityColumns.join(', ')} FROM ${ENTITY_TEMP_TABLE} ORDER BY ${probeOrder.join(', ')}) e`;
    const inner = group.features.map((f, j) => `f.${quote(f.name)} AS v${j}`);
    const outer = featureTypes.map((t, j) => outputExpression(`l.v${j}`, t));
    if (cts === undefined) {
      sql =
        `SELECT e.${ROW}, ${outer.join(', ')}\n` +
        `  FROM ${probes}\n` +
        `  LEFT JOIN LATERAL (\n` +
        `    SELECT ${inner.join(', ')}\n` +
        `      FROM ${source} f\n` +
        `     WHERE ${conditions.join('\n       AND ')}\n` +
        `     ORDER BY ${ets} DESC\n` +
        `     LIMIT 1\n` +
        `  ) l ON true`;
    } else {
      // Two probes, so that the first is a backward index scan on (keys, event ts) that stops at the
      // first eligible row (ORDER BY event ts, created ts would make Postgres fetch and sort the
      // key's whole history): the latest eligible event timestamp, then, among the rows at exactly
      // that timestamp, the latest created one.
      const atLatest = [
        ...entity.joinKeys.map((k, i) => `f.${quote(k.name)} = e.${KEY(i)}`),
        `${ets} = m.t`,
        ...(backfillGuard ? [`(${cts} IS NULL OR ${cts} <= e.${TS})`] : []),
      ];
      sql =
        `SELECT e.${ROW}, ${outer.join(', ')}\n` +
        `  FROM ${probes}\n` +
        `  LEFT JOIN LATERAL (\n` +
        `    SELECT ${ets} AS t\n` +
        `      FROM ${source} f\n` +
        `     WHERE ${conditions.join('\n       AND ')}\n` +
        `     ORDER BY ${ets} DESC\n` +
        `     LIMIT 1\n` +
        `  ) m ON true\n` +
        `  LEFT JOIN LATERAL (\n` +
        `    SELECT ${inner.join(', ')}\n` +
        `      FROM ${source} f\n` +
        `     WHERE ${atLatest.join('\n       AND ')}\n` +
        `     ORDER BY ${cts} DESC NULLS LAST\n` +
        `     LIMIT 1\n` +
        `  ) l ON true`;
    }
  } else {
    // The feature rows that can match any entity row: within [min(ts) - ttl, max(ts)].
    const range = [`${ets} <= (SELECT max(${TS}) FROM ${ENTITY_TEMP_TABLE})`];
    if (ttl) range.push(`${ets} >= (SELECT min(${TS}) FROM ${ENTITY_TEMP_TABLE}) - ${ttl}`);
    const select = group.features.map((f, j) => outputExpression(`f.${quote(f.name)}`, featureTypes[j]!));
    sql =
      `SELECT DISTINCT ON (e.${ROW}) e.${ROW}, ${select.join(', ')}\n` +
      `  FROM ${ENTITY_TEMP_TABLE} e\n` +
      `  LEFT JOIN ${source} f\n` +
      `    ON ${[...conditions, ...range].join('\n   AND ')}\n` +
      ` ORDER BY e.${ROW}, ${order.join(', ')}`;
  }
  const slots = group.features.map((f) => resolved.refs.indexOf(`${view.name}:${f.name}`));
  return { group, indexed, strategy, sql, params, slots };
}

// ---------------------------------------------------------------------------------------------

interface ColumnFill {
  set(row: number, value: unknown): void;
  finish(name: string): Column;
}

/** A typed, pre-sized column filled by row index; unset rows stay null. */
function newBuffer(type: ColumnType, rows: number): ColumnFill {
  switch (type) {
    case 'number':
    case 'timestamp': {
      const values = new Float64Array(rows).fill(NaN);
      return {
        set: (row, value) => {
          if (value !== null) values[row] = value as number;
        },
        finish: (name) => ({ name, type, values }),
      };
    }
    case 'boolean': {
      const values = new Int8Array(rows).fill(-1);
      return {
        set: (row, value) => {
          if (value !== null) values[row] = value ? 1 : 0;
        },
        finish: (name) => ({ name, type: 'boolean', values }),
      };
    }
    case 'category': {
      const values: Array<string | null> = new Array<string | null>(rows).fill(null);
      return {
        set: (row, value) => {
          values[row] = value as string | null;
        },
        finish: (name) => categoryColumn(name, values),
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// DuckDB engine (see stores/features/duckdb-engine.ts for the join and why it is the same).

/** In-memory column → bulk engine column (the same in-band null markers). */
function engineColumn(column: Column): EngineColumn {
  switch (column.type) {
    case 'number':
    case 'timestamp':
      return { kind: 'float64', values: column.values };
    case 'boolean':
      return { kind: 'int8', values: column.values };
    case 'category':
      return { kind: 'codes', codes: column.codes, categories: column.categories };
  }
}

/**
 * Entity keys and timestamps of in-memory rows, as the Postgres path would send them (whole ms);
 * with `carry`, also every column of the rows for a Parquet output.
 */
function duckdbEntitiesFromTable(rows: Table, entity: Entity, timestampColumn: string, carry: boolean): EngineEntityRows {
  const ts = (findColumn(rows, timestampColumn) as Extract<Column, { type: 'timestamp' }>).values;
  const tsMicros = new Float64Array(rows.rowCount);
  // new Date(v).toISOString() (the Postgres path) truncates to whole milliseconds toward zero.
  for (let i = 0; i < rows.rowCount; i++) tsMicros[i] = Number.isFinite(ts[i]!) ? Math.trunc(ts[i]!) * 1000 : NaN;
  const keys = entity.joinKeys.map((k) => engineColumn(findColumn(rows, k.name)!));
  return {
    rowCount: rows.rowCount,
    keys,
    tsMicros,
    ...(carry ? { carry: rows.columns.map((c) => ({ name: c.name, type: c.type, column: engineColumn(c) })) } : {}),
  };
}

/** Entity keys and timestamps (exact microseconds) of an entity table copied into the temp table. */
async function duckdbEntitiesFromTemp(client: DbClient, entity: Entity, rowCount: number): Promise<EngineEntityRows> {
  const { rows } = await client.query<unknown[]>({
    text:
      `SELECT ${ROW}, round(extract(epoch from ${TS}) * 1000000)::float8, ` +
      `${entity.joinKeys.map((k, i) => (k.type === 'int64' ? `${KEY(i)}::float8` : KEY(i))).join(', ')} FROM ${ENTITY_TEMP_TABLE}`,
    rowMode: 'array',
  });
  const tsMicros = new Float64Array(rowCount).fill(NaN);
  const keyValues = entity.joinKeys.map((k) =>
    k.type === 'int64' ? new Float64Array(rowCount).fill(NaN) : new Array<string | null>(rowCount).fill(null),
  );
  for (const row of rows) {
    const index = row[0] as number;
    if (row[1] !== null) tsMicros[index] = row[1] as number;
    keyValues.forEach((values, i) => {
      const value = row[i + 2];
      if (value !== null) (values as Array<number | string | null>)[index] = value as number | string;
    });
  }
  const keys = keyValues.map((values) =>
    values instanceof Float64Array ? engineColumn({ name: 'k', type: 'number', values }) : engineColumn(categoryColumn('k', values)),
  );
  return { rowCount, keys, tsMicros };
}

/**
 * Each view's Parquet timeline, as of the transaction's snapshot (from the cache when up to
 * date). With several views, each is checked and exported on its own connection, all in the
 * same snapshot (pg_export_snapshot / SET TRANSACTION SNAPSHOT), so that Postgres formats one
 * view while DuckDB processes another.
 */
async function duckdbExports(
  db: Db,
  client: DbClient,
  artifacts: ArtifactStore,
  plans: ViewPlan[],
  entity: Entity,
  backfillGuard: boolean,
): Promise<ViewExport[]> {
  const exportView = (on: DbClient | pg.Client, plan: ViewPlan) => {
    const { view } = plan.group;
    const types = {
      keys: entity.joinKeys.map((k) => k.type),
      features: view.features.map((f) => featureColumnType(f.type)),
    };
    return exportFeatureView(on as DbClient, artifacts, view, entity, types, { backfillGuard });
  };
  if (plans.length < 2) return Promise.all(plans.map((plan) => exportView(client, plan)));
  const { rows } = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
  const snapshot = rows[0]!.id;
  // Dedicated connections (not from the pool: a small pool must not deadlock on its own caller).
  const others = plans.slice(1).map(() => new pg.Client(db.options));
  const opened: pg.Client[] = [];
  try {
    await Promise.all(
      others.map(async (other) => {
        await other.connect();
        opened.push(other);
        await other.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
        await other.query(`SET TRANSACTION SNAPSHOT '${snapshot.replaceAll("'", "''")}'`);
        await other.query("SET LOCAL TimeZone = 'UTC'");
      }),
    );
    const exports = await Promise.all(plans.map((plan, p) => exportView(p === 0 ? client : others[p - 1]!, plan)));
    await Promise.all(others.map((other) => other.query('COMMIT')));
    return exports;
  } finally {
    await Promise.all(opened.map((other) => other.end().catch(() => undefined)));
  }
}

function engineViews(plans: ViewPlan[], exports: ViewExport[], entity: Entity): EngineView[] {
  return plans.map((plan, p) => {
    const { view } = plan.group;
    return {
      name: view.name,
      parquetPath: exports[p]!.path,
      keyCount: entity.joinKeys.length,
      ttlSeconds: view.ttlSeconds,
      featureColumns: plan.group.features.map((f) => view.features.findIndex((g) => g.name === f.name)),
      featureTypes: plan.group.features.map((f) => featureColumnType(f.type)),
    };
  });
}

/**
 * The DuckDB join of every view in one query. Into `buffers` (one per output column), or, with
 * `parquet`, straight from DuckDB into that Parquet file (carried entity columns, then the
 * features named `parquet.names`, in output order).
 */
async function runDuckDB(
  db: Db,
  client: DbClient,
  artifacts: ArtifactStore,
  plans: ViewPlan[],
  entity: Entity,
  entities: EngineEntityRows,
  backfillGuard: boolean,
  target: { buffers: ColumnFill[] } | { parquet: { file: string; names: string[]; rowGroupRows?: number } },
): Promise<HistoricalViewTiming[]> {
  const connection = await duckdbConnect();
  let exports: ViewExport[];
  let joinStarted: number;
  try {
    // The entity rows go into DuckDB while Postgres checks (and, when stale, exports) the views.
    [exports] = await Promise.all([duckdbExports(db, client, artifacts, plans, entity, backfillGuard), loadEntities(connection, entities)]);
    joinStarted = performance.now();
    const views = engineViews(plans, exports, entity);
    let count: number;
    if ('buffers' in target) {
      const slots = plans.flatMap((plan) => plan.slots);
      const { buffers } = target;
      count = await joinViews(connection, views, (row, values) => {
        for (let j = 0; j < slots.length; j++) buffers[slots[j]!]!.set(row, values[j]);
      });
    } else {
      // Output columns in request order (slot), each from its view's join.
      const outputs = plans
        .flatMap((plan, v) => plan.slots.map((slot, j) => ({ slot, view: v, feature: j, name: target.parquet.names[slot]! })))
        .sort((a, b) => a.slot - b.slot);
      const carry = (entities.carry ?? []).map((c) => c.name);
      count = await writeJoinedParquet(connection, views, carry, outputs, target.parquet.file, {
        rowGroupRows: target.parquet.rowGroupRows,
      });
    }
    if (count !== entities.rowCount) {
      throw new Error(`the DuckDB join returned ${count} rows for ${entities.rowCount} entity rows`);
    }
  } finally {
    await dropEntities(connection).catch(() => undefined);
    connection.closeSync();
  }
  // One query for every view: its time is shared out evenly (the exports have their own times).
  const ms = (performance.now() - joinStarted) / plans.length;
  return plans.map((plan, p) => {
    const file = exports[p]!;
    return {
      name: plan.group.view.name,
      strategy: 'asof' as const,
      indexed: plan.indexed,
      ms,
      export: { sha256: file.sha256, rowCount: file.rowCount, watermark: file.watermark, exported: file.exported, ms: file.ms },
    };
  });
}
