/**
 * The rollout's analysis checks (issue 16): each compares the candidate variant with the control
 * over one bake window and returns pass | fail | inconclusive with its statistic, p-value where
 * there is one, threshold and sample sizes. Below `minSamples` a check is inconclusive, never pass.
 */
import { InvalidInput } from '../errors.js';
import { logLoss } from '../ml/metrics.js';
import type { Labels } from '../ml/types.js';
import { fillZeroShares, quantileShares } from './binning.js';
import { populationStabilityIndex } from './distances.js';
import { delongUnpaired } from './delong.js';
import { ksTestSorted, sortedCopy } from './ks.js';
import { msprtProportions } from './msprt.js';
import type { ArmCounts, ProportionLook } from './msprt.js';
import { agreementRate, meanAbsoluteDifference } from './paired.js';
import { normalPValue, twoProportionZ } from './proportions.js';
import { quantileSorted } from './quantile.js';

export type Verdict = 'pass' | 'fail' | 'inconclusive';

export interface CheckResult {
  check: string;
  verdict: Verdict;
  /** The check's main statistic (null when it could not be computed). */
  statistic: number | null;
  pValue?: number | null;
  /** What the statistic or p-value is compared with (see `reason`). */
  threshold: number;
  n: { control: number; candidate: number };
  /** One line saying why this verdict. */
  reason: string;
  details?: Record<string, number | null>;
}

function requireMinSamples(minSamples: number): void {
  if (!Number.isInteger(minSamples) || minSamples < 1) {
    throw new InvalidInput(`minSamples must be an integer >= 1, got ${minSamples}`, 'minSamples');
  }
}

function requireProbability(name: string, value: number): void {
  if (!(value > 0 && value < 1)) throw new InvalidInput(`${name} must be in (0, 1), got ${value}`, name);
}

/** Scores and latencies come from logs: a non-finite value is a bug upstream, named here rather than sorted silently. */
function requireFinite(name: string, values: ArrayLike<number>): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new InvalidInput(`${name}[${i}] is ${values[i]}; values must be finite numbers`, name);
  }
}

function tooFew(check: string, threshold: number, n: CheckResult['n'], minSamples: number): CheckResult | undefined {
  requireMinSamples(minSamples);
  if (Math.min(n.control, n.candidate) >= minSamples) return undefined;
  return {
    check,
    verdict: 'inconclusive',
    statistic: null,
    pValue: null,
    threshold,
    n,
    reason: `fewer than minSamples = ${minSamples} observations in a variant`,
  };
}

export type Direction = 'lower-is-better' | 'higher-is-better';

/**
 * Fixed-horizon two-proportion z-test (pooled, statsmodels' proportions_ztest), one-sided toward
 * the candidate being worse: fail when that p-value < alpha. Error rate: direction lower-is-better.
 */
export function proportionCheck(
  check: string,
  control: ArmCounts,
  candidate: ArmCounts,
  options: { minSamples: number; alpha?: number; direction?: Direction },
): CheckResult {
  const alpha = options.alpha ?? 0.05;
  requireProbability('alpha', alpha);
  const n = { control: control.n, candidate: candidate.n };
  const early = tooFew(check, alpha, n, options.minSamples);
  if (early) return early;
  const direction = options.direction ?? 'lower-is-better';
  const details = { controlRate: control.successes / control.n, candidateRate: candidate.successes / candidate.n };
  const z = twoProportionZ(candidate.successes, candidate.n, control.successes, control.n);
  if (Number.isNaN(z)) {
    return { check, verdict: 'pass', statistic: 0, pValue: 1, threshold: alpha, n, details, reason: 'both variants have the same constant outcome' };
  }
  const pValue = normalPValue(z, direction === 'lower-is-better' ? 'greater' : 'less');
  const worse = pValue < alpha;
  return {
    check,
    verdict: worse ? 'fail' : 'pass',
    statistic: z,
    pValue,
    threshold: alpha,
    n,
    details,
    reason: worse ? `candidate rate significantly worse (one-sided p < ${alpha})` : `candidate rate not significantly worse (one-sided p >= ${alpha})`,
  };
}

/**
 * Sequential version for a metric read at every bake: mSPRT on the difference of proportions over
 * the cumulative counts at each look (always-valid p-value, see msprt.ts). Fail when the
 * always-valid p-value < alpha with the candidate on the worse side; the verdict uses every look.
 */
export function sequentialProportionCheck(
  check: string,
  looks: ProportionLook[],
  options: { minSamples: number; alpha?: number; tau?: number; direction?: Direction },
): CheckResult {
  const alpha = options.alpha ?? 0.05;
  requireProbability('alpha', alpha);
  const tau = options.tau ?? 0.05;
  if (!(tau > 0)) throw new InvalidInput(`tau must be > 0, got ${tau}`, 'tau');
  const last = looks[looks.length - 1];
  const n = { control: last?.control.n ?? 0, candidate: last?.candidate.n ?? 0 };
  const early = tooFew(check, alpha, n, options.minSamples);
  if (early || !last) return early!;
  const worseSign = (options.direction ?? 'higher-is-better') === 'higher-is-better' ? -1 : 1;
  // A look only counts as evidence of harm when its estimate points the worse way.
  const path = msprtProportions(looks, { tau });
  let pWorse = 1;
  for (const look of path) if (Math.sign(look.estimate) === worseSign) pWorse = Math.min(pWorse, Math.exp(-look.logLikelihoodRatio));
  const final = path[path.length - 1]!;
  const worse = pWorse < alpha;
  return {
    check,
    verdict: worse ? 'fail' : 'pass',
    statistic: final.estimate,
    pValue: pWorse,
    threshold: alpha,
    n,
    details: { looks: looks.length, tau, alwaysValidPValue: final.pValue, logLikelihoodRatio: final.logLikelihoodRatio },
    reason: worse
      ? `mSPRT always-valid p < ${alpha} with the candidate worse`
      : `mSPRT found no evidence (p >= ${alpha}) that the candidate is worse`,
  };
}

/** Latency: the candidate's quantile (default p99, np.quantile 'linear') over the control's must stay <= maxRatio. */
export function latencyCheck(
  control: ArrayLike<number>,
  candidate: ArrayLike<number>,
  options: { minSamples: number; quantile?: number; maxRatio?: number },
): CheckResult {
  const q = options.quantile ?? 0.99;
  requireProbability('quantile', q);
  const maxRatio = options.maxRatio ?? 1.2;
  const n = { control: control.length, candidate: candidate.length };
  const check = `latency-p${Math.round(q * 100)}`;
  const early = tooFew(check, maxRatio, n, options.minSamples);
  if (early) return early;
  requireFinite('control', control);
  requireFinite('candidate', candidate);
  const a = quantileSorted(sortedCopy(control), q);
  const b = quantileSorted(sortedCopy(candidate), q);
  const ratio = a > 0 ? b / a : b > 0 ? Infinity : 1;
  const slower = ratio > maxRatio;
  return {
    check,
    verdict: slower ? 'fail' : 'pass',
    statistic: ratio,
    threshold: maxRatio,
    n,
    details: { control: a, candidate: b },
    reason: slower ? `candidate quantile is more than ${maxRatio}x the control's` : `candidate quantile within ${maxRatio}x the control's`,
  };
}

/**
 * Score distributions: PSI over `bins` quantile bins of the control scores decides (fail when >=
 * psiThreshold, default 0.2); the KS test is reported alongside (with large samples it flags
 * differences too small to matter, so it does not decide).
 */
export function scoreDistributionCheck(
  control: ArrayLike<number>,
  candidate: ArrayLike<number>,
  options: { minSamples: number; psiThreshold?: number; bins?: number },
): CheckResult {
  const threshold = options.psiThreshold ?? 0.2;
  const n = { control: control.length, candidate: candidate.length };
  const early = tooFew('score-distribution', threshold, n, options.minSamples);
  if (early) return early;
  requireFinite('control', control);
  requireFinite('candidate', candidate);
  const a = sortedCopy(control);
  const b = sortedCopy(candidate);
  const shares = quantileShares(a, b, options.bins ?? 10);
  const psi = populationStabilityIndex(fillZeroShares(shares.reference), fillZeroShares(shares.current));
  const ks = ksTestSorted(a, b);
  const shifted = psi >= threshold;
  return {
    check: 'score-distribution',
    verdict: shifted ? 'fail' : 'pass',
    statistic: psi,
    pValue: ks.pValue,
    threshold,
    n,
    details: { psi, ksStatistic: ks.statistic, ksPValue: ks.pValue },
    reason: shifted ? `PSI >= ${threshold}` : `PSI < ${threshold}`,
  };
}

/** Shadow mode, paired on the same requests: decisions must agree on >= minAgreement and mean |Δp| stay <= maxMeanAbsDiff. */
export function shadowAgreementCheck(
  control: ArrayLike<number>,
  candidate: ArrayLike<number>,
  options: { minSamples: number; decisionThreshold?: number; minAgreement?: number; maxMeanAbsDiff?: number },
): CheckResult {
  const minAgreement = options.minAgreement ?? 0.95;
  const maxMeanAbsDiff = options.maxMeanAbsDiff ?? 0.1;
  const n = { control: control.length, candidate: candidate.length };
  const early = tooFew('shadow-agreement', minAgreement, n, options.minSamples);
  if (early) return early;
  requireFinite('control', control);
  requireFinite('candidate', candidate);
  const agreement = agreementRate(control, candidate, options.decisionThreshold ?? 0.5);
  const meanAbsDiff = meanAbsoluteDifference(control, candidate);
  const fails = agreement < minAgreement || meanAbsDiff > maxMeanAbsDiff;
  return {
    check: 'shadow-agreement',
    verdict: fails ? 'fail' : 'pass',
    statistic: agreement,
    threshold: minAgreement,
    n,
    details: { agreement, meanAbsDiff, maxMeanAbsDiff },
    reason: fails ? `agreement < ${minAgreement} or mean |Δp| > ${maxMeanAbsDiff}` : 'decisions agree and scores are close',
  };
}

/**
 * AUC where feedback labels exist: unpaired DeLong test, one-sided toward the candidate being worse
 * (fail when p < alpha); log loss per variant in the details. Inconclusive without 2 of each class.
 */
export function aucCheck(
  control: { y: Labels; score: Float64Array },
  candidate: { y: Labels; score: Float64Array },
  options: { minSamples: number; alpha?: number },
): CheckResult {
  const alpha = options.alpha ?? 0.05;
  requireProbability('alpha', alpha);
  const n = { control: control.y.length, candidate: candidate.y.length };
  const early = tooFew('auc', alpha, n, options.minSamples);
  if (early) return early;
  const result = delongUnpaired(control, candidate, 'less');
  const details = {
    controlAuc: result.control.auc,
    candidateAuc: result.candidate.auc,
    controlLogLoss: logLoss(control.y, control.score),
    candidateLogLoss: logLoss(candidate.y, candidate.score),
  };
  if (!Number.isFinite(result.z)) {
    return { check: 'auc', verdict: 'inconclusive', statistic: null, pValue: null, threshold: alpha, n, details, reason: 'a variant has fewer than 2 labels of a class' };
  }
  const worse = result.pValue < alpha;
  return {
    check: 'auc',
    verdict: worse ? 'fail' : 'pass',
    statistic: result.difference,
    pValue: result.pValue,
    threshold: alpha,
    n,
    details,
    reason: worse ? `candidate AUC significantly lower (DeLong one-sided p < ${alpha})` : `candidate AUC not significantly lower (p >= ${alpha})`,
  };
}
