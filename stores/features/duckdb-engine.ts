/**
 * The DuckDB engine for large historical retrievals: the entity rows go into a DuckDB temp table
 * (appender), each feature view is read from its Parquet export (stores/features/parquet-export.ts)
 * and joined with an `ASOF LEFT JOIN`, the same rules as the Postgres strategies
 * (stores/features/historical.ts):
 *
 * For one view, every feature row gets a visibility time `v`: its event timestamp, or, with the
 * backfill guard on, `greatest(event ts, created ts)` (a row counts for an entity timestamp `ts`
 * exactly when `v <= ts`: `ets <= ts` and `created <= ts`, a null created timestamp always passing).
 * Per join key and in `v` order, a running max of the event timestamp gives, at each `v`, the
 * latest event time `m` among all rows visible by then (one row per (key, v)). The ASOF join takes,
 * per entity row, the latest `v <= ts`, hence `m` = the latest eligible event timestamp; then,
 * among the rows with that key, `ets = m` and `v <= ts`, the one with the latest created timestamp
 * (nulls lowest) — the row Postgres picks with `ORDER BY ets DESC, created DESC NULLS LAST LIMIT 1`.
 * TTL: `m` is the latest eligible event time, so when it is older than `ts − TTL` every other
 * eligible row is too, and the answer is null. Timestamps are compared as integer
 * microseconds (Postgres' precision); entity timestamps are whole milliseconds, as the Postgres
 * path sends them.
 *
 * `@duckdb/node-api` is loaded on first use (`loadDuckDB`); when it cannot be loaded the engine is
 * unavailable and `engine: 'auto'` stays on Postgres. Only DuckDB's statically linked extensions
 * are used (parquet, csv): nothing is downloaded.
 */
import type * as DuckDBApi from '@duckdb/node-api';
import type { DuckDBAppender, DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

type DuckDBModule = typeof DuckDBApi;

let modulePromise: Promise<DuckDBModule | null> | undefined;
let instancePromise: Promise<DuckDBInstance> | undefined;

/** The `@duckdb/node-api` module, or null when it cannot be loaded on this machine. */
export function loadDuckDB(): Promise<DuckDBModule | null> {
  modulePromise ??= import('@duckdb/node-api').then(
    (m) => m,
    () => null,
  );
  return modulePromise;
}

/** True when the DuckDB engine can run here. */
export async function duckdbAvailable(): Promise<boolean> {
  return (await loadDuckDB()) !== null;
}

/** A connection to the process-wide in-memory DuckDB instance (close it with `closeSync`). */
export async function duckdbConnect(): Promise<DuckDBConnection> {
  const duckdb = await loadDuckDB();
  if (!duckdb) throw new Error('@duckdb/node-api cannot be loaded on this machine');
  instancePromise ??= duckdb.DuckDBInstance.create(':memory:', { preserve_insertion_order: 'false' });
  return (await instancePromise).connect();
}

/** A SQL string literal. */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export type EngineKeyType = 'int64' | 'string';
export type EngineOutputType = 'number' | 'boolean' | 'category' | 'timestamp';

export interface EngineEntityRows {
  rowCount: number;
  /** Per join key: numbers (int64 keys, NaN or null = null) or strings (null = null). */
  keys: Array<{ type: EngineKeyType; values: ArrayLike<number | string | null> }>;
  /** Entity timestamps in epoch microseconds (integers), NaN = null. */
  tsMicros: Float64Array;
}

export interface EngineView {
  name: string;
  /** Local path of the view's Parquet export (columns k0…, ets, cts, f0… as parquet-export.ts writes them). */
  parquetPath: string;
  keyCount: number;
  hasCreated: boolean;
  ttlSeconds: number;
  /** Parquet column index (f<i>) of each requested feature, in output order. */
  featureColumns: number[];
}

const ENTITY_TABLE = 'keel_entities';

/** Loads the entity rows into a temp table `keel_entities(r, ts, k0…)` of the connection. */
export async function loadEntities(connection: DuckDBConnection, entities: EngineEntityRows): Promise<void> {
  const keyDecl = entities.keys.map((k, i) => `k${i} ${k.type === 'int64' ? 'DOUBLE' : 'VARCHAR'}`);
  await connection.run(`CREATE OR REPLACE TEMP TABLE ${ENTITY_TABLE}_raw (r INTEGER, ts DOUBLE${keyDecl.map((d) => `, ${d}`).join('')})`);
  const appender: DuckDBAppender = await connection.createAppender(`${ENTITY_TABLE}_raw`, 'main', 'temp');
  try {
    const { tsMicros, keys } = entities;
    for (let i = 0; i < entities.rowCount; i++) {
      appender.appendInteger(i);
      const ts = tsMicros[i]!;
      if (Number.isNaN(ts)) appender.appendNull();
      else appender.appendDouble(ts);
      for (const key of keys) {
        const value = key.values[i];
        if (value === null || value === undefined || (typeof value === 'number' && Number.isNaN(value))) appender.appendNull();
        else if (key.type === 'int64') appender.appendDouble(value as number);
        else appender.appendVarchar(value as string);
      }
      appender.endRow();
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
  const keySelect = entities.keys.map((k, i) => (k.type === 'int64' ? `k${i}::BIGINT AS k${i}` : `k${i}`));
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE ${ENTITY_TABLE} AS SELECT r, ts::BIGINT AS ts${keySelect.map((k) => `, ${k}`).join('')} FROM ${ENTITY_TABLE}_raw`,
  );
  await connection.run(`DROP TABLE ${ENTITY_TABLE}_raw`);
}

/** The point-in-time join of one view (see the module comment): rows `(r, value…)` in no particular order. */
export function viewJoinSql(view: EngineView, backfillGuard: boolean): string {
  const keys = Array.from({ length: view.keyCount }, (_, i) => `k${i}`);
  const features = view.featureColumns.map((c) => `f${c}`);
  const guard = backfillGuard && view.hasCreated;
  const visible = guard ? 'CASE WHEN cts > ets THEN cts ELSE ets END' : 'ets';
  const created = view.hasCreated ? 'coalesce(cts, -9223372036854775807)' : '0';
  const payload = `struct_pack(x := 1${features.map((f, j) => `, v${j} := f.${f}`).join('')})`;
  // A null entity timestamp must match nothing (DuckDB's ASOF join would pair it with a row).
  const ttlCheck = `q.ts IS NOT NULL AND q.m IS NOT NULL${view.ttlSeconds > 0 ? ` AND q.m >= q.ts - ${view.ttlSeconds * 1_000_000}` : ''}`;
  const values = features.map((_, j) => `CASE WHEN ${ttlCheck} THEN q.b.v${j} END AS v${j}`);
  const on = (a: string, b: string) => keys.map((k) => `${a}.${k} = ${b}.${k}`).join(' AND ');
  return (
    // Feature rows with their visibility time v and created rank c (nulls lowest).
    `WITH f AS (
` +
    `  SELECT ${keys.join(', ')}, ets, ${visible} AS v, ${created} AS c${features.map((f) => `, ${f}`).join('')}
` +
    `    FROM read_parquet(${sqlString(view.parquetPath)})
` +
    `   WHERE ${[...keys, 'ets'].map((c) => `${c} IS NOT NULL`).join(' AND ')}
` +
    // Per key and visibility time, the latest event time visible by then (a running max).
    `), g AS (
` +
    `  SELECT ${keys.join(', ')}, v, max(ets) AS m FROM f GROUP BY ${keys.join(', ')}, v
` +
    `), t AS (
` +
    `  SELECT ${keys.join(', ')}, v, max(m) OVER (PARTITION BY ${keys.join(', ')} ORDER BY v ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS m
` +
    `    FROM g
` +
    // Per entity row: the latest visible event time (ASOF on v <= ts) …
    `), p AS (
` +
    `  SELECT e.r, e.ts, ${keys.map((k) => `e.${k}`).join(', ')}, t.m
` +
    `    FROM keel_entities e ASOF LEFT JOIN t ON ${on('e', 't')} AND e.ts >= t.v
` +
    // … then, among the visible rows at exactly that event time, the latest created one.
    `), q AS (
` +
    `  SELECT p.r, any_value(p.ts) AS ts, any_value(p.m) AS m, arg_max(${payload}, f.c) AS b
` +
    `    FROM p LEFT JOIN f ON ${on('f', 'p')} AND f.ets = p.m AND f.v <= p.ts
` +
    `   GROUP BY p.r
` +
    `)
` +
    `SELECT q.r${values.map((v) => `, ${v}`).join('')} FROM q`
  );
}

/** Runs one view's join and hands every result row to `onRow(entityRow, values)`; returns the row count. */
export async function joinView(
  connection: DuckDBConnection,
  view: EngineView,
  backfillGuard: boolean,
  onRow: (row: number, values: unknown[]) => void,
): Promise<number> {
  const result = await connection.stream(viewJoinSql(view, backfillGuard));
  const width = view.featureColumns.length;
  const values = new Array<unknown>(width);
  let count = 0;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const rows = chunk.rowCount;
    const rowVector = chunk.getColumnVector(0);
    const vectors = Array.from({ length: width }, (_, j) => chunk.getColumnVector(j + 1));
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < width; j++) values[j] = vectors[j]!.getItem(i);
      onRow(rowVector.getItem(i) as number, values);
    }
    count += rows;
  }
  return count;
}
