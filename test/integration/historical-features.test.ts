/**
 * Point-in-time historical retrieval against real Postgres, checked cell by cell against a
 * deliberately simple in-memory implementation (loop over entity rows, filter feature rows, sort)
 * on seeded random data full of edge cases: ties in event_timestamp broken by created_timestamp,
 * null features and null created timestamps, TTL edges (exactly ts − TTL is in, 1 ms earlier is
 * out), backfilled rows (created after the entity timestamp) with the guard on and off, entity
 * rows with no match, duplicate and unsorted entity rows, null keys and timestamps, three views
 * with different TTLs, an int4 and an int8 source key, with and without the recommended index.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { CellValue, Column, Table } from '../../lib/data/table.js';
import {
  booleanColumn,
  categoryColumn,
  columnValues,
  createTable,
  getColumn,
  numberColumn,
  timestampColumn,
} from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { FeatureDefinitionsInput, FeatureValueType, FeatureViewInput } from '../../lib/features/definitions.js';
import { definitionVersion } from '../../lib/features/definitions.js';
import { Random } from '../../lib/ml/random.js';
import { createDb, type Db } from '../../stores/db.js';
import type { HistoricalFeaturesOptions, HistoricalStrategy } from '../../stores/features/historical.js';
import { getHistoricalFeatures, historicalQueryPlan } from '../../stores/features/historical.js';
import { applyFeatureDefinitions, loadFeatureDefinitions } from '../../stores/features/registry.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';

const BASE = Date.UTC(2024, 0, 1);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

// ---------------------------------------------------------------------------------------------
// Test data: plain JS rows, the single source of truth for Postgres and the reference.

type Value = number | string | boolean | null;

interface ViewData {
  name: string;
  table: string;
  ttlSeconds: number;
  keyType: 'int4' | 'int8';
  created: string | undefined;
  features: Array<{ name: string; type: FeatureValueType }>;
  indexed: boolean;
  rows: Array<{ key: number; ets: number; cts: number | null; values: Value[] }>;
}

const maybe = <T>(random: Random, p: number, value: () => T): T | null => (random.next() < p ? null : value());

function makeViews(random: Random, schema: string): ViewData[] {
  const activity: ViewData = {
    name: 'activity',
    table: `${schema}.activity`,
    ttlSeconds: 0,
    keyType: 'int8',
    created: 'created_at',
    features: [
      { name: 'spend', type: 'float64' },
      { name: 'visits', type: 'int64' },
      { name: 'plan', type: 'string' },
      { name: 'active', type: 'bool' },
      { name: 'last_login', type: 'timestamp' },
    ],
    indexed: true,
    rows: [],
  };
  const recent: ViewData = {
    name: 'recent',
    table: `${schema}.recent`,
    ttlSeconds: 6 * 3600,
    keyType: 'int4',
    created: 'created',
    features: [
      { name: 'score', type: 'float64' },
      { name: 'tier', type: 'string' },
    ],
    indexed: true,
    rows: [],
  };
  const daily: ViewData = {
    name: 'daily',
    table: `${schema}.daily`,
    ttlSeconds: 86_400,
    keyType: 'int8',
    created: undefined,
    features: [
      { name: 'balance', type: 'float64' },
      { name: 'flag', type: 'bool' },
    ],
    indexed: false,
    rows: [],
  };

  // Few distinct event times per key, so ties in event_timestamp are common; created timestamps
  // on a coarse grid too (and sometimes null). (key, ets, cts) is unique, so the pick is defined.
  const add = (view: ViewData, count: number, ets: () => number, cts: (ets: number) => number | null, values: () => Value[]) => {
    const seen = new Set<string>();
    while (view.rows.length < count) {
      const key = 1 + random.int(40);
      const e = ets();
      const c = view.created ? cts(e) : null;
      const id = `${key}|${e}|${c}`;
      if (seen.has(id)) continue;
      seen.add(id);
      view.rows.push({ key, ets: e, cts: c, values: values() });
    }
  };
  add(
    activity,
    500,
    () => BASE + random.int(30) * 2 * HOUR,
    (e) => maybe(random, 0.07, () => e + random.int(5) * 30 * MINUTE),
    () => [
      maybe(random, 0.15, () => Math.round(random.next() * 10_000) / 10),
      maybe(random, 0.15, () => random.int(50)),
      maybe(random, 0.15, () => ['basic', 'pro', 'gold', ''][random.int(4)]!),
      maybe(random, 0.15, () => random.next() < 0.5),
      maybe(random, 0.15, () => BASE - random.int(1_000_000) * 1000 + random.int(1000)),
    ],
  );
  add(
    recent,
    400,
    () => BASE + random.int(60 * 4) * 15 * MINUTE,
    (e) => maybe(random, 0.05, () => e + random.int(3) * 20 * MINUTE),
    () => [maybe(random, 0.15, () => random.next() * 2 - 1), maybe(random, 0.15, () => ['a', 'b', 'c'][random.int(3)]!)],
  );
  add(
    daily,
    150,
    () => BASE + random.int(5) * DAY + random.int(3) * 6 * HOUR,
    () => null,
    () => [maybe(random, 0.15, () => random.int(100_000) / 100), maybe(random, 0.15, () => random.next() < 0.5)],
  );
  return [activity, recent, daily];
}

interface EntityRows {
  keys: Array<number | null>;
  ts: Array<number | null>;
  label: Array<boolean | null>;
  city: Array<string | null>;
  weight: Array<number | null>;
}

function makeEntities(random: Random, views: ViewData[]): EntityRows {
  const keys: Array<number | null> = [];
  const ts: Array<number | null> = [];
  const push = (key: number | null, time: number | null) => {
    keys.push(key);
    ts.push(time);
  };
  // Random rows; keys 0 and 41..45 have no feature rows at all.
  for (let i = 0; i < 500; i++) {
    push(random.int(46), BASE - 6 * HOUR + random.int(4 * 24 * 60) * MINUTE + (random.next() < 0.3 ? random.int(1000) : 0));
  }
  for (const view of views) {
    for (let i = 0; i < 25; i++) {
      const row = view.rows[random.int(view.rows.length)]!;
      push(row.key, row.ets); // event_timestamp <= ts is inclusive
      push(row.key, row.ets - 1);
      if (view.ttlSeconds > 0) {
        push(row.key, row.ets + view.ttlSeconds * 1000); // exactly ts − TTL: in
        push(row.key, row.ets + view.ttlSeconds * 1000 + 1); // 1 ms before ts − TTL: out
      }
      if (row.cts !== null) {
        push(row.key, row.cts); // created exactly at ts: passes the guard
        push(row.key, row.cts - 1); // created 1 ms after ts: a backfill
      }
    }
  }
  push(null, BASE + DAY);
  push(null, null);
  push(7, null);
  // Duplicates, then shuffle: the output must keep every row in the given order.
  const n = keys.length;
  for (let i = 0; i < 40; i++) {
    const j = random.int(n);
    push(keys[j]!, ts[j]!);
  }
  const order = random.shuffle(Array.from({ length: keys.length }, (_, i) => i));
  return {
    keys: order.map((i) => keys[i]!),
    ts: order.map((i) => ts[i]!),
    label: order.map(() => maybe(random, 0.1, () => random.next() < 0.3)),
    city: order.map(() => maybe(random, 0.1, () => ['Oslo', 'Lima', 'Pune'][random.int(3)]!)),
    weight: order.map(() => maybe(random, 0.1, () => random.next())),
  };
}

function entityTable(entities: EntityRows): Table {
  return createTable([
    numberColumn('customer_id', entities.keys),
    booleanColumn('label', entities.label),
    timestampColumn('event_timestamp', entities.ts),
    categoryColumn('city', entities.city),
    numberColumn('weight', entities.weight),
  ]);
}

function definitionsFor(views: ViewData[], schema: string): FeatureDefinitionsInput {
  return {
    entities: [
      { name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' }] },
      { name: 'merchant', joinKeys: [{ name: 'merchant_id', type: 'string' }] },
    ],
    featureViews: [
      ...views.map((v) => ({
        name: v.name,
        entity: 'customer',
        source: { table: v.table, ...(v.created ? { createdTimestamp: v.created } : {}) },
        features: v.features,
        ttlSeconds: v.ttlSeconds,
      })),
      {
        name: 'merchant_stats',
        entity: 'merchant',
        source: { table: `${schema}.merchant_stats` },
        features: [{ name: 'volume', type: 'float64' }],
      },
      {
        name: 'other_spend',
        entity: 'customer',
        source: { table: `${schema}.activity`, createdTimestamp: 'created_at' },
        features: [{ name: 'spend', type: 'float64' }],
      },
    ],
    featureServices: [{ name: 'churn', features: ['recent:tier', 'activity:spend', 'daily:flag'] }],
  };
}

const SQL_TYPES: Record<FeatureValueType, string> = {
  float64: 'float8',
  int64: 'int8',
  bool: 'bool',
  string: 'text',
  timestamp: 'timestamptz',
};

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

async function createViewTable(db: Db, view: ViewData): Promise<void> {
  const columns = [
    `customer_id ${view.keyType}`,
    'event_timestamp timestamptz NOT NULL',
    ...(view.created ? [`${view.created} timestamptz`] : []),
    ...view.features.map((f) => `${f.name} ${SQL_TYPES[f.type]}`),
  ];
  await db.query(`CREATE TABLE ${view.table} (${columns.join(', ')})`);
  const arrays: unknown[][] = [view.rows.map((r) => r.key), view.rows.map((r) => iso(r.ets))];
  const types = [`${view.keyType}[]`, 'timestamptz[]'];
  if (view.created) {
    arrays.push(view.rows.map((r) => iso(r.cts)));
    types.push('timestamptz[]');
  }
  view.features.forEach((f, j) => {
    arrays.push(view.rows.map((r) => (f.type === 'timestamp' ? iso(r.values[j] as number | null) : r.values[j])));
    types.push(`${SQL_TYPES[f.type]}[]`);
  });
  await db.query(`INSERT INTO ${view.table} SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}`).join(', ')})`, arrays);
  if (view.indexed) await db.query(`CREATE INDEX ON ${view.table} (customer_id, event_timestamp)`);
  await db.query(`ANALYZE ${view.table}`);
}

// ---------------------------------------------------------------------------------------------
// The reference: for each entity row, filter the view's rows, sort, take the first.

interface ReferencePick {
  /** Index into view.rows, or -1. */
  row: number;
  /** The pick's event_timestamp is exactly ts − TTL. */
  atTtlEdge: boolean;
  /** Another eligible row had the same event_timestamp (decided by created_timestamp). */
  tie: boolean;
}

function referencePicks(view: ViewData, entities: EntityRows, guard: boolean): ReferencePick[] {
  const picks: ReferencePick[] = [];
  for (let i = 0; i < entities.keys.length; i++) {
    const key = entities.keys[i];
    const ts = entities.ts[i];
    if (key === null || ts === null || key === undefined || ts === undefined) {
      picks.push({ row: -1, atTtlEdge: false, tie: false });
      continue;
    }
    const candidates: number[] = [];
    view.rows.forEach((row, r) => {
      if (row.key !== key) return;
      if (row.ets > ts) return;
      if (view.ttlSeconds > 0 && row.ets < ts - view.ttlSeconds * 1000) return;
      if (guard && view.created && row.cts !== null && row.cts > ts) return;
      candidates.push(r);
    });
    const createdRank = (r: number) => view.rows[r]!.cts ?? -Infinity; // nulls last
    candidates.sort((a, b) => view.rows[b]!.ets - view.rows[a]!.ets || createdRank(b) - createdRank(a));
    const best = candidates[0];
    if (best === undefined) {
      picks.push({ row: -1, atTtlEdge: false, tie: false });
      continue;
    }
    const bestEts = view.rows[best]!.ets;
    picks.push({
      row: best,
      atTtlEdge: view.ttlSeconds > 0 && bestEts === ts - view.ttlSeconds * 1000,
      tie: candidates.filter((r) => view.rows[r]!.ets === bestEts).length > 1,
    });
  }
  return picks;
}

function expectedColumn(view: ViewData, feature: number, picks: ReferencePick[]): CellValue[] {
  return picks.map((p) => (p.row < 0 ? null : (view.rows[p.row]!.values[feature] as CellValue)));
}

function assertColumnEquals(actual: Column, expected: CellValue[], entities: EntityRows, what: string): void {
  const values = columnValues(actual);
  assert.equal(values.length, expected.length, `${what}: row count`);
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(values[i], expected[i]) && values[i] !== expected[i]) {
      assert.fail(
        `${what} row ${i} (customer_id ${entities.keys[i]}, ts ${iso(entities.ts[i] ?? null)}): got ${JSON.stringify(values[i])}, expected ${JSON.stringify(expected[i])}`,
      );
    }
  }
}

function assertMatchesReference(result: Table, views: ViewData[], entities: EntityRows, guard: boolean, fullNames: boolean, label: string): void {
  for (const view of views) {
    const picks = referencePicks(view, entities, guard);
    view.features.forEach((feature, j) => {
      const name = fullNames ? `${view.name}__${feature.name}` : feature.name;
      assertColumnEquals(getColumn(result, name), expectedColumn(view, j, picks), entities, `${label}: ${view.name}:${feature.name}`);
    });
  }
}

// ---------------------------------------------------------------------------------------------

describe('historical features (point-in-time joins in Postgres)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  const schema = `hist_${randomBytes(4).toString('hex')}`;
  const random = new Random(20240101);
  const views = makeViews(random, schema);
  const entities = makeEntities(random, views);
  const definitions = definitionsFor(views, schema);
  const allFeatures = views.flatMap((v) => v.features.map((f) => `${v.name}:${f.name}`));

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    await db.query(`CREATE SCHEMA ${schema}`);
    for (const view of views) await createViewTable(db, view);
    await db.query(`CREATE TABLE ${schema}.merchant_stats (merchant_id text, event_timestamp timestamptz, volume float8)`);
  });
  after(async () => {
    await db?.end();
    await database?.drop();
  });

  it('the random data exercises every edge case it is meant to', () => {
    const [activity, recent, daily] = views as [ViewData, ViewData, ViewData];
    const on = referencePicks(activity, entities, true);
    const off = referencePicks(activity, entities, false);
    assert.ok(on.filter((p, i) => p.row !== off[i]!.row).length >= 10, 'the backfill guard changes some picks');
    assert.ok(on.filter((p) => p.tie).length >= 10, 'ties in event_timestamp decided by created_timestamp');
    assert.ok(on.filter((p) => p.row < 0).length >= 10, 'entity rows with no match');
    assert.ok(activity.rows.some((r) => r.cts === null) && activity.rows.some((r) => r.values.includes(null)), 'nulls');
    for (const view of [recent, daily]) {
      const picks = referencePicks(view, entities, true);
      assert.ok(picks.filter((p) => p.atTtlEdge).length >= 5, `${view.name}: picks exactly at ts − TTL`);
    }
    // One ms later the same rows fall out of the window (covered by the +1 ms entity rows).
    const keysSeen = new Map<string, number>();
    entities.keys.forEach((k, i) => keysSeen.set(`${k}|${entities.ts[i]}`, (keysSeen.get(`${k}|${entities.ts[i]}`) ?? 0) + 1));
    assert.ok([...keysSeen.values()].some((n) => n > 1), 'duplicate entity rows');
  });

  for (const strategy of ['auto', 'lateral', 'distinct_on'] as const) {
    for (const backfillGuard of [true, false]) {
      it(`matches the reference on every cell: strategy ${strategy}, backfill guard ${backfillGuard ? 'on' : 'off'}`, async () => {
        const rows = entityTable(entities);
        const result = await getHistoricalFeatures(db, {
          entities: { rows },
          features: allFeatures,
          definitions,
          backfillGuard,
          ...(strategy === 'auto' ? {} : { strategy: strategy as HistoricalStrategy }),
        });
        const { table } = result;
        assert.equal(table.rowCount, rows.rowCount);
        assert.deepEqual(
          table.columns.map((c) => c.name),
          [...rows.columns.map((c) => c.name), ...views.flatMap((v) => v.features.map((f) => f.name))],
        );
        rows.columns.forEach((column, i) => assert.equal(table.columns[i], column, `entity column ${column.name} is kept as is`));
        assert.deepEqual(
          result.timings.views.map((v) => [v.name, v.strategy, v.indexed]),
          views.map((v) => [v.name, strategy === 'auto' ? (v.indexed ? 'lateral' : 'distinct_on') : strategy, v.indexed]),
        );
        assertMatchesReference(table, views, entities, backfillGuard, false, `${strategy}/${backfillGuard}`);
        const types = Object.fromEntries(table.columns.map((c) => [c.name, c.type]));
        assert.deepEqual(
          [types.spend, types.visits, types.plan, types.active, types.last_login],
          ['number', 'number', 'category', 'boolean', 'timestamp'],
        );
      });
    }
  }

  it('reads the entity rows from a Postgres table, keeping its columns and its scan order', async () => {
    const table = `${schema}.labels`;
    await db.query(
      `CREATE TABLE ${table} (id int4, customer_id int4, label bool, event_timestamp timestamptz, city text, weight float8, signup date, score numeric)`,
    );
    const signup = entities.keys.map((_, i) => (i % 5 === 0 ? null : BASE - (i % 300) * DAY));
    const score = entities.keys.map((_, i) => (i % 7 === 0 ? null : i / 4));
    await db.query(
      `INSERT INTO ${table}
       SELECT o::int4 - 1, k, l, t, c, w, s::date, n
         FROM unnest($1::int4[], $2::bool[], $3::timestamptz[], $4::text[], $5::float8[], $6::timestamptz[], $7::numeric[])
              WITH ORDINALITY AS u(k, l, t, c, w, s, n, o)`,
      [entities.keys, entities.label, entities.ts.map(iso), entities.city, entities.weight, signup.map(iso), score],
    );
    // Entity order is the table's scan order (what SELECT * returns), not necessarily insertion order.
    const order = (await db.query<{ id: number }>(`SELECT id FROM ${table}`)).rows.map((r) => r.id);
    const permute = <T>(values: T[]): T[] => order.map((i) => values[i]!);
    const scanned: EntityRows = {
      keys: permute(entities.keys),
      ts: permute(entities.ts),
      label: permute(entities.label),
      city: permute(entities.city),
      weight: permute(entities.weight),
    };
    const result = await getHistoricalFeatures(db, {
      entities: { table },
      features: allFeatures,
      definitions,
      fullFeatureNames: true,
    });
    const out = result.table;
    assert.deepEqual(
      out.columns.slice(0, 8).map((c) => [c.name, c.type]),
      [
        ['id', 'number'],
        ['customer_id', 'number'],
        ['label', 'boolean'],
        ['event_timestamp', 'timestamp'],
        ['city', 'category'],
        ['weight', 'number'],
        ['signup', 'timestamp'],
        ['score', 'number'],
      ],
    );
    assert.deepEqual(columnValues(out.columns[0]!), order);
    assert.deepEqual(columnValues(out.columns[1]!), scanned.keys);
    assert.deepEqual(columnValues(out.columns[2]!), scanned.label);
    assert.deepEqual(columnValues(out.columns[3]!), scanned.ts);
    assert.deepEqual(columnValues(out.columns[4]!), scanned.city);
    assert.deepEqual(columnValues(out.columns[5]!), scanned.weight);
    assert.deepEqual(columnValues(out.columns[6]!), permute(signup));
    assert.deepEqual(columnValues(out.columns[7]!), permute(score));
    assertMatchesReference(out, views, scanned, true, true, 'entity table');
    assert.deepEqual(result.entityKeys, ['customer_id']);
  });

  it('uses the registry when no definitions are given, and reports the view versions', async () => {
    await applyFeatureDefinitions(db, definitions);
    const stored = await loadFeatureDefinitions(db);
    const result = await getHistoricalFeatures(db, {
      entities: { rows: entityTable(entities) },
      features: { service: 'churn' },
    });
    assert.deepEqual(
      result.table.columns.slice(5).map((c) => c.name),
      ['tier', 'spend', 'flag'],
    );
    assert.deepEqual(result.features, ['recent:tier', 'activity:spend', 'daily:flag']);
    assert.deepEqual(
      result.featureViews,
      ['recent', 'activity', 'daily'].map((name) => ({ name, version: stored.versions[`feature_view/${name}`] })),
    );
    for (const { name, version } of result.featureViews) {
      assert.equal(version, definitionVersion(stored.featureViews.find((v) => v.name === name)!));
    }
    const byView = Object.fromEntries(views.map((v) => [v.name, v]));
    for (const [view, feature, column] of [
      ['recent', 1, 'tier'],
      ['activity', 0, 'spend'],
      ['daily', 1, 'flag'],
    ] as const) {
      assertColumnEquals(
        getColumn(result.table, column),
        expectedColumn(byView[view]!, feature, referencePicks(byView[view]!, entities, true)),
        entities,
        `service ${view}:${column}`,
      );
    }
  });

  it('returns an empty table with the feature columns for zero entity rows', async () => {
    const rows = createTable([numberColumn('customer_id', []), timestampColumn('event_timestamp', [])]);
    const { table } = await getHistoricalFeatures(db, { entities: { rows }, features: ['activity:plan', 'recent:score'], definitions });
    assert.equal(table.rowCount, 0);
    assert.deepEqual(
      table.columns.map((c) => [c.name, c.type]),
      [
        ['customer_id', 'number'],
        ['event_timestamp', 'timestamp'],
        ['plan', 'category'],
        ['score', 'number'],
      ],
    );
  });

  it('loads entity rows in chunks and picks the same values', async () => {
    const rows = entityTable(entities);
    const { table } = await getHistoricalFeatures(db, { entities: { rows }, features: allFeatures, definitions, chunkSize: 97 });
    assertMatchesReference(table, views, entities, true, false, 'chunked');
  });

  it('explains each view query (historicalQueryPlan)', async () => {
    const plans = await historicalQueryPlan(db, {
      entities: { rows: entityTable(entities) },
      features: ['activity:spend', 'daily:flag'],
      definitions,
      analyze: true,
    });
    assert.deepEqual(
      plans.map((p) => [p.view, p.strategy]),
      [
        ['activity', 'lateral'],
        ['daily', 'distinct_on'],
      ],
    );
    assert.match(plans[0]!.plan, /Index Scan Backward/);
    assert.match(plans[0]!.plan, /Execution Time/);
    assert.match(plans[1]!.sql, /DISTINCT ON/);
  });

  describe('bad input is an InvalidInput that names the item', () => {
    const rows = () => entityTable(entities);
    const rejects = async (options: Partial<HistoricalFeaturesOptions>, pattern: RegExp) => {
      await assert.rejects(
        getHistoricalFeatures(db, { entities: { rows: rows() }, features: ['activity:spend'], definitions, ...options }),
        (error: unknown) => {
          assert.ok(error instanceof InvalidInput, `expected InvalidInput, got ${String(error)}`);
          assert.match(error.message, pattern);
          return true;
        },
      );
    };

    it('unknown feature view', () => rejects({ features: ['activity:spend', 'actvity:spend'] }, /unknown feature view actvity in reference actvity:spend \(feature views: activity, recent, daily, merchant_stats, other_spend\)/));
    it('unknown feature, listing the view’s features', () =>
      rejects({ features: ['recent:scroe'] }, /feature view recent has no feature scroe .*its features: score, tier/));
    it('a view of another entity', () =>
      rejects({ features: ['activity:spend', 'merchant_stats:volume'] }, /merchant_stats .*keyed by entity merchant.*activity is keyed by customer/));
    it('unknown feature service', () => rejects({ features: { service: 'nope' } }, /unknown feature service "nope" \(feature services: churn\)/));
    it('a malformed reference or identifier', () => rejects({ features: ['Activity:spend'] }, /"Activity:spend" is not view:feature/));
    it('a feature requested twice', () => rejects({ features: ['activity:spend', 'activity:spend'] }, /activity:spend is requested twice/));
    it('missing timestamp column', () => rejects({ timestampColumn: 'ts' }, /no timestamp column ts \(columns: customer_id, label, event_timestamp, city, weight\)/));
    it('a timestamp column that is not a timestamp', () => rejects({ timestampColumn: 'city' }, /timestamp column city has type category, expected timestamp/));
    it('missing join key', () =>
      rejects(
        { entities: { rows: createTable([timestampColumn('event_timestamp', [BASE])]) } },
        /no column customer_id, the join key of entity customer/,
      ));
    it('mistyped join key (text where int64 is declared)', () =>
      rejects(
        { entities: { rows: createTable([categoryColumn('customer_id', ['7']), timestampColumn('event_timestamp', [BASE])]) } },
        /join key customer_id has type category, but entity customer declares it int64/,
      ));
    it('a non-integer int64 key', () =>
      rejects(
        { entities: { rows: createTable([numberColumn('customer_id', [7.5]), timestampColumn('event_timestamp', [BASE])]) } },
        /join key customer_id row 0: 7.5 is not an int64/,
      ));
    it('an output name collision without fullFeatureNames, naming both', () =>
      rejects({ features: ['activity:spend', 'other_spend:spend'] }, /feature other_spend:spend and feature activity:spend would both be output column spend/));
    it('a feature named like an entity column', async () => {
      const clash = createTable([numberColumn('customer_id', [1]), timestampColumn('event_timestamp', [BASE]), numberColumn('spend', [1])]);
      await rejects({ entities: { rows: clash } }, /feature activity:spend and entity column spend/);
    });
    it('a bad entity table name', () => rejects({ entities: { table: 'labels; drop' } }, /entity table "labels; drop" must be table or schema.table/));
    it('a missing entity table', () => rejects({ entities: { table: `${schema}.nope` } }, new RegExp(`table ${schema}.nope does not exist`)));
    it('a bad timestamp column name with an entity table', () =>
      rejects({ entities: { table: `${schema}.labels` }, timestampColumn: 'Event Time' }, /timestamp column "Event Time" must match/));
    it('entity table: missing timestamp column, missing or mistyped key', async () => {
      await db.query(`CREATE TABLE ${schema}.bad_entities (customer_id text, happened_at timestamptz, other int)`);
      await rejects({ entities: { table: `${schema}.bad_entities` } }, /bad_entities has no timestamp column event_timestamp \(columns: customer_id, happened_at, other\)/);
      await rejects(
        { entities: { table: `${schema}.bad_entities` }, timestampColumn: 'happened_at' },
        /join key customer_id has type text, but entity customer declares it int64/,
      );
      await rejects({ entities: { table: `${schema}.bad_entities` }, timestampColumn: 'other' }, /timestamp column other has type int4/);
    });
    it('bad definitions (a bad identifier in a source table)', () =>
      rejects(
        {
          definitions: {
            ...definitions,
            featureViews: definitions.featureViews.map((v) => (v.name === 'activity' ? { ...v, source: { table: 'Activity Table' } } : v)),
          },
        },
        /feature view activity \(featureViews\[0\]\): source.table: must be table or schema.table/,
      ));
    it('a source table or column that does not exist, or has the wrong type', async () => {
      const withView = (view: FeatureViewInput): FeatureDefinitionsInput => ({ ...definitions, featureViews: [...definitions.featureViews, view] });
      const view: FeatureViewInput = { name: 'ghost', entity: 'customer', source: { table: `${schema}.ghost` }, features: [{ name: 'x', type: 'float64' }] };
      await rejects({ definitions: withView(view), features: ['ghost:x'] }, new RegExp(`feature view ghost: table ${schema}.ghost does not exist`));
      const missing: FeatureViewInput = { ...view, source: { table: `${schema}.activity` }, features: [{ name: 'nope', type: 'float64' }] };
      await rejects({ definitions: withView(missing), features: ['ghost:nope'] }, /feature view ghost: source table .*activity has no column nope/);
      const mistyped: FeatureViewInput = { ...view, source: { table: `${schema}.activity` }, features: [{ name: 'plan', type: 'float64' }] };
      await rejects({ definitions: withView(mistyped), features: ['ghost:plan'] }, /feature plan is declared float64, but column plan .* has type text/);
      const badKey: FeatureViewInput = { ...view, source: { table: `${schema}.merchant_stats` }, features: [{ name: 'volume', type: 'float64' }] };
      await rejects(
        { definitions: withView(badKey), features: ['ghost:volume'] },
        /source table .*merchant_stats has no column customer_id \(join key of entity customer; columns: merchant_id, event_timestamp, volume\)/,
      );
    });
  });
});
