/**
 * Hyper-parameters of the gbdt trainer, with scikit-learn's HistGradientBoostingClassifier
 * defaults, and their validation (InvalidInput naming the parameter).
 */
import { InvalidInput } from '../../errors.js';

export interface GbdtParams {
  /** Shrinkage applied to every leaf value. */
  learningRate: number;
  /** Number of boosting iterations (trees), at most. */
  maxIter: number;
  /** Leaves per tree, at most (leaf-wise growth stops there). */
  maxLeafNodes: number;
  /** Depth limit (root at depth 0); null for none. */
  maxDepth: number | null;
  /** Rows per leaf, at least. */
  minSamplesLeaf: number;
  /** L2 penalty on leaf values (λ in −G / (H + λ)). */
  l2Regularization: number;
  /** Sum of hessians per leaf, at least. */
  minHessianToSplit: number;
  /** Bins for non-missing values per feature (2 … 255); missing values get one more. */
  maxBins: number;
  /** Rows used to find bin edges, at most (a seeded sample beyond that). */
  binSampleSize: number;
  /** Fraction of training rows each tree sees (seeded Bernoulli sample per tree). */
  rowSubsample: number;
  /** Fraction of features each tree may split on (seeded, per tree). */
  colSubsample: number;
  /** Stop when the validation loss stops improving; 'auto' = when there are more than 10 000 rows. */
  earlyStopping: 'auto' | boolean;
  /** Share of rows held out (stratified) for early stopping. */
  validationFraction: number;
  /** Iterations without an improvement of more than `tol` before stopping. */
  nIterNoChange: number;
  tol: number;
  /** Seed of every random choice (validation split, bin sample, row and feature subsamples). */
  seed: number;
}

export const DEFAULT_GBDT_PARAMS: Readonly<GbdtParams> = Object.freeze({
  learningRate: 0.1,
  maxIter: 100,
  maxLeafNodes: 31,
  maxDepth: null,
  minSamplesLeaf: 20,
  l2Regularization: 0,
  minHessianToSplit: 1e-3,
  maxBins: 255,
  binSampleSize: 200_000,
  rowSubsample: 1,
  colSubsample: 1,
  earlyStopping: 'auto',
  validationFraction: 0.1,
  nIterNoChange: 10,
  tol: 1e-7,
  seed: 0,
});

type Check = (v: unknown) => boolean;
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const int = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

const RULES: Record<keyof GbdtParams, [Check, string]> = {
  learningRate: [(v) => isNumber(v) && v > 0, 'a finite number > 0'],
  maxIter: [int(1), 'an integer >= 1'],
  maxLeafNodes: [int(2, 1 << 16), 'an integer >= 2'],
  maxDepth: [(v) => v === null || int(1)(v), 'null or an integer >= 1'],
  minSamplesLeaf: [int(1), 'an integer >= 1'],
  l2Regularization: [(v) => isNumber(v) && v >= 0, 'a finite number >= 0'],
  minHessianToSplit: [(v) => isNumber(v) && v >= 0, 'a finite number >= 0'],
  maxBins: [int(2, 255), 'an integer from 2 to 255'],
  binSampleSize: [int(1), 'an integer >= 1'],
  rowSubsample: [(v) => isNumber(v) && v > 0 && v <= 1, 'a number in (0, 1]'],
  colSubsample: [(v) => isNumber(v) && v > 0 && v <= 1, 'a number in (0, 1]'],
  earlyStopping: [(v) => v === 'auto' || typeof v === 'boolean', "'auto', true or false"],
  validationFraction: [(v) => isNumber(v) && v > 0 && v < 1, 'a number in (0, 1)'],
  nIterNoChange: [int(1), 'an integer >= 1'],
  tol: [isNumber, 'a finite number'],
  seed: [int(0, 0xffffffff), 'an integer from 0 to 2^32 − 1'],
};

/** Defaults filled in and every value checked; unknown keys are refused (a typo would be silently ignored). */
export function resolveGbdtParams(input: Partial<GbdtParams> = {}): GbdtParams {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidInput('gbdt params must be an object', 'params');
  }
  for (const key of Object.keys(input)) {
    if (!(key in RULES)) throw new InvalidInput(`unknown gbdt parameter ${key}`, key);
  }
  const params = { ...DEFAULT_GBDT_PARAMS, ...withoutUndefined(input) } as GbdtParams;
  for (const [key, [check, expected]] of Object.entries(RULES)) {
    const value = params[key as keyof GbdtParams];
    if (!check(value)) throw new InvalidInput(`gbdt ${key} must be ${expected}, got ${describe(value)}`, key);
  }
  return params;
}

function withoutUndefined(input: Partial<GbdtParams>): Partial<GbdtParams> {
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Partial<GbdtParams>;
}

function describe(value: unknown): string {
  return typeof value === 'number' ? String(value) : (JSON.stringify(value) ?? String(value));
}
