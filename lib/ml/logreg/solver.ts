/**
 * The numerical core of the logreg fit: a column-major, mean-centred design in one float64 heap,
 * and Newton's method over it with the dense loops in WebAssembly SIMD (./kernels.ts).
 *
 * Layout of the heap (R = rows rounded up to even; an odd row count gets one padding row, zero in
 * every column, made to add exactly nothing):
 *   column j < cols: feature j − its mean, NaN → 0 (not divided by the scale)
 *   column cols: ones (the intercept's column); then the labels (0 or 1), then the curvature
 *   sᵢ·pᵢ·(1 − pᵢ) of the last evaluation, R values each
 *   then one block each of logits and gradient weights, and d blocks of curvature-weighted
 *   columns (scratch of the evaluation pass)
 *   then the accumulators: 6 for the loss (sum and compensation; the column statistics use all
 *   6), 2 per gradient entry, 8 per 2 × 2 tile of the Hessian
 *
 * Standardisation is folded into the small quantities: the solver works in the standardised
 * coordinates θ (θⱼ = wⱼ·scaleⱼ), so the logit is b + Σ (θⱼ / scaleⱼ)·(xⱼ − meanⱼ), the gradient
 * entry j is divided by scaleⱼ and the Hessian entry (j, k) by scaleⱼ·scaleₖ.
 *
 * One pass over the rows, block by block, computes the logits, the loss (Kahan-summed, so the line
 * search can compare objectives near the optimum), the gradient and, when the next Newton step
 * will likely want it, the Hessian, while the block is in cache.
 *
 * Every sum over rows is a pair of lane sums (even rows, odd rows, each in row order) added at
 * the end, whichever implementation of the kernels runs and however rows are split into blocks,
 * so a fit is deterministic bit for bit. A column's entries never depend on other columns, so an
 * all-missing column leaves the other coefficients' bits unchanged.
 */
import type { Labels, Matrix } from '../types.js';
import { createKernels, type LogregKernels } from './kernels.js';

/** Rows per block of a pass over the data: the block's columns stay in L2, a tile's in L1. */
const BLOCK = 1024;
/**
 * Far from the optimum (max |gradient| ≥ SAMPLE_ABOVE_GRADIENT) the Hessian comes from every
 * SAMPLE_EVERY-th block of rows, scaled up: Newton's step there is limited by the model's
 * curvature changing, not by the Hessian's sampling error, and the sample costs an eighth. Near
 * the optimum, where the step's accuracy matters, it uses all rows. Should a sample's full step
 * fail the line search (say a rare feature missing from the sample), the fit stops sampling and
 * redoes the step with all rows.
 */
const SAMPLE_EVERY = 8;
const SAMPLE_ABOVE_GRADIENT = 1e-2;
/** Fewer rows than this: always every block (a sample would be too small to stand for the data). */
const SAMPLE_MIN_ROWS = 8 * SAMPLE_EVERY * BLOCK;
/** Rows per block of the transposing copy. */
const COPY_BLOCK = 256;

export interface Design {
  kernels: LogregKernels;
  rows: number;
  cols: number;
  /** Stride between columns (rows rounded up to even). */
  stride: number;
  /** Training mean of the present values per feature (0 if none). */
  means: Float64Array;
  /** Σ (x − mean)² over present values per feature. */
  squares: Float64Array;
  /** Σ (x − mean) per feature over all rows (missing values count as 0), and over the positive rows. */
  centeredSums: Float64Array;
  positiveSums: Float64Array;
}

/** Offsets of the heap's parts, for `cols` features and column stride `stride`. */
function layout(cols: number, stride: number) {
  const d = cols + 1;
  const pairs = Math.ceil(d / 2);
  const labels = d * stride;
  const curvature = labels + stride;
  const logits = curvature + stride;
  const weights = logits + BLOCK;
  const weighted = weights + BLOCK;
  const loss = weighted + d * BLOCK;
  const gradient = loss + 6;
  const tiles = gradient + 2 * d;
  const end = tiles + 4 * pairs * (pairs + 1);
  return { labels, curvature, logits, weights, weighted, loss, gradient, tiles, end };
}

/**
 * Copies x into a new design (column-major, centred, NaN → 0) next to the labels y, and computes
 * the column means and sums of squared deviations like the two-pass algorithm (each sum in two
 * lanes, see above). Infinite values are not rejected here: they make their column's mean
 * non-finite, which the caller checks.
 */
export function buildDesign(x: Matrix, y: Labels): Design {
  const { data, rows, cols } = x;
  const stride = rows + (rows & 1);
  const at = layout(cols, stride);
  const kernels = createKernels(at.end);
  const heap = kernels.heap;

  heap.set(y, at.labels);
  if (stride > rows) heap[at.labels + rows] = 1;
  // Pass 1, in x's row order: transpose into the heap (the padding row, if any, missing).
  for (let start = 0; start < rows; start += COPY_BLOCK) transposeBlock(data, heap, cols, stride, start, Math.min(rows, start + COPY_BLOCK));
  if (stride > rows) for (let j = 0; j < cols; j++) heap[j * stride + rows] = NaN;
  // Pass 2, per column: the mean of the present values, then centre (NaN → 0, the mean) and
  // sum the squared deviations, the deviations, and those of positive rows.
  const acc = at.loss;
  const means = new Float64Array(cols);
  const squares = new Float64Array(cols);
  const centeredSums = new Float64Array(cols);
  const positiveSums = new Float64Array(cols);
  for (let j = 0; j < cols; j++) {
    heap.fill(0, acc, acc + 6);
    kernels.columnSums(j * stride, stride, acc);
    const count = heap[acc + 2]! + heap[acc + 3]!;
    const mean = count > 0 ? (heap[acc]! + heap[acc + 1]!) / count : 0;
    means[j] = mean;
    heap.fill(0, acc, acc + 6);
    kernels.center(j * stride, at.labels, stride, mean, acc);
    squares[j] = heap[acc]! + heap[acc + 1]!;
    centeredSums[j] = heap[acc + 2]! + heap[acc + 3]!;
    positiveSums[j] = heap[acc + 4]! + heap[acc + 5]!;
  }
  heap.fill(1, cols * stride, cols * stride + rows);
  return { kernels, rows, cols, stride, means, squares, centeredSums, positiveSums };
}

/**
 * Rows start … end − 1 of x into the columns of the heap, reading x in order. A small function
 * called per block: V8 optimises it after a few calls, instead of on-stack replacing a big
 * function whose code after the loop has never run (and deoptimising it there).
 */
function transposeBlock(data: Float64Array, heap: Float64Array, cols: number, stride: number, start: number, end: number): void {
  for (let i = start, k = start * cols; i < end; i++) {
    for (let j = 0, at = i; j < cols; j++, k++, at += stride) heap[at] = data[k]!;
  }
}

export interface NewtonOptions {
  C: number;
  maxIter: number;
  tol: number;
  onIteration?: (iteration: number, gradientNorm: number) => void;
}

export interface NewtonResult {
  /** (θ on the standardised scale, intercept). */
  theta: Float64Array;
  iterations: number;
  converged: boolean;
  gradientNorm: number;
  objective: number;
}

interface Evaluation {
  objective: number;
  gradient: Float64Array;
  gradientNorm: number;
  /** The Hessian at this point, when the pass computed it. */
  hessian?: Hessian;
}

/**
 * Minimises f(θ, b) = [Σ sᵢ·loglossᵢ + ‖θ‖²/(2C)] / Σ sᵢ — scikit-learn's objective divided by
 * C·Σ sᵢ, so the tolerance means the same for any C and row count — by Newton's method with a
 * backtracking (Armijo) line search, on standardised features (the design divided by `scales`).
 */
export function newtonSolve(
  design: Design,
  positives: number,
  classWeights: [number, number],
  scales: Float64Array,
  options: NewtonOptions,
): NewtonResult {
  const { cols, rows } = design;
  const d = cols + 1;
  // Σ sᵢ, counted per class: exact for the usual weights (integers, or n / (2·n_c) times a count).
  const positiveWeight = positives * classWeights[1];
  const weightSum = (rows - positives) * classWeights[0] + positiveWeight;
  const ridge = 1 / (options.C * weightSum);
  const solver = new Solver(design, positives, classWeights, scales, weightSum, ridge);

  // Start from θ = 0 and the (weighted) prior log-odds: already the optimum of the intercept alone.
  let theta: Float64Array = new Float64Array(d);
  theta[cols] = Math.log(positiveWeight / (weightSum - positiveWeight));
  // The start is usually far from the optimum: its Hessian may be a sample's.
  let current = solver.start(theta[cols]!, solver.hessianSample(Infinity));
  let iterations = 0;
  let hessian: Hessian | undefined;
  let previousNorm = Infinity;
  // g_next / g² of the last step with a fresh Hessian (Newton's quadratic convergence).
  let quadratic: number | undefined;
  while (current.gradientNorm > options.tol && iterations < options.maxIter) {
    // Near the optimum the Hessian hardly changes: while steps still shrink the gradient at least
    // tenfold, reuse it (a chord step costs one pass over the data without the Hessian's work).
    const reuse = hessian !== undefined && current.gradientNorm < 1e-4 && current.gradientNorm < 0.1 * previousNorm;
    // The heap's curvature is the last evaluation's, which is the current point's: a line search
    // stops at the trial it accepts.
    if (!reuse) hessian = current.hessian ?? solver.hessian(solver.hessianSample(current.gradientNorm));
    const step = solveSpd(hessian!.matrix, current.gradient, d);
    let slope = 0;
    for (let k = 0; k < d; k++) {
      step[k] = -step[k]!;
      slope += current.gradient[k]! * step[k]!;
    }
    // Compute the next Hessian in the full step's pass when the next iteration will likely want
    // it: after a fresh-Hessian step whose predicted gradient stays above the chord threshold.
    const predicted = quadratic === undefined ? Infinity : quadratic * current.gradientNorm ** 2;
    const speculate = !reuse && predicted >= 1e-4 ? solver.hessianSample(predicted) : 0;
    // Near the optimum the decrease drowns in rounding; then a smaller gradient is the progress.
    const noise = 16 * Number.EPSILON * Math.max(1, Math.abs(current.objective));
    let accepted: { theta: Float64Array; evaluation: Evaluation } | undefined;
    for (let alpha = 1; alpha >= 1e-10; alpha /= 2) {
      const trial = new Float64Array(d);
      for (let k = 0; k < d; k++) trial[k] = theta[k]! + alpha * step[k]!;
      const evaluation = solver.evaluate(trial, alpha === 1 ? speculate : 0);
      const sufficient = evaluation.objective <= current.objective + 1e-4 * alpha * slope;
      const flatButCloser =
        evaluation.objective <= current.objective + noise && evaluation.gradientNorm < current.gradientNorm;
      if (sufficient || flatButCloser) {
        accepted = { theta: trial, evaluation };
        break;
      }
      if (hessian!.sampled) break;
    }
    if (!accepted && hessian!.sampled) {
      // The sample misled the step: from now on every Hessian uses all rows. The same point
      // again, with the full Hessian; the iteration does not count.
      solver.stopSampling();
      hessian = undefined;
      current = solver.evaluate(theta, 1);
      continue;
    }
    // No step helps: the solution is as precise as float64 allows.
    if (!accepted) break;
    iterations++;
    previousNorm = current.gradientNorm;
    if (!reuse) quadratic = accepted.evaluation.gradientNorm / current.gradientNorm ** 2;
    theta = accepted.theta;
    current = accepted.evaluation;
    options.onIteration?.(iterations, current.gradientNorm);
  }
  return {
    theta,
    iterations,
    converged: current.gradientNorm <= options.tol,
    gradientNorm: current.gradientNorm,
    objective: current.objective,
  };
}

/** A Hessian, and whether it came from a sample of the rows. */
interface Hessian {
  matrix: Float64Array;
  sampled: boolean;
}

class Solver {
  private readonly kernels: LogregKernels;
  private readonly heap: Float64Array;
  private readonly rows: number;
  private readonly cols: number;
  private readonly stride: number;
  private readonly at: ReturnType<typeof layout>;
  private readonly centeredSums: Float64Array;
  private readonly positiveSums: Float64Array;
  private sampling = true;

  constructor(
    design: Design,
    private readonly positives: number,
    private readonly classWeights: [number, number],
    private readonly scales: Float64Array,
    private readonly weightSum: number,
    private readonly ridge: number,
  ) {
    this.kernels = design.kernels;
    this.heap = design.kernels.heap;
    this.rows = design.rows;
    this.cols = design.cols;
    this.stride = design.stride;
    this.at = layout(this.cols, this.stride);
    this.centeredSums = design.centeredSums;
    this.positiveSums = design.positiveSums;
  }

  /** Every how many blocks the Hessian at a point with this max |gradient| takes its rows from. */
  hessianSample(gradientNorm: number): number {
    return this.sampling && gradientNorm >= SAMPLE_ABOVE_GRADIENT && this.rows >= SAMPLE_MIN_ROWS ? SAMPLE_EVERY : 1;
  }

  stopSampling(): void {
    this.sampling = false;
  }

  /**
   * `evaluate` at the start, θ = 0 with this intercept, without a pass over the rows: every row's
   * logit is the intercept, so its loss and gradient weight depend on its label only, and the
   * gradient comes from the column sums of the centred design (all rows, positive rows). Only the
   * Hessian's blocks are visited.
   */
  start(intercept: number, hessianEvery: number): Evaluation {
    const { heap, rows, cols, stride, scales, weightSum, positives } = this;
    const { labels, curvature, logits, weights, loss } = this.at;
    const [w0, w1] = this.classWeights;
    const negatives = rows - positives;
    // p = σ(b), q = σ(−b) without cancellation; −log q = softplus(b), −log p = softplus(−b).
    const e = Math.exp(-Math.abs(intercept));
    const p = intercept >= 0 ? 1 / (1 + e) : e / (1 + e);
    const q = intercept >= 0 ? e / (1 + e) : 1 / (1 + e);
    const softplus = Math.log1p(e);
    const lossSum = negatives * w0 * (softplus + Math.max(intercept, 0)) + positives * w1 * (softplus + Math.max(-intercept, 0));
    const weight0 = w0 * p;
    const weight1 = -w1 * q;
    const d = cols + 1;
    const gradient = new Float64Array(d);
    let gradientNorm = 0;
    for (let k = 0; k < d; k++) {
      const g =
        k < cols
          ? (weight0 * (this.centeredSums[k]! - this.positiveSums[k]!) + weight1 * this.positiveSums[k]!) / scales[k]! / weightSum
          : (weight0 * negatives + weight1 * positives) / weightSum;
      gradient[k] = g;
      gradientNorm = Math.max(gradientNorm, Math.abs(g));
    }
    const evaluation: Evaluation = { objective: lossSum / weightSum, gradient, gradientNorm };
    if (hessianEvery) {
      // The curvature of the Hessian's blocks, from the kernel (its loss and weights are unused).
      this.clearTiles();
      let sampledRows = 0;
      for (let start = 0, block = 0; start < stride; start += BLOCK, block++) {
        if (block % hessianEvery !== 0) continue;
        const n = Math.min(BLOCK, stride - start);
        heap.fill(intercept, logits, logits + n);
        if (start + n > rows) heap[logits + rows - start] = 1000;
        this.kernels.rowTerms(logits, labels + start, weights, curvature + start, n, w0, w1, loss);
        this.accumulateTiles(start, n);
        sampledRows += Math.min(n, rows - start);
      }
      evaluation.hessian = this.assembleHessian(rows / sampledRows, hessianEvery > 1);
    }
    return evaluation;
  }

  /**
   * Objective and gradient at θ in one pass over the rows, and the Hessian from every
   * `hessianEvery`-th block of rows if that is not 0; leaves the per-row curvature in the heap.
   */
  evaluate(theta: Float64Array, hessianEvery: number): Evaluation {
    const { kernels, heap, rows, cols, stride, scales, weightSum, ridge } = this;
    const { labels, curvature, logits, weights, loss, gradient: gradientAcc } = this.at;
    const d = cols + 1;
    const [w0, w1] = this.classWeights;
    const beta = new Float64Array(cols);
    for (let j = 0; j < cols; j++) beta[j] = theta[j]! / scales[j]!;
    const intercept = theta[cols]!;
    heap.fill(0, loss, gradientAcc + 2 * d);
    if (hessianEvery) this.clearTiles();
    let sampledRows = 0;
    for (let start = 0, block = 0; start < stride; start += BLOCK, block++) {
      const n = Math.min(BLOCK, stride - start);
      heap.fill(intercept, logits, logits + n);
      this.addLogits(beta, start, n);
      // The padding row (zero columns, label 1) gets a logit so large that its loss, weight and
      // curvature are exactly 0 (or −0): it leaves every sum's bits unchanged.
      if (start + n > rows) heap[logits + rows - start] = 1000;
      kernels.rowTerms(logits, labels + start, weights, curvature + start, n, w0, w1, loss);
      let j = 0;
      for (; j + 4 <= d; j += 4) {
        const x = j * stride + start;
        kernels.dot4(gradientAcc + 2 * j, x, x + stride, x + 2 * stride, x + 3 * stride, weights, n);
      }
      for (; j < d; j++) kernels.dot(gradientAcc + 2 * j, j * stride + start, weights, n);
      if (hessianEvery && block % hessianEvery === 0) {
        this.accumulateTiles(start, n);
        sampledRows += Math.min(n, rows - start);
      }
    }
    const lossSum = heap[loss]! - heap[loss + 2]! + (heap[loss + 1]! - heap[loss + 3]!);
    const gradient = new Float64Array(d);
    let penalty = 0;
    let gradientNorm = 0;
    for (let k = 0; k < d; k++) {
      const sum = heap[gradientAcc + 2 * k]! + heap[gradientAcc + 2 * k + 1]!;
      let g: number;
      if (k < cols) {
        g = sum / scales[k]! / weightSum + ridge * theta[k]!;
        penalty += theta[k]! * theta[k]!;
      } else {
        g = sum / weightSum;
      }
      gradient[k] = g;
      gradientNorm = Math.max(gradientNorm, Math.abs(g));
    }
    const objective = lossSum / weightSum + 0.5 * ridge * penalty;
    return hessianEvery
      ? { objective, gradient, gradientNorm, hessian: this.assembleHessian(rows / sampledRows, hessianEvery > 1) }
      : { objective, gradient, gradientNorm };
  }

  /** logits[0 … n) += Σ βⱼ·xⱼ over rows start … start + n − 1, four columns a pass (a zero βⱼ adds ±0: nothing). */
  private addLogits(beta: Float64Array, start: number, n: number): void {
    const { kernels, stride } = this;
    const { logits } = this.at;
    const cols = beta.length;
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      if (beta[j] === 0 && beta[j + 1] === 0 && beta[j + 2] === 0 && beta[j + 3] === 0) continue;
      const x = j * stride + start;
      kernels.axpy4(logits, x, x + stride, x + 2 * stride, x + 3 * stride, beta[j]!, beta[j + 1]!, beta[j + 2]!, beta[j + 3]!, n);
    }
    for (; j < cols; j++) if (beta[j] !== 0) kernels.axpy(logits, j * stride + start, beta[j]!, n);
  }

  /** The Hessian from the curvature of the last evaluation, in a pass of its own (every `every`-th block). */
  hessian(every: number): Hessian {
    this.clearTiles();
    let sampledRows = 0;
    for (let start = 0, block = 0; start < this.stride; start += BLOCK, block++) {
      if (block % every !== 0) continue;
      const n = Math.min(BLOCK, this.stride - start);
      this.accumulateTiles(start, n);
      sampledRows += Math.min(n, this.rows - start);
    }
    return this.assembleHessian(this.rows / sampledRows, every > 1);
  }

  private clearTiles(): void {
    const { tiles, end } = this.at;
    this.heap.fill(0, tiles, end);
  }

  /**
   * Adds rows start … start + n − 1 to the 2 × 2 tiles of the lower triangle (an odd last column
   * pairs with itself): each column weighted by the curvature once, then (cᵢ·aᵢ)·bᵢ per pair.
   */
  private accumulateTiles(start: number, n: number): void {
    const { kernels, stride } = this;
    const d = this.cols + 1;
    const pairs = Math.ceil(d / 2);
    const { curvature, weighted } = this.at;
    for (let j = 0; j < d; j++) kernels.weigh(weighted + j * BLOCK, j * stride + start, curvature + start, n);
    let acc = this.at.tiles;
    for (let p = 0; p < pairs; p++) {
      const a0 = weighted + 2 * p * BLOCK;
      const a1 = weighted + Math.min(2 * p + 1, d - 1) * BLOCK;
      for (let q = 0; q <= p; q++) {
        const b0 = 2 * q * stride + start;
        const b1 = Math.min(2 * q + 1, d - 1) * stride + start;
        kernels.tile(acc, a0, a1, b0, b1, n);
        acc += 8;
      }
    }
  }

  /**
   * H = [Σ cᵢ·[zᵢ 1]ᵀ[zᵢ 1]]·sampling / Σ sᵢ + ridge on the coefficients (not the intercept),
   * full d × d row-major; `sampling` scales a sample's sums up to all rows.
   */
  private assembleHessian(sampling: number, sampled: boolean): Hessian {
    const { heap, cols, scales, weightSum, ridge } = this;
    const d = cols + 1;
    const pairs = Math.ceil(d / 2);
    const hessian = new Float64Array(d * d);
    let acc = this.at.tiles;
    for (let p = 0; p < pairs; p++) {
      for (let q = 0; q <= p; q++) {
        for (let entry = 0; entry < 4; entry++) {
          const a = 2 * p + (entry >> 1);
          const b = 2 * q + (entry & 1);
          if (a >= d || b > a) continue;
          const sum = heap[acc + 2 * entry]! + heap[acc + 2 * entry + 1]!;
          const scale = (a < cols ? scales[a]! : 1) * (b < cols ? scales[b]! : 1);
          const h = (sum * sampling) / scale / weightSum + (a === b && a < cols ? ridge : 0);
          hessian[a * d + b] = h;
          hessian[b * d + a] = h;
        }
        acc += 8;
      }
    }
    return { matrix: hessian, sampled };
  }
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
