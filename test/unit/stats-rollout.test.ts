import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import { Random } from '../../lib/ml/random.js';
import { rocAuc } from '../../lib/ml/metrics.js';
import { delongAuc, delongUnpaired } from '../../lib/stats/delong.js';
import { msprtProportions } from '../../lib/stats/msprt.js';
import type { ProportionLook } from '../../lib/stats/msprt.js';
import { agreementRate, meanAbsoluteDifference, pairedAucDifference } from '../../lib/stats/paired.js';
import { normalPValue, twoProportionZ } from '../../lib/stats/proportions.js';
import { quantile } from '../../lib/stats/quantile.js';
import {
  aucCheck,
  latencyCheck,
  proportionCheck,
  scoreDistributionCheck,
  sequentialProportionCheck,
  shadowAgreementCheck,
} from '../../lib/stats/rollout-checks.js';
import { assertClose, statsFixtures } from '../helpers/stats-fixtures.js';

describe('quantiles match np.quantile (method linear)', () => {
  for (const c of statsFixtures.quantiles as Array<{ x: number[]; q: number[]; expected: number[] }>) {
    it(`${c.x.length} values`, () => {
      // Bit for bit: the same interpolation from the nearer end as numpy's _lerp.
      assert.deepEqual(c.q.map((q) => quantile(c.x, q)), c.expected);
    });
  }
});

describe('two-proportion z-test matches statsmodels proportions_ztest', () => {
  for (const c of statsFixtures.proportions as Array<Record<string, number | number[]>>) {
    const [xt, nt] = c.candidate as number[];
    const [xc, nc] = c.control as number[];
    it(`${xt}/${nt} vs ${xc}/${nc}`, () => {
      const z = twoProportionZ(xt!, nt!, xc!, nc!);
      assertClose(z, c.z as number, 1e-13, 'z');
      assertClose(normalPValue(z), c['two-sided'] as number, 1e-12, 'two-sided', 1e-300);
      assertClose(normalPValue(z, 'greater'), c.greater as number, 1e-12, 'greater', 1e-300);
      assertClose(normalPValue(z, 'less'), c.less as number, 1e-12, 'less', 1e-300);
    });
  }
});

interface DelongCase {
  control: { y: number[]; score: number[] };
  candidate: { y: number[]; score: number[] };
  expected: Record<string, number>;
}

describe('unpaired DeLong matches the fast DeLong written in numpy', () => {
  (statsFixtures.delong as DelongCase[]).forEach((c, i) => {
    it(`case ${i} (${c.control.y.length} vs ${c.candidate.y.length}, scores with ties)`, () => {
      const control = { y: Uint8Array.from(c.control.y), score: Float64Array.from(c.control.score) };
      const candidate = { y: Uint8Array.from(c.candidate.y), score: Float64Array.from(c.candidate.score) };
      const e = c.expected;
      const r = delongUnpaired(control, candidate, 'less');
      assertClose(r.control.auc, e.controlAuc!, 1e-13, 'control AUC');
      assertClose(r.candidate.auc, e.candidateAuc!, 1e-13, 'candidate AUC');
      assertClose(r.control.variance, e.controlVariance!, 1e-12, 'control variance');
      assertClose(r.candidate.variance, e.candidateVariance!, 1e-12, 'candidate variance');
      assertClose(r.z, e.z!, 1e-11, 'z');
      assertClose(r.pValue, e.pLess!, 1e-10, 'p (less)', 1e-300);
      assertClose(delongUnpaired(control, candidate).pValue, e.pTwoSided!, 1e-10, 'p (two-sided)', 1e-300);
      // The AUC is sklearn's (ties count half), as lib/ml/metrics computes it.
      assertClose(r.control.auc, rocAuc(control.y, control.score), 1e-13, 'AUC vs rocAuc');
    });
  });

  it('fewer than 2 of a class gives a NaN variance, not a throw', () => {
    const r = delongAuc(Uint8Array.from([1, 0, 0]), Float64Array.from([0.9, 0.1, 0.2]));
    assert.equal(r.auc, 1);
    assert.ok(Number.isNaN(r.variance));
  });
});

interface MsprtCase {
  tau: number;
  looks: ProportionLook[];
  expected: { estimate: number[]; variance: number[]; logLikelihoodRatio: number[]; pValue: number[] };
}

describe('mSPRT matches the numpy implementation', () => {
  (statsFixtures.msprt as MsprtCase[]).forEach((c, i) => {
    it(`case ${i}: ${c.looks.length} looks, tau ${c.tau}`, () => {
      const path = msprtProportions(c.looks, { tau: c.tau });
      path.forEach((look, k) => {
        assertClose(look.estimate, c.expected.estimate[k]!, 1e-13, `estimate ${k}`, 1e-3);
        assertClose(look.variance, c.expected.variance[k]!, 1e-13, `variance ${k}`, 1e-9);
        assertClose(look.logLikelihoodRatio, c.expected.logLikelihoodRatio[k]!, 1e-11, `log LR ${k}`);
        assertClose(look.pValue, c.expected.pValue[k]!, 1e-11, `p ${k}`, 1e-300);
      });
    });
  });
});

/** Cumulative looks of a simulated A/B stream: `batch` rows per arm per look, success rates pControl / pCandidate. */
function simulateLooks(random: Random, looks: number, batch: number, pControl: number, pCandidate: number): ProportionLook[] {
  const out: ProportionLook[] = [];
  let xc = 0;
  let xt = 0;
  for (let k = 1; k <= looks; k++) {
    for (let i = 0; i < batch; i++) {
      if (random.next() < pControl) xc++;
      if (random.next() < pCandidate) xt++;
    }
    out.push({ control: { n: k * batch, successes: xc }, candidate: { n: k * batch, successes: xt } });
  }
  return out;
}

describe('the sequential test can be read at every bake without inflating false alarms', () => {
  it('under the null, looking at each of 10 batches: false-alarm rate <= alpha (+ 3 standard errors); naive peeking exceeds it', () => {
    const alpha = 0.05;
    const runs = 600;
    const random = new Random(1207);
    let sequentialAlarms = 0;
    let naiveAlarms = 0;
    for (let r = 0; r < runs; r++) {
      const looks = simulateLooks(random, 10, 200, 0.2, 0.2);
      if (msprtProportions(looks, { tau: 0.05 }).some((l) => l.pValue < alpha)) sequentialAlarms++;
      // A fixed-horizon z-test read at every look: the inflation the mSPRT avoids.
      const peeked = looks.some((l) => normalPValue(twoProportionZ(l.candidate.successes, l.candidate.n, l.control.successes, l.control.n)) < alpha);
      if (peeked) naiveAlarms++;
    }
    const slack = 3 * Math.sqrt((alpha * (1 - alpha)) / runs);
    const sequentialRate = sequentialAlarms / runs;
    const naiveRate = naiveAlarms / runs;
    assert.ok(sequentialRate <= alpha + slack, `mSPRT false-alarm rate ${sequentialRate} > ${alpha} + ${slack.toFixed(3)}`);
    // The simulation is able to see inflation: peeking at a fixed-horizon test goes well past alpha.
    assert.ok(naiveRate > alpha + slack, `naive peeking rate ${naiveRate} should exceed ${alpha + slack}`);
  });

  it('a clearly worse candidate is caught, and the check names the sequential evidence', () => {
    const random = new Random(99);
    let caught = 0;
    for (let r = 0; r < 50; r++) {
      const looks = simulateLooks(random, 10, 300, 0.3, 0.22);
      if (sequentialProportionCheck('business', looks, { minSamples: 100, direction: 'higher-is-better' }).verdict === 'fail') caught++;
    }
    assert.ok(caught >= 45, `caught ${caught} of 50`);
    const better = simulateLooks(new Random(5), 10, 300, 0.3, 0.4);
    const r = sequentialProportionCheck('business', better, { minSamples: 100, direction: 'higher-is-better' });
    assert.equal(r.verdict, 'pass', 'a clearly better candidate is never failed');
    assert.equal(r.details!.looks, 10);
  });
});

describe('paired comparisons', () => {
  it('agreement at a threshold and mean |Δp|', () => {
    const a = [0.1, 0.6, 0.5, 0.9];
    const b = [0.2, 0.4, 0.5, 0.95];
    assert.equal(agreementRate(a, b, 0.5), 0.75);
    assertClose(meanAbsoluteDifference(a, b), (0.1 + 0.2 + 0 + 0.05) / 4, 1e-15, 'mean |dp|');
    assert.throws(() => agreementRate([1], [1, 2], 0.5), InvalidInput);
  });

  it('the paired AUC bootstrap is reproducible by seed and brackets a clear difference', () => {
    const random = new Random(3);
    const n = 400;
    const y = new Uint8Array(n);
    const control = new Float64Array(n);
    const candidate = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = random.next() < 0.4 ? 1 : 0;
      const signal = y[i] ? 1 : -1;
      control[i] = 1 / (1 + Math.exp(-(random.normal() + 0.3 * signal)));
      candidate[i] = 1 / (1 + Math.exp(-(random.normal() + 1.5 * signal)));
    }
    const first = pairedAucDifference(y, control, candidate, { iterations: 300, seed: 11 });
    const again = pairedAucDifference(y, control, candidate, { iterations: 300, seed: 11 });
    assert.deepEqual(again, first);
    assertClose(first.estimate, rocAuc(y, candidate) - rocAuc(y, control), 1e-13, 'estimate');
    assert.ok(first.interval[0] > 0 && first.interval[1] > first.interval[0], `interval ${first.interval}`);
    assert.ok(first.pValue < 0.01);
    assert.notDeepEqual(pairedAucDifference(y, control, candidate, { iterations: 300, seed: 12 }).interval, first.interval);
  });
});

describe('rollout checks: pass | fail | inconclusive, never pass below minSamples', () => {
  it('every check is inconclusive below minSamples, whatever its data say', () => {
    const few = [0.1, 0.2, 0.3];
    const results = [
      proportionCheck('error-rate', { n: 3, successes: 0 }, { n: 3, successes: 0 }, { minSamples: 100 }),
      sequentialProportionCheck('business', [{ control: { n: 5, successes: 1 }, candidate: { n: 5, successes: 1 } }], { minSamples: 100 }),
      sequentialProportionCheck('business', [], { minSamples: 1 }),
      latencyCheck(few, few, { minSamples: 100 }),
      scoreDistributionCheck(few, few, { minSamples: 100 }),
      shadowAgreementCheck(few, few, { minSamples: 100 }),
      aucCheck({ y: Uint8Array.from([0, 1, 1]), score: Float64Array.from(few) }, { y: Uint8Array.from([0, 1, 1]), score: Float64Array.from(few) }, { minSamples: 100 }),
    ];
    for (const r of results) {
      assert.equal(r.verdict, 'inconclusive', r.check);
      assert.equal(r.statistic, null);
    }
    assert.deepEqual(results[0]!.n, { control: 3, candidate: 3 });
    assert.throws(() => latencyCheck(few, few, { minSamples: 0 }), InvalidInput);
    assert.throws(
      () => scoreDistributionCheck([0.1, Number.NaN], [0.2, 0.3], { minSamples: 2 }),
      (e: unknown) => e instanceof InvalidInput && /control\[1\] is NaN/.test(e.message),
    );
  });

  it('error rate: fail when the candidate is significantly worse, pass otherwise', () => {
    const control = { n: 5000, successes: 50 };
    assert.equal(proportionCheck('error-rate', control, { n: 5000, successes: 95 }, { minSamples: 1000 }).verdict, 'fail');
    const fine = proportionCheck('error-rate', control, { n: 5000, successes: 45 }, { minSamples: 1000 });
    assert.equal(fine.verdict, 'pass');
    assert.equal(fine.threshold, 0.05);
    assert.ok(fine.pValue! > 0.5);
    assert.equal(proportionCheck('error-rate', { n: 2000, successes: 0 }, { n: 2000, successes: 0 }, { minSamples: 1000 }).verdict, 'pass');
  });

  it('latency p99, score distribution, shadow agreement and AUC', () => {
    const random = new Random(8);
    const latency = Array.from({ length: 2000 }, () => 10 + Math.abs(random.normal()) * 5);
    const slow = latency.map((v) => v * 1.5);
    assert.equal(latencyCheck(latency, slow, { minSamples: 500 }).verdict, 'fail');
    const same = latencyCheck(latency, latency, { minSamples: 500 });
    assert.equal(same.verdict, 'pass');
    assert.equal(same.statistic, 1);
    assert.equal(same.check, 'latency-p99');

    const scores = Array.from({ length: 3000 }, () => random.next());
    const shifted = scores.map((s) => Math.min(1, s * s));
    assert.equal(scoreDistributionCheck(scores, shifted, { minSamples: 500 }).verdict, 'fail');
    const steady = scoreDistributionCheck(scores, scores.slice(0, 1500), { minSamples: 500 });
    assert.equal(steady.verdict, 'pass');
    assert.ok(steady.pValue! > 0.05, 'KS reported alongside');

    assert.equal(shadowAgreementCheck(scores, scores.map((s) => Math.min(1, s + 0.01)), { minSamples: 500 }).verdict, 'pass');
    assert.equal(shadowAgreementCheck(scores, scores.map((s) => 1 - s), { minSamples: 500 }).verdict, 'fail');

    const labelled = (n: number, strength: number) => {
      const y = new Uint8Array(n);
      const score = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        y[i] = random.next() < 0.3 ? 1 : 0;
        score[i] = 1 / (1 + Math.exp(-(random.normal() + strength * (y[i] ? 1 : -1))));
      }
      return { y, score };
    };
    const good = labelled(3000, 1.2);
    assert.equal(aucCheck(good, labelled(1500, 0.2), { minSamples: 500 }).verdict, 'fail');
    const ok = aucCheck(good, labelled(1500, 1.2), { minSamples: 500 });
    assert.equal(ok.verdict, 'pass');
    assert.ok(ok.details!.candidateLogLoss! > 0);
    const oneClass = { y: new Uint8Array(600), score: new Float64Array(600).fill(0.2) };
    assert.equal(aucCheck(good, oneClass, { minSamples: 500 }).verdict, 'inconclusive');
  });
});
