import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pickExplicitVariant, pickLiveTarget, unitHash } from '../../api/serving/routing.js';
import type { ModelRouting } from '../../api/serving/types.js';

const routing = (candidateWeight: number, salt = 'churn'): ModelRouting => ({
  model: 'churn',
  generation: 7,
  salt,
  implicit: false,
  live: [
    { version: 1, weight: 1 - candidateWeight, mode: 'live', variant: 'control' },
    { version: 2, weight: candidateWeight, mode: 'live', variant: 'candidate' },
  ],
  shadow: [{ version: 3, weight: 0, mode: 'shadow', variant: 'v3' }],
});

const units = Array.from({ length: 20_000 }, (_, i) => `customer-${i}`);

test('the hash is stable and in [0, 1)', () => {
  assert.equal(unitHash('churn', 'customer-1'), unitHash('churn', 'customer-1'));
  assert.notEqual(unitHash('churn', 'customer-1'), unitHash('other', 'customer-1'));
  // Pinned: Postgres gives the same value, so an analysis can recompute assignments from the log:
  // (('x' || substr(encode(sha256('churn'::bytea || '\x00'::bytea || 'customer-42'::bytea), 'hex'), 1, 12))::bit(48)::bigint)::float8 / 2^48
  assert.equal(unitHash('churn', 'customer-42'), 0.5698041884293801);
  for (const u of units.slice(0, 1000)) {
    const h = unitHash('s', u);
    assert.ok(h >= 0 && h < 1);
  }
});

test('a 90/10 split sends about 10 % of units to the candidate, each unit always to the same variant', () => {
  const r = routing(0.1);
  const candidate = units.filter((u) => pickLiveTarget(r, u).variant === 'candidate').length;
  assert.ok(Math.abs(candidate / units.length - 0.1) < 0.01, `candidate share ${candidate / units.length}`);
  for (const u of units.slice(0, 500)) assert.equal(pickLiveTarget(r, u), pickLiveTarget(r, u));
});

test('ramping with the same salt keeps the earlier candidate units on the candidate', () => {
  const at5 = units.filter((u) => pickLiveTarget(routing(0.05), u).variant === 'candidate');
  const at25 = new Set(units.filter((u) => pickLiveTarget(routing(0.25), u).variant === 'candidate'));
  assert.ok(at5.length > 0);
  assert.ok(at5.every((u) => at25.has(u)));
  assert.ok(Math.abs(at25.size / units.length - 0.25) < 0.015);
});

test('another salt reshuffles units', () => {
  const a = units.filter((u) => pickLiveTarget(routing(0.5, 'a'), u).variant === 'candidate');
  const b = new Set(units.filter((u) => pickLiveTarget(routing(0.5, 'b'), u).variant === 'candidate'));
  const overlap = a.filter((u) => b.has(u)).length / a.length;
  assert.ok(overlap > 0.4 && overlap < 0.6, `overlap ${overlap}`);
});

test('weights 1/0 send everything to one side; explicit variants by name or version', () => {
  assert.ok(units.slice(0, 200).every((u) => pickLiveTarget(routing(0), u).variant === 'control'));
  assert.ok(units.slice(0, 200).every((u) => pickLiveTarget(routing(1), u).variant === 'candidate'));
  assert.equal(pickExplicitVariant(routing(0.1), 'candidate')?.version, 2);
  assert.equal(pickExplicitVariant(routing(0.1), 'v1')?.variant, 'control');
  assert.equal(pickExplicitVariant(routing(0.1), '3')?.mode, 'shadow');
  assert.equal(pickExplicitVariant(routing(0.1), 'nope'), undefined);
});
