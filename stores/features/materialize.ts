/**
 * Materialization: copies the latest feature values per entity from a view's offline table into
 * `online_features` (migration 0004), incrementally from the view's watermark in
 * `feature_materializations`.
 *
 * One run of one view reads the window (start, end] and is ONE transaction:
 *   1. a per-view advisory lock (runs of one view never interleave; other views run in parallel);
 *   2. the watermark row; `start` defaults to it. On the first run, or when the view's definition
 *      version differs from the one materialized (its source, features or entity changed), the
 *      view's online rows are deleted and `start` defaults to `end − TTL − 1 ms` (Feast's first
 *      window: only values inside the TTL, its bound inclusive), or to the beginning when the TTL
 *      is 0;
 *   3. one set-based statement: `SELECT DISTINCT ON (join keys)` of the candidate rows, ordered
 *      like historical retrieval (event timestamp DESC, created timestamp DESC NULLS LAST), then
 *      `INSERT … ON CONFLICT (view, entity_key) DO UPDATE … WHERE` the candidate is newer by
 *      (event timestamp, created timestamp) — or equally new with different values — than the row
 *      already online. So an older row never replaces a newer one, and a retry of the same window
 *      writes nothing new (idempotent);
 *   4. the watermark update (to `end`), then COMMIT. A failure anywhere rolls back the rows and
 *      the watermark together: the watermark never passes rows that were not committed, and the
 *      next run reads the same window again.
 *
 * Candidate rows of the window, with the same backfill rule historical retrieval applies at `end`:
 *   - join keys and event timestamp not null, `event_timestamp <= end`;
 *   - views with a created timestamp: `created IS NULL OR created <= end` (a row created after
 *     `end` was not known at `end`; the next window picks it up), and new to this window:
 *     `event_timestamp > start OR created > start`. The second disjunct catches late and
 *     backfilled rows (an event time at or before the watermark, written after it), so that a
 *     backfill that rewrites a value at the same event time wins exactly as offline (the row
 *     created later). Union over consecutive windows = every row known at the last `end`:
 *     after a run, an online row equals point-in-time retrieval at `end`, before TTL;
 *   - views without one: `event_timestamp > start` (late rows older than the watermark cannot be
 *     told apart: declare a created timestamp for sources that get late data).
 * A null created timestamp ranks below any other at the same event time, as offline.
 * TTL is applied when reading (online.ts), not here: a row that expires later stays stored and
 * reads as `expired` — what the offline join says of it.
 *
 * The watermark moves to max(watermark, end) only when the window starts at or before it (an
 * explicit `start` after the watermark would leave a gap: the watermark then stays put).
 *
 * Large views: the statement is one sort (or index scan) of the window's rows; the `created > start`
 * disjunct makes Postgres read the whole table unless it has indexes on the event and created
 * timestamps (a BitmapOr then). Keel never creates indexes on user tables.
 *
 * Source checks (table exists, join keys, timestamps and feature columns with fitting types) are
 * historical retrieval's own: `historicalQueryPlan` on zero entity rows, so both paths accept and
 * refuse the same tables with the same `InvalidInput` messages.
 */
import { createTable, categoryColumn, numberColumn, timestampColumn } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { Entity, FeatureView } from '../../lib/features/definitions.js';
import { identifierSchema } from '../../lib/features/definitions.js';
import { definitionKey } from '../../lib/features/validate.js';
import type { MaterializeViewResult } from '../../lib/schemas/materialize-features.js';
import type { Db } from '../db.js';
import { historicalQueryPlan } from './historical.js';
import type { StoredFeatureDefinitions } from './registry.js';
import { loadFeatureDefinitions } from './registry.js';
import { featureColumnType, outputExpression, quote, quoteTable } from './sql.js';

export type { MaterializeViewResult } from '../../lib/schemas/materialize-features.js';

export interface MaterializeViewOptions {
  view: string;
  /** Window start, exclusive; default the watermark (see the module comment). */
  start?: Date | string | null;
  /** Window end, inclusive: the new watermark. */
  end: Date | string;
  /** Recorded as `last_run_id` (the workflow run, or what the caller likes). */
  runId?: string;
}

export interface MaterializationState {
  view: string;
  viewVersion: string;
  watermark: string;
  lastStart: string | null;
  lastEnd: string;
  lastRunId: string | null;
  rowsWritten: number;
  totalRowsWritten: number;
  updatedAt: string;
}

/** Advisory lock space for materialization runs: (this, hashtext(view)). */
const LOCK_SPACE = 0x6b656d31; // "kem1"

/** The names of the registry's views with `online: true`, sorted. */
export async function listOnlineViews(db: Db): Promise<string[]> {
  const definitions = await loadFeatureDefinitions(db);
  return definitions.featureViews.filter((v) => v.online).map((v) => v.name);
}

/**
 * The views a materialization covers: `views` checked against the registry (unknown or offline
 * views are an `InvalidInput` naming them), or every online view.
 */
export async function resolveMaterializationViews(db: Db, views?: readonly string[]): Promise<string[]> {
  const definitions = await loadFeatureDefinitions(db);
  if (views === undefined) return definitions.featureViews.filter((v) => v.online).map((v) => v.name);
  views.forEach((name, i) => findOnlineView(definitions, name, `views[${i}]`));
  return [...views];
}

function findOnlineView(definitions: StoredFeatureDefinitions, name: string, field: string): FeatureView {
  if (typeof name !== 'string' || !identifierSchema.safeParse(name).success) {
    throw new InvalidInput(`feature view name ${JSON.stringify(name)} must match ^[a-z_][a-z0-9_]{0,62}$`, field);
  }
  const view = definitions.featureViews.find((v) => v.name === name);
  if (!view) {
    const names = definitions.featureViews.map((v) => v.name);
    throw new InvalidInput(`unknown feature view ${name} (feature views: ${names.length ? names.join(', ') : 'none'})`, field);
  }
  if (!view.online) {
    throw new InvalidInput(`feature view ${name} is not online (online: false): it is never materialized`, field);
  }
  return view;
}

/** Materializes one view for (start, end] in one transaction with its watermark (see the module comment). */
export async function materializeFeatureView(db: Db, options: MaterializeViewOptions): Promise<MaterializeViewResult> {
  const started = performance.now();
  const end = toDate(options.end, 'end');
  const explicitStart = options.start === undefined || options.start === null ? undefined : toDate(options.start, 'start');
  if (explicitStart && explicitStart.getTime() >= end.getTime()) {
    throw new InvalidInput(`start ${explicitStart.toISOString()} must be before end ${end.toISOString()}`, 'start');
  }
  const definitions = await loadFeatureDefinitions(db);
  const view = findOnlineView(definitions, options.view, 'view');
  const version = definitions.versions[definitionKey('feature_view', view.name)]!;
  const entity = definitions.entities.find((e) => e.name === view.entity)!;
  await checkSource(db, definitions, view, entity);

  const client = await db.connect();
  try {
    await client.query('BEGIN');
    // Timestamps without time zone and dates read as UTC (as in historical retrieval); float8
    // values keep every digit in jsonb.
    await client.query("SET LOCAL TimeZone = 'UTC'");
    await client.query('SET LOCAL extra_float_digits = 1');
    await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_SPACE, view.name]);
    const { rows: stateRows } = await client.query<{ view_version: string; watermark: Date }>(
      'SELECT view_version, watermark FROM feature_materializations WHERE view = $1',
      [view.name],
    );
    const state = stateRows[0];
    const full = state === undefined || state.view_version !== version;
    const watermarkFrom = full ? null : state.watermark;
    if (full && state !== undefined) await client.query('DELETE FROM online_features WHERE view = $1', [view.name]);
    let start: Date | null;
    if (explicitStart) start = explicitStart;
    else if (watermarkFrom) start = watermarkFrom;
    // `end − TTL − 1 ms`: the offline bound `event_timestamp >= ts − TTL` is inclusive, the window's
    // start exclusive; a row in the extra millisecond is stored and simply reads as expired.
    else start = view.ttlSeconds > 0 ? new Date(end.getTime() - view.ttlSeconds * 1000 - 1) : null;

    const { rows } = await client.query<{ candidates: string; written: string }>(upsertSql(view, entity), [
      view.name,
      start?.toISOString() ?? null,
      end.toISOString(),
    ]);
    const candidateRows = Number(rows[0]!.candidates);
    const rowsWritten = Number(rows[0]!.written);

    const contiguous = watermarkFrom === null || start === null || start.getTime() <= watermarkFrom.getTime();
    const watermarkTo = !contiguous
      ? watermarkFrom
      : watermarkFrom && watermarkFrom.getTime() > end.getTime()
        ? watermarkFrom
        : end;
    await client.query(
      `INSERT INTO feature_materializations AS m
              (view, view_version, watermark, last_start, last_end, last_run_id, rows_written, total_rows_written, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $7, now())
       ON CONFLICT (view) DO UPDATE SET
         view_version = EXCLUDED.view_version,
         watermark = EXCLUDED.watermark,
         last_start = EXCLUDED.last_start,
         last_end = EXCLUDED.last_end,
         last_run_id = EXCLUDED.last_run_id,
         rows_written = EXCLUDED.rows_written,
         total_rows_written = CASE WHEN m.view_version = EXCLUDED.view_version
                                   THEN m.total_rows_written + EXCLUDED.rows_written
                                   ELSE EXCLUDED.rows_written END,
         updated_at = now()`,
      [view.name, version, watermarkTo.toISOString(), start?.toISOString() ?? null, end.toISOString(), options.runId ?? null, rowsWritten],
    );
    await client.query('COMMIT');
    return {
      view: view.name,
      version,
      start: start?.toISOString() ?? null,
      end: end.toISOString(),
      rowsWritten,
      candidateRows,
      watermarkFrom: watermarkFrom?.toISOString() ?? null,
      watermarkTo: watermarkTo.toISOString(),
      full,
      ms: performance.now() - started,
    };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Every view's materialization state (watermark, last run), sorted by view. */
export async function listMaterializations(db: Db): Promise<MaterializationState[]> {
  const { rows } = await db.query<{
    view: string;
    view_version: string;
    watermark: Date;
    last_start: Date | null;
    last_end: Date;
    last_run_id: string | null;
    rows_written: string;
    total_rows_written: string;
    updated_at: Date;
  }>('SELECT * FROM feature_materializations ORDER BY view COLLATE "C"');
  return rows.map((r) => ({
    view: r.view,
    viewVersion: r.view_version,
    watermark: r.watermark.toISOString(),
    lastStart: r.last_start?.toISOString() ?? null,
    lastEnd: r.last_end.toISOString(),
    lastRunId: r.last_run_id,
    rowsWritten: Number(r.rows_written),
    totalRowsWritten: Number(r.total_rows_written),
    updatedAt: r.updated_at.toISOString(),
  }));
}

// ---------------------------------------------------------------------------------------------


/** `$1` view, `$2` start (exclusive, null = none), `$3` end (inclusive); answers candidates and written. */
function upsertSql(view: FeatureView, entity: Entity): string {
  const keys = entity.joinKeys.map((k) => `f.${quote(k.name)}`);
  const keyText = entity.joinKeys.map((k, i) => `to_json(${keys[i]}::${k.type === 'int64' ? 'int8' : 'text'})::text`);
  const ets = `f.${quote(view.source.eventTimestamp)}`;
  const cts = view.source.createdTimestamp === undefined ? undefined : `f.${quote(view.source.createdTimestamp)}`;
  const values = view.features.map((f) => `'${f.name}', ${outputExpression(`f.${quote(f.name)}`, featureColumnType(f.type))}`);
  const where = [...keys.map((k) => `${k} IS NOT NULL`), `${ets} IS NOT NULL`, `${ets} <= $3::timestamptz`];
  if (cts) {
    where.push(`(${cts} IS NULL OR ${cts} <= $3::timestamptz)`);
    where.push(`($2::timestamptz IS NULL OR ${ets} > $2::timestamptz OR ${cts} > $2::timestamptz)`);
  } else {
    where.push(`($2::timestamptz IS NULL OR ${ets} > $2::timestamptz)`);
  }
  const order = [...keys, `${ets} DESC`, ...(cts ? [`${cts} DESC NULLS LAST`] : [])];
  // jsonb_build_object takes at most 100 arguments: build 50 features at a time and concatenate.
  const objects: string[] = [];
  for (let i = 0; i < values.length; i += 50) objects.push(`jsonb_build_object(${values.slice(i, i + 50).join(', ')})`);
  const rank = (alias: string) => `(${alias}.event_timestamp, coalesce(${alias}.created_timestamp, '-infinity'::timestamptz))`;
  return `WITH candidates AS (
  SELECT DISTINCT ON (${keys.join(', ')})
         '[' || concat_ws(',', ${keyText.join(', ')}) || ']' AS entity_key,
         ${objects.join(' || ')} AS features,
         ${ets}::timestamptz AS event_timestamp,
         ${cts ? `${cts}::timestamptz` : 'NULL::timestamptz'} AS created_timestamp
    FROM ${quoteTable(view.source.table)} f
   WHERE ${where.join('\n     AND ')}
   ORDER BY ${order.join(', ')}
), written AS (
  INSERT INTO online_features AS o (view, entity_key, features, event_timestamp, created_timestamp, updated_at)
  SELECT $1::text, c.entity_key, c.features, c.event_timestamp, c.created_timestamp, now() FROM candidates c
  ON CONFLICT (view, entity_key) DO UPDATE SET
    features = EXCLUDED.features,
    event_timestamp = EXCLUDED.event_timestamp,
    created_timestamp = EXCLUDED.created_timestamp,
    updated_at = EXCLUDED.updated_at
  WHERE ${rank('EXCLUDED')} > ${rank('o')}
     OR (${rank('EXCLUDED')} = ${rank('o')} AND EXCLUDED.features IS DISTINCT FROM o.features)
  RETURNING 1
)
SELECT (SELECT count(*) FROM candidates) AS candidates, (SELECT count(*) FROM written) AS written`;
}

/** Historical retrieval's checks of the view's source table, on zero entity rows (no data read). */
async function checkSource(db: Db, definitions: StoredFeatureDefinitions, view: FeatureView, entity: Entity): Promise<void> {
  const ts = '__keel_materialize_ts';
  const columns = [
    timestampColumn(ts, []),
    ...entity.joinKeys.map((k) => (k.type === 'int64' ? numberColumn(k.name, []) : categoryColumn(k.name, []))),
  ];
  await historicalQueryPlan(db, {
    entities: { rows: createTable(columns, 0) },
    timestampColumn: ts,
    features: view.features.map((f) => `${view.name}:${f.name}`),
    definitions: { entities: definitions.entities, featureViews: definitions.featureViews, featureServices: definitions.featureServices },
    fullFeatureNames: true,
  });
}

function toDate(value: Date | string, field: string): Date {
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new InvalidInput(`${field} ${JSON.stringify(value)} is not a valid date-time`, field);
  return date;
}
