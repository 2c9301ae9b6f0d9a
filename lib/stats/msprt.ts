/**
 * Mixture sequential probability ratio test (mSPRT) with always-valid p-values, after Johari,
 * Koomen, Pekelis & Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests" (Operations
 * Research, 2022; arXiv:1512.04922). The difference θ between candidate and control is estimated
 * by θ̂ with (plug-in) variance v; mixing the likelihood ratio over θ ~ N(θ₀, τ²) gives
 *
 *   Λ = sqrt(v / (v + τ²)) · exp(τ² (θ̂ − θ₀)² / (2 v (v + τ²)))
 *
 * (their eq. for normal data with v = 2σ²/n per look). The always-valid p-value after look k is
 * min over looks j <= k of 1 / Λ_j, so it can be read at every bake and stopped at any time while
 * keeping P(false alarm) <= α. τ, the mixing standard deviation, is the scale of effects one
 * expects to detect: larger τ favours large effects, smaller τ small ones; any τ keeps validity.
 */

export interface MsprtLook {
  /** θ̂: candidate minus control. */
  estimate: number;
  /** Variance of θ̂. */
  variance: number;
  /** log Λ at this look (0 when the variance is 0: no evidence either way). */
  logLikelihoodRatio: number;
  /** Always-valid p-value after this look. */
  pValue: number;
}

/** log Λ of one look; see the module comment. */
export function msprtLogLikelihoodRatio(estimate: number, variance: number, tau: number, theta0 = 0): number {
  if (!(variance > 0) || !Number.isFinite(estimate)) return 0;
  const tau2 = tau * tau;
  const d = estimate - theta0;
  return 0.5 * Math.log(variance / (variance + tau2)) + (tau2 * d * d) / (2 * variance * (variance + tau2));
}

/** Cumulative counts of one arm at one look: `successes` of `n` (errors, conversions, positives …). */
export interface ArmCounts {
  n: number;
  successes: number;
}

export interface ProportionLook {
  control: ArmCounts;
  candidate: ArmCounts;
}

/**
 * θ̂ = p̂_candidate − p̂_control with the pooled variance P(1 − P)(1/n_control + 1/n_candidate),
 * the null-hypothesis variance of the two-proportion z-test.
 */
export function proportionDifference(look: ProportionLook): { estimate: number; variance: number } {
  const { control, candidate } = look;
  const pooled = (control.successes + candidate.successes) / (control.n + candidate.n);
  return {
    estimate: candidate.successes / candidate.n - control.successes / control.n,
    variance: pooled * (1 - pooled) * (1 / control.n + 1 / candidate.n),
  };
}

export interface MsprtOptions {
  /** Mixing standard deviation τ, in the units of θ (for proportions: an absolute rate difference). */
  tau: number;
  /** θ₀ under the null (default 0). */
  theta0?: number;
  /** The always-valid p-value carried over from earlier looks not passed here (default 1). */
  priorPValue?: number;
}

/** Runs the mSPRT over looks of (estimate, variance) in order; returns each look's always-valid p-value. */
export function msprt(looks: Array<{ estimate: number; variance: number }>, options: MsprtOptions): MsprtLook[] {
  let p = options.priorPValue ?? 1;
  return looks.map(({ estimate, variance }) => {
    const logLikelihoodRatio = msprtLogLikelihoodRatio(estimate, variance, options.tau, options.theta0);
    p = Math.min(p, Math.exp(-logLikelihoodRatio));
    return { estimate, variance, logLikelihoodRatio, pValue: p };
  });
}

/** mSPRT on the difference of two proportions, with cumulative counts at each look. */
export function msprtProportions(looks: ProportionLook[], options: MsprtOptions): MsprtLook[] {
  return msprt(looks.map(proportionDifference), options);
}
