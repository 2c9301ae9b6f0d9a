/**
 * The DuckDB engine of historical retrieval (engine: 'duckdb': ASOF join over Parquet exports of
 * the views), checked cell by cell against the same deliberately simple in-memory reference as
 * test/integration/historical-features.test.ts, on the same seeded random data (ties decided by
 * created_timestamp, null created timestamps and features, TTL edges, backfilled rows with the
 * guard on and off, no match, duplicate and unsorted entity rows, null keys and timestamps, three
 * views), plus: string join keys and awkward text (quotes, commas, newlines) and microsecond
 * timestamps compared with the Postgres engine, entity tables, and the export cache (a second
 * retrieval does not export again; a view with new rows or a new definition does).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Table } from '../../lib/data/table.js';
import {
  categoryColumn,
  columnValues,
  createTable,
  getColumn,
  numberColumn,
  schemaOf,
  timestampColumn,
} from '../../lib/data/table.js';
import type { FeatureDefinitionsInput } from '../../lib/features/definitions.js';
import { Random } from '../../lib/ml/random.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { duckdbAvailable } from '../../stores/features/duckdb-engine.js';
import { DUCKDB_AUTO_MIN_ROWS, getHistoricalFeatures, writeHistoricalFeaturesParquet } from '../../stores/features/historical.js';
import { readTable } from '../../stores/datasets.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import type { Value } from '../helpers/pit-reference.js';
import { BASE, MINUTE, HOUR, DAY, makeViews, makeEntities, entityTable, definitionsFor, createViewTable, referencePicks, expectedColumn, assertColumnEquals, assertMatchesReference } from '../helpers/pit-reference.js';

describe('historical features with the DuckDB engine (ASOF join over Parquet exports)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let artifactDir: string;
  let artifacts: FsArtifactStore;
  const schema = `histd_${randomBytes(4).toString('hex')}`;
  const random = new Random(20240101);
  const views = makeViews(random, schema);
  const entities = makeEntities(random, views);
  const definitions = definitionsFor(views, schema);
  const allFeatures = views.flatMap((v) => v.features.map((f) => `${v.name}:${f.name}`));

  before(async () => {
    assert.ok(await duckdbAvailable(), '@duckdb/node-api loads');
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    artifactDir = await mkdtemp(path.join(os.tmpdir(), 'keel-duckdb-test-'));
    artifacts = new FsArtifactStore(artifactDir);
    await db.query(`CREATE SCHEMA ${schema}`);
    for (const view of views) await createViewTable(db, view);
    await db.query(`CREATE TABLE ${schema}.merchant_stats (merchant_id text, event_timestamp timestamptz, volume float8)`);
  });
  after(async () => {
    await db?.end();
    await database?.drop();
    if (artifactDir) await rm(artifactDir, { recursive: true, force: true });
  });

  for (const backfillGuard of [true, false]) {
    for (const fullFeatureNames of [false, true]) {
      it(`matches the reference on every cell: backfill guard ${backfillGuard ? 'on' : 'off'}${fullFeatureNames ? ', full feature names' : ''}`, async () => {
        const rows = entityTable(entities);
        const result = await getHistoricalFeatures(db, {
          entities: { rows },
          features: allFeatures,
          definitions,
          backfillGuard,
          fullFeatureNames,
          engine: 'duckdb',
          artifacts,
        });
        assert.equal(result.engine, 'duckdb');
        const { table } = result;
        assert.equal(table.rowCount, rows.rowCount);
        assert.deepEqual(
          table.columns.slice(0, 5).map((c) => columnValues(c)),
          rows.columns.map((c) => columnValues(c)),
          'entity columns unchanged, in entity order',
        );
        assert.deepEqual(
          table.columns.slice(5).map((c) => c.name),
          views.flatMap((v) => v.features.map((f) => (fullFeatureNames ? `${v.name}__${f.name}` : f.name))),
        );
        assertMatchesReference(table, views, entities, backfillGuard, fullFeatureNames, `duckdb guard ${backfillGuard}`);
        assert.deepEqual(
          result.timings.views.map((v) => v.strategy),
          ['asof', 'asof', 'asof'],
        );
      });
    }
  }

  it('matches the reference for a subset of features in another order, and a single view', async () => {
    const features = ['recent:tier', 'activity:last_login', 'daily:flag', 'activity:plan'];
    const { table } = await getHistoricalFeatures(db, { entities: { rows: entityTable(entities) }, features, definitions, engine: 'duckdb', artifacts });
    assert.deepEqual(table.columns.slice(5).map((c) => c.name), ['tier', 'last_login', 'flag', 'plan']);
    const byView = Object.fromEntries(views.map((v) => [v.name, v]));
    for (const ref of features) {
      const [viewName, feature] = ref.split(':') as [string, string];
      const view = byView[viewName]!;
      const j = view.features.findIndex((f) => f.name === feature);
      assertColumnEquals(getColumn(table, feature), expectedColumn(view, j, referencePicks(view, entities, true)), entities, ref);
    }
  });

  it('the export cache: a second retrieval does not export again; new rows or a new definition do', async () => {
    const run = (defs: FeatureDefinitionsInput = definitions) =>
      getHistoricalFeatures(db, { entities: { rows: entityTable(entities) }, features: allFeatures, definitions: defs, engine: 'duckdb', artifacts });
    const exported = (result: Awaited<ReturnType<typeof run>>) => result.timings.views.map((v) => [v.name, v.export!.exported]);
    await run();
    const second = await run();
    assert.deepEqual(exported(second), [
      ['activity', false],
      ['recent', false],
      ['daily', false],
    ]);
    const shas = second.timings.views.map((v) => v.export!.sha256);

    // A new row in `recent` (a later created timestamp): only that view is exported again, and the new row is used.
    const recent = views[1]!;
    const target = { key: 3, ets: BASE + 3 * DAY, cts: BASE + 3 * DAY + MINUTE, values: [0.125, 'zz'] as Value[] };
    await db.query(`INSERT INTO ${recent.table} (customer_id, event_timestamp, created, score, tier) VALUES ($1, $2, $3, $4, $5)`, [
      target.key,
      new Date(target.ets).toISOString(),
      new Date(target.cts).toISOString(),
      target.values[0],
      target.values[1],
    ]);
    try {
      const probe = createTable([numberColumn('customer_id', [3, 3]), timestampColumn('event_timestamp', [target.cts, target.cts - 1])]);
      const third = await getHistoricalFeatures(db, { entities: { rows: probe }, features: ['recent:score', 'activity:spend', 'recent:tier'], definitions, engine: 'duckdb', artifacts });
      assert.deepEqual(
        third.timings.views.map((v) => [v.name, v.export!.exported]),
        [
          ['recent', true],
          ['activity', false],
        ],
      );
      assert.notEqual(third.timings.views[0]!.export!.sha256, shas[1]);
      assert.equal(third.timings.views[1]!.export!.sha256, shas[0]);
      assert.deepEqual(columnValues(getColumn(third.table, 'tier')).slice(0, 1), ['zz']);
      assert.notEqual(columnValues(getColumn(third.table, 'tier'))[1], 'zz', 'created 1 ms after ts: a backfill, not used');
    } finally {
      await db.query(`DELETE FROM ${recent.table} WHERE tier = 'zz'`);
    }
    // Back to the old rows: the old export is found again.
    const fourth = await run();
    assert.deepEqual(fourth.timings.views.map((v) => v.export!.sha256), shas);
    assert.deepEqual(exported(fourth), [
      ['activity', false],
      ['recent', false],
      ['daily', false],
    ]);

    // A changed definition (the TTL of daily) has a new version: exported again, and the new TTL applies.
    const changed: FeatureDefinitionsInput = {
      ...definitions,
      featureViews: definitions.featureViews.map((v) => (v.name === 'daily' ? { ...v, ttlSeconds: 3600 } : v)),
    };
    const fifth = await run(changed);
    assert.deepEqual(exported(fifth), [
      ['activity', false],
      ['recent', false],
      ['daily', true],
    ]);
    const daily = { ...views[2]!, ttlSeconds: 3600 };
    assertMatchesReference(fifth.table, [views[0]!, views[1]!, daily], entities, true, false, 'new TTL');
  });

  it('entity rows from a Postgres table give the same values as the Postgres engine', async () => {
    const table = `${schema}.labels_d`;
    await db.query(`CREATE TABLE ${table} (id int4, customer_id int8, event_timestamp timestamptz, note text)`);
    await db.query(
      `INSERT INTO ${table} SELECT o::int4 - 1, k, t, 'n' || o FROM unnest($1::int8[], $2::timestamptz[]) WITH ORDINALITY AS u(k, t, o)`,
      [entities.keys, entities.ts.map((t) => (t === null ? null : new Date(t).toISOString()))],
    );
    // Microsecond entity timestamps, just before and after a feature row's event timestamp.
    await db.query(`INSERT INTO ${table} SELECT -1, customer_id, event_timestamp - interval '1 microsecond', 'before' FROM ${views[0]!.table} LIMIT 20`);
    await db.query(`INSERT INTO ${table} SELECT -2, customer_id, event_timestamp + interval '1 microsecond', 'after' FROM ${views[0]!.table} LIMIT 20`);
    const options = { entities: { table }, features: allFeatures, definitions, fullFeatureNames: true, artifacts };
    const viaPostgres = await getHistoricalFeatures(db, { ...options, engine: 'postgres' });
    const viaDuckdb = await getHistoricalFeatures(db, { ...options, engine: 'duckdb' });
    assert.equal(viaDuckdb.engine, 'duckdb');
    assertSameTable(viaDuckdb.table, viaPostgres.table);
  });

  it('engine auto over an entity table: DuckDB from autoMinRows rows as copied in the snapshot, Postgres below; the same table', async () => {
    const table = `${schema}.labels_auto`;
    await db.query(`CREATE TABLE ${table} (customer_id int8, event_timestamp timestamptz)`);
    await db.query(`INSERT INTO ${table} SELECT * FROM unnest($1::int8[], $2::timestamptz[])`, [
      entities.keys,
      entities.ts.map((t) => (t === null ? null : new Date(t).toISOString())),
    ]);
    const rows = entities.keys.length;
    const options = { entities: { table }, features: allFeatures, definitions, engine: 'auto' as const, artifacts };
    const at = await getHistoricalFeatures(db, { ...options, autoMinRows: rows });
    const below = await getHistoricalFeatures(db, { ...options, autoMinRows: rows + 1 });
    assert.equal(at.engine, 'duckdb', `${rows} entity rows reach autoMinRows ${rows}`);
    assert.equal(below.engine, 'postgres', `${rows} entity rows stay under autoMinRows ${rows + 1}`);
    assertSameTable(at.table, below.table);
    assert.equal((await getHistoricalFeatures(db, { ...options, features: ['activity:spend'] })).engine, 'postgres', `default threshold ${DUCKDB_AUTO_MIN_ROWS}`);
  });

  it('string join keys, awkward text, microsecond timestamps and numeric/int4/date sources: same as the Postgres engine', async () => {
    const table = `${schema}.merchant_daily`;
    await db.query(
      `CREATE TABLE ${table} (merchant_id text, event_timestamp timestamptz, created timestamptz, note text, amount numeric, n int4, day date, ok bool)`,
    );
    const texts = ['plain', 'with, comma', 'with "quotes"', 'new\nline', '', 'ünïcode ✓', '"', ',', null];
    const merchants = ['m1', 'm,2', 'm"3', '', 'm 5'];
    const rows: unknown[][] = [];
    const rand = new Random(7);
    for (let i = 0; i < 600; i++) {
      const ets = new Date(BASE + rand.int(50) * HOUR).toISOString().replace('Z', `${String(rand.int(1000)).padStart(3, '0')}Z`);
      rows.push([
        merchants[rand.int(merchants.length)],
        ets.replace(/\.(\d{3})(\d{3})Z$/, '.$1$2Z'),
        rand.next() < 0.1 ? null : new Date(BASE + rand.int(60) * HOUR + rand.int(1000)).toISOString(),
        texts[rand.int(texts.length)],
        rand.next() < 0.1 ? null : (rand.int(2_000_000) / 1000).toString(),
        rand.next() < 0.1 ? null : rand.int(1000) - 500,
        rand.next() < 0.1 ? null : new Date(BASE + rand.int(30) * DAY).toISOString().slice(0, 10),
        rand.next() < 0.1 ? null : rand.next() < 0.5,
      ]);
    }
    const transpose = (j: number) => rows.map((r) => r[j]);
    await db.query(
      `INSERT INTO ${table} SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::numeric[], $6::int4[], $7::date[], $8::bool[])`,
      [0, 1, 2, 3, 4, 5, 6, 7].map(transpose),
    );
    const defs: FeatureDefinitionsInput = {
      entities: [{ name: 'merchant', joinKeys: [{ name: 'merchant_id', type: 'string' }] }],
      featureViews: [
        {
          name: 'merchant_daily',
          entity: 'merchant',
          source: { table, createdTimestamp: 'created' },
          ttlSeconds: 7200,
          features: [
            { name: 'note', type: 'string' },
            { name: 'amount', type: 'float64' },
            { name: 'n', type: 'int64' },
            { name: 'day', type: 'timestamp' },
            { name: 'ok', type: 'bool' },
          ],
        },
      ],
    };
    const keys: Array<string | null> = [];
    const times: Array<number | null> = [];
    for (let i = 0; i < 3000; i++) {
      keys.push(rand.next() < 0.02 ? null : [...merchants, 'unknown'][rand.int(merchants.length + 1)]!);
      times.push(rand.next() < 0.02 ? null : BASE - HOUR + rand.int(60 * 60) * MINUTE + rand.int(3) - 1);
    }
    const entityRows = createTable([categoryColumn('merchant_id', keys), timestampColumn('event_timestamp', times)]);
    for (const backfillGuard of [true, false]) {
      const options = {
        entities: { rows: entityRows },
        features: ['merchant_daily:note', 'merchant_daily:amount', 'merchant_daily:n', 'merchant_daily:day', 'merchant_daily:ok'],
        definitions: defs,
        backfillGuard,
        artifacts,
      };
      const viaPostgres = await getHistoricalFeatures(db, { ...options, engine: 'postgres' });
      const viaDuckdb = await getHistoricalFeatures(db, { ...options, engine: 'duckdb' });
      assertSameTable(viaDuckdb.table, viaPostgres.table);
      const notes = columnValues(getColumn(viaDuckdb.table, 'note'));
      for (const text of ['with, comma', 'with "quotes"', 'new\nline', '']) assert.ok(notes.includes(text), `a pick with ${JSON.stringify(text)}`);
    }
  });

  it('writeHistoricalFeaturesParquet: the Parquet file DuckDB writes holds the same table as getHistoricalFeatures', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keel-duckdb-parquet-'));
    try {
      for (const [backfillGuard, fullFeatureNames] of [
        [true, false],
        [false, true],
      ] as const) {
        // Mixed view order, every feature type, entity columns of every type with nulls.
        const features = ['recent:tier', 'activity:last_login', 'daily:flag', 'activity:spend', 'recent:score', 'activity:visits'];
        const options = { entities: { rows: entityTable(entities) }, features, definitions, backfillGuard, fullFeatureNames, artifacts };
        const { table } = await getHistoricalFeatures(db, { ...options, engine: 'duckdb' });
        const file = path.join(dir, `duckdb-${backfillGuard}.parquet`);
        const written = await writeHistoricalFeaturesParquet(db, { ...options, engine: 'duckdb', file });
        assert.equal(written.engine, 'duckdb');
        assert.equal(written.file, file);
        assert.equal(written.rowCount, table.rowCount);
        assert.deepEqual(written.columns, schemaOf(table));
        assertSameTable(await readTable(file), table);
        // The Postgres engine writes the same file content through tableToParquet.
        const viaPostgres = path.join(dir, `postgres-${backfillGuard}.parquet`);
        const pgWritten = await writeHistoricalFeaturesParquet(db, { ...options, engine: 'postgres', file: viaPostgres });
        assert.equal(pgWritten.engine, 'postgres');
        assertSameTable(await readTable(viaPostgres), table);
      }
      const empty = createTable([numberColumn('customer_id', []), timestampColumn('event_timestamp', [])]);
      const none = await writeHistoricalFeaturesParquet(db, {
        entities: { rows: empty },
        features: ['activity:plan'],
        definitions,
        engine: 'duckdb',
        artifacts,
        file: path.join(dir, 'empty.parquet'),
      });
      assert.equal(none.rowCount, 0);
      assert.equal((await readTable(path.join(dir, 'empty.parquet'))).rowCount, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('engine auto: DuckDB from DUCKDB_AUTO_MIN_ROWS in-memory entity rows, Postgres below; zero rows work', async () => {
    const small = await getHistoricalFeatures(db, { entities: { rows: entityTable(entities) }, features: ['activity:spend'], definitions, engine: 'auto', artifacts });
    assert.equal(small.engine, 'postgres');
    const n = DUCKDB_AUTO_MIN_ROWS;
    const big = createTable([
      numberColumn('customer_id', Array.from({ length: n }, (_, i) => entities.keys[i % entities.keys.length]!)),
      timestampColumn('event_timestamp', Array.from({ length: n }, (_, i) => entities.ts[i % entities.ts.length]!)),
    ]);
    const large = await getHistoricalFeatures(db, { entities: { rows: big }, features: ['activity:spend', 'recent:score'], definitions, engine: 'auto', artifacts });
    assert.equal(large.engine, 'duckdb');
    const viaPostgres = await getHistoricalFeatures(db, { entities: { rows: big }, features: ['activity:spend', 'recent:score'], definitions, artifacts });
    assertSameTable(large.table, viaPostgres.table);
    const empty = createTable([numberColumn('customer_id', []), timestampColumn('event_timestamp', [])]);
    const none = await getHistoricalFeatures(db, { entities: { rows: empty }, features: ['activity:plan', 'recent:score'], definitions, engine: 'duckdb', artifacts });
    assert.equal(none.table.rowCount, 0);
    assert.deepEqual(none.table.columns.map((c) => [c.name, c.type]), [
      ['customer_id', 'number'],
      ['event_timestamp', 'timestamp'],
      ['plan', 'category'],
      ['score', 'number'],
    ]);
  });
});

function assertSameTable(actual: Table, expected: Table): void {
  assert.deepEqual(actual.columns.map((c) => [c.name, c.type]), expected.columns.map((c) => [c.name, c.type]));
  assert.equal(actual.rowCount, expected.rowCount);
  for (let j = 0; j < expected.columns.length; j++) {
    const a = columnValues(actual.columns[j]!);
    const e = columnValues(expected.columns[j]!);
    for (let i = 0; i < e.length; i++) {
      if (!Object.is(a[i], e[i])) assert.fail(`column ${expected.columns[j]!.name} row ${i}: got ${JSON.stringify(a[i])}, expected ${JSON.stringify(e[i])}`);
    }
  }
}
