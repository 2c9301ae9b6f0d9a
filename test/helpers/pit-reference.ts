/**
 * Seeded random feature views and entity rows (ties decided by created_timestamp, null created
 * timestamps and features, TTL edges, backfills, no match, duplicate and unsorted entity rows)
 * and a deliberately simple in-memory point-in-time reference, shared by the Postgres and DuckDB
 * historical retrieval tests.
 */
import assert from 'node:assert/strict';
import type { CellValue, Column, Table } from '../../lib/data/table.js';
import { booleanColumn, categoryColumn, columnValues, createTable, getColumn, numberColumn, timestampColumn } from '../../lib/data/table.js';
import type { FeatureDefinitionsInput, FeatureValueType } from '../../lib/features/definitions.js';
import type { Random } from '../../lib/ml/random.js';
import type { Db } from '../../stores/db.js';
export const BASE = Date.UTC(2024, 0, 1);
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
// ---------------------------------------------------------------------------------------------
// Test data: plain JS rows, the single source of truth for Postgres and the reference.

export type Value = number | string | boolean | null;

export interface ViewData {
  name: string;
  table: string;
  ttlSeconds: number;
  keyType: 'int4' | 'int8';
  created: string | undefined;
  features: Array<{ name: string; type: FeatureValueType }>;
  indexed: boolean;
  rows: Array<{ key: number; ets: number; cts: number | null; values: Value[] }>;
}

export const maybe = <T>(random: Random, p: number, value: () => T): T | null => (random.next() < p ? null : value());

export function makeViews(random: Random, schema: string): ViewData[] {
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

export interface EntityRows {
  keys: Array<number | null>;
  ts: Array<number | null>;
  label: Array<boolean | null>;
  city: Array<string | null>;
  weight: Array<number | null>;
}

export function makeEntities(random: Random, views: ViewData[]): EntityRows {
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

export function entityTable(entities: EntityRows): Table {
  return createTable([
    numberColumn('customer_id', entities.keys),
    booleanColumn('label', entities.label),
    timestampColumn('event_timestamp', entities.ts),
    categoryColumn('city', entities.city),
    numberColumn('weight', entities.weight),
  ]);
}

export function definitionsFor(views: ViewData[], schema: string): FeatureDefinitionsInput {
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

export const SQL_TYPES: Record<FeatureValueType, string> = {
  float64: 'float8',
  int64: 'int8',
  bool: 'bool',
  string: 'text',
  timestamp: 'timestamptz',
};

export const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export async function createViewTable(db: Db, view: ViewData): Promise<void> {
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

export interface ReferencePick {
  /** Index into view.rows, or -1. */
  row: number;
  /** The pick's event_timestamp is exactly ts − TTL. */
  atTtlEdge: boolean;
  /** Another eligible row had the same event_timestamp (decided by created_timestamp). */
  tie: boolean;
}

export function referencePicks(view: ViewData, entities: EntityRows, guard: boolean): ReferencePick[] {
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

export function expectedColumn(view: ViewData, feature: number, picks: ReferencePick[]): CellValue[] {
  return picks.map((p) => (p.row < 0 ? null : (view.rows[p.row]!.values[feature] as CellValue)));
}

export function assertColumnEquals(actual: Column, expected: CellValue[], entities: EntityRows, what: string): void {
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

export function assertMatchesReference(result: Table, views: ViewData[], entities: EntityRows, guard: boolean, fullNames: boolean, label: string): void {
  for (const view of views) {
    const picks = referencePicks(view, entities, guard);
    view.features.forEach((feature, j) => {
      const name = fullNames ? `${view.name}__${feature.name}` : feature.name;
      assertColumnEquals(getColumn(result, name), expectedColumn(view, j, picks), entities, `${label}: ${view.name}:${feature.name}`);
    });
  }
}


// ---------------------------------------------------------------------------------------------

