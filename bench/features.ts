/**
 * `npm run bench:features [-- --regenerate]`: feature store benchmark against real Postgres
 * (`DATABASE_URL`, else the configured database; the bench works in its own database
 * `keel_bench_features` on that server, created when missing and kept between runs so the 10M
 * rows are generated once; `--regenerate` rebuilds them).
 *
 * Data (seeded, generated in Postgres with INSERT … SELECT generate_series): three feature views of
 * 100 000 customers, 10 000 000 feature rows in total, each table indexed on (customer_id,
 * event_timestamp): `activity` 4M rows (created timestamp, TTL 0, 4 features), `recent` 3.5M
 * (created timestamp, TTL 7 days, 3 features), `daily` 2.5M (no created timestamp, TTL 30 days,
 * 3 features); 1 000 000 entity rows (10 % of keys without features) made in Node.
 *
 * Measured, in one run:
 *   - historical1MCold: the first DuckDB-engine retrieval of 1M entity rows × 10 features with no
 *     Parquet exports cached (every view exported from Postgres and turned into its point-in-time
 *     timeline, included), end to end: entity upload, join, training set written as Parquet
 *     (`writeHistoricalFeaturesParquet`: DuckDB writes the file) and put in the artifact store;
 *   - historical1M: the same with the exports already up to date (the normal state: the cache is
 *     keyed by view, definition version, backfill guard and watermark, so only changed views are
 *     exported again; the freshness check of every view is included);
 *   - lateralReference1M: the plain reference query, one `LEFT JOIN LATERAL (… ORDER BY
 *     event_timestamp DESC, created_timestamp DESC LIMIT 1)` per view over the indexed tables,
 *     entity rows already in a Postgres table, join only (counted in Postgres, nothing fetched);
 *   - historical100k: the warm retrieval at 100 000 entity rows;
 *   - online1 / online100: `getOnlineFeatures` (stores/features/online.ts) of the 10 features for 1
 *     and for 100 entities, p50 / p99 over 10 000 reads, on `online_features` filled from the
 *     latest row per customer and view.
 * Seconds, rows/s (entity rows) and peak RSS of Node (sampled every 20 ms during the step; DuckDB
 * runs in-process, so its memory counts). Writes bench/results/features.json. Numbers, not assertions.
 */
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../lib/config.js';
import { booleanColumn, createTable, numberColumn, timestampColumn, type Table } from '../lib/data/table.js';
import type { FeatureDefinitionsInput } from '../lib/features/definitions.js';
import { validateFeatureDefinitions } from '../lib/features/validate.js';
import { Random } from '../lib/ml/random.js';
import { FsArtifactStore } from '../stores/artifacts/index.js';
import { createDb, type Db } from '../stores/db.js';
import { writeHistoricalFeaturesParquet } from '../stores/features/historical.js';
import { getOnlineFeatures } from '../stores/features/online.js';
import { EXPORTS_TABLE } from '../stores/features/parquet-export.js';
import { migrate } from '../stores/migrate.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(BENCH_DIR, 'results');
const DATABASE = 'keel_bench_features';
const SCHEMA = 'bench';
const CUSTOMERS = 100_000;
const BASE = Date.UTC(2025, 0, 1);
const DAY = 86_400_000;

const { values: args } = parseArgs({ options: { regenerate: { type: 'boolean', default: false } } });

const VIEWS = [
  {
    name: 'activity',
    rows: 4_000_000,
    created: 'created_at',
    ttlSeconds: 0,
    features: [
      ['spend', 'float8', 'float64', `round((random() * 1000)::numeric, 2)::float8`],
      ['visits', 'int8', 'int64', `floor(random() * 100)::int8`],
      ['plan', 'text', 'string', `(ARRAY['basic', 'pro', 'gold', 'team'])[1 + floor(random() * 4)::int]`],
      ['active', 'bool', 'bool', `random() < 0.5`],
    ],
  },
  {
    name: 'recent',
    rows: 3_500_000,
    created: 'created',
    ttlSeconds: 7 * 86_400,
    features: [
      ['score', 'float8', 'float64', `random() * 2 - 1`],
      ['tier', 'text', 'string', `(ARRAY['a', 'b', 'c'])[1 + floor(random() * 3)::int]`],
      ['clicks', 'int8', 'int64', `floor(random() * 1000)::int8`],
    ],
  },
  {
    name: 'daily',
    rows: 2_500_000,
    created: undefined,
    ttlSeconds: 30 * 86_400,
    features: [
      ['balance', 'float8', 'float64', `round((random() * 100000)::numeric, 2)::float8`],
      ['flag', 'bool', 'bool', `random() < 0.2`],
      ['last_seen', 'timestamptz', 'timestamp', `timestamptz '2024-06-01' + random() * interval '300 days'`],
    ],
  },
] as const;

const definitions: FeatureDefinitionsInput = {
  entities: [{ name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' }] }],
  featureViews: VIEWS.map((v) => ({
    name: v.name,
    entity: 'customer',
    source: { table: `${SCHEMA}.${v.name}`, ...(v.created ? { createdTimestamp: v.created } : {}) },
    ttlSeconds: v.ttlSeconds,
    features: v.features.map(([name, , type]) => ({ name, type })),
  })),
};
const FEATURES = VIEWS.flatMap((v) => v.features.map(([name]) => `${v.name}:${name}`));

function log(message: string): void {
  console.log(`[bench:features] ${message}`);
}

/** Peak RSS (MB) of Node while `work` runs, sampled every 20 ms. */
async function measured<T>(work: () => Promise<T>): Promise<{ result: T; seconds: number; peakRssMb: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  try {
    const result = await work();
    const seconds = (performance.now() - started) / 1000;
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, seconds, peakRssMb: Math.round(peak / 1048576) };
  } finally {
    clearInterval(timer);
  }
}

async function ensureDatabase(baseUrl: string): Promise<string> {
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${DATABASE}`;
  return url.toString();
}

async function generate(db: Db): Promise<void> {
  const { rows } = await db.query<{ n: string }>(
    `SELECT coalesce(sum(c.reltuples), 0)::text AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind = 'r'`,
    [SCHEMA, VIEWS.map((v) => v.name)],
  );
  const ready = (await db.query(`SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'done'`, [SCHEMA])).rowCount;
  if (ready && !args.regenerate && Math.abs(Number(rows[0]!.n) - 10_000_000) < 500_000) {
    log('feature tables already generated (10M rows); --regenerate to rebuild');
    return;
  }
  await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await db.query(`CREATE SCHEMA ${SCHEMA}`);
  const client = await db.connect();
  try {
    for (const [v, view] of VIEWS.entries()) {
      const started = performance.now();
      const columns = [
        'customer_id int8 NOT NULL',
        'event_timestamp timestamptz NOT NULL',
        ...(view.created ? [`${view.created} timestamptz`] : []),
        ...view.features.map(([name, sqlType]) => `${name} ${sqlType}`),
      ];
      await client.query(`CREATE TABLE ${SCHEMA}.${view.name} (${columns.join(', ')})`);
      await client.query(`SELECT setseed(${0.1 * (v + 1)})`);
      // Event times on a minute grid over 400 days (ties happen); created 0–3 h after the event,
      // sometimes before the entity timestamp and sometimes after it (backfills), 2 % null.
      await client.query(
        `INSERT INTO ${SCHEMA}.${view.name}
         SELECT 1 + (g % ${CUSTOMERS}), s.ets${view.created ? `, CASE WHEN random() < 0.02 THEN NULL ELSE s.ets + floor(random() * 180) * interval '1 minute' END` : ''},
                ${view.features.map(([, , , expr]) => expr).join(', ')}
           FROM generate_series(0, ${view.rows - 1}) g,
                LATERAL (SELECT timestamptz '2025-01-01 00:00:00+00' + floor(random() * 400 * 1440) * interval '1 minute' + g * interval '0' AS ets) s`,
      );
      await client.query(`CREATE INDEX ON ${SCHEMA}.${view.name} (customer_id, event_timestamp)`);
      await client.query(`ANALYZE ${SCHEMA}.${view.name}`);
      log(`generated ${view.name}: ${view.rows.toLocaleString('en')} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    await client.query(`CREATE TABLE ${SCHEMA}.done (at timestamptz DEFAULT now())`);
  } finally {
    client.release();
  }
}

function entityRows(count: number, seed: number): Table {
  const random = new Random(seed);
  const keys = new Float64Array(count);
  const ts = new Float64Array(count);
  const labels: boolean[] = new Array<boolean>(count);
  for (let i = 0; i < count; i++) {
    keys[i] = 1 + random.int(Math.round(CUSTOMERS * 1.1));
    ts[i] = BASE + 7 * DAY + Math.floor(random.next() * 400 * DAY);
    labels[i] = random.next() < 0.2;
  }
  return createTable([numberColumn('customer_id', keys), timestampColumn('event_timestamp', ts), booleanColumn('label', labels)]);
}

async function trainingSet(db: Db, artifacts: FsArtifactStore, rows: Table): Promise<{ exported: number; views: string }> {
  // The training set as Parquet in the artifact store: written by DuckDB to a local file, then stored.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-training-set-'));
  try {
    const file = path.join(dir, 'training-set.parquet');
    const result = await writeHistoricalFeaturesParquet(db, { entities: { rows }, features: FEATURES, definitions, engine: 'duckdb', artifacts, file });
    await artifacts.put(createReadStream(file));
    const exports = result.timings.views
      .filter((v) => v.export!.exported)
      .map((v) => `${v.name} export ${(v.export!.ms / 1000).toFixed(1)} s`)
      .join(', ');
    const join = result.timings.views.reduce((sum, v) => sum + v.ms, 0);
    const views = `${exports ? `${exports}; ` : ''}entity rows ${(result.timings.entityLoadMs / 1000).toFixed(1)} s, join and Parquet ${(join / 1000).toFixed(1)} s`;
    return { exported: result.timings.views.filter((v) => v.export!.exported).length, views };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function lateralReference(db: Db, rows: Table): Promise<{ seconds: number; perView: string }> {
  // Entity rows in a Postgres table (not timed), then one plain LATERAL join per view.
  await db.query(`DROP TABLE IF EXISTS ${SCHEMA}.entities_ref`);
  await db.query(`CREATE TABLE ${SCHEMA}.entities_ref (customer_id int8, event_timestamp timestamptz)`);
  const keys = (rows.columns[0] as { values: Float64Array }).values;
  const ts = (rows.columns[1] as { values: Float64Array }).values;
  for (let start = 0; start < rows.rowCount; start += 100_000) {
    const end = Math.min(rows.rowCount, start + 100_000);
    await db.query(`INSERT INTO ${SCHEMA}.entities_ref SELECT * FROM unnest($1::int8[], $2::timestamptz[])`, [
      Array.from(keys.subarray(start, end)),
      Array.from(ts.subarray(start, end), (t) => new Date(t).toISOString()),
    ]);
  }
  await db.query(`ANALYZE ${SCHEMA}.entities_ref`);
  let seconds = 0;
  const perView: string[] = [];
  for (const view of VIEWS) {
    const conditions = ['f.customer_id = e.customer_id', 'f.event_timestamp <= e.event_timestamp'];
    if (view.ttlSeconds > 0) conditions.push(`f.event_timestamp >= e.event_timestamp - interval '${view.ttlSeconds} seconds'`);
    if (view.created) conditions.push(`(f.${view.created} IS NULL OR f.${view.created} <= e.event_timestamp)`);
    const order = ['f.event_timestamp DESC', ...(view.created ? [`f.${view.created} DESC NULLS LAST`] : [])];
    const sql =
      `SELECT ${view.features.map(([name]) => `count(l.${name})`).join(', ')} FROM ${SCHEMA}.entities_ref e ` +
      `LEFT JOIN LATERAL (SELECT ${view.features.map(([name]) => `f.${name}`).join(', ')} FROM ${SCHEMA}.${view.name} f ` +
      `WHERE ${conditions.join(' AND ')} ORDER BY ${order.join(', ')} LIMIT 1) l ON true`;
    const started = performance.now();
    await db.query(sql);
    const s = (performance.now() - started) / 1000;
    seconds += s;
    perView.push(`${view.name} ${s.toFixed(1)} s`);
  }
  return { seconds, perView: perView.join('; ') };
}

async function fillOnline(db: Db): Promise<void> {
  await db.query('DELETE FROM online_features WHERE view = ANY($1::text[])', [VIEWS.map((v) => v.name)]);
  for (const view of VIEWS) {
    const members = view.features
      .map(([name, sqlType]) =>
        sqlType === 'timestamptz'
          ? `'${name}', floor(extract(epoch from ${name}) * 1000)::float8`
          : `'${name}', ${sqlType === 'int8' ? `${name}::float8` : name}`,
      )
      .join(', ');
    await db.query(
      `INSERT INTO online_features (view, entity_key, features, event_timestamp, created_timestamp)
       SELECT DISTINCT ON (customer_id) '${view.name}', '[' || customer_id || ']', jsonb_build_object(${members}), event_timestamp,
              ${view.created ?? 'NULL::timestamptz'}
         FROM ${SCHEMA}.${view.name}
        ORDER BY customer_id, event_timestamp DESC${view.created ? `, ${view.created} DESC NULLS LAST` : ''}`,
    );
  }
  await db.query('ANALYZE online_features');
}

async function onlineReads(db: Db, batch: number, reads: number): Promise<{ p50Ms: number; p99Ms: number }> {
  const defs = validateFeatureDefinitions(definitions);
  const random = new Random(batch);
  const now = new Date(BASE + 400 * DAY);
  const times: number[] = [];
  for (let i = 0; i < reads + 200; i++) {
    const entities = Array.from({ length: batch }, () => ({ customer_id: 1 + random.int(CUSTOMERS) }));
    const started = performance.now();
    await getOnlineFeatures(db, { features: FEATURES, entities, definitions: defs, now });
    if (i >= 200) times.push(performance.now() - started); // 200 warm-up reads
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 1000) / 1000;
  return { p50Ms: at(0.5), p99Ms: at(0.99) };
}

async function main(): Promise<void> {
  const baseUrl = process.env.DATABASE_URL ?? loadConfig().database.url;
  const url = await ensureDatabase(baseUrl);
  await migrate(url);
  const db = createDb({ url, max: 4 });
  const artifactDir = await mkdtemp(path.join(os.tmpdir(), 'keel-bench-features-'));
  const artifacts = new FsArtifactStore(artifactDir);
  try {
    await generate(db);
    const rows1M = entityRows(1_000_000, 1);
    const rows100k = entityRows(100_000, 2);
    const summary = (label: string, m: { seconds: number; peakRssMb: number }, n: number) => ({
      seconds: Math.round(m.seconds * 100) / 100,
      rowsPerSec: Math.round(n / m.seconds),
      peakRssMb: m.peakRssMb,
      label,
    });

    // Cold: no export cached (a fresh artifact store, and the export registry rows of these views removed).
    await db.query(`DELETE FROM ${EXPORTS_TABLE} WHERE view_name = ANY($1::text[])`, [VIEWS.map((v) => v.name)]).catch(() => undefined);
    const cold = await measured(() => trainingSet(db, artifacts, rows1M));
    log(`historical1MCold: ${cold.seconds.toFixed(2)} s, peak RSS ${cold.peakRssMb} MB (${cold.result.exported} views exported: ${cold.result.views})`);
    const warm = await measured(() => trainingSet(db, artifacts, rows1M));
    log(`historical1M: ${warm.seconds.toFixed(2)} s, peak RSS ${warm.peakRssMb} MB (${warm.result.views})`);
    const small = await measured(() => trainingSet(db, artifacts, rows100k));
    log(`historical100k: ${small.seconds.toFixed(2)} s, peak RSS ${small.peakRssMb} MB (${small.result.views})`);
    const reference = await lateralReference(db, rows1M);
    log(`lateralReference1M: ${reference.seconds.toFixed(2)} s (${reference.perView})`);

    await fillOnline(db);
    const online1 = await onlineReads(db, 1, 10_000);
    log(`online1: p50 ${online1.p50Ms} ms, p99 ${online1.p99Ms} ms`);
    const online100 = await onlineReads(db, 100, 10_000);
    log(`online100: p50 ${online100.p50Ms} ms, p99 ${online100.p99Ms} ms`);

    const strip = ({ seconds, rowsPerSec, peakRssMb }: { seconds: number; rowsPerSec: number; peakRssMb: number }) => ({
      seconds,
      rowsPerSec,
      peakRssMb,
    });
    const results = {
      historical1M: strip(summary('warm', warm, 1_000_000)),
      historical1MCold: strip(summary('cold', cold, 1_000_000)),
      lateralReference1M: { seconds: Math.round(reference.seconds * 100) / 100 },
      historical100k: strip(summary('warm', small, 100_000)),
      online1,
      online100,
    };
    mkdirSync(RESULTS, { recursive: true });
    writeFileSync(path.join(RESULTS, 'features.json'), `${JSON.stringify(results, null, 2)}\n`);
    console.log(JSON.stringify(results, null, 2));
    log(
      `targets: historical1M ${results.historical1M.seconds} s <= ${(results.lateralReference1M.seconds / 2).toFixed(2)} s (half the reference): ` +
        `${results.historical1M.seconds <= results.lateralReference1M.seconds / 2 ? 'met' : 'NOT met'}; historical1MCold ${results.historical1MCold.seconds} s <= ` +
        `${results.lateralReference1M.seconds} s: ${results.historical1MCold.seconds <= results.lateralReference1M.seconds ? 'met' : 'NOT met'}`,
    );
  } finally {
    await db.end();
    await rm(artifactDir, { recursive: true, force: true });
  }
}

await main();
