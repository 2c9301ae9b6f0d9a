/**
 * L2-regularised binary logistic regression with scikit-learn's parametrisation: minimise
 * ½‖w‖² + C·Σ weightᵢ·loglossᵢ, intercept not penalised. Missing values (NaN) are imputed with the
 * training mean, features are standardised like StandardScaler, and the fit is Newton's method
 * with a Cholesky solve. The model keeps coefficients on the raw feature scale around the
 * training means, so `predictProba` and the ONNX graph both take raw features.
 */
import { z } from 'zod';
import { InvalidInput } from '../errors.js';
import { describeZodError } from '../validation.js';
import { encodeClassifierModel, floatTensor, INPUT_NAME, node, probabilityTail } from '../onnx/builder.js';
import type { BinaryClassifier, Labels, Matrix, ProgressCallback } from './types.js';

/** 'balanced' weighs class c by n / (2·n_c), as scikit-learn does; or explicit weights per class. */
export const classWeightSchema = z.union([
  z.literal('balanced'),
  z.object({ '0': z.number().positive(), '1': z.number().positive() }).strict(),
]);

export const logisticRegressionParamsSchema = z
  .object({
    /** Inverse regularisation strength (scikit-learn's C): larger C, weaker penalty. */
    C: z.number().positive().default(1),
    classWeight: classWeightSchema.optional(),
    /** Newton iterations; a well-posed fit converges in about ten. */
    maxIter: z.number().int().min(1).max(1000).default(100),
    /** Stop when max |gradient| of the objective divided by C·Σweights is at most this. */
    tol: z.number().positive().max(1).default(1e-10),
    /** Fit on standardised features (mean 0, population std 1), so C means the same for every feature. */
    standardize: z.boolean().default(true),
  })
  .strict();

export type LogisticRegressionParams = z.input<typeof logisticRegressionParamsSchema>;
export type ResolvedLogisticRegressionParams = z.output<typeof logisticRegressionParamsSchema>;

const trainingSchema = z
  .object({
    rows: z.number().int().nonnegative(),
    positives: z.number().int().nonnegative(),
    /** Weight of a class-0 and of a class-1 row in the loss. */
    classWeights: z.tuple([z.number().positive(), z.number().positive()]),
    iterations: z.number().int().nonnegative(),
    converged: z.boolean(),
    /** max |gradient| of the scaled objective at the solution. */
    gradientNorm: z.number().nonnegative(),
    /** Objective at the solution, divided by C·Σweights. */
    objective: z.number(),
  })
  .strict();

export type LogisticRegressionTraining = z.output<typeof trainingSchema>;

const modelJsonSchema = z
  .object({
    kind: z.literal('logreg'),
    format: z.literal(1),
    featureNames: z.array(z.string()).min(1),
    params: logisticRegressionParamsSchema,
    means: z.array(z.number()),
    scales: z.array(z.number().positive()),
    coefficients: z.array(z.number()),
    centeredIntercept: z.number(),
    training: trainingSchema,
  })
  .strict();

export type LogisticRegressionJson = z.output<typeof modelJsonSchema>;

/** What a fitted model is made of; every prediction is computed from exactly these numbers. */
interface LogisticRegressionState {
  featureNames: readonly string[];
  params: ResolvedLogisticRegressionParams;
  /** Training mean per feature: the imputed value for NaN and the centre of the linear term. */
  means: Float64Array;
  /** Training population std per feature (1 for a constant one). */
  scales: Float64Array;
  /** Coefficients on the raw feature scale. */
  coefficients: Float64Array;
  /** The logit at x = means. */
  centeredIntercept: number;
  training: LogisticRegressionTraining;
}

export class LogisticRegressionModel implements BinaryClassifier {
  readonly kind = 'logreg' as const;
  readonly featureNames: readonly string[];
  readonly params: ResolvedLogisticRegressionParams;
  readonly means: Float64Array;
  readonly scales: Float64Array;
  readonly coefficients: Float64Array;
  readonly centeredIntercept: number;
  readonly training: LogisticRegressionTraining;

  constructor(state: LogisticRegressionState) {
    this.featureNames = Object.freeze([...state.featureNames]);
    this.params = state.params;
    // +0 instead of −0, so that JSON (which drops the sign of zero) round-trips to the same bytes.
    this.means = state.means.map(positiveZero);
    this.scales = state.scales.map(positiveZero);
    this.coefficients = state.coefficients.map(positiveZero);
    this.centeredIntercept = positiveZero(state.centeredIntercept);
    this.training = state.training;
  }

  /** The intercept on the raw feature scale (logit at x = 0), as scikit-learn reports it. */
  get intercept(): number {
    let sum = this.centeredIntercept;
    for (let j = 0; j < this.coefficients.length; j++) sum -= this.coefficients[j]! * this.means[j]!;
    return sum;
  }

  predictProba(x: Matrix): Float64Array {
    const cols = this.featureNames.length;
    checkMatrixShape(x, 'x');
    if (x.cols !== cols) throw new InvalidInput(`x has ${x.cols} features; the model takes ${cols}`, 'x');
    const { data } = x;
    const coefficients = this.coefficients;
    const means = this.means;
    const out = new Float64Array(x.rows);
    for (let i = 0; i < x.rows; i++) {
      const base = i * cols;
      let logit = this.centeredIntercept;
      for (let j = 0; j < cols; j++) {
        const v = data[base + j]!;
        // NaN is missing: imputed with the mean, its term is zero.
        if (v !== v) continue;
        if (v === Infinity || v === -Infinity) throw nonFinite(x, i, j, v);
        logit += coefficients[j]! * (v - means[j]!);
      }
      out[i] = sigmoid(logit);
    }
    return out;
  }

  /** |coefficient| on the standardised scale: the logit change per training standard deviation. */
  featureImportance(): Float64Array {
    return this.coefficients.map((c, j) => Math.abs(c * this.scales[j]!));
  }

  /**
   * input → x − mean (mean split into float32 high and low parts, so centring loses nothing for
   * float32 inputs far from zero) → NaN replaced by 0, i.e. by the mean → Gemm → Sigmoid → tail.
   */
  toOnnx(): Uint8Array {
    const cols = this.featureNames.length;
    const meanHigh = Array.from(this.means, (m) => Math.fround(m));
    const meanLow = Array.from(this.means, (m, j) => Math.fround(m - meanHigh[j]!));
    const tail = probabilityTail('logreg_p1');
    return encodeClassifierModel({
      graphName: 'keel-logreg',
      featureNames: this.featureNames,
      metadata: { kind: 'logreg' },
      nodes: [
        node('IsNaN', [INPUT_NAME], ['logreg_missing']),
        node('Sub', [INPUT_NAME, 'logreg_mean_high'], ['logreg_centered_high']),
        node('Sub', ['logreg_centered_high', 'logreg_mean_low'], ['logreg_centered']),
        node('Where', ['logreg_missing', 'logreg_zero', 'logreg_centered'], ['logreg_imputed']),
        node('Gemm', ['logreg_imputed', 'logreg_coefficients', 'logreg_intercept'], ['logreg_logit']),
        node('Sigmoid', ['logreg_logit'], ['logreg_p1']),
        ...tail.nodes,
      ],
      initializers: [
        floatTensor('logreg_mean_high', [1, cols], meanHigh),
        floatTensor('logreg_mean_low', [1, cols], meanLow),
        floatTensor('logreg_zero', [1], [0]),
        floatTensor('logreg_coefficients', [cols, 1], this.coefficients),
        floatTensor('logreg_intercept', [1], [this.centeredIntercept]),
        ...tail.initializers,
      ],
    });
  }

  toJSON(): LogisticRegressionJson {
    const { classWeight, ...rest } = this.params;
    return {
      kind: 'logreg',
      format: 1,
      featureNames: [...this.featureNames],
      // No `classWeight: undefined` key: JSON would drop it and the round trip would differ.
      params: classWeight === undefined ? rest : { ...rest, classWeight },
      means: Array.from(this.means),
      scales: Array.from(this.scales),
      coefficients: Array.from(this.coefficients),
      centeredIntercept: this.centeredIntercept,
      training: { ...this.training, classWeights: [...this.training.classWeights] },
    };
  }
}

/** The model `toJSON()` described; InvalidInput naming the field if `json` is not one. */
export function loadLogisticRegression(json: unknown): LogisticRegressionModel {
  const parsed = modelJsonSchema.safeParse(json);
  if (!parsed.success) {
    const problem = describeZodError(parsed.error);
    throw new InvalidInput(`not a logreg model: ${problem.message}`, problem.field);
  }
  const model = parsed.data;
  const cols = model.featureNames.length;
  for (const field of ['means', 'scales', 'coefficients'] as const) {
    if (model[field].length !== cols) {
      throw new InvalidInput(`not a logreg model: ${field} has ${model[field].length} values for ${cols} features`, field);
    }
  }
  return new LogisticRegressionModel({
    featureNames: model.featureNames,
    params: model.params,
    means: Float64Array.from(model.means),
    scales: Float64Array.from(model.scales),
    coefficients: Float64Array.from(model.coefficients),
    centeredIntercept: model.centeredIntercept,
    training: model.training,
  });
}

/**
 * Fits the model on `x` (NaN = missing) and 0/1 labels `y`. Deterministic: the same data and
 * params give the same model, bit for bit. Bad input throws InvalidInput naming the problem.
 */
export function fitLogisticRegression(
  x: Matrix,
  y: Labels,
  params: LogisticRegressionParams = {},
  onProgress?: ProgressCallback,
): LogisticRegressionModel {
  const parsed = logisticRegressionParamsSchema.safeParse(params);
  if (!parsed.success) {
    const problem = describeZodError(parsed.error);
    throw new InvalidInput(`logreg params: ${problem.message}`, problem.field);
  }
  const resolved = parsed.data;
  const { positives } = checkTrainingData(x, y);
  const { rows, cols } = x;

  const { means, scales } = columnStatistics(x);
  for (let j = 0; j < cols; j++) {
    if (!Number.isFinite(means[j]!) || !Number.isFinite(scales[j]!)) {
      throw new InvalidInput(`feature ${JSON.stringify(x.names[j])} has values too large to average in float64`, 'x');
    }
  }
  const fitScales = resolved.standardize ? scales : new Float64Array(cols).fill(1);
  const design = centeredDesign(x, means, fitScales);
  const classWeights = resolveClassWeights(resolved.classWeight, rows, positives);

  const solution = newtonSolve(design, rows, cols, y, classWeights, resolved, onProgress);
  const coefficients = new Float64Array(cols);
  for (let j = 0; j < cols; j++) coefficients[j] = solution.theta[j]! / fitScales[j]!;

  return new LogisticRegressionModel({
    featureNames: x.names,
    params: resolved,
    means,
    scales,
    coefficients,
    centeredIntercept: solution.theta[cols]!,
    training: {
      rows,
      positives,
      classWeights,
      iterations: solution.iterations,
      converged: solution.converged,
      gradientNorm: solution.gradientNorm,
      objective: solution.objective,
    },
  });
}

function checkMatrixShape(x: Matrix, field: string): void {
  if (!Number.isInteger(x.rows) || x.rows < 0 || !Number.isInteger(x.cols) || x.cols < 0) {
    throw new InvalidInput(`${field} has an invalid shape ${x.rows} × ${x.cols}`, field);
  }
  if (x.data.length !== x.rows * x.cols) {
    throw new InvalidInput(`${field} holds ${x.data.length} values, not rows × cols = ${x.rows * x.cols}`, field);
  }
}

function checkTrainingData(x: Matrix, y: Labels): { positives: number } {
  checkMatrixShape(x, 'x');
  if (x.rows === 0) throw new InvalidInput('x has no rows: nothing to train on', 'x');
  if (x.cols === 0) throw new InvalidInput('x has no features', 'x');
  if (x.names.length !== x.cols) {
    throw new InvalidInput(`x names ${x.names.length} features but has ${x.cols} columns`, 'x.names');
  }
  if (y.length !== x.rows) throw new InvalidInput(`y has ${y.length} labels for ${x.rows} rows of x`, 'y');
  let positives = 0;
  for (let i = 0; i < y.length; i++) {
    const label = y[i]!;
    if (label > 1) throw new InvalidInput(`y[${i}] is ${label}; labels must be 0 or 1`, 'y');
    positives += label;
  }
  if (positives === 0 || positives === y.length) {
    throw new InvalidInput(`y holds only class ${positives === 0 ? 0 : 1}; logreg needs both classes`, 'y');
  }
  const { data } = x;
  for (let k = 0; k < data.length; k++) {
    const v = data[k]!;
    if (v === Infinity || v === -Infinity) throw nonFinite(x, Math.floor(k / x.cols), k % x.cols, v);
  }
  return { positives };
}

function nonFinite(x: Matrix, row: number, col: number, value: number): InvalidInput {
  return new InvalidInput(
    `x has ${value} in row ${row}, feature ${JSON.stringify(x.names[col] ?? `#${col}`)}; only NaN (missing) or finite values are allowed`,
    'x',
  );
}

/**
 * Mean of the present values (0 if none), and the population std of the mean-imputed column, as
 * SimpleImputer(mean) followed by StandardScaler computes them; a constant column gets scale 1.
 */
function columnStatistics(x: Matrix): { means: Float64Array; scales: Float64Array } {
  const { data, rows, cols } = x;
  const sums = new Float64Array(cols);
  const counts = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = data[base + j]!;
      if (v === v) {
        sums[j]! += v;
        counts[j]! += 1;
      }
    }
  }
  const means = new Float64Array(cols);
  for (let j = 0; j < cols; j++) means[j] = counts[j]! > 0 ? sums[j]! / counts[j]! : 0;
  // Two passes: the variance from deviations, not from sums of squares, keeps its precision.
  const squares = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = data[base + j]!;
      if (v === v) {
        const d = v - means[j]!;
        squares[j]! += d * d;
      }
    }
  }
  const scales = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    const variance = squares[j]! / rows;
    scales[j] = isConstantFeature(variance, means[j]!, rows) ? 1 : Math.sqrt(variance);
  }
  return { means, scales };
}

/** scikit-learn's test: a variance within the rounding error of the two-pass algorithm is zero. */
function isConstantFeature(variance: number, mean: number, rows: number): boolean {
  const eps = Number.EPSILON;
  const bound = rows * eps * variance + (rows * mean * eps) ** 2;
  return variance <= bound;
}

/** (x − mean) / scale with NaN → 0; centring is exact reparametrisation since the intercept is free. */
function centeredDesign(x: Matrix, means: Float64Array, scales: Float64Array): Float64Array {
  const { data, rows, cols } = x;
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    for (let j = 0; j < cols; j++) {
      const v = data[base + j]!;
      out[base + j] = v === v ? (v - means[j]!) / scales[j]! : 0;
    }
  }
  return out;
}

function resolveClassWeights(
  classWeight: ResolvedLogisticRegressionParams['classWeight'],
  rows: number,
  positives: number,
): [number, number] {
  if (classWeight === undefined) return [1, 1];
  if (classWeight === 'balanced') return [rows / (2 * (rows - positives)), rows / (2 * positives)];
  return [classWeight['0'], classWeight['1']];
}

interface Evaluation {
  objective: number;
  gradient: Float64Array;
  gradientNorm: number;
  /** sᵢ·pᵢ·(1 − pᵢ) per row: the Hessian's row weights. */
  curvature: Float64Array;
}

/**
 * Minimises f(w, b) = [Σ sᵢ·loglossᵢ + ‖w‖²/(2C)] / Σ sᵢ — scikit-learn's objective divided by
 * C·Σ sᵢ, so the tolerance means the same for any C and row count — over θ = (w, b) by Newton's
 * method with a backtracking (Armijo) line search.
 */
function newtonSolve(
  design: Float64Array,
  rows: number,
  cols: number,
  y: Labels,
  classWeights: [number, number],
  params: ResolvedLogisticRegressionParams,
  onProgress?: ProgressCallback,
): { theta: Float64Array; iterations: number; converged: boolean; gradientNorm: number; objective: number } {
  const d = cols + 1;
  let weightSum = 0;
  let positiveWeight = 0;
  for (let i = 0; i < rows; i++) {
    const s = classWeights[y[i]!]!;
    weightSum += s;
    if (y[i] === 1) positiveWeight += s;
  }
  const ridge = 1 / (params.C * weightSum);
  const evaluate = (theta: Float64Array) =>
    evaluateObjective(design, rows, cols, y, classWeights, weightSum, ridge, theta);

  // Start from w = 0 and the (weighted) prior log-odds: already the optimum of the intercept alone.
  let theta: Float64Array = new Float64Array(d);
  theta[cols] = Math.log(positiveWeight / (weightSum - positiveWeight));
  let current = evaluate(theta);
  let iterations = 0;
  let hessian: Float64Array | undefined;
  let previousNorm = Infinity;
  while (current.gradientNorm > params.tol && iterations < params.maxIter) {
    iterations++;
    // Near the optimum the Hessian hardly changes: while steps still shrink the gradient at least
    // tenfold, reuse it (a chord step costs one pass over the data instead of twenty).
    const reuse = hessian !== undefined && current.gradientNorm < 1e-4 && current.gradientNorm < 0.1 * previousNorm;
    if (!reuse) hessian = accumulateHessian(design, rows, cols, current.curvature, weightSum, ridge);
    previousNorm = current.gradientNorm;
    const step = solveSpd(hessian!, current.gradient, d);
    let slope = 0;
    for (let k = 0; k < d; k++) {
      step[k] = -step[k]!;
      slope += current.gradient[k]! * step[k]!;
    }
    // Near the optimum the decrease drowns in rounding; then a smaller gradient is the progress.
    const noise = 16 * Number.EPSILON * Math.max(1, Math.abs(current.objective));
    let accepted: { theta: Float64Array; evaluation: Evaluation } | undefined;
    for (let alpha = 1; alpha >= 1e-10; alpha /= 2) {
      const trial = new Float64Array(d);
      for (let k = 0; k < d; k++) trial[k] = theta[k]! + alpha * step[k]!;
      const evaluation = evaluate(trial);
      const sufficient = evaluation.objective <= current.objective + 1e-4 * alpha * slope;
      const flatButCloser =
        evaluation.objective <= current.objective + noise && evaluation.gradientNorm < current.gradientNorm;
      if (sufficient || flatButCloser) {
        accepted = { theta: trial, evaluation };
        break;
      }
    }
    // No step helps: the solution is as precise as float64 allows.
    if (!accepted) break;
    theta = accepted.theta;
    current = accepted.evaluation;
    onProgress?.({
      done: iterations,
      total: params.maxIter,
      message: `logreg newton iteration ${iterations}: max |gradient| ${current.gradientNorm.toExponential(2)}`,
    });
  }
  return {
    theta,
    iterations,
    converged: current.gradientNorm <= params.tol,
    gradientNorm: current.gradientNorm,
    objective: current.objective,
  };
}

/** Objective, gradient and per-row curvature at θ in one pass over the rows. */
function evaluateObjective(
  design: Float64Array,
  rows: number,
  cols: number,
  y: Labels,
  classWeights: [number, number],
  weightSum: number,
  ridge: number,
  theta: Float64Array,
): Evaluation {
  const d = cols + 1;
  const gradient = new Float64Array(d);
  const curvature = new Float64Array(rows);
  const intercept = theta[cols]!;
  const w0 = classWeights[0];
  const w1 = classWeights[1];
  let loss = 0;
  for (let i = 0; i < rows; i++) {
    const base = i * cols;
    let logit = intercept;
    for (let j = 0; j < cols; j++) logit += theta[j]! * design[base + j]!;
    // p = σ(t) and q = 1 − p = σ(−t), each computed without cancellation.
    const e = Math.exp(-Math.abs(logit));
    const p = logit >= 0 ? 1 / (1 + e) : e / (1 + e);
    const q = logit >= 0 ? e / (1 + e) : 1 / (1 + e);
    const positive = y[i] === 1;
    const s = positive ? w1 : w0;
    // −log σ(t) for y = 1 and −log σ(−t) for y = 0, as softplus.
    loss += s * (Math.log1p(e) + Math.max(positive ? -logit : logit, 0));
    const residual = s * (positive ? -q : p);
    for (let j = 0; j < cols; j++) gradient[j]! += residual * design[base + j]!;
    gradient[cols]! += residual;
    curvature[i] = s * p * q;
  }
  let penalty = 0;
  let gradientNorm = 0;
  for (let k = 0; k < d; k++) {
    gradient[k]! /= weightSum;
    if (k < cols) {
      penalty += theta[k]! * theta[k]!;
      gradient[k]! += ridge * theta[k]!;
    }
    gradientNorm = Math.max(gradientNorm, Math.abs(gradient[k]!));
  }
  return { objective: loss / weightSum + 0.5 * ridge * penalty, gradient, gradientNorm, curvature };
}

/**
 * H = [Σ cᵢ·[zᵢ 1]ᵀ[zᵢ 1]] / Σ sᵢ + ridge on the coefficients (not the intercept), full d × d
 * row-major. Rows go four at a time: each pass over H's lower triangle does four rows' work.
 */
function accumulateHessian(
  design: Float64Array,
  rows: number,
  cols: number,
  curvature: Float64Array,
  weightSum: number,
  ridge: number,
): Float64Array {
  const d = cols + 1;
  const hessian = new Float64Array(d * d);
  const last = cols * d;
  let i = 0;
  for (; i + 4 <= rows; i += 4) {
    const b0 = i * cols;
    const b1 = b0 + cols;
    const b2 = b1 + cols;
    const b3 = b2 + cols;
    const c0 = curvature[i]!;
    const c1 = curvature[i + 1]!;
    const c2 = curvature[i + 2]!;
    const c3 = curvature[i + 3]!;
    for (let a = 0; a < cols; a++) {
      const h0 = c0 * design[b0 + a]!;
      const h1 = c1 * design[b1 + a]!;
      const h2 = c2 * design[b2 + a]!;
      const h3 = c3 * design[b3 + a]!;
      const rowA = a * d;
      for (let b = 0; b <= a; b++) {
        hessian[rowA + b]! += h0 * design[b0 + b]! + h1 * design[b1 + b]! + h2 * design[b2 + b]! + h3 * design[b3 + b]!;
      }
      hessian[last + a]! += h0 + h1 + h2 + h3;
    }
    hessian[last + cols]! += c0 + c1 + c2 + c3;
  }
  for (; i < rows; i++) {
    const base = i * cols;
    const c = curvature[i]!;
    for (let a = 0; a < cols; a++) {
      const ha = c * design[base + a]!;
      const rowA = a * d;
      for (let b = 0; b <= a; b++) hessian[rowA + b]! += ha * design[base + b]!;
      hessian[last + a]! += ha;
    }
    hessian[last + cols]! += c;
  }
  for (let a = 0; a < d; a++) {
    for (let b = 0; b <= a; b++) {
      const h = hessian[a * d + b]! / weightSum + (a === b && a < cols ? ridge : 0);
      hessian[a * d + b] = h;
      hessian[b * d + a] = h;
    }
  }
  return hessian;
}

/**
 * x with H·x = b for a symmetric positive definite H, by Cholesky. If rounding makes H look
 * singular (all curvature underflowed), a growing diagonal shift keeps the step a descent one.
 */
function solveSpd(hessian: Float64Array, b: Float64Array, d: number): Float64Array {
  let maxDiagonal = 0;
  for (let k = 0; k < d; k++) maxDiagonal = Math.max(maxDiagonal, hessian[k * d + k]!);
  let shift = 0;
  for (let attempt = 0; attempt < 12; attempt++) {
    const factor = cholesky(hessian, d, shift);
    if (factor) return choleskySolve(factor, b, d);
    shift = shift === 0 ? Math.max(maxDiagonal, Number.MIN_VALUE) * 1e-12 : shift * 100;
  }
  // Not even a heavily shifted H factors (overflowed entries): fall back to a gradient step.
  const scale = Number.isFinite(maxDiagonal) && maxDiagonal > 0 ? maxDiagonal : 1;
  return b.map((v) => v / scale);
}

/** Lower-triangular L with L·Lᵀ = H + shift·I, or undefined if that is not positive definite. */
function cholesky(hessian: Float64Array, d: number, shift: number): Float64Array | undefined {
  const lower = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = hessian[i * d + j]! + (i === j ? shift : 0);
      for (let k = 0; k < j; k++) sum -= lower[i * d + k]! * lower[j * d + k]!;
      if (i === j) {
        if (!(sum > 0) || !Number.isFinite(sum)) return undefined;
        lower[i * d + i] = Math.sqrt(sum);
      } else {
        lower[i * d + j] = sum / lower[j * d + j]!;
      }
    }
  }
  return lower;
}

function choleskySolve(lower: Float64Array, b: Float64Array, d: number): Float64Array {
  const z = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let sum = b[i]!;
    for (let k = 0; k < i; k++) sum -= lower[i * d + k]! * z[k]!;
    z[i] = sum / lower[i * d + i]!;
  }
  const x = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let sum = z[i]!;
    for (let k = i + 1; k < d; k++) sum -= lower[k * d + i]! * x[k]!;
    x[i] = sum / lower[i * d + i]!;
  }
  return x;
}

function sigmoid(t: number): number {
  if (t >= 0) return 1 / (1 + Math.exp(-t));
  const e = Math.exp(t);
  return e / (1 + e);
}

function positiveZero(v: number): number {
  return v + 0;
}
