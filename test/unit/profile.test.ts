import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { FrequencyProfile, NumericProfile } from '../../lib/data/profile.js';
import { histogram, profileColumn, profileTable, quantileSorted } from '../../lib/data/profile.js';
import type { ColumnType } from '../../lib/data/table.js';
import { booleanColumn, categoryColumn, columnFromValues, createTable, numberColumn, timestampColumn } from '../../lib/data/table.js';

/** Written by test/fixtures/data/make_profile_fixture.py with numpy. */
interface Fixture {
  bins: number;
  topValues: number;
  columns: Array<{
    name: string;
    type: ColumnType;
    values: Array<number | string | boolean | null>;
    expected: Omit<NumericProfile, 'name' | 'type'> | Omit<FrequencyProfile, 'name' | 'type'>;
  }>;
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/data/profile.json', import.meta.url), 'utf8')) as Fixture;

/** Equal to within a few ulps: numpy sums pairwise, we sum in order. */
function close(actual: number | null, expected: number | null, what: string): void {
  if (expected === null) return assert.equal(actual, null, what);
  assert.ok(actual !== null, `${what}: null, expected ${expected}`);
  const tolerance = 1e-12 * Math.max(1, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual}, numpy ${expected}`);
}

describe('profile against numpy', () => {
  const numeric = fixture.columns.filter((c) => c.type === 'number' || c.type === 'timestamp');
  const frequencies = fixture.columns.filter((c) => c.type === 'category' || c.type === 'boolean');

  it('covers the cases that matter', () => {
    assert.deepEqual(
      fixture.columns.map((c) => c.name),
      ['normal', 'ties', 'skewed', 'negative_small', 'single', 'constant', 'all_null', 'event_time', 'plan', 'active'],
    );
  });

  for (const column of numeric) {
    it(`${column.name}: count, nulls, min/max/mean, sample std, quantiles and histogram`, () => {
      const profile = profileColumn(columnFromValues(column.name, column.type, column.values), { bins: fixture.bins }) as NumericProfile;
      const expected = column.expected as Omit<NumericProfile, 'name' | 'type'>;
      assert.equal(profile.type, column.type);
      assert.equal(profile.count, expected.count);
      assert.equal(profile.nulls, expected.nulls);
      assert.equal(profile.min, expected.min);
      assert.equal(profile.max, expected.max);
      close(profile.mean, expected.mean, 'mean');
      close(profile.std, expected.std, 'std');
      if (expected.quantiles === null) assert.equal(profile.quantiles, null);
      else {
        // numpy's linear method is reproduced operation for operation: exactly equal.
        assert.deepEqual(profile.quantiles, expected.quantiles);
      }
      assert.deepEqual(profile.histogram, expected.histogram);
    });
  }

  for (const column of frequencies) {
    it(`${column.name}: value frequencies, top ${fixture.topValues} and the rest as other`, () => {
      const profile = profileColumn(columnFromValues(column.name, column.type, column.values), { topValues: fixture.topValues }) as FrequencyProfile;
      assert.deepEqual({ ...profile, name: undefined, type: undefined }, { ...column.expected, name: undefined, type: undefined });
    });
  }

  it('the category fixture really has more than 50 values, so "other" is exercised', () => {
    const plan = fixture.columns.find((c) => c.name === 'plan')!.expected as FrequencyProfile;
    assert.ok(plan.distinct > 50 && plan.other > 0 && plan.top.length === 50);
  });
});

describe('profile shape', () => {
  it('is plain JSON: no NaN or Infinity, nulls where a statistic does not exist', () => {
    const table = createTable([
      numberColumn('x', [1, Infinity, null, 3]),
      numberColumn('empty', [null, null, null, null]),
      timestampColumn('at', [0, 86_400_000, null, null]),
      categoryColumn('c', ['a', null, 'b', 'a']),
      booleanColumn('b', [true, true, false, null]),
    ]);
    const profile = profileTable(table);
    assert.deepEqual(JSON.parse(JSON.stringify(profile)), profile);
    const [x, empty, at, c, b] = profile.columns as [NumericProfile, NumericProfile, NumericProfile, FrequencyProfile, FrequencyProfile];
    assert.equal(profile.rowCount, 4);
    assert.equal(x.max, null);
    assert.equal(x.mean, null);
    assert.equal(x.histogram?.counts.reduce((s, n) => s + n, 0), 2);
    assert.deepEqual(
      { count: empty.count, nulls: empty.nulls, mean: empty.mean, quantiles: empty.quantiles, histogram: empty.histogram },
      { count: 0, nulls: 4, mean: null, quantiles: null, histogram: null },
    );
    assert.equal(at.mean, 43_200_000);
    assert.equal(at.quantiles?.p50, 43_200_000);
    assert.deepEqual(c.top, [
      { value: 'a', count: 2 },
      { value: 'b', count: 1 },
    ]);
    assert.deepEqual({ count: b.count, nulls: b.nulls, distinct: b.distinct, other: b.other }, { count: 3, nulls: 1, distinct: 2, other: 0 });
    assert.deepEqual(b.top, [
      { value: 'true', count: 2 },
      { value: 'false', count: 1 },
    ]);
  });

  it('computes quantiles by linear interpolation and histograms with a closed last bin', () => {
    assert.equal(quantileSorted([1, 2, 3, 4], 0.25), 1.75);
    assert.equal(quantileSorted([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(quantileSorted([10], 0.99), 10);
    assert.deepEqual(histogram([0, 1, 2, 3, 4], 4), { edges: [0, 1, 2, 3, 4], counts: [1, 1, 1, 2] });
    assert.deepEqual(histogram([7, 7], 2), { edges: [6.5, 7, 7.5], counts: [0, 2] });
  });

  it('counts ties in value order and lists at most topValues', () => {
    const profile = profileColumn(categoryColumn('c', ['b', 'a', 'c', 'c', 'b', 'a', 'd']), { topValues: 2 }) as FrequencyProfile;
    assert.deepEqual(profile.top, [
      { value: 'a', count: 2 },
      { value: 'b', count: 2 },
    ]);
    assert.equal(profile.other, 3);
    assert.equal(profile.distinct, 4);
  });
});
