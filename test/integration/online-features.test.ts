/**
 * Materialization and online reads against real Postgres, checked against point-in-time
 * retrieval (getHistoricalFeatures) at the same moment for every entity: TTL edges (a row exactly
 * at now − TTL is in, older is `expired`), never-seen entities (`missing`), ties in event time
 * broken by the created timestamp, null values and null created timestamps, an incremental run
 * (only new rows written), backfilled and late rows, a run that fails half-way (watermark and rows
 * unchanged, the next run fills the gap), an idempotent re-run, a definition change (rebuilt), and
 * a composite string/int entity key with awkward strings.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTable, categoryColumn, getColumn, numberColumn, timestampColumn, valueAt } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { FeatureDefinitionsInput } from '../../lib/features/definitions.js';
import { Random } from '../../lib/ml/random.js';
import { createDb, type Db } from '../../stores/db.js';
import { getHistoricalFeatures } from '../../stores/features/historical.js';
import { listMaterializations, materializeFeatureView } from '../../stores/features/materialize.js';
import type { OnlineFeaturesResult } from '../../stores/features/online.js';
import { encodeEntityKey, getOnlineFeatures } from '../../stores/features/online.js';
import { applyFeatureDefinitions, loadFeatureDefinitions } from '../../stores/features/registry.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';

const BASE = Date.UTC(2024, 0, 1);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The first materialization's end: activity's TTL window (6 h) starts exactly on its 2 h grid. */
const T0 = BASE + 2 * DAY + 4 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

const definitions = (extraFeature = false): FeatureDefinitionsInput => ({
  entities: [
    { name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' }] },
    {
      name: 'store',
      joinKeys: [
        { name: 'region', type: 'string' },
        { name: 'store_no', type: 'int64' },
      ],
    },
  ],
  featureViews: [
    {
      name: 'activity',
      entity: 'customer',
      source: { table: 't.activity', createdTimestamp: 'created_at' },
      features: [
        { name: 'spend', type: 'float64' },
        { name: 'visits', type: 'int64' },
        { name: 'plan', type: 'string' },
        { name: 'active', type: 'bool' },
        { name: 'last_login', type: 'timestamp' },
        ...(extraFeature ? [{ name: 'extra', type: 'float64' as const }] : []),
      ],
      ttlSeconds: 6 * 3600,
    },
    {
      name: 'profile',
      entity: 'customer',
      source: { table: 't.profile', eventTimestamp: 'ts' },
      features: [
        { name: 'segment', type: 'string' },
        { name: 'score', type: 'float64' },
      ],
    },
    {
      name: 'store_sales',
      entity: 'store',
      source: { table: 't.store_sales' },
      features: [{ name: 'revenue', type: 'float64' }],
      ttlSeconds: 3600,
    },
    {
      name: 'profile_offline',
      entity: 'customer',
      source: { table: 't.profile', eventTimestamp: 'ts' },
      features: [{ name: 'score', type: 'float64' }],
      online: false,
    },
  ],
});

const ACTIVITY = ['activity:spend', 'activity:visits', 'activity:plan', 'activity:active', 'activity:last_login'];
const PROFILE = ['profile:segment', 'profile:score'];
const CUSTOMERS = Array.from({ length: 45 }, (_, i) => i); // 0 and 41..44 never have rows

describe('online features: materialization and reads agree with point-in-time retrieval', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  const random = new Random(7);
  const maybe = <T>(p: number, value: () => T): T | null => (random.next() < p ? null : value());

  const insertActivity = async (rows: Array<{ key: number; ets: number; cts: number | null }>) => {
    for (const row of rows) {
      await db.query('INSERT INTO t.activity VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
        row.key,
        iso(row.ets),
        row.cts === null ? null : iso(row.cts),
        maybe(0.15, () => Math.round(random.next() * 100_000) / 7),
        maybe(0.15, () => random.int(50)),
        maybe(0.15, () => ['basic', 'pro', 'gold', ''][random.int(4)]!),
        maybe(0.15, () => random.next() < 0.5),
        maybe(0.15, () => iso(BASE - random.int(1_000_000) * 1000 + random.int(1000))),
      ]);
    }
  };

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    await db.query(`CREATE SCHEMA t;
      CREATE TABLE t.activity (customer_id int8, event_timestamp timestamptz, created_at timestamptz,
        spend float8, visits int4, plan text, active bool, last_login timestamptz);
      CREATE INDEX ON t.activity (customer_id, event_timestamp);
      CREATE TABLE t.profile (customer_id int4, ts timestamp, segment text, score float8);
      CREATE TABLE t.store_sales (region text, store_no int8, event_timestamp timestamptz, revenue float8)`);
    await applyFeatureDefinitions(db, definitions());
    // activity: a 2 h grid over [BASE, T0 − 6 h] (ties common), created up to 2 h later or null;
    // every row is created by T0. (key, ets, cts) is unique, so the pick is defined.
    const seen = new Set<string>();
    const rows: Array<{ key: number; ets: number; cts: number | null }> = [];
    while (rows.length < 400) {
      const key = 1 + random.int(40);
      const ets = BASE + random.int(24) * 2 * HOUR;
      const cts = maybe(0.07, () => ets + random.int(5) * 30 * MINUTE);
      const id = `${key}|${ets}|${cts}`;
      if (seen.has(id)) continue;
      seen.add(id);
      rows.push({ key, ets, cts });
    }
    await insertActivity(rows);
    for (let i = 0; i < 120; i++) {
      await db.query('INSERT INTO t.profile VALUES ($1, $2, $3, $4)', [
        1 + random.int(40),
        iso(BASE + random.int(40) * HOUR + i).replace('Z', ''),
        maybe(0.1, () => ['a', 'b', 'c'][random.int(3)]!),
        maybe(0.1, () => random.next()),
      ]);
    }
  });
  after(async () => {
    await db?.end();
    await database?.drop();
  });

  /** Online and offline at `now` for every customer; statuses consistent with the TTL. */
  async function assertAgrees(now: number, refs: string[], ids: number[] = CUSTOMERS): Promise<OnlineFeaturesResult> {
    const online = await getOnlineFeatures(db, {
      features: refs,
      entities: ids.map((id) => ({ customer_id: id })),
      now: new Date(now),
      registryCacheMs: 0,
    });
    const offline = await getHistoricalFeatures(db, {
      entities: { rows: createTable([numberColumn('customer_id', ids), timestampColumn('event_timestamp', ids.map(() => now))]) },
      features: refs,
    });
    const stored = await loadFeatureDefinitions(db);
    online.names.forEach((name, j) => {
      const column = getColumn(offline.table, name);
      const view = refs[j]!.split(':')[0]!;
      const ttl = stored.featureViews.find((v) => v.name === view)!.ttlSeconds * 1000;
      ids.forEach((id, i) => {
        const row = online.rows[i]!;
        assert.deepEqual(row.values[name], valueAt(column, i), `customer ${id} ${refs[j]} at ${iso(now)}`);
        const state = row.views[view]!;
        if (valueAt(column, i) !== null) assert.equal(row.statuses[name], 'present');
        if (state.status === 'expired') assert.ok(ttl > 0 && Date.parse(state.eventTimestamp!) < now - ttl);
        if (state.status === 'present') assert.ok(ttl === 0 || Date.parse(state.eventTimestamp!) >= now - ttl);
        assert.equal(row.statuses[name], state.status === 'missing' ? 'missing' : state.status);
      });
    });
    return online;
  }

  const watermark = async (view: string) => (await listMaterializations(db)).find((m) => m.view === view);

  it('a first run copies the latest rows inside the TTL; reads equal historical retrieval at the same moment', async () => {
    const first = await materializeFeatureView(db, { view: 'activity', end: iso(T0), runId: 'run-1' });
    assert.equal(first.full, true);
    assert.equal(first.watermarkFrom, null);
    assert.equal(first.watermarkTo, iso(T0));
    assert.equal(first.start, iso(T0 - 6 * HOUR - 1));
    assert.ok(first.rowsWritten > 5 && first.rowsWritten === first.candidateRows, JSON.stringify(first));
    const profile = await materializeFeatureView(db, { view: 'profile', end: iso(T0) });
    assert.equal(profile.start, null); // TTL 0: from the beginning
    assert.ok(profile.rowsWritten > 20);

    const atT0 = await assertAgrees(T0, [...ACTIVITY, ...PROFILE]);
    const statuses = new Set(atT0.rows.map((r) => r.views.activity!.status));
    assert.ok(statuses.has('present') && statuses.has('missing'), [...statuses].join());
    // exactly at now − TTL is in, like the offline bound
    assert.ok(atT0.rows.some((r) => r.views.activity!.eventTimestamp === iso(T0 - 6 * HOUR) && r.views.activity!.status === 'present'));
    assert.equal(atT0.rows[0]!.views.profile!.status, 'missing');
    assert.deepEqual(atT0.rows[44]!.values, Object.fromEntries(['spend', 'visits', 'plan', 'active', 'last_login', 'segment', 'score'].map((n) => [n, null])));

    // Later: activity values expire (status expired, value null), profile (TTL 0) never does.
    const later = await assertAgrees(T0 + 3 * HOUR, [...ACTIVITY, ...PROFILE]);
    assert.ok(later.rows.some((r) => r.views.activity!.status === 'expired'));
    const muchLater = await assertAgrees(T0 + 5 * DAY, [...ACTIVITY, ...PROFILE]);
    assert.ok(muchLater.rows.every((r) => r.views.activity!.status !== 'present'));
    assert.ok(muchLater.rows.some((r) => r.views.profile!.status === 'present' && r.values.segment !== null));
    const expired = muchLater.rows.find((r) => r.views.activity!.status === 'expired')!;
    for (const name of ['spend', 'visits', 'plan', 'active', 'last_login']) {
      assert.equal(expired.statuses[name], 'expired');
      assert.equal(expired.values[name], null);
    }
    const state = await watermark('activity');
    assert.equal(state?.watermark, iso(T0));
    assert.equal(state?.lastRunId, 'run-1');
  });

  it('incremental: only rows after the watermark are read; backfills (same event time, created later) win; older late rows do not', async () => {
    const T1 = T0 + 6 * HOUR;
    const before = await getOnlineFeatures(db, { features: ACTIVITY, entities: CUSTOMERS.map((id) => ({ customer_id: id })), now: new Date(T0), registryCacheMs: 0 });
    const present = before.rows.filter((r) => r.views.activity!.status === 'present' && r.views.activity!.createdTimestamp !== null);
    const backfilled = present[0]!;
    const late = present[1]!;
    const backfillKey = backfilled.entity.customer_id as number;
    const lateKey = late.entity.customer_id as number;
    const fresh = [1, 2, 3, 4, 5].filter((k) => k !== backfillKey && k !== lateKey).slice(0, 3);
    await insertActivity([
      ...fresh.map((key) => ({ key, ets: T0 + HOUR, cts: T0 + HOUR })),
      // same event time as the stored row, created later: replaces it (as offline)
      { key: backfillKey, ets: Date.parse(backfilled.views.activity!.eventTimestamp!), cts: T0 + 2 * HOUR },
      // a late row older than the stored one: read (created after the watermark) but not written
      { key: lateKey, ets: Date.parse(late.views.activity!.eventTimestamp!) - 2 * HOUR, cts: T0 + 2 * HOUR },
      // created after this window's end: not known at T1, the next window takes it
      { key: 40, ets: T0 + 2 * HOUR, cts: T1 + HOUR },
    ]);
    const second = await materializeFeatureView(db, { view: 'activity', end: iso(T1) });
    assert.equal(second.full, false);
    assert.equal(second.watermarkFrom, iso(T0));
    assert.equal(second.watermarkTo, iso(T1));
    assert.equal(second.start, iso(T0));
    assert.equal(second.candidateRows, fresh.length + 2);
    assert.equal(second.rowsWritten, fresh.length + 1);
    const atT1 = await assertAgrees(T1, ACTIVITY);
    const replaced = atT1.rows[backfillKey]!;
    assert.equal(replaced.views.activity!.createdTimestamp, iso(T0 + 2 * HOUR));
    assert.equal(atT1.rows[lateKey]!.views.activity!.eventTimestamp, late.views.activity!.eventTimestamp);

    const third = await materializeFeatureView(db, { view: 'activity', end: iso(T1 + 2 * HOUR) });
    assert.equal(third.rowsWritten, 1);
    assert.equal(third.candidateRows, 1);
    const atT1b = await assertAgrees(T1 + 2 * HOUR, ACTIVITY);
    assert.equal(atT1b.rows[40]!.views.activity!.eventTimestamp, iso(T0 + 2 * HOUR));
  });

  it('a run that fails half-way leaves rows and watermark where they were; the next run fills the gap; a re-run writes nothing', async () => {
    const T2 = T0 + 10 * HOUR;
    const from = (await watermark('activity'))!.watermark;
    const keys = [10, 11, 12, 13, 14];
    await insertActivity(keys.map((key) => ({ key, ets: T2 - 30 * MINUTE, cts: T2 - 30 * MINUTE })));
    await db.query(`CREATE FUNCTION t.fail_on_12() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'injected failure writing %', NEW.entity_key; END $$;
      CREATE TRIGGER fail_on_12 BEFORE INSERT OR UPDATE ON online_features
        FOR EACH ROW WHEN (NEW.entity_key = '[12]') EXECUTE FUNCTION t.fail_on_12()`);
    const storedBefore = await getOnlineFeatures(db, { features: ACTIVITY, entities: keys.map((id) => ({ customer_id: id })), now: new Date(T2), registryCacheMs: 0 });
    await assert.rejects(materializeFeatureView(db, { view: 'activity', end: iso(T2) }), /injected failure writing \[12\]/);
    assert.equal((await watermark('activity'))!.watermark, from);
    const storedAfter = await getOnlineFeatures(db, { features: ACTIVITY, entities: keys.map((id) => ({ customer_id: id })), now: new Date(T2), registryCacheMs: 0 });
    assert.deepEqual(storedAfter.rows, storedBefore.rows);

    await db.query('DROP TRIGGER fail_on_12 ON online_features');
    const retry = await materializeFeatureView(db, { view: 'activity', end: iso(T2) });
    assert.equal(retry.watermarkFrom, from);
    assert.equal(retry.rowsWritten, keys.length);
    await assertAgrees(T2, ACTIVITY);

    // the same window again (as a Temporal retry would): nothing new is written
    const again = await materializeFeatureView(db, { view: 'activity', start: from, end: iso(T2) });
    assert.equal(again.rowsWritten, 0);
    assert.equal(again.candidateRows, keys.length);
    assert.equal(again.watermarkTo, iso(T2));
    assert.equal((await watermark('activity'))!.totalRowsWritten, (await listMaterializations(db)).find((m) => m.view === 'activity')!.totalRowsWritten);
  });

  it('a changed definition rebuilds the view; a feature the stored rows lack reads as missing until then', async () => {
    const T2 = T0 + 10 * HOUR;
    await db.query('ALTER TABLE t.activity ADD COLUMN extra float8');
    await db.query('UPDATE t.activity SET extra = spend * 2');
    await applyFeatureDefinitions(db, definitions(true));
    const stale = await getOnlineFeatures(db, { features: ['activity:extra'], entities: [{ customer_id: 10 }], now: new Date(T2), registryCacheMs: 0 });
    assert.equal(stale.rows[0]!.statuses.extra, 'missing');
    const rebuilt = await materializeFeatureView(db, { view: 'activity', end: iso(T2) });
    assert.equal(rebuilt.full, true);
    assert.equal(rebuilt.watermarkFrom, null);
    await assertAgrees(T2, [...ACTIVITY, 'activity:extra']);
    await applyFeatureDefinitions(db, definitions());
  });

  it('composite entity keys with awkward strings', async () => {
    const regions = ['north', 'sü"d\\ost', 'line\nbreak', '東京', ''];
    for (let i = 0; i < 30; i++) {
      await db.query('INSERT INTO t.store_sales VALUES ($1, $2, $3, $4)', [
        regions[i % regions.length],
        i % 3,
        iso(T0 - (30 - i) * 3 * MINUTE), // unique per store: no created timestamp to break ties
        random.next() * 1000,
      ]);
    }
    await materializeFeatureView(db, { view: 'store_sales', end: iso(T0) });
    const stores = regions.flatMap((region) => [0, 1, 2, 3].map((store_no) => ({ region, store_no })));
    for (const now of [T0, T0 + 45 * MINUTE]) {
      const online = await getOnlineFeatures(db, { features: ['store_sales:revenue'], entities: stores, now: new Date(now), registryCacheMs: 0 });
      const offline = await getHistoricalFeatures(db, {
        entities: {
          rows: createTable([
            categoryColumn('region', stores.map((s) => s.region)),
            numberColumn('store_no', stores.map((s) => s.store_no)),
            timestampColumn('event_timestamp', stores.map(() => now)),
          ]),
        },
        features: ['store_sales:revenue'],
      });
      stores.forEach((s, i) => assert.equal(online.rows[i]!.values.revenue, valueAt(getColumn(offline.table, 'revenue'), i), JSON.stringify(s)));
      assert.ok(online.rows.some((r) => r.statuses.revenue === 'present'));
      assert.ok(online.rows.filter((r) => r.entity.store_no === 3).every((r) => r.statuses.revenue === 'missing'));
    }
    const stored = await loadFeatureDefinitions(db);
    const entity = stored.entities.find((e) => e.name === 'store')!;
    const key = encodeEntityKey(entity, { region: 'sü"d\\ost', store_no: 1 });
    assert.equal(key, '["sü\\"d\\\\ost",1]');
    const { rows } = await db.query('SELECT 1 FROM online_features WHERE view = $1 AND entity_key = $2', ['store_sales', key]);
    assert.equal(rows.length, 1);
  });

  it('bad input: unknown or offline view, window, entity keys', async () => {
    await assert.rejects(materializeFeatureView(db, { view: 'nope', end: iso(T0) }), (e: unknown) => e instanceof InvalidInput && /unknown feature view nope/.test(e.message) && e.field === 'view');
    await assert.rejects(materializeFeatureView(db, { view: 'profile_offline', end: iso(T0) }), /not online/);
    await assert.rejects(materializeFeatureView(db, { view: 'profile', start: iso(T0), end: iso(T0) }), /must be before end/);
    await assert.rejects(
      getOnlineFeatures(db, { features: ACTIVITY, entities: [{ customer: 1 }], registryCacheMs: 0 }),
      (e: unknown) => e instanceof InvalidInput && e.field === 'entities[0].customer_id',
    );
    await assert.rejects(getOnlineFeatures(db, { features: ACTIVITY, entities: [{ customer_id: 1.5 }], registryCacheMs: 0 }), /not an int64/);
    await assert.rejects(getOnlineFeatures(db, { features: ['nope:x'], entities: [], registryCacheMs: 0 }), /unknown feature view nope/);
    // a removed view takes its online rows and watermark with it
    const { featureViews, ...rest } = definitions();
    await applyFeatureDefinitions(db, { ...rest, featureViews: featureViews.filter((v) => v.name !== 'store_sales') });
    const { rows } = await db.query("SELECT count(*)::int AS n FROM online_features WHERE view = 'store_sales'");
    assert.equal(rows[0].n, 0);
    assert.equal(await watermark('store_sales'), undefined);
  });
});
