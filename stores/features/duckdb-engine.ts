/**
 * The DuckDB engine for large historical retrievals: the entity rows go into a DuckDB temp table
 * (in bulk, data chunks filled from the typed arrays), each feature view is read from its Parquet
 * timeline (stores/features/parquet-export.ts) and joined with one `ASOF LEFT JOIN` per view, all
 * views in one query, with the same rules as the Postgres strategies (stores/features/historical.ts):
 *
 * For one view, every feature row gets a visibility time `v`: its event timestamp, or, with the
 * backfill guard on, `greatest(event ts, created ts)` (a row counts for an entity timestamp `ts`
 * exactly when `v <= ts`: `ets <= ts` and `created <= ts`, a null created timestamp always passing).
 * The timeline (`timelineSql`, computed once per export) holds, for each (join key, `v`) of the
 * feature rows, the best row among those with `v' <= v`: the latest event time, then the latest
 * created time (nulls lowest) — the row Postgres picks with `ORDER BY ets DESC, created DESC
 * NULLS LAST LIMIT 1` over the rows visible at `v`. For an entity row, the rows visible at `ts`
 * are exactly those visible at the latest timeline `v <= ts` (no feature row becomes visible in
 * between), so the ASOF join on (key, `v <= ts`) lands on the answer. TTL: the answer's event time
 * is the latest eligible one, so when it is older than `ts − TTL` every other eligible row is too,
 * and the result is null. Timestamps are compared as integer microseconds (Postgres' precision);
 * entity timestamps are whole milliseconds, as the Postgres path sends them.
 *
 * With a Parquet output (`writeJoinedParquet`), DuckDB also writes the training set itself
 * (COPY … TO), the entity rows' own columns included, so no value passes through Node.
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

export type EngineOutputType = 'number' | 'boolean' | 'category' | 'timestamp';

/**
 * A column loaded into DuckDB in bulk (data chunks filled from typed arrays, not one appender
 * call per cell): `float64` (NaN = null), `int8` (booleans as 1 / 0, -1 = null) or dictionary
 * `codes` into `categories` (-1 = null), the in-band null markers of lib/data/table.ts.
 */
export type EngineColumn =
  | { kind: 'float64'; values: Float64Array }
  | { kind: 'int8'; values: Int8Array }
  | { kind: 'codes'; codes: Int32Array; categories: readonly string[] };

export interface EngineEntityRows {
  rowCount: number;
  /** Per join key: `float64` for int64 keys (whole numbers), `codes` for string keys. */
  keys: EngineColumn[];
  /** Entity timestamps in epoch microseconds (integers), NaN = null. */
  tsMicros: Float64Array;
  /**
   * The entity rows' own columns, carried into a Parquet output (`writeJoinedParquet`) in this
   * order with their table types; not needed when the values are read back into Node.
   */
  carry?: Array<{ name: string; type: EngineOutputType; column: EngineColumn }>;
}

export interface EngineView {
  name: string;
  /** Local path of the view's timeline (columns k0…, v, ets, f0… as `timelineSql` makes them; parquet-export.ts). */
  parquetPath: string;
  keyCount: number;
  ttlSeconds: number;
  /** Parquet column index (f<i>) of each requested feature, in output order. */
  featureColumns: number[];
  /** The result type of each requested feature (as featureColumnType gives it), in output order. */
  featureTypes: EngineOutputType[];
}

const ENTITY_TABLE = 'keel_entities';
const CHUNK_ROWS = 2048;

/** A double-quoted DuckDB identifier. */
export function sqlIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Creates temp table `name (r INTEGER, c0 …)` with `r` = 0…rowCount−1 and one column per input
 * (DOUBLE, TINYINT or INTEGER codes), filled chunk by chunk; for each `codes` column i also
 * `name_d<i> (code INTEGER, value VARCHAR)`. Nulls stay in-band (NaN, -1): the caller's SQL
 * turns them into NULLs.
 */
async function loadColumns(connection: DuckDBConnection, name: string, columns: EngineColumn[], rowCount: number): Promise<void> {
  const duckdb = (await loadDuckDB())!;
  const sqlTypes = columns.map((c) => (c.kind === 'float64' ? 'DOUBLE' : c.kind === 'int8' ? 'TINYINT' : 'INTEGER'));
  await connection.run(
    `CREATE OR REPLACE TEMP TABLE ${name} (r INTEGER${sqlTypes.map((t, i) => `, c${i} ${t}`).join('')})`,
  );
  const types = [duckdb.INTEGER, ...columns.map((c) => (c.kind === 'float64' ? duckdb.DOUBLE : c.kind === 'int8' ? duckdb.TINYINT : duckdb.INTEGER))];
  const appender: DuckDBAppender = await connection.createAppender(name, 'main', 'temp');
  try {
    const chunk = duckdb.DuckDBDataChunk.create(types, CHUNK_ROWS);
    for (let start = 0; start < rowCount; start += CHUNK_ROWS) {
      const end = Math.min(rowCount, start + CHUNK_ROWS);
      const n = end - start;
      chunk.rowCount = n;
      const rowVector = chunk.getColumnVector(0);
      for (let i = 0; i < n; i++) rowVector.setItem(i, start + i);
      rowVector.flush();
      columns.forEach((column, c) => {
        const vector = chunk.getColumnVector(c + 1);
        const values = column.kind === 'codes' ? column.codes : column.values;
        for (let i = 0; i < n; i++) vector.setItem(i, values[start + i]!);
        vector.flush();
      });
      appender.appendDataChunk(chunk);
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
  for (const [i, column] of columns.entries()) {
    if (column.kind !== 'codes') continue;
    await connection.run(`CREATE OR REPLACE TEMP TABLE ${name}_d${i} (code INTEGER, value VARCHAR)`);
    const dictionary = await connection.createAppender(`${name}_d${i}`, 'main', 'temp');
    try {
      column.categories.forEach((value, code) => {
        dictionary.appendInteger(code);
        dictionary.appendVarchar(value);
        dictionary.endRow();
      });
      dictionary.flushSync();
    } finally {
      dictionary.closeSync();
    }
  }
}

/** SQL reading loaded column `c<i>` of `raw` as its value (NULL for the in-band null markers). */
function columnValue(column: EngineColumn, i: number, as: 'bigint' | 'varchar' | EngineOutputType): string {
  const c = `raw.c${i}`;
  if (column.kind === 'codes') return `d${i}.value`;
  if (column.kind === 'int8') return `CASE ${c} WHEN 1 THEN true WHEN 0 THEN false END`;
  const value = `nullif(${c}, 'NaN'::DOUBLE)`;
  if (as === 'bigint') return `CAST(${value} AS BIGINT)`;
  // As tableToParquet writes timestamps: whole milliseconds, Math.round (half up).
  if (as === 'timestamp') return `CAST(epoch_ms(CAST(floor(${value} + 0.5) AS BIGINT)) AS TIMESTAMP_MS)`;
  return value;
}

/**
 * Loads the entity rows into a temp table `keel_entities(r, ts, k0…, o0…)` of the connection:
 * `r` the entity row number, `ts` microseconds, `k<i>` the join keys (BIGINT or VARCHAR) and
 * `o<i>` the carried columns (typed as they are written to Parquet).
 */
export async function loadEntities(connection: DuckDBConnection, entities: EngineEntityRows): Promise<void> {
  const carry = entities.carry ?? [];
  const columns: EngineColumn[] = [{ kind: 'float64', values: entities.tsMicros }, ...entities.keys, ...carry.map((c) => c.column)];
  const raw = `${ENTITY_TABLE}_raw`;
  await loadColumns(connection, raw, columns, entities.rowCount);
  const select = [
    'raw.r',
    `${columnValue(columns[0]!, 0, 'bigint')} AS ts`,
    ...entities.keys.map((k, i) => `${columnValue(k, i + 1, 'bigint')} AS k${i}`),
    ...carry.map((c, i) => `${columnValue(c.column, i + 1 + entities.keys.length, c.type)} AS o${i}`),
  ];
  const joins = columns
    .map((c, i) => (c.kind === 'codes' ? ` LEFT JOIN ${raw}_d${i} d${i} ON d${i}.code = raw.c${i}` : ''))
    .join('');
  await connection.run(`CREATE OR REPLACE TEMP TABLE ${ENTITY_TABLE} AS SELECT ${select.join(', ')} FROM ${raw} raw${joins}`);
  await connection.run(`DROP TABLE ${raw}`);
  for (const [i, c] of columns.entries()) if (c.kind === 'codes') await connection.run(`DROP TABLE ${raw}_d${i}`);
}

/** Drops what `loadEntities` created (the connection may be reused). */
export async function dropEntities(connection: DuckDBConnection): Promise<void> {
  await connection.run(`DROP TABLE IF EXISTS ${ENTITY_TABLE}`);
}

/**
 * DuckDB SQL that turns a view's feature rows (`source`: a relation with columns k0…, ets, cts
 * as integer microseconds, f0…) into its point-in-time timeline (see the module comment): for
 * each feature row's (join key, visibility time `v`), the best row visible by then — latest
 * event time, then latest created time (nulls lowest) — as columns k0…, v, ets, f0…, in no
 * particular order (rows with the same key and `v` carry the same answer).
 */
export function timelineSql(source: string, keyCount: number, featureCount: number, hasCreated: boolean, backfillGuard: boolean): string {
  const keys = Array.from({ length: keyCount }, (_, i) => `k${i}`);
  const features = Array.from({ length: featureCount }, (_, j) => `f${j}`);
  const visible = backfillGuard && hasCreated ? 'CASE WHEN cts > ets THEN cts ELSE ets END' : 'ets';
  const created = hasCreated ? 'coalesce(cts, -9223372036854775807)' : '0';
  const partition = `PARTITION BY ${keys.join(', ')}`;
  const on = keys.map((k) => `b.${k} = m.${k}`);
  return (
    // Each row's rank within its key by (event time, created time): rows equal in both get
    // distinct ranks, an arbitrary pick among them.
    `WITH r AS (\n` +
    `  SELECT ${keys.join(', ')}, ets, ${visible} AS v${features.map((f) => `, ${f}`).join('')},\n` +
    `         row_number() OVER (${partition} ORDER BY ets, ${created}) AS rk\n` +
    `    FROM ${source}\n` +
    `   WHERE ${[...keys, 'ets'].map((c) => `${c} IS NOT NULL`).join(' AND ')}\n` +
    // The best rank visible at each v: a running max in v order, peers (same v) included.
    `), m AS (\n` +
    `  SELECT ${keys.join(', ')}, v, max(rk) OVER (${partition} ORDER BY v RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS rk\n` +
    `    FROM r\n` +
    `)\n` +
    `SELECT ${keys.map((k) => `m.${k}`).join(', ')}, m.v, b.ets${features.map((f) => `, b.${f}`).join('')}\n` +
    `  FROM m JOIN r b ON ${[...on, 'b.rk = m.rk'].join(' AND ')}`
  );
}

/** One output feature column: feature `feature` (index in `featureColumns`) of view `view`, named `name`. */
export interface EngineOutput {
  view: number;
  feature: number;
  name: string;
}

/**
 * One query joining every view: `keel_entities` with one `ASOF LEFT JOIN` per view timeline
 * (the latest `v <= ts` per join key), selecting `r` (without `carry`) or the carried columns,
 * then `outputs` in order, converted by `convert(expr, type)`. A null entity timestamp matches
 * nothing; a match whose event time is older than `ts − TTL` is null.
 */
function joinedSql(
  views: EngineView[],
  options: { carry: string[]; outputs: EngineOutput[]; convert: (expr: string, type: EngineOutputType) => string; orderByRow: boolean },
): string {
  const matched = views.map((view, v) => {
    const ttl = view.ttlSeconds > 0 ? ` AND t${v}.ets >= e.ts - ${view.ttlSeconds * 1_000_000}` : '';
    return `e.ts IS NOT NULL AND t${v}.ets IS NOT NULL${ttl}`;
  });
  const select = [
    ...(options.carry.length ? [] : ['e.r']),
    ...options.carry.map((name, i) => `e.o${i} AS ${sqlIdentifier(name)}`),
    ...options.outputs.map((o) => {
      const view = views[o.view]!;
      const value = `CASE WHEN ${matched[o.view]} THEN t${o.view}.f${view.featureColumns[o.feature]} END`;
      return `${options.convert(value, view.featureTypes[o.feature]!)} AS ${sqlIdentifier(o.name)}`;
    }),
  ];
  const joins = views.map((view, v) => {
    const on = Array.from({ length: view.keyCount }, (_, i) => `e.k${i} = t${v}.k${i}`);
    return `\n  ASOF LEFT JOIN read_parquet(${sqlString(view.parquetPath)}) t${v} ON ${[...on, `e.ts >= t${v}.v`].join(' AND ')}`;
  });
  return `SELECT ${select.join(', ')}\n  FROM ${ENTITY_TABLE} e${joins.join('')}${options.orderByRow ? '\n ORDER BY e.r' : ''}`;
}

/**
 * Runs the join of every view in one query and hands each result row to `onRow(entityRow,
 * values)`, values view by view in `views` order (numbers and epoch-ms timestamps as numbers,
 * booleans, strings; null); returns the row count.
 */
export async function joinViews(
  connection: DuckDBConnection,
  views: EngineView[],
  onRow: (row: number, values: unknown[]) => void,
): Promise<number> {
  const outputs = views.flatMap((view, v) => view.featureTypes.map((_, j) => ({ view: v, feature: j, name: `v${v}_${j}` })));
  const result = await connection.stream(joinedSql(views, { carry: [], outputs, convert: (e) => e, orderByRow: false }));
  const width = views.reduce((n, v) => n + v.featureTypes.length, 0);
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

/**
 * Writes the training set straight from DuckDB to a Parquet file: the carried entity columns
 * (`entities.carry`, loaded by `loadEntities`, named `carry`) in entity row order, then `outputs`; types as lib/data/parquet.ts's `tableToParquet` writes them
 * (DOUBLE, BOOLEAN, UTF8 string, INT64 TIMESTAMP_MILLIS), so readers see the same table.
 * Returns the row count.
 */
export async function writeJoinedParquet(
  connection: DuckDBConnection,
  views: EngineView[],
  carry: string[],
  outputs: EngineOutput[],
  file: string,
  options: { rowGroupRows?: number } = {},
): Promise<number> {
  const convert = (expr: string, type: EngineOutputType) => {
    if (type === 'number') return `nullif(${expr}, 'NaN'::DOUBLE)`;
    if (type === 'timestamp') return `CASE WHEN isfinite(${expr}) THEN CAST(epoch_ms(CAST(${expr} AS BIGINT)) AS TIMESTAMP_MS) END`;
    return expr;
  };
  const sql = joinedSql(views, { carry, outputs, convert, orderByRow: true });
  const result = await connection.runAndReadAll(
    `COPY (${sql}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE ${options.rowGroupRows ?? 100_000})`,
  );
  const rows = result.getRows();
  return Number(rows[0]?.[0] ?? 0);
}
