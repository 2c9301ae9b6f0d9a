/**
 * The gateway's coalesced online reads (api/serving/online-reads.ts) against real Postgres and the
 * materialized churn example: concurrent reads go out as one query and each caller gets exactly
 * what reading alone gives; a caller's bad entity fails that caller only, naming its own entity;
 * a Postgres failure reaches every caller.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { churnDefinitionsFor } from '../../examples/churn/features.js';
import { ensureChurnExample } from '../../examples/churn/generate.js';
import { InvalidInput } from '../../lib/errors.js';
import type { FeatureDefinitions } from '../../lib/features/definitions.js';
import { createOnlineReader } from '../../api/serving/online-reads.js';
import { createDb, type Db } from '../../stores/db.js';
import { listOnlineViews, materializeFeatureView } from '../../stores/features/materialize.js';
import { getOnlineFeatures } from '../../stores/features/online.js';
import { applyFeatureDefinitions, loadFeatureDefinitions } from '../../stores/features/registry.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';

const FEATURES = ['order_activity:orders_30d', 'order_activity:spend_30d', 'customer_profile:plan', 'support_activity:tickets_30d'];

describe('coalesced online reads', () => {
  let db: Db;
  let drop: () => Promise<void>;
  let definitions: FeatureDefinitions;
  let customers: number[];
  let queries = 0;
  const now = new Date();

  before(async () => {
    const fresh = await freshDatabase(await testDatabaseUrl());
    drop = fresh.drop;
    await migrate(fresh.url);
    db = createDb({ url: fresh.url });
    const start = new Date(now);
    start.setUTCMonth(start.getUTCMonth() - 2);
    await ensureChurnExample(db, { labelRows: 1_000, schema: 'churn', months: 2, start: start.toISOString().slice(0, 10) });
    await applyFeatureDefinitions(db, churnDefinitionsFor('churn'));
    for (const view of await listOnlineViews(db)) await materializeFeatureView(db, { view, end: now, runId: 'test' });
    definitions = await loadFeatureDefinitions(db);
    const { rows } = await db.query<{ id: number }>('SELECT DISTINCT customer_id::int AS id FROM churn.labels ORDER BY 1 LIMIT 60');
    customers = rows.map((r) => r.id);
    // Count the queries the reader sends (a wrapper at the database boundary, the database is real).
    const query = db.query.bind(db) as (...args: unknown[]) => unknown;
    (db as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      queries++;
      return query(...args);
    };
  });

  after(async () => {
    await db?.end();
    await drop?.();
  });

  const alone = async (entities: Array<Record<string, unknown>>) => (await getOnlineFeatures(db, { features: FEATURES, entities, definitions, now })).rows;

  it('sends the reads of one turn as one query and gives each caller what reading alone gives', async () => {
    const reader = createOnlineReader(db, { now: () => now });
    // 40 callers, one to three customers each, some customers asked for by several callers, one never seen.
    const reads = Array.from({ length: 40 }, (_, i) => [customers[i % customers.length]!, customers[(i * 7) % customers.length]!, ...(i % 5 === 0 ? [99_999_999] : [])].map((id) => ({ customer_id: id })));
    const expected = await Promise.all(reads.map((entities) => alone(entities)));
    queries = 0;
    const got = await Promise.all(reads.map((entities) => reader.read({ features: FEATURES, entities, definitions })));
    assert.equal(queries, 1, 'one query for the 40 concurrent reads');
    assert.deepEqual(got, expected);
    assert.ok(got.some((rows) => rows.some((r) => Object.values(r.statuses).includes('present'))), 'the example has online values');
    assert.ok(got[0]!.some((r) => Object.values(r.statuses).every((s) => s === 'missing')), 'the unknown customer is missing');
  });

  it('keeps reads of different feature lists apart', async () => {
    const reader = createOnlineReader(db, { now: () => now });
    const other = FEATURES.slice(0, 2);
    queries = 0;
    const [a, b] = await Promise.all([
      reader.read({ features: FEATURES, entities: [{ customer_id: customers[0] }], definitions }),
      reader.read({ features: other, entities: [{ customer_id: customers[0] }], definitions }),
    ]);
    assert.equal(queries, 2);
    assert.deepEqual(Object.keys(a![0]!.values), ['orders_30d', 'spend_30d', 'plan', 'tickets_30d']);
    assert.deepEqual(Object.keys(b![0]!.values), ['orders_30d', 'spend_30d']);
  });

  it('splits a batch larger than maxEntities into several queries', async () => {
    const reader = createOnlineReader(db, { now: () => now, maxEntities: 10 });
    const reads = customers.slice(0, 25).map((id) => [{ customer_id: id }]);
    queries = 0;
    const got = await Promise.all(reads.map((entities) => reader.read({ features: FEATURES, entities, definitions })));
    assert.equal(queries, 3);
    assert.deepEqual(got, await Promise.all(reads.map((entities) => alone(entities))));
  });

  it("fails only the caller whose entity is refused, naming that caller's entity", async () => {
    const reader = createOnlineReader(db, { now: () => now });
    const results = await Promise.allSettled([
      reader.read({ features: FEATURES, entities: [{ customer_id: customers[1] }], definitions }),
      reader.read({ features: FEATURES, entities: [{ customer_id: customers[2] }, { customer_id: 'forty-two' }], definitions }),
      reader.read({ features: FEATURES, entities: [{ customer_id: customers[3] }], definitions }),
    ]);
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[2]!.status, 'fulfilled');
    assert.deepEqual((results[0] as PromiseFulfilledResult<unknown>).value, await alone([{ customer_id: customers[1] }]));
    assert.equal(results[1]!.status, 'rejected');
    const error = (results[1] as PromiseRejectedResult).reason as InvalidInput;
    assert.ok(error instanceof InvalidInput);
    assert.equal(error.field, 'entities[1].customer_id');
    assert.match(error.message, /"forty-two" is not an int64/);
  });

  it('gives every caller the failure when Postgres fails', async () => {
    const broken = createDb({ url: 'postgres://nobody@127.0.0.1:1/none' });
    const reader = createOnlineReader(broken, { now: () => now });
    const results = await Promise.allSettled(customers.slice(0, 3).map((id) => reader.read({ features: FEATURES, entities: [{ customer_id: id }], definitions })));
    await broken.end();
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected', 'rejected']);
  });
});
