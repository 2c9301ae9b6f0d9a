import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import { wassersteinNormedSorted, wassersteinSorted } from '../../lib/stats/distances.js';
import { kolmogorovSf, smirnov } from '../../lib/stats/kolmogorov.js';
import { ksStatisticSorted, ksTest, sortedCopy } from '../../lib/stats/ks.js';
import { chiSquareSf, erfc, gammaP, gammaQ, logGamma, normalCdf, normalSf } from '../../lib/stats/special.js';
import { assertClose, statsFixtures } from '../helpers/stats-fixtures.js';

const special = statsFixtures.special as Record<string, number[][]>;

describe(`special functions match scipy ${statsFixtures.scipy}`, () => {
  it('log-gamma, incomplete gamma, erfc (relative 1e-13)', () => {
    for (const [x, v] of special.gammaln!) assertClose(logGamma(x!), v!, 1e-14, `gammaln(${x})`);
    for (const [a, x, v] of special.gammaincc!) assertClose(gammaQ(a!, x!), v!, 1e-13, `gammaincc(${a}, ${x})`, 1e-300);
    for (const [a, x, v] of special.gammainc!) assertClose(gammaP(a!, x!), v!, 1e-13, `gammainc(${a}, ${x})`, 1e-300);
    for (const [x, v] of special.erfc!) assertClose(erfc(x!), v!, 1e-13, `erfc(${x})`, 1e-300);
  });

  it('normal and chi-squared tails keep relative precision far out (relative 1e-12)', () => {
    for (const [z, v] of special.normSf!) assertClose(normalSf(z!), v!, 1e-12, `norm.sf(${z})`, 1e-300);
    for (const [z, v] of special.normCdf!) assertClose(normalCdf(z!), v!, 1e-12, `norm.cdf(${z})`, 1e-300);
    for (const [x, k, v] of special.chi2Sf!) assertClose(chiSquareSf(x!, k!), v!, 1e-12, `chi2.sf(${x}, ${k})`, 1e-300);
  });
});

describe('Kolmogorov distributions match scipy', () => {
  const k = statsFixtures.kolmogorov as { kstwoSf: Array<{ n: number; x: number; sf: number }>; smirnov: number[][] };

  it('kstwo.sf(x, n) on every branch of scipy\'s _kolmogn (relative 1e-9)', () => {
    assert.ok(k.kstwoSf.length >= 30);
    for (const { n, x, sf } of k.kstwoSf) assertClose(kolmogorovSf(n, x), sf, 1e-9, `kstwo.sf(${x}, ${n})`, 1e-300);
  });

  it('smirnov(n, x), the one-sided tail (relative 1e-9)', () => {
    for (const [n, x, v] of k.smirnov) assertClose(smirnov(n!, x!), v!, 1e-9, `smirnov(${n}, ${x})`, 1e-300);
  });
});

interface KsCase {
  name: string;
  a: number[];
  b: number[];
  statistic: number;
  pValue: number;
}

describe('two-sample KS matches scipy.stats.ks_2samp (method auto)', () => {
  for (const c of statsFixtures.ks as KsCase[]) {
    it(`${c.name} (${c.a.length} × ${c.b.length})`, () => {
      const r = ksTest(c.a, c.b);
      assertClose(r.statistic, c.statistic, 1e-15, 'statistic');
      // Exact p-values to 1e-12 relative; asymptotic ones to 1e-9.
      const exact = Math.max(c.a.length, c.b.length) <= 10000;
      assert.equal(r.method, exact ? 'exact' : 'asymptotic');
      assertClose(r.pValue, c.pValue, exact ? 1e-12 : 1e-9, 'p-value', 1e-300);
      // Symmetric in its samples.
      assertClose(ksTest(c.b, c.a).pValue, c.pValue, exact ? 1e-12 : 1e-9, 'swapped p-value', 1e-300);
    });
  }

  it('the statistic reads the ECDFs after each run of ties (scipy side="right")', () => {
    const r = ksStatisticSorted(Float64Array.from([1, 2, 2, 3]), Float64Array.from([2, 2, 2, 4]));
    // At 2: F_a = 3/4, F_b = 3/4; at 1: 1/4 − 0; at 3: 1 − 3/4.
    assert.equal(r.statistic, 0.25);
    assert.deepEqual(Array.from(sortedCopy([3, -1, 2])), [-1, 2, 3]);
  });

  it('an empty sample is refused, as scipy does', () => {
    assert.throws(() => ksTest([], [1, 2]), (e: unknown) => e instanceof InvalidInput && /KS test: a sample is empty/.test(e.message));
  });
});

interface WassersteinCase {
  name: string;
  u: number[];
  v: number[];
  distance: number;
  normed: number;
}

describe('Wasserstein distance matches scipy, normed as Evidently', () => {
  for (const c of statsFixtures.wasserstein as WassersteinCase[]) {
    it(c.name, () => {
      const u = sortedCopy(c.u);
      const v = sortedCopy(c.v);
      assertClose(wassersteinSorted(u, v), c.distance, 1e-12, 'distance');
      assertClose(wassersteinNormedSorted(u, v), c.normed, 1e-12, 'normed');
    });
  }
});
