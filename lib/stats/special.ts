/**
 * Special functions the tests need: log-gamma, the regularized incomplete gamma functions, and
 * through them the normal and chi-squared tails. Pure; accurate to ~1e-14 relative (checked against
 * scipy.special in test/fixtures/stats/stats.json).
 */

// Lanczos coefficients (g = 671/128, 14 terms) as in Numerical Recipes 3rd ed. `gammln`.
const LANCZOS = [
  57.15623566586292, -59.59796035547549, 14.136097974741746, -0.4919138160976202, 0.00003399464998481189,
  0.00004652362892704858, -0.00009837447530487956, 0.0001580887032249125, -0.00021026444172410488,
  0.00021743961811521265, -0.0001643181065367639, 0.00008441822398385275, -0.000026190838401581408,
  0.0000036899182659531625,
];

/** log Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (!(x > 0)) return Number.NaN;
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  let y = x;
  const t = x + 5.2421875;
  const head = (x + 0.5) * Math.log(t) - t;
  let series = 0.9999999999999971;
  for (const c of LANCZOS) series += c / ++y;
  return head + Math.log((2.5066282746310007 * series) / x);
}

const EPS = 1e-16;
const TINY = 1e-300;
const MAX_ITERATIONS = 10_000;

/** log of x^a e^-x / Γ(a): the common factor of both incomplete gamma expansions. */
function logPrefactor(a: number, x: number): number {
  return a * Math.log(x) - x - logGamma(a);
}

/** P(a, x) by its power series; converges quickly for x < a + 1. */
function gammaPSeries(a: number, x: number): number {
  let ap = a;
  let term = 1 / a;
  let sum = term;
  for (let i = 0; i < MAX_ITERATIONS; i++) {
    ap++;
    term *= x / ap;
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) break;
  }
  return sum * Math.exp(logPrefactor(a, x));
}

/** Q(a, x) by its continued fraction (modified Lentz); converges quickly for x >= a + 1. */
function gammaQFraction(a: number, x: number): number {
  let b = x + 1 - a;
  let c = 1 / TINY;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < MAX_ITERATIONS; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.exp(logPrefactor(a, x)) * h;
}

/** The regularized lower incomplete gamma P(a, x) (scipy.special.gammainc). */
export function gammaP(a: number, x: number): number {
  if (Number.isNaN(a) || Number.isNaN(x) || a <= 0 || x < 0) return Number.NaN;
  if (x === 0) return 0;
  if (x === Infinity) return 1;
  return x < a + 1 ? gammaPSeries(a, x) : 1 - gammaQFraction(a, x);
}

/** The regularized upper incomplete gamma Q(a, x) = 1 - P(a, x) (scipy.special.gammaincc). */
export function gammaQ(a: number, x: number): number {
  if (Number.isNaN(a) || Number.isNaN(x) || a <= 0 || x < 0) return Number.NaN;
  if (x === 0) return 1;
  if (x === Infinity) return 0;
  return x < a + 1 ? 1 - gammaPSeries(a, x) : gammaQFraction(a, x);
}

/** erfc(x), through Q(1/2, x²) so that the upper tail keeps its relative precision. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x >= 0) return gammaQ(0.5, x * x);
  return 1 + gammaP(0.5, x * x);
}

/** Standard normal upper tail P(Z > z) (scipy.stats.norm.sf). */
export function normalSf(z: number): number {
  return erfc(z / Math.SQRT2) / 2;
}

/** Standard normal CDF P(Z <= z) (scipy.stats.norm.cdf). */
export function normalCdf(z: number): number {
  return erfc(-z / Math.SQRT2) / 2;
}

/** Chi-squared upper tail P(X > x) with `df` degrees of freedom (scipy.stats.chi2.sf). */
export function chiSquareSf(x: number, df: number): number {
  if (!(df > 0)) return Number.NaN;
  if (x <= 0) return 1;
  return gammaQ(df / 2, x / 2);
}
