/**
 * L2-regularised binary logistic regression with scikit-learn's parametrisation: minimise
 * ½‖w‖² + C·Σ weightᵢ·loglossᵢ, intercept not penalised. Missing values (NaN) are imputed with the
 * training mean, features are standardised like StandardScaler, and the fit is Newton's method
 * with a Cholesky solve. The model keeps coefficients on the raw feature scale around the
 * training means, so `predictProba` and the ONNX graph both take raw features. The fit's dense
 * work runs in ./logreg/solver.ts, over WebAssembly SIMD kernels (./logreg/kernels.ts) that have
 * a JavaScript twin giving the same bits.
 */
import { z } from 'zod';
import { InvalidInput } from '../errors.js';
import { describeZodError } from '../validation.js';
import { encodeClassifierModel, floatTensor, INPUT_NAME, node, probabilityTail } from '../onnx/builder.js';
import type { BinaryClassifier, Labels, Matrix, ProgressCallback } from './types.js';
import { buildDesign, newtonSolve } from './logreg/solver.js';
import type { LogisticRegressionParams, ResolvedLogisticRegressionParams } from './logreg-params.js';
import { logisticRegressionParamsSchema } from './logreg-params.js';

export { classWeightSchema, logisticRegressionParamsSchema } from './logreg-params.js';
export type { LogisticRegressionParams, ResolvedLogisticRegressionParams } from './logreg-params.js';

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

  const design = buildDesign(x, y);
  const { means } = design;
  // A mean that is not finite: an infinite value (an error of its own), or overflow.
  if (!means.every(Number.isFinite)) findInfinity(x);
  const scales = columnScales(means, design.squares, rows);
  for (let j = 0; j < cols; j++) {
    if (!Number.isFinite(means[j]!) || !Number.isFinite(scales[j]!)) {
      throw new InvalidInput(`feature ${JSON.stringify(x.names[j])} has values too large to average in float64`, 'x');
    }
  }
  const fitScales = resolved.standardize ? scales : new Float64Array(cols).fill(1);
  const classWeights = resolveClassWeights(resolved.classWeight, rows, positives);

  const solution = newtonSolve(design, positives, classWeights, fitScales, {
    C: resolved.C,
    maxIter: resolved.maxIter,
    tol: resolved.tol,
    onIteration: onProgress
      ? (iteration, gradientNorm) =>
          onProgress({
            done: iteration,
            total: resolved.maxIter,
            message: `logreg newton iteration ${iteration}: max |gradient| ${gradientNorm.toExponential(2)}`,
          })
      : undefined,
  });
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
  return { positives };
}

/** Throws for the first ±Infinity of x in row-major order, if any. */
function findInfinity(x: Matrix): void {
  const { data } = x;
  for (let k = 0; k < data.length; k++) {
    const v = data[k]!;
    if (v === Infinity || v === -Infinity) throw nonFinite(x, Math.floor(k / x.cols), k % x.cols, v);
  }
}

function nonFinite(x: Matrix, row: number, col: number, value: number): InvalidInput {
  return new InvalidInput(
    `x has ${value} in row ${row}, feature ${JSON.stringify(x.names[col] ?? `#${col}`)}; only NaN (missing) or finite values are allowed`,
    'x',
  );
}

/**
 * The population std of the mean-imputed column from its sum of squared deviations, as
 * SimpleImputer(mean) followed by StandardScaler computes it; a constant column gets scale 1.
 */
function columnScales(means: Float64Array, squares: Float64Array, rows: number): Float64Array {
  const scales = new Float64Array(means.length);
  for (let j = 0; j < means.length; j++) {
    const variance = squares[j]! / rows;
    scales[j] = isConstantFeature(variance, means[j]!, rows) ? 1 : Math.sqrt(variance);
  }
  return scales;
}

/** scikit-learn's test: a variance within the rounding error of the two-pass algorithm is zero. */
function isConstantFeature(variance: number, mean: number, rows: number): boolean {
  const eps = Number.EPSILON;
  const bound = rows * eps * variance + (rows * mean * eps) ** 2;
  return variance <= bound;
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

function sigmoid(t: number): number {
  if (t >= 0) return 1 / (1 + Math.exp(-t));
  const e = Math.exp(t);
  return e / (1 + e);
}

function positiveZero(v: number): number {
  return v + 0;
}
