import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import { fillZeroShares, quantileShares, sturgesShares } from '../../lib/stats/binning.js';
import { jensenShannonDistance } from '../../lib/stats/distances.js';
import { columnDrift, datasetDrift, defaultDriftMethod } from '../../lib/stats/drift.js';
import type { DriftMethod } from '../../lib/stats/drift.js';
import { assertClose, statsFixtures } from '../helpers/stats-fixtures.js';

interface DriftCase {
  name: string;
  type: 'numerical' | 'categorical';
  reference: Array<number | string>;
  current: Array<number | string>;
  method: DriftMethod | null;
  psiBinning: 'quantile' | 'evidently' | null;
  expected: { method: DriftMethod; statistic: number | 'Infinity'; pValue: number | null; threshold: number; drift: boolean };
}

describe('column drift matches Evidently\'s stattests (re-implemented on scipy in the fixture script)', () => {
  for (const c of statsFixtures.drift as DriftCase[]) {
    it(`${c.name}: ${c.expected.method}`, () => {
      const r = columnDrift({
        name: c.name,
        type: c.type,
        reference: c.reference,
        current: c.current,
        method: c.method ?? undefined,
        psiBinning: c.psiBinning ?? undefined,
      });
      assert.equal(r.method, c.expected.method, 'method (Evidently\'s default when none is given)');
      assert.equal(r.status, 'ok');
      assert.equal(r.threshold, c.expected.threshold);
      const statistic = c.expected.statistic === 'Infinity' ? Infinity : c.expected.statistic;
      assertClose(r.statistic, statistic, 1e-12, 'statistic', 1e-12);
      assertClose(r.pValue, c.expected.pValue, 1e-9, 'p-value', 1e-300);
      assert.equal(r.drift, c.expected.drift, 'drift');
      assert.deepEqual(r.n, { reference: c.reference.length, current: c.current.length });
      assert.deepEqual(r.missing, { reference: 0, current: 0 });
    });
  }
});

describe('drift method choice and thresholds (Evidently\'s _get_default_stattest)', () => {
  it('tests for <= 1000 reference values, distances above; 5 distinct values split numerical columns', () => {
    assert.equal(defaultDriftMethod('numerical', 1000, 6), 'ks');
    assert.equal(defaultDriftMethod('numerical', 1000, 5), 'chisquare');
    assert.equal(defaultDriftMethod('numerical', 1000, 2), 'z');
    assert.equal(defaultDriftMethod('categorical', 10, 3), 'chisquare');
    assert.equal(defaultDriftMethod('categorical', 10, 2), 'z');
    assert.equal(defaultDriftMethod('numerical', 1001, 6), 'wasserstein');
    assert.equal(defaultDriftMethod('numerical', 1001, 5), 'jensenshannon');
    assert.equal(defaultDriftMethod('categorical', 1001, 40), 'jensenshannon');
  });

  it('every method is selectable with its own threshold', () => {
    const reference = Array.from({ length: 200 }, (_, i) => i % 17);
    const current = Array.from({ length: 150 }, (_, i) => (i % 17) + 0.5);
    const loose = columnDrift({ name: 'x', type: 'numerical', reference, current, method: 'wasserstein', threshold: 10 });
    assert.equal(loose.threshold, 10);
    assert.equal(loose.drift, false);
    const strict = columnDrift({ name: 'x', type: 'numerical', reference, current, method: 'wasserstein', threshold: 0.01 });
    assert.equal(strict.drift, true);
    assert.equal(strict.statistic, loose.statistic);
    for (const method of ['ks', 'chisquare', 'z', 'jensenshannon', 'psi'] as const) {
      const r = columnDrift({ name: 'x', type: 'numerical', reference, current, method });
      assert.equal(r.method, method);
      assert.equal(r.status, 'ok');
      // Categories of the current sample missing from the reference make chi-squared infinite, as in scipy.
      assert.ok(method === 'chisquare' ? r.statistic === Infinity : Number.isFinite(r.statistic), `${method} statistic`);
    }
  });
});

describe('missing, empty and constant columns', () => {
  it('missing values (null, undefined, NaN, ±Infinity) are dropped and counted, never crash', () => {
    const r = columnDrift({
      name: 'age',
      type: 'numerical',
      reference: [1, 2, null, 3, 4, 5, 6, Number.NaN, 7],
      current: [undefined, 2, 3, 4, Infinity, 5, 6, 7, 8, -Infinity],
    });
    assert.deepEqual(r.missing, { reference: 2, current: 3 });
    assert.deepEqual(r.n, { reference: 7, current: 7 });
    assert.equal(r.method, 'ks');
    assert.equal(r.status, 'ok');
  });

  it('an empty sample is reported as such: no statistic, no drift', () => {
    const r = columnDrift({ name: 'c', type: 'categorical', reference: [null, null], current: ['a'] });
    assert.equal(r.status, 'empty');
    assert.equal(r.statistic, null);
    assert.equal(r.pValue, null);
    assert.equal(r.drift, false);
    assert.deepEqual(r.missing, { reference: 2, current: 0 });
    assert.equal(columnDrift({ name: 'x', type: 'numerical', reference: [1, 2], current: [] }).status, 'empty');
  });

  it('a constant column (one value in both samples) never divides by zero', () => {
    for (const method of [undefined, 'ks', 'wasserstein', 'jensenshannon', 'psi', 'chisquare', 'z'] as const) {
      const r = columnDrift({ name: 'k', type: 'numerical', reference: new Array(2000).fill(3), current: [3, 3, 3, null], method });
      assert.equal(r.status, 'constant', String(method));
      assert.equal(r.drift, false);
      assert.equal(r.statistic, 0);
    }
  });

  it('a constant reference with a moving current is drift (Wasserstein normed by max(std, 0.001))', () => {
    const r = columnDrift({ name: 'k', type: 'numerical', reference: new Array(2000).fill(3), current: [3, 4, 5, 6, 7, 8, 9] });
    assert.equal(r.method, 'wasserstein');
    assert.equal(r.drift, true);
    assert.ok(Number.isFinite(r.statistic));
  });

  it('bad input is refused with InvalidInput naming the column', () => {
    assert.throws(
      () => columnDrift({ name: 'age', type: 'numerical', reference: [1, 'x'], current: [1] }),
      (e: unknown) => e instanceof InvalidInput && /drift column age: reference\[1\] is a string/.test(e.message),
    );
    assert.throws(
      () => columnDrift({ name: 'city', type: 'categorical', reference: ['a', 'b'], current: ['a'], method: 'ks' }),
      (e: unknown) => e instanceof InvalidInput && /ks applies to numerical columns only/.test(e.message),
    );
    assert.throws(() => columnDrift({ name: 'x', type: 'numerical', reference: [1, 2], current: [1], threshold: -1 }), InvalidInput);
  });
});

describe('dataset drift', () => {
  const same = Array.from({ length: 300 }, (_, i) => i % 50);
  const moved = Array.from({ length: 300 }, (_, i) => (i % 50) + 25);
  const column = (name: string, current: number[]) => ({ name, type: 'numerical' as const, reference: same, current });

  it('drifts when the share of drifted columns >= 0.5 (configurable); empty columns are not counted', () => {
    const half = datasetDrift([column('a', moved), column('b', same), { name: 'c', type: 'numerical', reference: [], current: [1] }]);
    assert.equal(half.evaluated, 2);
    assert.equal(half.drifted, 1);
    assert.equal(half.share, 0.5);
    assert.equal(half.drift, true);
    assert.equal(half.columns[2]!.status, 'empty');
    const strict = datasetDrift([column('a', moved), column('b', same)], { shareThreshold: 0.75 });
    assert.equal(strict.drift, false);
    const none = datasetDrift([{ name: 'c', type: 'numerical', reference: [], current: [] }]);
    assert.equal(none.drift, false);
    assert.equal(none.share, 0);
    assert.throws(() => datasetDrift([], { shareThreshold: 0 }), InvalidInput);
  });
});

describe('binning helpers', () => {
  it('quantile bins: inner edges at reference deciles, open ends, a value on an edge goes up', () => {
    const reference = Float64Array.from({ length: 11 }, (_, i) => i);
    const shares = quantileShares(reference, Float64Array.from([-5, 1, 1.5, 100]), 10);
    assert.equal(shares.labels.length, 10);
    assert.deepEqual(shares.labels[0], [-Infinity, 1]);
    // -5 in the first bin; 1 and 1.5 in [1, 2); 100 in [9, ∞).
    assert.deepEqual(Array.from(shares.current), [0.25, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.25]);
  });

  it('Evidently\'s zero floor: 0.0001, or the smallest share / 1e6 when that is <= 0.0001', () => {
    assert.deepEqual(Array.from(fillZeroShares(Float64Array.from([0.5, 0, 0.5]))), [0.5, 0.0001, 0.5]);
    assert.deepEqual(Array.from(fillZeroShares(Float64Array.from([0.99995, 0, 0.00005]))), [0.99995, 0.00005 / 1e6, 0.00005]);
  });

  it('sturges bins cover both samples and put the maximum in the last bin', () => {
    const shares = sturgesShares(Float64Array.from([0, 1, 2, 3]), Float64Array.from([4, 5, 6, 7]));
    // 8 values: ceil(log2(8) + 1) = 4 bins of width 1.75.
    assert.equal(shares.labels.length, 4);
    assert.deepEqual(Array.from(shares.reference), [0.5, 0.5, 0, 0]);
    assert.deepEqual(Array.from(shares.current), [0, 0, 0.5, 0.5]);
    assert.equal(jensenShannonDistance(Float64Array.from([1, 0]), Float64Array.from([0, 1])), Math.sqrt(Math.log(2)));
  });
});
