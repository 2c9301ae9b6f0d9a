/**
 * Feature statistics per view and time range: the profile of the ML core (`profileTable`: count,
 * nulls, min/max/mean/std, numpy quantiles and histogram, or top frequencies) of a feature view's
 * offline rows whose event timestamp lies in [start, end). Monitors compare these with a model's
 * training profile.
 *
 * The rows are read in one REPEATABLE READ, read-only transaction (TimeZone UTC, so a `timestamp`
 * or `date` event column reads as UTC) through a cursor, `chunkSize` rows at a time, straight into
 * typed column buffers (8 bytes a number, 1 a boolean, 4 a category code), and profiled with the
 * very `profileTable` training sets use, so the numbers are the same as profiling the same rows
 * anywhere else. Only parameterised SQL; table and column names come from validated definitions
 * and are double-quoted.
 */
import type { Column, ColumnType, Table } from '../../lib/data/table.js';
import { categoryColumnFromCodes, createTable } from '../../lib/data/table.js';
import type { ProfileOptions, TableProfile } from '../../lib/data/profile.js';
import { profileTable } from '../../lib/data/profile.js';
import { InvalidInput } from '../../lib/errors.js';
import type { FeatureDefinitionsInput, FeatureView } from '../../lib/features/definitions.js';
import { definitionVersion } from '../../lib/features/definitions.js';
import { validateFeatureDefinitions } from '../../lib/features/validate.js';
import type { Db, DbClient } from '../db.js';
import { loadFeatureDefinitions } from './registry.js';
import { featureColumnType, outputExpression, quote, quoteTable } from './sql.js';

export type TimeBound = Date | string | number;

export interface FeatureViewStatisticsOptions {
  /** The feature view's name. */
  view: string;
  /** Inclusive lower bound on the event timestamp (Date, ISO text or epoch ms); default: none. */
  start?: TimeBound;
  /** Exclusive upper bound on the event timestamp; default: none. */
  end?: TimeBound;
  /** Features to profile, in this order; default: every feature of the view, in definition order. */
  features?: readonly string[];
  /** The definitions to use; default: the registry's. */
  definitions?: FeatureDefinitionsInput;
  /** Rows per cursor fetch; default 50 000. */
  chunkSize?: number;
  /** Histogram bins and top values, as `profileTable`. */
  profile?: ProfileOptions;
}

export interface FeatureViewStatistics {
  view: string;
  /** The version of the view's definition the rows were read with. */
  version: string;
  table: string;
  eventTimestamp: string;
  /** ISO 8601 bounds, null when open. */
  start: string | null;
  end: string | null;
  profile: TableProfile;
}

const DEFAULT_CHUNK = 50_000;
const CURSOR = 'keel_feature_stats';

/** The profile of the view's offline rows with event timestamp in [start, end). */
export async function featureViewStatistics(db: Db, options: FeatureViewStatisticsOptions): Promise<TableProfile> {
  return (await featureViewStatisticsReport(db, options)).profile;
}

/** `featureViewStatistics` with what was profiled: view version, table and bounds. */
export async function featureViewStatisticsReport(db: Db, options: FeatureViewStatisticsOptions): Promise<FeatureViewStatistics> {
  if (!options || typeof options !== 'object') throw new InvalidInput('feature statistics options must be an object');
  const start = parseBound(options.start, 'start');
  const end = parseBound(options.end, 'end');
  if (start !== null && end !== null && end.getTime() <= start.getTime()) {
    throw new InvalidInput(`end (${end.toISOString()}) must be after start (${start.toISOString()})`, 'end');
  }
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new InvalidInput('chunkSize must be a positive integer', 'chunkSize');

  const views = options.definitions
    ? validateFeatureDefinitions(options.definitions).featureViews
    : (await loadFeatureDefinitions(db)).featureViews;
  const view = views.find((v) => v.name === options.view);
  if (!view) {
    throw new InvalidInput(
      `unknown feature view ${JSON.stringify(options.view)} (feature views: ${views.map((v) => v.name).join(', ') || 'none'})`,
      'view',
    );
  }
  const features = selectFeatures(view, options.features);

  const client = await db.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      await client.query("SET LOCAL TimeZone = 'UTC'");
      await checkSource(client, view, features.map((f) => f.name));
      const table = await readRows(client, view, features, start, end, chunkSize);
      await client.query('COMMIT');
      return {
        view: view.name,
        version: definitionVersion(view),
        table: view.source.table,
        eventTimestamp: view.source.eventTimestamp,
        start: start?.toISOString() ?? null,
        end: end?.toISOString() ?? null,
        profile: profileTable(table, options.profile),
      };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    client.release();
  }
}

function parseBound(value: TimeBound | undefined, field: string): Date | null {
  if (value === undefined || value === null) return null;
  const date = value instanceof Date ? new Date(value.getTime()) : typeof value === 'number' ? new Date(value) : typeof value === 'string' ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) {
    throw new InvalidInput(`${field} must be a date, an ISO 8601 timestamp or epoch milliseconds, got ${JSON.stringify(value)}`, field);
  }
  return date;
}

function selectFeatures(view: FeatureView, names: readonly string[] | undefined): FeatureView['features'] {
  if (names === undefined) return view.features;
  if (!Array.isArray(names) || names.length === 0) throw new InvalidInput('features must list at least one feature of the view', 'features');
  const unknown = names.filter((n) => !view.features.some((f) => f.name === n));
  if (unknown.length) {
    throw new InvalidInput(
      `feature view ${view.name} has no feature ${unknown.join(', ')} (its features: ${view.features.map((f) => f.name).join(', ')})`,
      'features',
    );
  }
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated) throw new InvalidInput(`feature ${repeated} is requested twice`, 'features');
  return names.map((n) => view.features.find((f) => f.name === n)!);
}

async function checkSource(client: DbClient, view: FeatureView, features: string[]): Promise<void> {
  const { rows } = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [quoteTable(view.source.table)]);
  const oid = rows[0]?.oid;
  if (oid === null || oid === undefined) {
    throw new InvalidInput(`feature view ${view.name}: table ${view.source.table} does not exist`, 'view');
  }
  const columns = await client.query<{ name: string }>(
    'SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped',
    [oid],
  );
  const present = new Set(columns.rows.map((c) => c.name));
  const missing = [view.source.eventTimestamp, ...features].filter((c) => !present.has(c));
  if (missing.length) {
    throw new InvalidInput(`feature view ${view.name}: table ${view.source.table} has no column ${missing.join(', ')}`, 'view');
  }
}

async function readRows(
  client: DbClient,
  view: FeatureView,
  features: FeatureView['features'],
  start: Date | null,
  end: Date | null,
  chunkSize: number,
): Promise<Table> {
  const types = features.map((f) => featureColumnType(f.type));
  const ets = quote(view.source.eventTimestamp);
  const where: string[] = [];
  const params: unknown[] = [];
  if (start) {
    params.push(start.toISOString());
    where.push(`${ets} >= $${params.length}::timestamptz`);
  }
  if (end) {
    params.push(end.toISOString());
    where.push(`${ets} < $${params.length}::timestamptz`);
  }
  const select = features.map((f, j) => outputExpression(`f.${quote(f.name)}`, types[j]!));
  const sql =
    `DECLARE ${CURSOR} NO SCROLL CURSOR FOR SELECT ${select.join(', ')} FROM ${quoteTable(view.source.table)} f` +
    (where.length ? ` WHERE ${where.join(' AND ')}` : '');
  try {
    await client.query(sql, params);
  } catch (error) {
    // 42846 cannot cast, 22P02 invalid text for the type: the column does not hold the declared feature type
    const code = (error as { code?: string }).code;
    if (code === '42846' || code === '42883' || code === '22P02') {
      throw new InvalidInput(`feature view ${view.name}: a column of ${view.source.table} does not hold its declared type: ${(error as Error).message}`, 'view');
    }
    throw error;
  }
  const buffers = types.map((type) => new ColumnBuffer(type));
  let rowCount = 0;
  for (;;) {
    const result = await client.query<unknown[]>({ text: `FETCH ${chunkSize} FROM ${CURSOR}`, rowMode: 'array' });
    for (const row of result.rows) {
      for (let j = 0; j < buffers.length; j++) buffers[j]!.push(row[j]);
    }
    rowCount += result.rows.length;
    if (result.rows.length < chunkSize) break;
  }
  await client.query(`CLOSE ${CURSOR}`);
  const columns: Column[] = features.map((f, j) => buffers[j]!.finish(f.name));
  return createTable(columns, rowCount);
}

/** A growing typed column: chunks of typed arrays, concatenated once at the end. */
class ColumnBuffer {
  private readonly chunks: Array<Float64Array | Int8Array | Int32Array> = [];
  private current: Float64Array | Int8Array | Int32Array;
  private used = 0;
  private readonly codes = new Map<string, number>();
  private readonly categories: string[] = [];

  constructor(private readonly type: ColumnType) {
    this.current = this.allocate(4096);
  }

  private allocate(size: number): Float64Array | Int8Array | Int32Array {
    if (this.type === 'number' || this.type === 'timestamp') return new Float64Array(size);
    if (this.type === 'boolean') return new Int8Array(size);
    return new Int32Array(size);
  }

  push(value: unknown): void {
    if (this.used === this.current.length) {
      this.chunks.push(this.current);
      this.current = this.allocate(Math.min(this.current.length * 2, 1 << 20));
      this.used = 0;
    }
    let cell: number;
    if (this.type === 'number' || this.type === 'timestamp') {
      cell = value === null || value === undefined ? NaN : typeof value === 'number' ? value : Number(value);
    } else if (this.type === 'boolean') {
      cell = value === null || value === undefined ? -1 : value ? 1 : 0;
    } else if (value === null || value === undefined) {
      cell = -1;
    } else {
      const text = String(value);
      let code = this.codes.get(text);
      if (code === undefined) {
        code = this.categories.length;
        this.categories.push(text);
        this.codes.set(text, code);
      }
      cell = code;
    }
    this.current[this.used++] = cell;
  }

  finish(name: string): Column {
    const parts = [...this.chunks, this.current.subarray(0, this.used)];
    const length = parts.reduce((n, p) => n + p.length, 0);
    const out = this.allocate(length);
    let offset = 0;
    for (const part of parts) {
      (out as Float64Array).set(part as Float64Array, offset);
      offset += part.length;
    }
    switch (this.type) {
      case 'number':
      case 'timestamp':
        return { name, type: this.type, values: out as Float64Array };
      case 'boolean':
        return { name, type: 'boolean', values: out as Int8Array };
      case 'category':
        return categoryColumnFromCodes(name, out as Int32Array, this.categories);
    }
  }
}
