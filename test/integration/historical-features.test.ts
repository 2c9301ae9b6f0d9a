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
import {
  categoryColumn,
  columnValues,
  createTable,
  getColumn,
  numberColumn,
  timestampColumn,
} from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { FeatureDefinitionsInput, FeatureViewInput } from '../../lib/features/definitions.js';
import { definitionVersion } from '../../lib/features/definitions.js';
import { Random } from '../../lib/ml/random.js';
import { createDb, type Db } from '../../stores/db.js';
import type { HistoricalFeaturesOptions, HistoricalStrategy } from '../../stores/features/historical.js';
import { getHistoricalFeatures, historicalQueryPlan } from '../../stores/features/historical.js';
import { applyFeatureDefinitions, loadFeatureDefinitions } from '../../stores/features/registry.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import type { ViewData, EntityRows } from '../helpers/pit-reference.js';
import { BASE, DAY, makeViews, makeEntities, entityTable, definitionsFor, iso, createViewTable, referencePicks, expectedColumn, assertColumnEquals, assertMatchesReference } from '../helpers/pit-reference.js';

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
