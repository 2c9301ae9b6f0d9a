import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { churnDefinitionsFor } from '../../examples/churn/features.js';
import type { ChurnSummary } from '../../examples/churn/generate.js';
import { CHURN_TABLES, ensureChurnExample, generateChurn, readChurnGeneration } from '../../examples/churn/generate.js';
import { InvalidInput } from '../../lib/errors.js';
import { rocAuc } from '../../lib/ml/metrics.js';
import type { Db } from '../../stores/db.js';
import { createDb } from '../../stores/db.js';
import { freshDatabase, REPO_ROOT, testDatabaseUrl } from '../helpers/services.js';

// Its own database (other suites reset the shared one), and a schema per case inside it.
let db: Db;
let url: string;
let drop: () => Promise<void>;

before(async () => {
  const fresh = await freshDatabase(await testDatabaseUrl());
  url = fresh.url;
  drop = fresh.drop;
  db = createDb({ url, max: 4 });
});

after(async () => {
  await db?.end();
  await drop?.();
});

const SMALL = { labelRows: 5_000, seed: 7 } as const;

/** An order-independent fingerprint of a table's rows (or of the chosen columns). */
async function checksum(schema: string, table: string, columns = '*', where = 'true'): Promise<string> {
  const { rows } = await db.query<{ md5: string | null; n: string }>(
    `SELECT md5(string_agg(r::text, '|' ORDER BY r::text)) AS md5, count(*) AS n FROM (SELECT ${columns} FROM ${schema}.${table} WHERE ${where}) r`,
  );
  return `${rows[0]!.n}:${rows[0]!.md5}`;
}

async function one<T>(sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await db.query(sql, params);
  return rows[0] as T;
}

/**
 * Each label with the features of the latest snapshot at or before its time that was already
 * written then (created_timestamp <= label time), within the view's TTL: a point-in-time join.
 */
async function pointInTime(schema: string) {
  const { rows } = await db.query<{
    churned: boolean;
    orders_30d: string | null;
    complaints_90d: string | null;
    contract: string | null;
    order_age_days: number | null;
  }>(
    `SELECT l.churned, o.orders_30d, s.complaints_90d, p.contract,
            extract(epoch FROM l.event_timestamp - o.event_timestamp) / 86400 AS order_age_days
       FROM ${schema}.labels l
       LEFT JOIN LATERAL (
         SELECT * FROM ${schema}.order_activity f
          WHERE f.customer_id = l.customer_id AND f.event_timestamp <= l.event_timestamp
            AND f.event_timestamp > l.event_timestamp - interval '14 days' AND f.created_timestamp <= l.event_timestamp
          ORDER BY f.event_timestamp DESC, f.created_timestamp DESC LIMIT 1) o ON true
       LEFT JOIN LATERAL (
         SELECT * FROM ${schema}.support_activity f
          WHERE f.customer_id = l.customer_id AND f.event_timestamp <= l.event_timestamp
            AND f.event_timestamp > l.event_timestamp - interval '14 days' AND f.created_timestamp <= l.event_timestamp
          ORDER BY f.event_timestamp DESC, f.created_timestamp DESC LIMIT 1) s ON true
       LEFT JOIN LATERAL (
         SELECT * FROM ${schema}.customer_profile f
          WHERE f.customer_id = l.customer_id AND f.event_timestamp <= l.event_timestamp AND f.created_timestamp <= l.event_timestamp
          ORDER BY f.event_timestamp DESC, f.created_timestamp DESC LIMIT 1) p ON true
      ORDER BY l.customer_id, l.event_timestamp`,
  );
  return rows;
}

describe('churn example generator', () => {
  let plain: ChurnSummary;

  before(async () => {
    plain = await generateChurn(db, { ...SMALL, schema: 'churn_a' });
  });

  it('is deterministic: the same seed gives the same rows in another schema', async () => {
    const again = await generateChurn(db, { ...SMALL, schema: 'churn_b' });
    assert.deepEqual(again.rows, plain.rows);
    assert.equal(again.positiveRate, plain.positiveRate);
    for (const table of CHURN_TABLES) {
      assert.equal(await checksum('churn_b', table), await checksum('churn_a', table), table);
    }
    const other = await generateChurn(db, { ...SMALL, seed: 8, schema: 'churn_c' });
    assert.notEqual(await checksum('churn_c', 'labels'), await checksum('churn_a', 'labels'));
    assert.notEqual(other.optionsHash, plain.optionsHash);
  });

  it('writes the counted rows, exactly labelRows labels, with a positive rate near 20 %', async () => {
    assert.equal(plain.rows.labels, 5_000);
    for (const table of CHURN_TABLES) {
      const { n } = await one<{ n: string }>(`SELECT count(*) AS n FROM churn_a.${table}`);
      assert.equal(Number(n), plain.rows[table], table);
    }
    const { rate } = await one<{ rate: number }>('SELECT avg(churned::int)::float8 AS rate FROM churn_a.labels');
    assert.equal(rate, plain.positiveRate);
    assert.ok(rate >= 0.15 && rate <= 0.25, `positive rate ${rate}`);
    assert.ok(plain.rows.orders > plain.rows.customers * 5, 'customers order');
    assert.ok(plain.rows.support_events > 0);
    assert.deepEqual(plain.timeRange, {
      start: '2026-01-01T00:00:00.000Z',
      end: '2026-07-01T00:00:00.000Z',
      historyStart: '2025-10-03T00:00:00.000Z',
    });
  });

  it('labels agree with the raw customers: active at the prediction time, churned within 30 days', async () => {
    const bad = await one<{ inactive: string; wrong: string }>(
      `SELECT count(*) FILTER (WHERE c.signup_at > l.event_timestamp OR c.churned_at <= l.event_timestamp) AS inactive,
              count(*) FILTER (WHERE l.churned <> coalesce(c.churned_at <= l.event_timestamp + interval '30 days', false)) AS wrong
         FROM churn_a.labels l JOIN churn_a.customers c USING (customer_id)`,
    );
    assert.deepEqual(bad, { inactive: '0', wrong: '0' });
    // No raw event after a customer left.
    const late = await one<{ n: string }>(
      `SELECT count(*) AS n FROM churn_a.orders o JOIN churn_a.customers c USING (customer_id) WHERE o.ordered_at >= c.churned_at`,
    );
    assert.equal(late.n, '0');
  });

  it('writes feature snapshots created after their event time, with late backfills', async () => {
    for (const view of ['customer_profile', 'order_activity', 'support_activity']) {
      const { early } = await one<{ early: string }>(`SELECT count(*) AS early FROM churn_a.${view} WHERE created_timestamp < event_timestamp`);
      assert.equal(early, '0', view);
    }
    const backfills = await one<{ keys: string; changed: string }>(
      `SELECT count(*) AS keys, count(*) FILTER (WHERE first.orders_30d <> last.orders_30d OR first.spend_30d <> last.spend_30d) AS changed
         FROM (SELECT customer_id, event_timestamp, min(created_timestamp) AS c0, max(created_timestamp) AS c1
                 FROM churn_a.order_activity GROUP BY 1, 2 HAVING count(*) > 1) k
         JOIN churn_a.order_activity first ON first.customer_id = k.customer_id AND first.event_timestamp = k.event_timestamp AND first.created_timestamp = k.c0
         JOIN churn_a.order_activity last ON last.customer_id = k.customer_id AND last.event_timestamp = k.event_timestamp AND last.created_timestamp = k.c1`,
    );
    assert.ok(Number(backfills.keys) > 0, 'no backfilled snapshot');
    assert.ok(Number(backfills.changed) > 0, 'no backfill corrected a value');
    assert.ok(Number(backfills.keys) < plain.rows.order_activity * 0.05);
    // Nulls where there is nothing to measure.
    const { never } = await one<{ never: string }>('SELECT count(*) AS never FROM churn_a.order_activity WHERE days_since_last_order IS NULL');
    assert.ok(Number(never) > 0);
  });

  it('gives every label point-in-time features, and they predict churn', async () => {
    const rows = await pointInTime('churn_a');
    assert.equal(rows.length, 5_000);
    assert.equal(rows.filter((r) => r.orders_30d === null || r.complaints_90d === null || r.contract === null).length, 0, 'a label without features');
    assert.ok(rows.every((r) => r.order_age_days! >= 0 && r.order_age_days! < 14));
    const y = Uint8Array.from(rows, (r) => (r.churned ? 1 : 0));
    const fewerOrders = rocAuc(y, Float64Array.from(rows, (r) => -Number(r.orders_30d)));
    const complaints = rocAuc(y, Float64Array.from(rows, (r) => Number(r.complaints_90d)));
    const monthToMonth = rocAuc(y, Float64Array.from(rows, (r) => (r.contract === 'month_to_month' ? 1 : 0)));
    assert.ok(fewerOrders > 0.6, `AUC of -orders_30d ${fewerOrders}`);
    assert.ok(monthToMonth > 0.6, `AUC of month-to-month ${monthToMonth}`);
    assert.ok(complaints > 0.52, `AUC of complaints_90d ${complaints}`);
    // …but no single feature gives the answer away.
    for (const auc of [fewerOrders, complaints, monthToMonth]) assert.ok(auc < 0.8);
  });

  it('drifts after the drift date: same past, a new plan, higher amounts', async () => {
    const drifted = await generateChurn(db, { ...SMALL, schema: 'churn_drift', drift: { from: '2026-04-02', strength: 1 } });
    assert.equal(drifted.driftStart, '2026-04-02T00:00:00.000Z');
    const beforeDrift = `ordered_at < '2026-04-02'`;
    const columns = 'customer_id, ordered_at, amount';
    assert.equal(await checksum('churn_drift', 'orders', columns, beforeDrift), await checksum('churn_a', 'orders', columns, beforeDrift));
    const flex = async (schema: string, afterDrift: boolean) =>
      (
        await one<{ share: number }>(
          `SELECT avg((plan = 'flex')::int)::float8 AS share FROM ${schema}.customer_profile WHERE (event_timestamp >= '2026-04-02') = $1`,
          [afterDrift],
        )
      ).share;
    assert.equal(await flex('churn_a', true), 0);
    assert.equal(await flex('churn_drift', false), 0);
    assert.ok((await flex('churn_drift', true)) > 0.05);
    const amount = async (schema: string) =>
      (await one<{ mean: number }>(`SELECT avg(amount)::float8 AS mean FROM ${schema}.orders WHERE ordered_at >= '2026-04-02'`)).mean;
    const ratio = (await amount('churn_drift')) / (await amount('churn_a'));
    assert.ok(ratio > 1.15, `mean order amount after the drift changed by ×${ratio}`);
  });

  it('keeps the old data when a generation fails half-way', async () => {
    await assert.rejects(
      generateChurn(db, { schema: 'churn_a', labelRows: 20_000, customers: 100 }),
      (error: unknown) => error instanceof InvalidInput && error.field === 'customers',
    );
    assert.equal((await readChurnGeneration(db, 'churn_a'))?.optionsHash, plain.optionsHash);
    const { n } = await one<{ n: string }>('SELECT count(*) AS n FROM churn_a.labels');
    assert.equal(Number(n), 5_000);
  });

  it('refuses a bad schema name before touching the database', async () => {
    await assert.rejects(generateChurn(db, { schema: 'churn; drop table x' }), (error: unknown) => error instanceof InvalidInput && error.field === 'schema');
    assert.throws(() => churnDefinitionsFor('a.b'));
  });
});

describe('replacing the example', () => {
  it('lets readers use the old tables while the new ones load', async () => {
    await generateChurn(db, { schema: 'churn_swap', labelRows: 1_000 });
    const replacing = generateChurn(db, { schema: 'churn_swap', labelRows: 100_000 });
    const reader = await db.connect();
    try {
      await reader.query(`SET statement_timeout = '20s'`);
      // Wait until the generator is loading (into churn_swap__next), then read the old data.
      let loading = false;
      for (let i = 0; i < 1000 && !loading; i++) {
        const { rows } = await reader.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'INSERT INTO churn_swap__next.%'`,
        );
        loading = rows[0]!.n !== '0';
        if (!loading) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(loading, 'never saw the generator loading');
      const { rows } = await reader.query<{ n: string }>('SELECT count(*) AS n FROM churn_swap.labels');
      assert.equal(rows[0]!.n, '1000');
    } finally {
      reader.release();
    }
    assert.equal((await replacing).rows.labels, 100_000);
    const { n } = await one<{ n: string }>('SELECT count(*) AS n FROM churn_swap.labels');
    assert.equal(n, '100000');
    const { staging } = await one<{ staging: string | null }>(`SELECT to_regnamespace('churn_swap__next')::text AS staging`);
    assert.equal(staging, null);
  });
});

describe('ensureChurnExample', () => {
  it('generates once for concurrent callers, then is a no-op until the options change', async () => {
    const options = { schema: 'churn_ensure', labelRows: 2_000, seed: 3 };
    const other = createDb({ url, max: 2 });
    try {
      const [first, second] = await Promise.all([ensureChurnExample(db, options), ensureChurnExample(other, options)]);
      assert.deepEqual([first.generated, second.generated].sort(), [false, true]);
      assert.equal(first.optionsHash, second.optionsHash);
    } finally {
      await other.end();
    }
    const stored = await readChurnGeneration(db, 'churn_ensure');
    const labels = await checksum('churn_ensure', 'labels');

    const again = await ensureChurnExample(db, options);
    assert.equal(again.generated, false);
    assert.equal(again.generatedAt, stored!.generatedAt);
    assert.deepEqual(again.rows, stored!.rows);
    assert.equal(await checksum('churn_ensure', 'labels'), labels);

    const changed = await ensureChurnExample(db, { ...options, seed: 4 });
    assert.equal(changed.generated, true);
    assert.notEqual(await checksum('churn_ensure', 'labels'), labels);
    const { n } = await one<{ n: string }>('SELECT count(*) AS n FROM churn_ensure.generation');
    assert.equal(n, '1');
    assert.equal((await readChurnGeneration(db, 'churn_ensure'))?.options.seed, 4);
    assert.equal(await readChurnGeneration(db, 'churn_nothing_here'), null);

    // A table dropped by hand: the example is incomplete and is generated again.
    await db.query('DROP TABLE churn_ensure.order_activity');
    assert.equal(await readChurnGeneration(db, 'churn_ensure'), null);
    assert.equal((await ensureChurnExample(db, { ...options, seed: 4 })).generated, true);
  });
});

describe('the generator CLI', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'examples/churn/generate.ts', ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('prints the summary as JSON, and is a no-op with --if-changed the second time', () => {
    const args = ['--label-rows', '1000', '--seed', '9', '--schema', 'churn_cli', '--drift-from', '2026-05-07', '--drift-strength', '0.5'];
    const first = run([...args, '--if-changed'], { DATABASE_URL: url });
    assert.equal(first.status, 0, first.stderr);
    const summary = JSON.parse(first.stdout) as ChurnSummary & { generated: boolean };
    assert.equal(summary.generated, true);
    assert.equal(summary.rows.labels, 1000);
    assert.deepEqual(summary.options.drift, { from: '2026-05-07', strength: 0.5 });
    const second = run([...args, '--if-changed'], { DATABASE_URL: url });
    assert.equal(second.status, 0, second.stderr);
    assert.equal((JSON.parse(second.stdout) as { generated: boolean }).generated, false);
  });

  it('exits 2 with one line on bad usage', () => {
    for (const args of [['--label-rows', 'many'], ['--bogus'], ['--drift-strength', '0.5']]) {
      const result = run(args, { DATABASE_URL: url });
      assert.equal(result.status, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.equal(result.stdout, '');
    }
    const noDatabase = run([], { DATABASE_URL: '' });
    assert.equal(noDatabase.status, 2);
    assert.match(noDatabase.stderr, /DATABASE_URL/);
  });
});
