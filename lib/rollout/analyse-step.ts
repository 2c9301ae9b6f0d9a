/**
 * The analysis of one rollout step over its window (pure): the guardrail checks of lib/stats on
 * the predictions split by variant, and one verdict — fail if any check fails, inconclusive if
 * any is inconclusive, else pass. Feedback checks (AUC, business metric on labels) run only when
 * the window has labels at all; error rate is not computed yet (the gateway does not log failures).
 */
import type { Guardrails, RolloutStep } from '../schemas/rollout.js';
import type { CheckResult, Verdict } from '../stats/rollout-checks.js';
import { aucCheck, latencyCheck, proportionCheck, scoreDistributionCheck, sequentialProportionCheck, shadowAgreementCheck } from '../stats/rollout-checks.js';
import type { ArmCounts, ProportionLook } from '../stats/msprt.js';

export interface LiveRow {
  variant: 'control' | 'candidate';
  score: number;
  prediction: number;
  latencyMs: number;
  label: number | null;
  tsMs: number;
}

export interface ShadowPair {
  control: number;
  candidate: number;
  controlLatencyMs: number;
  candidateLatencyMs: number;
}

export interface StepWindowData {
  step: Pick<RolloutStep, 'mode' | 'minSamples'>;
  guardrails: Guardrails;
  live: LiveRow[];
  shadow: ShadowPair[];
  /** End times (ms) of this step's looks so far, the current one last: the sequential test reads each. */
  lookEndsMs: number[];
}

export function combineVerdicts(checks: readonly CheckResult[]): Verdict {
  if (checks.some((c) => c.verdict === 'fail')) return 'fail';
  if (checks.length === 0 || checks.some((c) => c.verdict === 'inconclusive')) return 'inconclusive';
  return 'pass';
}

export function analyseStep(data: StepWindowData): { verdict: Verdict; checks: CheckResult[] } {
  const checks = data.step.mode === 'shadow' ? shadowChecks(data) : liveChecks(data);
  return { verdict: combineVerdicts(checks), checks };
}

function shadowChecks({ step, guardrails, shadow }: StepWindowData): CheckResult[] {
  const control = Float64Array.from(shadow, (p) => p.control);
  const candidate = Float64Array.from(shadow, (p) => p.candidate);
  return [
    shadowAgreementCheck(control, candidate, { minSamples: step.minSamples, ...guardrails.shadow }),
    scoreDistributionCheck(control, candidate, { minSamples: step.minSamples, ...guardrails.scoreDistribution }),
    latencyCheck(
      Float64Array.from(shadow, (p) => p.controlLatencyMs),
      Float64Array.from(shadow, (p) => p.candidateLatencyMs),
      { minSamples: step.minSamples, ...guardrails.latency },
    ),
  ];
}

function liveChecks({ step, guardrails, live, lookEndsMs }: StepWindowData): CheckResult[] {
  const arm = (variant: LiveRow['variant']) => live.filter((r) => r.variant === variant);
  const control = arm('control');
  const candidate = arm('candidate');
  const scores = (rows: LiveRow[]) => Float64Array.from(rows, (r) => r.score);
  const checks = [
    latencyCheck(Float64Array.from(control, (r) => r.latencyMs), Float64Array.from(candidate, (r) => r.latencyMs), { minSamples: step.minSamples, ...guardrails.latency }),
    scoreDistributionCheck(scores(control), scores(candidate), { minSamples: step.minSamples, ...guardrails.scoreDistribution }),
  ];
  const labelled = (rows: LiveRow[]) => rows.filter((r) => r.label !== null);
  const hasLabels = live.some((r) => r.label !== null);
  if (hasLabels) {
    const asLabels = (rows: LiveRow[]) => ({ y: Uint8Array.from(rows, (r) => (r.label! >= 0.5 ? 1 : 0)), score: scores(rows) });
    checks.push(aucCheck(asLabels(labelled(control)), asLabels(labelled(candidate)), { minSamples: guardrails.minLabels, alpha: guardrails.alpha }));
  }
  const business = guardrails.businessMetric;
  if (business && (business.metric === 'positive-prediction-rate' || hasLabels)) {
    const byLabel = business.metric === 'positive-label-rate';
    const counts = (rows: LiveRow[], endMs: number): ArmCounts => {
      const inLook = rows.filter((r) => r.tsMs < endMs && (!byLabel || r.label !== null));
      return { n: inLook.length, successes: inLook.filter((r) => (byLabel ? r.label! >= 0.5 : r.prediction >= 0.5)).length };
    };
    const name = `business-${business.metric}`;
    const minSamples = byLabel ? guardrails.minLabels : step.minSamples;
    if (business.test === 'sequential') {
      const looks: ProportionLook[] = lookEndsMs.map((end) => ({ control: counts(control, end), candidate: counts(candidate, end) }));
      // The first looks may be empty; mSPRT needs counts in both arms.
      const informative = looks.filter((l) => l.control.n > 0 && l.candidate.n > 0);
      checks.push(sequentialProportionCheck(name, informative, { minSamples, alpha: guardrails.alpha, tau: business.tau, direction: business.direction }));
    } else {
      const end = lookEndsMs[lookEndsMs.length - 1] ?? Infinity;
      checks.push(proportionCheck(name, counts(control, end), counts(candidate, end), { minSamples, alpha: guardrails.alpha, direction: business.direction }));
    }
  }
  return checks;
}
