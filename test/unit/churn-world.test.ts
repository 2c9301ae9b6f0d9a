import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CHURN_ENTITY_KEY, CHURN_FEATURE_SERVICE, CHURN_LABEL, CHURN_LABELS_TABLE, churnDefinitions, churnDefinitionsFor } from '../../examples/churn/features.js';
import { CHURN_TABLE_COLUMNS, churnOptionsHash, parseChurnOptions } from '../../examples/churn/generate.js';
import type { RowSink } from '../../examples/churn/world.js';
import { ChurnWorld, PLANS } from '../../examples/churn/world.js';
import { InvalidInput } from '../../lib/errors.js';
import { entitySchema, featureServiceSchema, featureViewSchema, parseFeatureRef } from '../../lib/features/definitions.js';

const START_SEC = Date.UTC(2026, 0, 1) / 1000;
const DAY = 86_400;

/** Every row the world emits, as text lines per table, plus the hash of it all. */
function collect(options: { seed?: number; customers?: number; labelRows?: number; batch?: number; driftFromDay?: number }) {
  const customers = options.customers ?? 400;
  const labelRows = options.labelRows ?? 4000;
  const world = new ChurnWorld({
    seed: options.seed ?? 1,
    customers,
    startSec: START_SEC,
    days: 181,
    horizonDays: 30,
    monthStarts: [0, 31, 59, 90, 120, 151],
    ...(options.driftFromDay !== undefined ? { drift: { fromDay: options.driftFromDay, strength: 1 } } : {}),
  });
  const rows: Record<string, number[][]> = {
    customer: [],
    order: [],
    support: [],
    profile: [],
    orderActivity: [],
    supportActivity: [],
    label: [],
  };
  const sink = Object.fromEntries(Object.keys(rows).map((k) => [k, (...values: number[]) => void rows[k]!.push(values)])) as unknown as RowSink;
  const batch = options.batch ?? customers;
  for (let from = 0; from < customers; from += batch) world.emitCustomers(from, Math.min(customers, from + batch), sink);
  for (let from = 0; from < customers; from += batch) world.emitLabels(labelRows, from, Math.min(customers, from + batch), sink);
  const hash = createHash('sha256').update(JSON.stringify(rows)).digest('hex');
  return { rows, hash, counts: world.counts };
}

describe('churn example options', () => {
  it('fills every default, deriving the customers from the label rows', () => {
    const o = parseChurnOptions({});
    assert.deepEqual(o, { schema: 'churn', labelRows: 20_000, seed: 42, start: '2026-01-01', months: 6, horizonDays: 30, customers: 1667 });
    assert.equal(parseChurnOptions({ labelRows: 1_000_000 }).customers, 83_334);
    assert.equal(parseChurnOptions({ drift: { from: '2026-04-01' } }).drift?.strength, 1);
    assert.equal(parseChurnOptions({ drift: null }).drift, undefined);
  });

  it('hashes the resolved options: defaults written out give the same hash', () => {
    const hash = churnOptionsHash(parseChurnOptions({}));
    assert.equal(churnOptionsHash(parseChurnOptions({ seed: 42, labelRows: 20_000, customers: 1667, schema: 'churn' })), hash);
    assert.notEqual(churnOptionsHash(parseChurnOptions({ seed: 43 })), hash);
    assert.notEqual(churnOptionsHash(parseChurnOptions({ drift: { from: '2026-04-01', strength: 0.5 } })), hash);
  });

  it('rejects bad options with InvalidInput naming the field', () => {
    const field = (input: unknown) => {
      try {
        parseChurnOptions(input);
      } catch (error) {
        assert.ok(error instanceof InvalidInput, String(error));
        return error.field;
      }
      assert.fail(`accepted ${JSON.stringify(input)}`);
    };
    assert.equal(field({ labelRows: 999 }), 'labelRows');
    assert.equal(field({ labelRows: 10_000_001 }), 'labelRows');
    assert.equal(field({ schema: 'Churn; DROP TABLE x' }), 'schema');
    assert.equal(field({ start: '2026-13-01' }), 'start');
    assert.equal(field({ drift: { from: '2025-12-31', strength: 1 } }), 'drift.from');
    assert.equal(field({ drift: { from: '2026-07-01', strength: 1 } }), 'drift.from');
    // The drift starts on the first weekly snapshot on or after `from`: 2026-07-02, after the period.
    assert.equal(field({ drift: { from: '2026-06-27', strength: 1 } }), 'drift.from');
    assert.equal(parseChurnOptions({ drift: { from: '2026-06-25' } }).drift?.from, '2026-06-25');
    assert.equal(field({ drift: { from: '2026-03-01', strength: 1.5 } }), 'drift.strength');
    assert.equal(field({ months: 2, horizonDays: 45 }), 'horizonDays');
    assert.equal(field({ colour: 'blue' }), 'colour');
  });
});

describe('the churn world', () => {
  it('gives the same rows for the same seed, however it is chunked', () => {
    const whole = collect({ seed: 5 });
    const chunked = collect({ seed: 5, batch: 37 });
    assert.equal(chunked.hash, whole.hash);
    assert.notEqual(collect({ seed: 6 }).hash, whole.hash);
  });

  it('draws exactly the asked label rows, at noon, while the customer is a customer', () => {
    const { rows, counts } = collect({ seed: 2, labelRows: 4321 });
    assert.equal(rows.label!.length, 4321);
    assert.equal(counts.labels, 4321);
    const churnOf = new Map(rows.customer!.map((r) => [r[0]!, r[9]!]));
    const signupOf = new Map(rows.customer!.map((r) => [r[0]!, r[1]!]));
    for (const [id, sec, churned] of rows.label!) {
      assert.equal((sec! - START_SEC) % DAY, DAY / 2);
      assert.ok(signupOf.get(id!)! < sec!);
      const churnSec = churnOf.get(id!)!;
      if (!Number.isNaN(churnSec)) assert.ok(churnSec > sec!, 'a label after the customer left');
      assert.equal(churned, !Number.isNaN(churnSec) && churnSec <= sec! + 30 * DAY ? 1 : 0);
    }
    const seen = new Set(rows.label!.map((r) => `${r[0]}:${r[1]}`));
    assert.equal(seen.size, 4321, 'a customer-day was drawn twice');
  });

  it('writes snapshots no earlier than their event time, with a few late backfills', () => {
    const { rows } = collect({ seed: 3 });
    for (const table of ['profile', 'orderActivity', 'supportActivity']) {
      for (const r of rows[table]!) assert.ok(r[2]! >= r[1]!, `${table}: created before the event`);
    }
    const keys = rows.orderActivity!.map((r) => `${r[0]}:${r[1]}`);
    const backfilled = keys.length - new Set(keys).size;
    assert.ok(backfilled > 0 && backfilled < keys.length * 0.05, `backfilled ${backfilled} of ${keys.length}`);
  });

  it('changes nothing before the drift day and adds the new plan after it', () => {
    const plain = collect({ seed: 4, customers: 600 });
    const drifted = collect({ seed: 4, customers: 600, driftFromDay: 90 });
    const driftSec = START_SEC + 90 * DAY;
    // The same orders (customer, time, amount) before the drift day; only the running ids move.
    const before = (r: { rows: Record<string, number[][]> }) =>
      createHash('sha256')
        .update(JSON.stringify(r.rows.order!.filter((o) => o[2]! < driftSec).map((o) => o.slice(1))))
        .digest('hex');
    assert.equal(before(drifted), before(plain));
    assert.notEqual(JSON.stringify(drifted.rows.order!.map((o) => o.slice(1))), JSON.stringify(plain.rows.order!.map((o) => o.slice(1))));
    const flex = PLANS.indexOf('flex');
    const flexShare = (r: { rows: Record<string, number[][]> }, after: boolean) => {
      const picked = r.rows.profile!.filter((p) => (p[1]! >= driftSec) === after);
      return picked.filter((p) => p[3] === flex).length / picked.length;
    };
    assert.equal(flexShare(plain, true), 0);
    assert.equal(flexShare(drifted, false), 0);
    assert.ok(flexShare(drifted, true) > 0.05, `flex share ${flexShare(drifted, true)}`);
  });
});

describe('churn feature definitions', () => {
  it('are valid definitions whose features are columns of the generated tables', () => {
    const defs = churnDefinitionsFor('churn_test_x');
    for (const e of defs.entities) entitySchema.parse(e);
    assert.deepEqual(defs.entities[0]!.joinKeys, [{ name: CHURN_ENTITY_KEY, type: 'int64' }]);
    const views = new Map(defs.featureViews.map((v) => [v.name, featureViewSchema.parse(v)]));
    assert.deepEqual([...views.keys()], ['customer_profile', 'order_activity', 'support_activity']);
    for (const view of views.values()) {
      assert.equal(view.source.table, `churn_test_x.${view.name}`);
      const columns = CHURN_TABLE_COLUMNS[view.name as keyof typeof CHURN_TABLE_COLUMNS];
      assert.deepEqual(columns.slice(0, 3), [CHURN_ENTITY_KEY, view.source.eventTimestamp, view.source.createdTimestamp]);
      assert.deepEqual(view.features.map((f) => f.name), columns.slice(3));
    }
    assert.equal(views.get('customer_profile')!.ttlSeconds, 0);
    assert.equal(views.get('order_activity')!.ttlSeconds, 14 * DAY);
    const service = featureServiceSchema.parse(defs.featureServices![0]);
    assert.equal(service.name, CHURN_FEATURE_SERVICE);
    for (const ref of service.features) {
      const { view, feature } = parseFeatureRef(ref);
      assert.ok(views.get(view)?.features.some((f) => f.name === feature), `${ref} is not a feature`);
    }
  });

  it('default to the churn schema and name the labels table', () => {
    assert.equal(churnDefinitions.featureViews[0]!.source.table, 'churn.customer_profile');
    assert.equal(CHURN_LABELS_TABLE, 'churn.labels');
    assert.equal(CHURN_LABEL, 'churned');
    assert.deepEqual(CHURN_TABLE_COLUMNS.labels, [CHURN_ENTITY_KEY, 'event_timestamp', CHURN_LABEL]);
    assert.throws(() => churnDefinitionsFor('Bad-Schema'));
  });
});
