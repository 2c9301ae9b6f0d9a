/**
 * Parquet exports of feature views' offline tables, for the DuckDB engine. Postgres stays the
 * system of record: an export is a cache, stored content-addressed in the artifact store and
 * found again through the table `keel_feature_exports` (created here with CREATE TABLE IF NOT
 * EXISTS), keyed by (view, definition version, watermark, row count), where the watermark is
 * max(created timestamp) — max(event timestamp) for a view without one — in microseconds. An
 * unchanged view is not exported again; a view that gained rows, or whose definition changed,
 * is. (A change that keeps the row count and the watermark, such as an UPDATE of a feature value
 * that leaves `created_timestamp` alone, is not seen: write new rows with a new created timestamp.)
 *
 * What is stored is not the raw rows but the view's point-in-time timeline (duckdb-engine.ts,
 * `timelineSql`), so that a retrieval is one ASOF join per view; the timeline depends on the
 * backfill guard for a view with a created timestamp, so the cache key's version includes it
 * (`<definition version>+timeline1+guard|+noguard`) and each setting is prepared on first use.
 *
 * The export reads the view's table in the caller's transaction (same snapshot as the
 * watermark) with `COPY (SELECT …) TO STDOUT (FORMAT csv)` written straight to a temp file
 * (stores/features/pg-copy.ts): Postgres formats the rows far faster than a SELECT read row by
 * row (timestamps as timestamptz text with a UTC offset, features as text), then DuckDB reads
 * the file and writes the timeline as Parquet (snappy) with columns `k0…` (join keys), `v`,
 * `ets` (integer microseconds) and `f0…` (the view's features in definition order: DOUBLE
 * numbers, DOUBLE epoch-millisecond timestamps, BOOLEAN, VARCHAR), which is then put in the
 * artifact store. historical.ts exports several views at once on separate connections that
 * share one snapshot.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Entity, FeatureView } from '../../lib/features/definitions.js';
import { definitionVersion } from '../../lib/features/definitions.js';
import type { ArtifactStore } from '../artifacts/index.js';
import type { Db, DbClient } from '../db.js';
import { duckdbConnect, sqlString, timelineSql } from './duckdb-engine.js';
import { copyToFile } from './pg-copy.js';
import { quote, quoteTable } from './sql.js';

export const EXPORTS_TABLE = 'keel_feature_exports';

export interface ViewExport {
  view: string;
  version: string;
  watermark: string;
  rowCount: number;
  sha256: string;
  size: number;
  /** A local Parquet file with the export's bytes. */
  path: string;
  /** True when this call wrote the export; false when it was found in the cache. */
  exported: boolean;
  ms: number;
}

export interface ExportColumnTypes {
  /** Per join key: int64 or string. */
  keys: Array<'int64' | 'string'>;
  /** Per feature of the view, in definition order: the result's column type. */
  features: Array<'number' | 'boolean' | 'category' | 'timestamp'>;
}


let tableReady: Promise<void> | undefined;

/** Creates `keel_feature_exports` when missing (call it outside any transaction). */
export async function ensureExportsTable(db: Db): Promise<void> {
  tableReady ??= (async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        await db.query(
          `CREATE TABLE IF NOT EXISTS ${EXPORTS_TABLE} (
             view_name text NOT NULL,
             view_version text NOT NULL,
             watermark text NOT NULL,
             row_count bigint NOT NULL,
             sha256 text NOT NULL,
             size bigint NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (view_name, view_version, watermark, row_count)
           )`,
        );
        return;
      } catch (error) {
        // Two sessions creating it at once: one wins, the other sees a unique violation.
        if (attempt >= 2 || (error as { code?: string }).code !== '23505') throw error;
      }
    }
  })().catch((error: unknown) => {
    tableReady = undefined;
    throw error;
  });
  return tableReady;
}

/** Local folder for Parquet files of non-filesystem artifact stores. */
function cacheDir(): string {
  return process.env.KEEL_DUCKDB_CACHE ?? path.join(os.tmpdir(), 'keel-duckdb-cache');
}

/** A local path holding the artifact's bytes: the file itself for a file:// store, else a checked download. */
async function localPath(store: ArtifactStore, sha256: string): Promise<string | null> {
  const ref = await store.stat(sha256);
  if (!ref) return null;
  if (ref.uri.startsWith('file://')) return fileURLToPath(ref.uri);
  const dest = path.join(cacheDir(), `${sha256}.parquet`);
  try {
    await stat(dest);
    return dest;
  } catch {
    await mkdir(cacheDir(), { recursive: true });
    await store.download(sha256, dest);
    return dest;
  }
}

const micros = (expr: string) => `round(extract(epoch from (${expr})::timestamptz) * 1000000)::int8`;

/** The cache key's version: the definition's, the export format's, and the backfill guard when it matters. */
function exportVersion(view: FeatureView, backfillGuard: boolean): string {
  const guard = view.source.createdTimestamp === undefined ? '' : backfillGuard ? '+guard' : '+noguard';
  return `${definitionVersion(view)}+timeline1${guard}`;
}

/**
 * The Parquet export of `view` as of the caller's snapshot (run inside a transaction with
 * TimeZone UTC, as historical.ts does): from the cache when (view, version, watermark, row count)
 * is known, else exported now.
 */
export async function exportFeatureView(
  client: DbClient,
  store: ArtifactStore,
  view: FeatureView,
  entity: Entity,
  types: ExportColumnTypes,
  options: { backfillGuard?: boolean } = {},
): Promise<ViewExport> {
  const started = performance.now();
  const backfillGuard = options.backfillGuard ?? true;
  const version = exportVersion(view, backfillGuard);
  const source = quoteTable(view.source.table);
  const ets = quote(view.source.eventTimestamp);
  const cts = view.source.createdTimestamp === undefined ? undefined : quote(view.source.createdTimestamp);
  const { rows: marks } = await client.query<{ n: string; w: string | null }>(
    `SELECT count(*)::text AS n, ${micros(`max(${cts ?? ets})`)}::text AS w FROM ${source}`,
  );
  const rowCount = Number(marks[0]!.n);
  const watermark = marks[0]!.w ?? 'none';
  const { rows: known } = await client.query<{ sha256: string; size: string }>(
    `SELECT sha256, size::text FROM ${EXPORTS_TABLE} WHERE view_name = $1 AND view_version = $2 AND watermark = $3 AND row_count = $4`,
    [view.name, version, watermark, rowCount],
  );
  if (known[0]) {
    const file = await localPath(store, known[0].sha256);
    if (file) {
      return {
        view: view.name,
        version,
        watermark,
        rowCount,
        sha256: known[0].sha256,
        size: Number(known[0].size),
        path: file,
        exported: false,
        ms: performance.now() - started,
      };
    }
  }

  // Postgres formats the rows (COPY is far cheaper than a SELECT read row by row): join keys,
  // timestamps as timestamptz text with a UTC offset (the transaction runs with TimeZone UTC;
  // timestamp and date read as UTC, as outputExpression does), features as text.
  const columns = [
    ...entity.joinKeys.map((k, i) => `${quote(k.name)}${types.keys[i] === 'int64' ? '::int8' : '::text'}`),
    `${ets}::timestamptz`,
    cts ? `${cts}::timestamptz` : 'NULL::timestamptz',
    ...view.features.map((f, j) => {
      const type = types.features[j]!;
      const column = quote(f.name);
      return type === 'number' ? `${column}::float8` : type === 'boolean' ? `${column}::boolean` : type === 'timestamp' ? `${column}::timestamptz` : `${column}::text`;
    }),
  ];
  const dir = path.join(os.tmpdir(), `keel-export-${randomUUID()}`);
  await mkdir(dir, { recursive: true });
  const csvPath = path.join(dir, 'rows.csv');
  const parquetPath = path.join(dir, 'timeline.parquet');
  try {
    // Shortest exact float8 text (the default since Postgres 12, unless a server lowered it).
    await client.query('SET LOCAL extra_float_digits = 1');
    await copyToFile(client, `COPY (SELECT ${columns.join(', ')} FROM ${source}) TO STDOUT (FORMAT csv)`, csvPath);

    const csvTypes = [
      ...types.keys.map((t, i) => `'k${i}': '${t === 'int64' ? 'BIGINT' : 'VARCHAR'}'`),
      `'ets': 'TIMESTAMPTZ'`,
      `'cts': 'TIMESTAMPTZ'`,
      ...types.features.map(
        (t, j) => `'f${j}': '${t === 'number' ? 'DOUBLE' : t === 'timestamp' ? 'TIMESTAMPTZ' : t === 'boolean' ? 'BOOLEAN' : 'VARCHAR'}'`,
      ),
    ];
    // The rows with integer-microsecond timestamps and features as the result holds them
    // (timestamps as epoch milliseconds, rounded down), then the view's timeline.
    const rows =
      `(SELECT ${types.keys.map((_, i) => `k${i}`).join(', ')}, epoch_us(ets) AS ets, epoch_us(cts) AS cts` +
      types.features.map((t, j) => (t === 'timestamp' ? `, floor(epoch_us(f${j}) / 1000.0) AS f${j}` : `, f${j}`)).join('') +
      ` FROM read_csv(${sqlString(csvPath)}, header = false, delim = ',', quote = '"', escape = '"',` +
      ` nullstr = '', allow_quoted_nulls = false, columns = {${csvTypes.join(', ')}}))`;
    const connection = await duckdbConnect();
    try {
      await connection.run(
        `COPY (${timelineSql(rows, types.keys.length, types.features.length, cts !== undefined, backfillGuard)})
           TO ${sqlString(parquetPath)} (FORMAT parquet, COMPRESSION snappy)`,
      );
    } finally {
      connection.closeSync();
    }
    await rm(csvPath, { force: true });
    const ref = await store.put(createReadStream(parquetPath));
    await client.query(
      `INSERT INTO ${EXPORTS_TABLE} (view_name, view_version, watermark, row_count, sha256, size)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (view_name, view_version, watermark, row_count) DO UPDATE SET sha256 = EXCLUDED.sha256, size = EXCLUDED.size, created_at = now()`,
      [view.name, version, watermark, rowCount, ref.sha256, ref.size],
    );
    const file = await localPath(store, ref.sha256);
    return {
      view: view.name,
      version,
      watermark,
      rowCount,
      sha256: ref.sha256,
      size: ref.size,
      path: file!,
      exported: true,
      ms: performance.now() - started,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
