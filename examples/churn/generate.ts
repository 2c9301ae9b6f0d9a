/**
 * Writes the churn example (see world.ts and README.md) to Postgres: raw events, Feast-style
 * feature snapshot tables and the labels, in one schema (default `churn`), inside one
 * transaction under an advisory lock. `ensureChurnExample` generates only when the schema does
 * not already hold the data of the same options.
 *
 * CLI: node --import tsx examples/churn/generate.ts [--label-rows N] [--seed S]
 *        [--drift-from DATE --drift-strength X] [--if-changed] …   (DATABASE_URL; --help)
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { InvalidInput } from '../../lib/errors.js';
import { canonicalJson } from '../../lib/canonical-json.js';
import { identifierSchema, IDENTIFIER } from '../../lib/features/definitions.js';
import { sha256Hex } from '../../lib/hash.js';
import { describeZodError } from '../../lib/validation.js';
import type { Db, DbClient } from '../../stores/db.js';
import { createDb, redactUrl } from '../../stores/db.js';
import type { RowSink } from './world.js';
import { CHANNELS, ChurnWorld, CONTRACTS, HISTORY_DAYS, PAYMENT_METHODS, PLANS, REGIONS, SNAPSHOT_EVERY_DAYS, SUPPORT_KINDS } from './world.js';

/** Part of the options hash: a change to the generator regenerates existing data. */
export const CHURN_GENERATOR_VERSION = 1;

const DAY_MS = 86_400_000;

// ---- options ------------------------------------------------------------------------------------

const optionsObjectSchema = z
  .object({
    /** Postgres schema of the tables. */
    schema: identifierSchema.default('churn'),
    /** Labels to draw: customer-days (a customer at a prediction time, churned or not within the horizon). */
    labelRows: z.number().int().min(1_000).max(10_000_000).default(20_000),
    /** Customers to simulate; default about one per 12 label rows (scaled with the period). */
    customers: z.number().int().min(100).max(5_000_000).optional(),
    seed: z.number().int().min(0).max(0xffffffff).default(42),
    /** First day of the period (UTC), YYYY-MM-DD. Raw events start 90 days earlier. */
    start: z.iso.date().default('2026-01-01'),
    months: z.number().int().min(2).max(36).default(6),
    /** A label is true when the customer leaves within this many days after the prediction time. */
    horizonDays: z.number().int().min(7).max(90).default(30),
    /** From `from` on: a new plan, shifted distributions and a changed label relation, scaled by `strength`. */
    drift: z
      .object({ from: z.iso.date(), strength: z.number().min(0).max(1).default(1) })
      .strict()
      .nullish(),
  })
  .strict();

interface Period {
  startMs: number;
  endMs: number;
  days: number;
  monthStarts: number[];
}

/** Midnight (UTC) of a YYYY-MM-DD date, in epoch milliseconds. */
function midnightMs(date: string): number {
  return Date.parse(`${date}T00:00:00Z`);
}

function periodOf(start: string, months: number): Period {
  const startMs = midnightMs(start);
  const first = new Date(startMs);
  const monthStart = (k: number) => Date.UTC(first.getUTCFullYear(), first.getUTCMonth() + k, first.getUTCDate());
  const endMs = monthStart(months);
  const monthStarts: number[] = [];
  for (let k = 0; k < months; k++) monthStarts.push(Math.round((monthStart(k) - startMs) / DAY_MS));
  return { startMs, endMs, days: Math.round((endMs - startMs) / DAY_MS), monthStarts };
}

/** Days from the period's first day to `date` (negative before it). */
function dayOfPeriod(period: Period, date: string): number {
  return (midnightMs(date) - period.startMs) / DAY_MS;
}

/** The drift takes effect on the first weekly snapshot day (counted from the start) on or after `from`. */
function driftStartMs(period: Period, from: string): number {
  const day = dayOfPeriod(period, from);
  return period.startMs + Math.ceil(day / SNAPSHOT_EVERY_DAYS) * SNAPSHOT_EVERY_DAYS * DAY_MS;
}

/** Customers giving about `labelRows` labels at an eighth-or-so of their eligible days. */
function defaultCustomers(labelRows: number, days: number, horizonDays: number): number {
  const perCustomer = Math.max(2, Math.round((days - horizonDays) * 0.08));
  return Math.min(5_000_000, Math.max(100, Math.ceil(labelRows / perCustomer)));
}

export const churnOptionsSchema = optionsObjectSchema
  .superRefine((o, ctx) => {
    const period = periodOf(o.start, o.months);
    if (period.days - o.horizonDays < 28) {
      ctx.addIssue({ code: 'custom', path: ['horizonDays'], message: `leaves fewer than 28 days of the ${period.days}-day period for predictions` });
    }
    if (o.drift) {
      const from = midnightMs(o.drift.from);
      const effective = driftStartMs(period, o.drift.from);
      if (!(from > period.startMs && effective < period.endMs)) {
        ctx.addIssue({
          code: 'custom',
          path: ['drift', 'from'],
          message: `must be after ${o.start} and at least a week before the period ends on ${new Date(period.endMs).toISOString().slice(0, 10)}`,
        });
      }
    }
  })
  .transform(({ drift, customers, ...o }) => ({
    ...o,
    customers: customers ?? defaultCustomers(o.labelRows, periodOf(o.start, o.months).days, o.horizonDays),
    ...(drift ? { drift } : {}),
  }));

export type ChurnOptionsInput = z.input<typeof churnOptionsSchema>;
export type ChurnOptions = z.output<typeof churnOptionsSchema>;

/** Parses options with every default filled in; bad input throws `InvalidInput` naming the field. */
export function parseChurnOptions(input: unknown = {}): ChurnOptions {
  const parsed = churnOptionsSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const problem = describeZodError(parsed.error);
    throw new InvalidInput(`churn example options: ${problem.message}`, problem.field);
  }
  return parsed.data;
}

/** The hash stored in `<schema>.generation`: same options and generator version, same data. */
export function churnOptionsHash(options: ChurnOptions): string {
  return sha256Hex(canonicalJson({ generator: CHURN_GENERATOR_VERSION, options }));
}

// ---- tables -------------------------------------------------------------------------------------

export const CHURN_TABLES = ['customers', 'orders', 'support_events', 'customer_profile', 'order_activity', 'support_activity', 'labels'] as const;
export type ChurnTable = (typeof CHURN_TABLES)[number];
export type ChurnRowCounts = Record<ChurnTable, number>;
/** The tables of a complete example: the data and the `generation` row describing it. */
const STORED_TABLES = [...CHURN_TABLES, 'generation'] as const;

export interface ChurnSummary {
  schema: string;
  options: ChurnOptions;
  optionsHash: string;
  generatorVersion: number;
  rows: ChurnRowCounts;
  /** Share of labels that are true. */
  positiveRate: number;
  /** The simulated period (raw events begin `historyStart`, 90 days before it, so early snapshots have history). */
  timeRange: { start: string; end: string; historyStart: string };
  /** Earliest and latest prediction time in the labels. */
  labelTimeRange: { first: string; last: string };
  /** When the drift takes effect (the first weekly snapshot on or after `options.drift.from`), or null. */
  driftStart: string | null;
  generatedAt: string;
  elapsedMs: number;
}

export interface ChurnProgress {
  phase: 'customers' | 'labels' | 'indexes';
  done: number;
  total: number;
}

export interface ChurnGenerateHooks {
  /** Called after each batch; long runs can turn it into heartbeats or a progress line. */
  onProgress?: (progress: ChurnProgress) => void;
}

type ColumnKind = 'bigint' | 'integer' | 'float' | 'time' | 'bool' | 'category';

interface ColumnSpec {
  name: string;
  kind: ColumnKind;
  categories?: readonly string[];
  nullable?: boolean;
}

interface TableSpec {
  name: ChurnTable;
  columns: ColumnSpec[];
  primaryKey?: string[];
  /** Column lists of secondary indexes, built after the load. */
  indexes: string[][];
}

const entityAndTimes: ColumnSpec[] = [
  { name: 'customer_id', kind: 'bigint' },
  { name: 'event_timestamp', kind: 'time' },
  { name: 'created_timestamp', kind: 'time' },
];

/** A customer's contract and account facts: the raw `customers` table has the final ones, `customer_profile` each version. */
const accountColumns: ColumnSpec[] = [
  { name: 'plan', kind: 'category', categories: PLANS },
  { name: 'region', kind: 'category', categories: REGIONS },
  { name: 'contract', kind: 'category', categories: CONTRACTS },
  { name: 'payment_method', kind: 'category', categories: PAYMENT_METHODS },
  { name: 'autopay', kind: 'bool' },
  { name: 'acquisition_channel', kind: 'category', categories: CHANNELS },
  { name: 'monthly_fee', kind: 'float' },
];

const TABLE_SPECS: readonly TableSpec[] = [
  {
    name: 'customers',
    columns: [
      { name: 'customer_id', kind: 'bigint' },
      { name: 'signup_at', kind: 'time' },
      ...accountColumns,
      { name: 'churned_at', kind: 'time', nullable: true },
    ],
    primaryKey: ['customer_id'],
    indexes: [],
  },
  {
    name: 'orders',
    columns: [
      { name: 'order_id', kind: 'bigint' },
      { name: 'customer_id', kind: 'bigint' },
      { name: 'ordered_at', kind: 'time' },
      { name: 'amount', kind: 'float' },
    ],
    primaryKey: ['order_id'],
    indexes: [['customer_id', 'ordered_at']],
  },
  {
    name: 'support_events',
    columns: [
      { name: 'event_id', kind: 'bigint' },
      { name: 'customer_id', kind: 'bigint' },
      { name: 'occurred_at', kind: 'time' },
      { name: 'kind', kind: 'category', categories: SUPPORT_KINDS },
      { name: 'severity', kind: 'integer' },
    ],
    primaryKey: ['event_id'],
    indexes: [['customer_id', 'occurred_at']],
  },
  {
    name: 'customer_profile',
    columns: [...entityAndTimes, ...accountColumns, { name: 'tenure_days', kind: 'bigint' }],
    indexes: [['customer_id', 'event_timestamp']],
  },
  {
    name: 'order_activity',
    columns: [
      ...entityAndTimes,
      { name: 'orders_7d', kind: 'bigint' },
      { name: 'orders_30d', kind: 'bigint' },
      { name: 'orders_90d', kind: 'bigint' },
      { name: 'spend_30d', kind: 'float' },
      { name: 'avg_order_value_90d', kind: 'float', nullable: true },
      { name: 'days_since_last_order', kind: 'bigint', nullable: true },
    ],
    indexes: [['customer_id', 'event_timestamp']],
  },
  {
    name: 'support_activity',
    columns: [
      ...entityAndTimes,
      { name: 'tickets_30d', kind: 'bigint' },
      { name: 'tickets_90d', kind: 'bigint' },
      { name: 'complaints_30d', kind: 'bigint' },
      { name: 'complaints_90d', kind: 'bigint' },
      { name: 'max_severity_30d', kind: 'bigint' },
      { name: 'days_since_last_ticket', kind: 'bigint', nullable: true },
    ],
    indexes: [['customer_id', 'event_timestamp']],
  },
  {
    name: 'labels',
    columns: [
      { name: 'customer_id', kind: 'bigint' },
      { name: 'event_timestamp', kind: 'time' },
      { name: 'churned', kind: 'bool' },
    ],
    primaryKey: ['customer_id', 'event_timestamp'],
    indexes: [['event_timestamp']],
  },
];

/** The columns of each table, in order. */
export const CHURN_TABLE_COLUMNS = Object.fromEntries(TABLE_SPECS.map((spec) => [spec.name, spec.columns.map((c) => c.name)])) as Record<
  ChurnTable,
  string[]
>;

const SQL_TYPE: Record<ColumnKind, string> = {
  bigint: 'bigint',
  integer: 'integer',
  float: 'double precision',
  time: 'timestamptz',
  bool: 'boolean',
  category: 'text',
};
/** How a column travels: as an array of numbers (epoch seconds, 1-based category codes, 0/1). */
const PARAM_TYPE: Record<ColumnKind, string> = {
  bigint: 'bigint[]',
  integer: 'integer[]',
  float: 'float8[]',
  time: 'bigint[]',
  bool: 'smallint[]',
  category: 'smallint[]',
};

function checkedSchema(schema: string): string {
  if (!IDENTIFIER.test(schema)) throw new InvalidInput(`schema must match ^[a-z_][a-z0-9_]{0,62}$, got ${JSON.stringify(schema)}`, 'schema');
  return schema;
}

function createTableSql(schema: string, spec: TableSpec): string {
  const columns = spec.columns.map((c) => `${c.name} ${SQL_TYPE[c.kind]}${c.nullable ? '' : ' NOT NULL'}`);
  return `CREATE TABLE IF NOT EXISTS ${schema}.${spec.name} (${columns.join(', ')})`;
}

function insertSql(schema: string, spec: TableSpec): { sql: string; categoryParams: string[][] } {
  const n = spec.columns.length;
  const categoryParams: string[][] = [];
  const select = spec.columns.map((c, i) => {
    const v = `u.c${i}`;
    switch (c.kind) {
      case 'time':
        return `to_timestamp(${v})`;
      case 'bool':
        return `(${v} <> 0)`;
      case 'category':
        categoryParams.push([...c.categories!]);
        return `($${n + categoryParams.length}::text[])[${v}]`;
      default:
        return v;
    }
  });
  const params = spec.columns.map((c, i) => `$${i + 1}::${PARAM_TYPE[c.kind]}`);
  const names = spec.columns.map((_, i) => `c${i}`);
  const sql =
    `INSERT INTO ${schema}.${spec.name} (${spec.columns.map((c) => c.name).join(', ')}) ` +
    `SELECT ${select.join(', ')} FROM unnest(${params.join(', ')}) AS u(${names.join(', ')})`;
  return { sql, categoryParams };
}

/** A Postgres array literal of numbers; NaN is NULL. */
function arrayLiteral(values: Float64Array, n: number): string {
  const parts = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    parts[i] = v === v ? String(v) : 'NULL';
  }
  return `{${parts.join(',')}}`;
}

/**
 * Queries sent one after the other on one connection without the caller waiting for each, so the
 * next chunk is computed while Postgres stores the last; a bound keeps memory flat.
 */
class Pipeline {
  private readonly pending: Array<Promise<void>> = [];
  private last: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(private readonly client: DbClient) {}

  submit(sql: string, params: unknown[]): void {
    const run = this.last
      .then(async () => {
        if (this.failure === undefined) await this.client.query(sql, params);
      })
      .catch((error: unknown) => {
        this.failure ??= error;
      });
    this.last = run;
    this.pending.push(run);
  }

  /** Waits until at most `limit` queries are queued; throws the first failure. */
  async drain(limit = 0): Promise<void> {
    while (this.pending.length > limit) await this.pending.shift();
    if (this.failure !== undefined) throw this.failure;
  }
}

/** Rows per INSERT statement. */
const CHUNK_ROWS = 10_000;
/** Customers simulated between two waits for the database. */
const CUSTOMER_BATCH = 500;
const LABEL_BATCH = 20_000;

/** Collects one table's rows, a column array each, and sends them to Postgres `CHUNK_ROWS` at a time. */
class TableLoader {
  private readonly columns: Float64Array[];
  /** Added to each column's values: 1 for categories (1-based codes into the category list), else 0. */
  private readonly codeOffsets: Float64Array;
  private rowCount = 0;
  private readonly sql: string;
  private readonly categoryParams: string[][];

  constructor(
    schema: string,
    readonly spec: TableSpec,
    private readonly pipeline: Pipeline,
  ) {
    this.columns = spec.columns.map(() => new Float64Array(CHUNK_ROWS));
    this.codeOffsets = Float64Array.from(spec.columns, (c) => (c.kind === 'category' ? 1 : 0));
    ({ sql: this.sql, categoryParams: this.categoryParams } = insertSql(schema, spec));
  }

  /**
   * Adds a row: its values in column order, as the world emits them (categories as 0-based
   * indexes, NaN for null). A bound function, so that it can serve as a `RowSink` call itself.
   */
  readonly append = (...values: number[]): void => {
    const columns = this.columns;
    if (values.length !== columns.length) throw new Error(`${this.spec.name}: a row has ${columns.length} values, got ${values.length}`);
    const row = this.rowCount;
    for (let k = 0; k < columns.length; k++) columns[k]![row] = values[k]! + this.codeOffsets[k]!;
    if (++this.rowCount === CHUNK_ROWS) this.flush();
  };

  flush(): void {
    if (this.rowCount === 0) return;
    const params: unknown[] = this.columns.map((column) => arrayLiteral(column, this.rowCount));
    for (const categories of this.categoryParams) params.push(categories);
    this.pipeline.submit(this.sql, params);
    this.rowCount = 0;
  }
}

/** The table each of the world's `RowSink` calls writes: a call's arguments are that table's columns, in order. */
const SINK_TABLES: Record<keyof RowSink, ChurnTable> = {
  customer: 'customers',
  order: 'orders',
  support: 'support_events',
  profile: 'customer_profile',
  orderActivity: 'order_activity',
  supportActivity: 'support_activity',
  label: 'labels',
};

/** Writes the world's rows into the table loaders; `rows` is the `RowSink` to hand the world. */
class LoadingSink {
  private readonly loaders: Record<ChurnTable, TableLoader>;
  readonly rows: RowSink;
  firstLabelSec = Infinity;
  lastLabelSec = -Infinity;

  constructor(schema: string, pipeline: Pipeline) {
    this.loaders = Object.fromEntries(TABLE_SPECS.map((spec) => [spec.name, new TableLoader(schema, spec, pipeline)])) as Record<ChurnTable, TableLoader>;
    const rows = {} as Record<keyof RowSink, (...values: number[]) => void>;
    for (const [call, table] of Object.entries(SINK_TABLES) as Array<[keyof RowSink, ChurnTable]>) rows[call] = this.loaders[table].append;
    const labels = this.loaders.labels;
    rows.label = (customerId, sec, churned) => {
      if (sec < this.firstLabelSec) this.firstLabelSec = sec;
      if (sec > this.lastLabelSec) this.lastLabelSec = sec;
      labels.append(customerId, sec, churned);
    };
    this.rows = rows;
  }

  flushAll(): void {
    for (const loader of Object.values(this.loaders)) loader.flush();
  }
}

// ---- generation ---------------------------------------------------------------------------------

function lockKey(schema: string): string {
  return `keel:examples:churn:${schema}`;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Where a generation builds its tables before they replace the old ones: `<schema>__next`. */
function stagingSchema(schema: string): string {
  return `${schema.slice(0, 56)}__next`;
}

/**
 * Replaces the example's tables in `options.schema` inside the caller's transaction (which holds
 * the lock). The new tables are built and indexed in a staging schema and moved in at the end, so
 * readers of the old tables are blocked only for the swap, not for the whole load.
 */
async function generateInTransaction(client: DbClient, options: ChurnOptions, hooks: ChurnGenerateHooks, startedMs: number): Promise<ChurnSummary> {
  const target = checkedSchema(options.schema);
  const schema = stagingSchema(target);
  const period = periodOf(options.start, options.months);
  const progress = hooks.onProgress ?? (() => undefined);

  await client.query(`SET LOCAL maintenance_work_mem = '256MB'`);
  // Left over only if someone made it: a failed generation rolls its staging schema back.
  await client.query(`CREATE SCHEMA ${schema}`);
  for (const spec of TABLE_SPECS) await client.query(createTableSql(schema, spec));
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${schema}.generation (
       id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
       generator_version integer NOT NULL,
       options jsonb NOT NULL,
       options_hash text NOT NULL,
       row_counts jsonb NOT NULL,
       summary jsonb NOT NULL,
       generated_at timestamptz NOT NULL DEFAULT now()
     )`,
  );

  const world = new ChurnWorld({
    seed: options.seed,
    customers: options.customers,
    startSec: period.startMs / 1000,
    days: period.days,
    horizonDays: options.horizonDays,
    monthStarts: period.monthStarts,
    ...(options.drift
      ? { drift: { fromDay: Math.round(dayOfPeriod(period, options.drift.from)), strength: options.drift.strength } }
      : {}),
  });
  const pipeline = new Pipeline(client);
  const sink = new LoadingSink(schema, pipeline);

  for (let from = 0; from < options.customers; from += CUSTOMER_BATCH) {
    const to = Math.min(options.customers, from + CUSTOMER_BATCH);
    world.emitCustomers(from, to, sink.rows);
    await pipeline.drain(2);
    progress({ phase: 'customers', done: to, total: options.customers });
  }
  const eligible = world.eligibleDays();
  if (eligible < options.labelRows) {
    throw new InvalidInput(
      `churn example options: customers: ${options.customers} customers have only ${eligible} customer-days to label, fewer than labelRows ${options.labelRows}; raise customers or leave it out`,
      'customers',
    );
  }
  for (let from = 0; from < options.customers; from += LABEL_BATCH) {
    const to = Math.min(options.customers, from + LABEL_BATCH);
    world.emitLabels(options.labelRows, from, to, sink.rows);
    await pipeline.drain(2);
    progress({ phase: 'labels', done: world.counts.labels, total: options.labelRows });
  }
  sink.flushAll();
  await pipeline.drain(0);

  let built = 0;
  const indexCount = TABLE_SPECS.reduce((n, spec) => n + spec.indexes.length + (spec.primaryKey ? 1 : 0), 0);
  for (const spec of TABLE_SPECS) {
    if (spec.primaryKey) {
      await client.query(`ALTER TABLE ${schema}.${spec.name} ADD PRIMARY KEY (${spec.primaryKey.join(', ')})`);
      progress({ phase: 'indexes', done: ++built, total: indexCount });
    }
    for (const columns of spec.indexes) {
      await client.query(`CREATE INDEX ${spec.name}_${columns.join('_')}_idx ON ${schema}.${spec.name} (${columns.join(', ')})`);
      progress({ phase: 'indexes', done: ++built, total: indexCount });
    }
    await client.query(`ANALYZE ${schema}.${spec.name}`);
  }

  const counts = world.counts;
  const rows = Object.fromEntries(CHURN_TABLES.map((table) => [table, counts[table]])) as ChurnRowCounts;
  const generatedAt = new Date();
  const summary: ChurnSummary = {
    schema: target,
    options,
    optionsHash: churnOptionsHash(options),
    generatorVersion: CHURN_GENERATOR_VERSION,
    rows,
    positiveRate: counts.labels ? counts.positives / counts.labels : 0,
    timeRange: { start: iso(period.startMs), end: iso(period.endMs), historyStart: iso(period.startMs - HISTORY_DAYS * DAY_MS) },
    labelTimeRange: { first: iso(sink.firstLabelSec * 1000), last: iso(sink.lastLabelSec * 1000) },
    driftStart: options.drift ? iso(driftStartMs(period, options.drift.from)) : null,
    generatedAt: generatedAt.toISOString(),
    elapsedMs: Date.now() - startedMs,
  };
  await client.query(
    `INSERT INTO ${schema}.generation (id, generator_version, options, options_hash, row_counts, summary, generated_at)
     VALUES (1, $1, $2, $3, $4, $5, $6)`,
    [CHURN_GENERATOR_VERSION, JSON.stringify(options), summary.optionsHash, JSON.stringify(rows), JSON.stringify(summary), generatedAt],
  );

  // The swap: the old tables go, the new ones (with their indexes) move in.
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${target}`);
  await client.query(`DROP TABLE IF EXISTS ${STORED_TABLES.map((t) => `${target}.${t}`).join(', ')}`);
  for (const table of STORED_TABLES) await client.query(`ALTER TABLE ${schema}.${table} SET SCHEMA ${target}`);
  await client.query(`DROP SCHEMA ${schema}`);
  return summary;
}

/** Runs `work` in a transaction holding the schema's advisory lock: one generation at a time per schema. */
async function underLock<T>(db: Db, schema: string, work: (client: DbClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  let broken = false;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [lockKey(schema)]);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/**
 * Generates the churn example into `options.schema` (default `churn`), replacing its tables, in
 * one transaction: readers see the old data or the new, never half of it.
 */
export async function generateChurn(db: Db, options: ChurnOptionsInput = {}, hooks: ChurnGenerateHooks = {}): Promise<ChurnSummary> {
  const started = Date.now();
  const parsed = parseChurnOptions(options);
  return underLock(db, parsed.schema, (client) => generateInTransaction(client, parsed, hooks, started));
}

/** The summary of what `schema` holds now, or null when it holds no (complete) churn example. */
export async function readChurnGeneration(db: Db | DbClient, schema = 'churn'): Promise<ChurnSummary | null> {
  checkedSchema(schema);
  const tables = STORED_TABLES.map((t) => `${schema}.${t}`);
  const { rows: exists } = await db.query<{ n: number }>('SELECT count(to_regclass(t))::int AS n FROM unnest($1::text[]) AS t', [tables]);
  if (exists[0]?.n !== tables.length) return null;
  const { rows } = await db.query<{ summary: ChurnSummary }>(`SELECT summary FROM ${schema}.generation WHERE id = 1`);
  return rows[0]?.summary ?? null;
}

/**
 * Makes sure `options.schema` holds the churn example of these options: a no-op when it already
 * does (same options hash), otherwise generates it (replacing other options' data). Workers may
 * call it at once: an advisory lock lets one generate while the others wait and then reuse it.
 */
export async function ensureChurnExample(
  db: Db,
  options: ChurnOptionsInput = {},
  hooks: ChurnGenerateHooks = {},
): Promise<ChurnSummary & { generated: boolean }> {
  const started = Date.now();
  const parsed = parseChurnOptions(options);
  const hash = churnOptionsHash(parsed);
  return underLock(db, parsed.schema, async (client) => {
    const existing = await readChurnGeneration(client, parsed.schema);
    if (existing && existing.optionsHash === hash) return { ...existing, generated: false };
    return { ...(await generateInTransaction(client, parsed, hooks, started)), generated: true };
  });
}

// ---- CLI ----------------------------------------------------------------------------------------

const USAGE = `usage: node --import tsx examples/churn/generate.ts [options]   (needs DATABASE_URL)

Generates the churn example into Postgres and prints its summary as JSON.

  --label-rows N        labels (customer-days) to draw, 1000 … 10000000 (default 20000)
  --customers N         customers to simulate (default: derived from --label-rows)
  --seed S              random seed (default 42)
  --start YYYY-MM-DD    first day of the period (default 2026-01-01)
  --months M            length of the period in months (default 6)
  --horizon-days H      churn within H days after the prediction time (default 30)
  --drift-from DATE     from this day on: new plan, shifted distributions, changed label relation
  --drift-strength X    0 … 1 (default 1), with --drift-from
  --schema NAME         Postgres schema (default churn)
  --if-changed          do nothing when the schema already holds these options' data
  -h, --help            this text`;

function numberOption(value: string | undefined): number | undefined {
  return value === undefined ? undefined : value.trim() === '' ? NaN : Number(value);
}

export function parseCliArgs(argv: string[]): { options: ChurnOptionsInput; ifChanged: boolean; help: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        'label-rows': { type: 'string' },
        customers: { type: 'string' },
        seed: { type: 'string' },
        start: { type: 'string' },
        months: { type: 'string' },
        'horizon-days': { type: 'string' },
        'drift-from': { type: 'string' },
        'drift-strength': { type: 'string' },
        schema: { type: 'string' },
        'if-changed': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new InvalidInput(error instanceof Error ? error.message : String(error));
  }
  if (values['drift-strength'] !== undefined && values['drift-from'] === undefined) {
    throw new InvalidInput('--drift-strength needs --drift-from', 'drift.from');
  }
  const options: ChurnOptionsInput = {
    ...(values['label-rows'] !== undefined ? { labelRows: numberOption(values['label-rows']) } : {}),
    ...(values.customers !== undefined ? { customers: numberOption(values.customers) } : {}),
    ...(values.seed !== undefined ? { seed: numberOption(values.seed) } : {}),
    ...(values.start !== undefined ? { start: values.start } : {}),
    ...(values.months !== undefined ? { months: numberOption(values.months) } : {}),
    ...(values['horizon-days'] !== undefined ? { horizonDays: numberOption(values['horizon-days']) } : {}),
    ...(values.schema !== undefined ? { schema: values.schema } : {}),
    ...(values['drift-from'] !== undefined
      ? { drift: { from: values['drift-from'], ...(values['drift-strength'] !== undefined ? { strength: numberOption(values['drift-strength']) } : {}) } }
      : {}),
  };
  return { options, ifChanged: values['if-changed'] ?? false, help: values.help ?? false };
}

async function cli(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseCliArgs>;
  let options: ChurnOptions;
  try {
    args = parseCliArgs(argv);
    if (args.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    options = parseChurnOptions(args.options);
  } catch (error) {
    process.stderr.write(`churn generator: ${error instanceof Error ? error.message : String(error)} (see --help)\n`);
    return 2;
  }
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('churn generator: DATABASE_URL is not set (postgres://user:password@host:port/database)\n');
    return 2;
  }
  const db = createDb({ url, applicationName: 'keel-churn-generator', max: 2 });
  let lastPhase = '';
  let lastReport = 0;
  const onProgress = ({ phase, done, total }: ChurnProgress) => {
    const now = Date.now();
    if (phase === lastPhase && now - lastReport < 1000 && done < total) return;
    lastPhase = phase;
    lastReport = now;
    process.stderr.write(`[churn] ${phase} ${done}/${total}\n`);
  };
  try {
    process.stderr.write(`[churn] generating into ${redactUrl(url)} schema ${options.schema}\n`);
    const summary = args.ifChanged ? await ensureChurnExample(db, options, { onProgress }) : await generateChurn(db, options, { onProgress });
    process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`churn generator: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof InvalidInput ? 2 : 1;
  } finally {
    await db.end();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  void cli(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
