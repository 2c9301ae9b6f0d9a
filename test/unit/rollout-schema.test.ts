import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyseStep, combineVerdicts, type LiveRow } from '../../lib/rollout/analyse-step.js';
import { stageOf } from '../../lib/schemas/rollout-messages.js';
import { decisionSchema, guardrailsSchema, rolloutInputSchema } from '../../lib/schemas/rollout.js';
import { describeZodError } from '../../lib/validation.js';
import { stepTargets } from '../../activities/traffic.js';

const problem = (input: unknown) => {
  const parsed = rolloutInputSchema.safeParse(input);
  assert.equal(parsed.success, false);
  return describeZodError(parsed.error!);
};

describe('rollout input', () => {
  it('{} rolls out churn candidate with the default plan shadow → 5 % → 25 % → approval → 50 % → 100 %', () => {
    const config = rolloutInputSchema.parse({});
    assert.equal(config.model, 'churn');
    assert.equal(config.version, 'candidate');
    assert.deepEqual(config.plan.map(stageOf), ['shadow', 'canary-5', 'canary-25', 'canary-50', 'canary-100']);
    assert.deepEqual(config.plan.map((s) => s.requireApproval), [false, false, false, true, false]);
    assert.deepEqual(config.approval, { fourEyes: true, timeoutSeconds: 7 * 24 * 3600, onTimeout: 'reject' });
    assert.equal(config.guardrails.businessMetric?.test, 'sequential');
    assert.equal(config.requestedBy, 'temporal-ui');
  });

  it('names the field of bad input', () => {
    assert.deepEqual(problem({ plan: [{ mode: 'live', percent: 0 }] }), { field: 'plan.0.percent', message: 'plan.0.percent: a live step needs percent > 0' });
    assert.equal(problem({ plan: [{ mode: 'shadow', percent: 5 }] }).field, 'plan.0.percent');
    assert.equal(problem({ plan: [] }).field, 'plan');
    assert.equal(problem({ approval: { onTimeout: 'later' } }).field, 'approval.onTimeout');
    assert.equal(problem({ model: 'Bad-Name' }).field, 'model');
    assert.equal(problem({ colour: 'red' }).field, 'colour');
  });

  it('decisions need a decision and an approver', () => {
    assert.equal(decisionSchema.safeParse({ decision: 'approve' }).success, false);
    assert.equal(decisionSchema.safeParse({ decision: 'maybe', approver: 'a' }).success, false);
    assert.deepEqual(decisionSchema.parse({ decision: 'reject', approver: ' ann ' }), { decision: 'reject', approver: 'ann', reason: '' });
  });
});

describe('rollout step routing', () => {
  it('keeps the control first and the candidate share growing, so the sticky split nests', () => {
    assert.deepEqual(stepTargets({ control: 1, candidate: 2, mode: 'shadow', percent: 0 }), [
      { version: 1, mode: 'live', weight: 1, variant: 'control' },
      { version: 2, mode: 'shadow', variant: 'candidate' },
    ]);
    assert.deepEqual(stepTargets({ control: 1, candidate: 2, mode: 'live', percent: 5 }), [
      { version: 1, mode: 'live', weight: 0.95, variant: 'control' },
      { version: 2, mode: 'live', weight: 0.05, variant: 'candidate' },
    ]);
    assert.deepEqual(stepTargets({ control: 1, candidate: 2, mode: 'live', percent: 100 }), [{ version: 2, mode: 'live', weight: 1, variant: 'candidate' }]);
    assert.deepEqual(stepTargets({ control: null, candidate: 1, mode: 'live', percent: 100 }), [{ version: 1, mode: 'live', weight: 1, variant: 'candidate' }]);
  });
});

describe('analyseStep', () => {
  const guardrails = guardrailsSchema.parse({ minLabels: 50 });
  const rows = (variant: LiveRow['variant'], n: number, positiveRate: number, seed: number): LiveRow[] =>
    Array.from({ length: n }, (_, i) => {
      const u = ((i * 7919 + seed * 104729) % 1000) / 1000;
      const label = u < positiveRate ? 1 : 0;
      return { variant, score: 0.2 + 0.6 * label * 0.8 + 0.1 * u, prediction: label, latencyMs: 5 + (i % 10), label, tsMs: 1_000 + i };
    });

  it('is inconclusive below minSamples, never pass', () => {
    const result = analyseStep({ step: { mode: 'live', minSamples: 500 }, guardrails, live: [...rows('control', 100, 0.2, 1), ...rows('candidate', 100, 0.2, 2)], shadow: [], lookEndsMs: [10_000] });
    assert.equal(result.verdict, 'inconclusive');
  });

  it('fails a candidate with a clearly higher positive-label rate (churn: lower is better)', () => {
    const result = analyseStep({ step: { mode: 'live', minSamples: 100 }, guardrails, live: [...rows('control', 1000, 0.1, 1), ...rows('candidate', 1000, 0.3, 2)], shadow: [], lookEndsMs: [10_000] });
    assert.equal(result.verdict, 'fail');
    assert.equal(result.checks.find((c) => c.check === 'business-positive-label-rate')?.verdict, 'fail');
  });
  it('shadow mode pairs the same requests: a candidate that disagrees fails, one within ±0.02 passes', () => {
    const pairs = (shift: number) =>
      Array.from({ length: 600 }, (_, i) => {
        const control = 0.05 + 0.9 * ((i * 37) % 600) / 600;
        return { control, candidate: Math.min(0.99, Math.max(0.01, control + shift + 0.02 * Math.sin(i))), controlLatencyMs: 5 + (i % 7), candidateLatencyMs: 5 + (i % 7) };
      });
    const run = (shift: number) => analyseStep({ step: { mode: 'shadow', minSamples: 500 }, guardrails, live: [], shadow: pairs(shift), lookEndsMs: [1] });
    assert.equal(run(0).verdict, 'pass');
    const shifted = run(0.3);
    assert.equal(shifted.verdict, 'fail');
    assert.equal(shifted.checks.find((c) => c.check === 'shadow-agreement')?.verdict, 'fail');
  });

  it('one verdict: any fail fails, else any inconclusive (or no check at all) is inconclusive', () => {
    const check = (verdict: 'pass' | 'fail' | 'inconclusive') => ({ check: 'x', verdict, statistic: null, threshold: 0, n: { control: 0, candidate: 0 }, reason: '' });
    assert.equal(combineVerdicts([check('pass'), check('inconclusive'), check('fail')]), 'fail');
    assert.equal(combineVerdicts([check('pass'), check('inconclusive')]), 'inconclusive');
    assert.equal(combineVerdicts([]), 'inconclusive');
    assert.equal(combineVerdicts([check('pass')]), 'pass');
  });
});
