/**
 * The boosting loop: binary log loss, baseline at the log-odds of the (weighted) positive rate,
 * one tree per iteration on the gradients and hessians, early stopping on a stratified
 * validation split as scikit-learn's, progress and resumable checkpoints after each tree.
 */
import { availableParallelism } from 'node:os';
import { InvalidInput } from '../../errors.js';
import type { Labels, Matrix, ProgressCallback } from '../types.js';
import type { BinMapper, BinMapperJson } from './binning.js';
import { binColumns, binMapperFromJson, binMapperToJson, featuresWithMissing, fitBinMapper, toFloatColumns } from './binning.js';
import type { GbdtCheckpoint } from './checkpoint.js';
import { checkCheckpoint, dataFingerprint } from './checkpoint.js';
import type { GrownTree } from './grower.js';
import { Grower } from './grower.js';
import type { HistogramSource } from './histogram.js';
import { allocateSource } from './histogram.js';
import { HistogramBuilder } from './histogram-builder.js';
import { HistogramPool } from './histogram-pool.js';
import { MAX_ODDS, MIN_ODDS, computeGradients, logLoss, logOdds, shouldStop } from './loss.js';
import { GbdtModel } from './model.js';
import type { GbdtParams } from './params.js';
import { resolveGbdtParams } from './params.js';
import { STREAM, chooseFeatures, chooseRows, pick, stratifiedSplit, stream } from './sampling.js';
import type { Tree, TreeJson } from './tree.js';
import { leavesBinned, treeFromJson, treeToJson } from './tree.js';

export interface FitGbdtOptions {
  /** Called after each tree with {done: trees so far, total: maxIter} (total = done when stopping early). */
  onProgress?: ProgressCallback;
  /** Resume from a checkpoint that `onCheckpoint` got from a fit of the same data and params. */
  checkpoint?: GbdtCheckpoint;
  /** Receives a checkpoint every `checkpointEvery` trees (default 1) and at the end; awaited. */
  onCheckpoint?: (checkpoint: GbdtCheckpoint) => void | Promise<void>;
  checkpointEvery?: number;
  /** Per-row weights (finite, >= 0, not all 0). */
  sampleWeight?: Float64Array;
  /** Threads building histograms, the caller's included: 'auto' (default, see autoThreads) or a count; 1 = no workers. */
  threads?: number | 'auto';
  /** Workers start only when training rows × features reaches this (starting them takes a moment). */
  parallelThreshold?: number;
  /** The loops building histograms: 'wasm' (default; JavaScript when the data outgrows wasm32) or 'js'. Same bits either way. */
  kernels?: 'wasm' | 'js';
}

/** Training rows × features from which a worker pool pays for its start-up. */
export const DEFAULT_PARALLEL_THRESHOLD = 1_000_000;

/**
 * Fits a gbdt classifier on `x` (NaN = missing) and 0/1 labels `y`. Deterministic: the same
 * data, params and seed give the same model, byte for byte, whatever `threads` or `kernels`,
 * and a fit resumed from a checkpoint ends exactly where the uninterrupted one does.
 */
export async function fitGbdt(
  x: Matrix,
  y: Labels,
  params: Partial<GbdtParams> = {},
  options: FitGbdtOptions = {},
): Promise<GbdtModel> {
  const p = resolveGbdtParams(params);
  checkData(x, y, options.sampleWeight);
  checkOptions(options);
  const fingerprint = options.checkpoint || options.onCheckpoint ? dataFingerprint(x, y, options.sampleWeight) : '';
  if (options.checkpoint) checkCheckpoint(options.checkpoint, p, x.names, fingerprint);

  const earlyStopping = p.earlyStopping === 'auto' ? x.rows > 10_000 : p.earlyStopping;
  const split = earlyStopping ? stratifiedSplit(y, p.validationFraction, stream(p.seed, STREAM.validation)) : undefined;
  const nTrain = split ? split.train.length : x.rows;
  const threads = options.threads === undefined || options.threads === 'auto' ? autoThreads() : options.threads;
  const parallel = threads > 1 && nTrain * x.cols >= (options.parallelThreshold ?? DEFAULT_PARALLEL_THRESHOLD);
  const source = allocateSource(nTrain, x.cols, parallel, options.kernels !== 'js');
  // workers boot while this thread bins the data
  const starting = parallel ? startPool(source, threads - 1) : undefined;
  try {
    const run = new BoostingRun(x, y, p, options, source, split, fingerprint);
    await run.boost(await starting, options);
    return run.model();
  } finally {
    await (await starting)?.close();
  }
}

/** State of one fit: binned data, scores so far, trees so far, validation losses. */
class BoostingRun {
  private readonly mapper: BinMapper;
  private readonly mapperJson: BinMapperJson;
  private readonly nFeatures: number;
  private readonly yTrain: Labels;
  private readonly wTrain: Float64Array | undefined;
  private readonly baseline: number;
  /** Per training row, exp(−raw score): see computeGradients. */
  private readonly oddsAgainst: Float64Array;
  /** Leaf of each training (then validation) row under the newest tree. */
  private readonly leaves: Int32Array;
  private readonly validation?: { binned: Uint8Array; n: number; y: Labels; w?: Float64Array; raw: Float64Array };
  private readonly validationLoss: number[] = [];
  private readonly trees: Tree[] = [];
  private readonly treeJsons: TreeJson[] = [];
  private stopped = false;

  constructor(
    private readonly x: Matrix,
    y: Labels,
    private readonly p: GbdtParams,
    options: FitGbdtOptions,
    private readonly source: HistogramSource,
    split: { train: Uint32Array; validation: Uint32Array } | undefined,
    private readonly fingerprint: string,
  ) {
    const saved = options.checkpoint;
    const weights = options.sampleWeight;
    const trainRows = split?.train;
    this.nFeatures = x.cols;
    const columns = toFloatColumns(x, trainRows);
    this.mapper = saved
      ? binMapperFromJson(saved.binMapper, 'checkpoint.binMapper')
      : fitBinMapper(columns, source.nRows, p.maxBins, p.binSampleSize, stream(p.seed, STREAM.binning));
    if (this.mapper.thresholds.length !== x.cols || this.mapper.maxBins !== p.maxBins) {
      throw new InvalidInput('gbdt checkpoint bin mapper does not fit this data', 'checkpoint');
    }
    this.mapperJson = binMapperToJson(this.mapper);
    binColumns(columns, source.nRows, this.mapper, source.binned);
    this.yTrain = trainRows ? pick(y, trainRows) : y;
    this.wTrain = weights && trainRows ? pick(weights, trainRows) : weights;
    this.baseline = saved ? saved.baseline : Math.fround(logOdds(this.yTrain, this.wTrain));
    if (!Number.isFinite(this.baseline)) throw new InvalidInput('gbdt checkpoint baseline must be a finite number', 'checkpoint');
    this.oddsAgainst = new Float64Array(source.nRows).fill(Math.exp(-this.baseline));
    this.leaves = new Int32Array(Math.max(source.nRows, split ? split.validation.length : 0));
    if (split) {
      const n = split.validation.length;
      this.validation = {
        binned: binColumns(toFloatColumns(x, split.validation), n, this.mapper),
        n,
        y: pick(y, split.validation),
        w: weights && pick(weights, split.validation),
        raw: new Float64Array(n).fill(this.baseline),
      };
    }
    this.scoreValidation();
    // a resumed fit replays the saved trees over the same bins: the same scores, bit for bit
    for (const [i, json] of (saved?.trees ?? []).entries()) {
      const tree = treeFromJson(json, this.nFeatures, `checkpoint.trees[${i}]`);
      this.add(tree, splitBins(tree, this.mapper), json);
    }
  }

  async boost(pool: HistogramPool | undefined, options: FitGbdtOptions): Promise<void> {
    const { p, source, nFeatures } = this;
    const nTrain = source.nRows;
    const hasMissing = featuresWithMissing(source.binned, nTrain, nFeatures, this.mapper.maxBins);
    const grower = new Grower(new HistogramBuilder(source, pool), this.mapper, nFeatures, hasMissing, p);
    const every = options.checkpointEvery ?? 1;
    while (!this.stopped && this.trees.length < p.maxIter) {
      computeGradients(this.oddsAgainst, this.yTrain, this.wTrain, source.gradHess);
      const rng = stream(p.seed, STREAM.firstTree + this.trees.length);
      const features = chooseFeatures(nFeatures, p.colSubsample, rng);
      const count = chooseRows(nTrain, p.rowSubsample, rng, source.rows);
      const grown = grower.grow(count, count === nTrain, features);
      this.add(storedTree(grown), grown.bin, undefined, count === nTrain ? grown : undefined);
      const done = this.trees.length;
      options.onProgress?.(
        this.stopped
          ? { done, total: done, message: `early stopping: validation loss did not improve in ${p.nIterNoChange} iterations` }
          : { done, total: p.maxIter },
      );
      if (options.onCheckpoint && (done % every === 0 || this.stopped || done === p.maxIter)) {
        await options.onCheckpoint(this.checkpoint());
      }
      // let heartbeats, cancellation and other work through between trees
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Appends a tree and applies it to the scores: through the grower's leaf ranges when it saw
   * every training row (cheapest), else by walking the bins.
   */
  private add(tree: Tree, bins: Int32Array, json?: TreeJson, grown?: GrownTree): void {
    const { source, mapper, validation, leaves } = this;
    // one exp per leaf: e · exp(−v) = exp(−(z + v))
    const factor = tree.value.map((v, node) => (tree.feature[node] === -1 ? Math.exp(-v) : 1));
    const odds = this.oddsAgainst;
    if (grown) {
      scaleLeafRanges(grown, source.rows, factor, odds);
    } else {
      leavesBinned(tree, bins, source.binned, source.nRows, mapper.maxBins, leaves);
      for (let r = 0; r < source.nRows; r++) odds[r] = clampOdds(odds[r]! * factor[leaves[r]!]!);
    }
    if (validation) {
      leavesBinned(tree, bins, validation.binned, validation.n, mapper.maxBins, leaves);
      for (let r = 0; r < validation.n; r++) validation.raw[r] = validation.raw[r]! + tree.value[leaves[r]!]!;
    }
    this.trees.push(tree);
    this.treeJsons.push(json ?? treeToJson(tree));
    this.scoreValidation();
  }

  private scoreValidation(): void {
    const v = this.validation;
    if (!v) return;
    this.validationLoss.push(logLoss(v.y, v.raw, v.w));
    this.stopped = shouldStop(this.validationLoss, this.p.nIterNoChange, this.p.tol);
  }

  checkpoint(): GbdtCheckpoint {
    return {
      format: 'keel-gbdt-checkpoint',
      version: 1,
      params: { ...this.p },
      featureNames: [...this.x.names],
      dataSha256: this.fingerprint,
      binMapper: this.mapperJson,
      baseline: this.baseline,
      trees: [...this.treeJsons],
      rng: { seed: this.p.seed, nextIteration: this.trees.length },
      finished: this.stopped || this.trees.length === this.p.maxIter,
    };
  }

  model(): GbdtModel {
    return new GbdtModel([...this.x.names], this.p, this.baseline, this.trees, {
      nIter: this.trees.length,
      earlyStopped: this.stopped,
      trainRows: this.source.nRows,
      validationLoss: [...this.validationLoss],
    });
  }
}

/**
 * One thread below 4 cores, else up to 4. On the 2-core development machine fits with a second
 * thread measured slower end to end, although the pooled histogram builds themselves ran about
 * 1.6× faster; there the pool is opt-in (`threads: 2`).
 */
function autoThreads(): number {
  const cores = availableParallelism();
  return cores < 4 ? 1 : Math.min(cores, 4);
}

async function startPool(source: HistogramSource, nWorkers: number): Promise<HistogramPool | undefined> {
  try {
    return await HistogramPool.start(source, nWorkers);
  } catch {
    // workers are only a speed-up: without them this thread builds the very same model
    return undefined;
  }
}

function checkData(x: Matrix, y: Labels, weights: Float64Array | undefined): void {
  if (!x || !(x.data instanceof Float64Array) || !Number.isInteger(x.rows) || !Number.isInteger(x.cols)) {
    throw new InvalidInput('x must be a Matrix (Float64Array data, rows, cols, names)', 'x');
  }
  if (x.rows < 2 || x.cols < 1 || x.data.length < x.rows * x.cols) {
    throw new InvalidInput('x must have at least 2 rows, 1 feature and rows × cols values', 'x');
  }
  if (!Array.isArray(x.names) || x.names.length !== x.cols) throw new InvalidInput(`x.names must hold ${x.cols} names`, 'x.names');
  if (!(y instanceof Uint8Array) || y.length !== x.rows) throw new InvalidInput(`y must be a Uint8Array of ${x.rows} labels`, 'y');
  let positives = 0;
  for (let i = 0; i < y.length; i++) {
    if (y[i]! > 1) throw new InvalidInput(`y must hold 0/1 labels, found ${y[i]} at row ${i}`, 'y');
    positives += y[i]!;
  }
  if (positives === 0 || positives === y.length) throw new InvalidInput('y must hold both classes', 'y');
  if (weights) {
    if (!(weights instanceof Float64Array) || weights.length !== x.rows) {
      throw new InvalidInput(`sampleWeight must be a Float64Array of ${x.rows} weights`, 'sampleWeight');
    }
    let total = 0;
    for (const w of weights) {
      if (!(w >= 0 && w < Infinity)) throw new InvalidInput('sampleWeight must hold finite weights >= 0', 'sampleWeight');
      total += w;
    }
    if (!(total > 0)) throw new InvalidInput('sampleWeight must not be all zero', 'sampleWeight');
  }
}

function checkOptions(options: FitGbdtOptions): void {
  const { threads, checkpointEvery, parallelThreshold, kernels } = options;
  if (kernels !== undefined && kernels !== 'wasm' && kernels !== 'js') throw new InvalidInput("kernels must be 'wasm' or 'js'", 'kernels');
  if (threads !== undefined && threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1)) {
    throw new InvalidInput("threads must be 'auto' or an integer >= 1", 'threads');
  }
  if (checkpointEvery !== undefined && !(Number.isInteger(checkpointEvery) && checkpointEvery >= 1)) {
    throw new InvalidInput('checkpointEvery must be an integer >= 1', 'checkpointEvery');
  }
  if (parallelThreshold !== undefined && !(parallelThreshold >= 0)) {
    throw new InvalidInput('parallelThreshold must be a number >= 0', 'parallelThreshold');
  }
}

/** Scales the odds of the rows the grower left in each leaf's range of the partition by that leaf's factor. */
function scaleLeafRanges(tree: GrownTree, rows: Uint32Array, factor: Float64Array, odds: Float64Array): void {
  for (let node = 0; node < tree.feature.length; node++) {
    if (tree.feature[node] !== -1) continue;
    const q = factor[node]!;
    const end = tree.start[node]! + tree.count[node]!;
    for (let i = tree.start[node]!; i < end; i++) {
      const r = rows[i]!;
      const e = odds[r]! * q;
      odds[r] = e < MIN_ODDS ? MIN_ODDS : e > MAX_ODDS ? MAX_ODDS : e;
    }
  }
}

function clampOdds(e: number): number {
  return e < MIN_ODDS ? MIN_ODDS : e > MAX_ODDS ? MAX_ODDS : e;
}

/** The tree as the model keeps it (without the grower's bins and partition ranges). */
function storedTree(t: GrownTree): Tree {
  const { feature, threshold, missingLeft, left, right, value, gain, count } = t;
  return { feature, threshold, missingLeft, left, right, value, gain, count };
}

/** Split bins of a saved tree, recovered from its thresholds (each a bin edge, or +∞ for the last bin). */
function splitBins(tree: Tree, mapper: BinMapper): Int32Array {
  const bins = new Int32Array(tree.feature.length);
  for (let node = 0; node < bins.length; node++) {
    const f = tree.feature[node]!;
    if (f === -1) continue;
    const edges = mapper.thresholds[f]!;
    const t = tree.threshold[node]!;
    const b = t === Infinity ? edges.length : edges.indexOf(t);
    if (b < 0) throw new InvalidInput(`checkpoint threshold ${t} is not a bin edge of feature ${f}`, 'checkpoint');
    bins[node] = b;
  }
  return bins;
}
