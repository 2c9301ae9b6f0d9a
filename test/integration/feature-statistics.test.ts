/**
 * Feature statistics per view and time range: `featureViewStatistics` on the churn example equals
 * `profileTable` on the same rows read with plain SQL, whatever the chunk size.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { profileTable } from '../../lib/data/profile.js';
import { InvalidInput } from '../../lib/errors.js';
import { churnDefinitions } from '../../examples/churn/features.js';
import { generateChurn } from '../../examples/churn/generate.js';
import { createDb, type Db } from '../../stores/db.js';
import { applyFeatureDefinitions, loadFeatureDefinitions } from '../../stores/features/registry.js';
import { featureViewStatistics, featureViewStatisticsReport } from '../../stores/features/statistics.js';
import { migrate } from '../../stores/migrate.js';
import { tableFromResult } from '../../stores/pg-table.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';

describe('feature statistics', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let range: { start: string; end: string };

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    await generateChurn(db, { labelRows: 2000, schema: 'churn' });
    await applyFeatureDefinitions(db, churnDefinitions);
    const { rows } = await db.query<{ lo: Date; hi: Date }>('SELECT min(event_timestamp) AS lo, max(event_timestamp) AS hi FROM churn.order_activity');
    const lo = rows[0]!.lo.getTime();
    const hi = rows[0]!.hi.getTime();
    range = { start: new Date(lo + (hi - lo) / 3).toISOString(), end: new Date(lo + (2 * (hi - lo)) / 3).toISOString() };
  });
  after(async () => {
    await db?.end();
    await database?.drop();
  });

  /** The same rows with plain SQL, profiled by the ML core. */
  async function expected(table: string, features: string[], where = '', params: unknown[] = []) {
    const select = features.map((f) => `"${f}"`).join(', ');
    const result = await db.query({ text: `SELECT ${select} FROM ${table} ${where}`, rowMode: 'array', values: params });
    return profileTable(tableFromResult(result));
  }

  it('every view, whole and in a time range, equals profileTable on the same rows (small chunks too)', async () => {
    const { featureViews } = await loadFeatureDefinitions(db);
    assert.equal(featureViews.length, 3);
    for (const view of featureViews) {
      const names = view.features.map((f) => f.name);
      const whole = await expected(view.source.table, names);
      assert.ok(whole.rowCount > 100, `${view.name} has rows`);
      assert.deepEqual(await featureViewStatistics(db, { view: view.name }), whole, view.name);
      assert.deepEqual(await featureViewStatistics(db, { view: view.name, chunkSize: 333 }), whole, `${view.name} in chunks of 333`);

      const ranged = await expected(view.source.table, names, 'WHERE event_timestamp >= $1 AND event_timestamp < $2', [range.start, range.end]);
      assert.ok(ranged.rowCount > 0 && ranged.rowCount < whole.rowCount, `${view.name}: the range holds some rows`);
      const report = await featureViewStatisticsReport(db, { view: view.name, start: range.start, end: new Date(range.end), chunkSize: 1000 });
      assert.deepEqual(report.profile, ranged, `${view.name} in [start, end)`);
      assert.equal(report.start, range.start);
      assert.equal(report.end, range.end);
      assert.equal(report.table, view.source.table);
      assert.match(report.version, /^[0-9a-f]{16}$/);
    }
  });

  it('open-ended ranges, a feature subset in the asked order, and mixed types (strings, bool, float, int with nulls)', async () => {
    const features = ['tenure_days', 'autopay', 'plan', 'monthly_fee'];
    const since = await expected('churn.customer_profile', features, 'WHERE event_timestamp >= $1', [range.start]);
    const got = await featureViewStatistics(db, { view: 'customer_profile', start: Date.parse(range.start), features });
    assert.deepEqual(got, since);
    assert.deepEqual(got.columns.map((c) => [c.name, c.type]), [['tenure_days', 'number'], ['autopay', 'boolean'], ['plan', 'category'], ['monthly_fee', 'number']]);
    const before = await expected('churn.order_activity', ['days_since_last_order'], 'WHERE event_timestamp < $1', [range.end]);
    const withNulls = await featureViewStatistics(db, { view: 'order_activity', end: range.end, features: ['days_since_last_order'] });
    assert.deepEqual(withNulls, before);
    assert.ok(withNulls.columns[0]!.nulls > 0, 'never-ordered customers are null');
    const empty = await featureViewStatistics(db, { view: 'order_activity', start: '2999-01-01T00:00:00Z' });
    assert.equal(empty.rowCount, 0);
    assert.equal(empty.columns[0]!.count, 0);
  });

  it('unknown views and features, bad and reversed bounds are InvalidInput naming them', async () => {
    const refuses = async (options: Parameters<typeof featureViewStatistics>[1], pattern: RegExp) => {
      await assert.rejects(featureViewStatistics(db, options), (error: unknown) => {
        assert.ok(error instanceof InvalidInput, String(error));
        assert.match(error.message, pattern);
        return true;
      });
    };
    await refuses({ view: 'nope' }, /unknown feature view "nope" \(feature views: customer_profile, order_activity, support_activity\)/);
    await refuses({ view: 'order_activity', features: ['orders_7d', 'bogus'] }, /feature view order_activity has no feature bogus/);
    await refuses({ view: 'order_activity', start: 'yesterday-ish' }, /start must be a date/);
    await refuses({ view: 'order_activity', start: range.end, end: range.start }, /end .* must be after start/);
    await refuses(
      {
        view: 'ghost',
        definitions: {
          entities: [{ name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' }] }],
          featureViews: [{ name: 'ghost', entity: 'customer', source: { table: 'churn.ghost' }, features: [{ name: 'x', type: 'float64' }] }],
        },
      },
      /feature view ghost: table churn.ghost does not exist/,
    );
  });
});
