import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import { binColumns, fitBinMapper, sortFloat32, toFloatColumns } from '../../lib/ml/gbdt/binning.js';
import type { GbdtCheckpoint, GbdtModel } from '../../lib/ml/gbdt/index.js';
import { fitGbdt, loadGbdt } from '../../lib/ml/gbdt/index.js';
import { allocateSource, buildHistograms } from '../../lib/ml/gbdt/histogram.js';
import { HistogramPool } from '../../lib/ml/gbdt/histogram-pool.js';
import { Random } from '../../lib/ml/random.js';
import type { Matrix } from '../../lib/ml/types.js';
import { matrix } from '../../lib/ml/types.js';

/** Area under the ROC curve (ties get the average rank). */
function auc(p: Float64Array, y: Uint8Array): number {
  const order = Array.from(p.keys()).sort((a, b) => p[a]! - p[b]!);
  let positiveRanks = 0;
  let positives = 0;
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j < order.length && p[order[j]!] === p[order[i]!]) j++;
    const rank = (i + j + 1) / 2;
    for (let k = i; k < j; k++) {
      if (y[order[k]!]) {
        positiveRanks += rank;
        positives++;
      }
    }
    i = j;
  }
  return (positiveRanks - (positives * (positives + 1)) / 2) / (positives * (y.length - positives));
}

/** XOR of the signs of features 0 and 1 (flipped for 10% of rows), plus noise features. */
function xorData(n: number, cols: number, seed: number): { x: Matrix; y: Uint8Array } {
  const rng = new Random(seed);
  const x = matrix(n, cols);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < cols; f++) x.data[i * cols + f] = rng.normal();
    const xor = (x.data[i * cols]! > 0) !== (x.data[i * cols + 1]! > 0) ? 1 : 0;
    y[i] = rng.next() < 0.1 ? 1 - xor : xor;
  }
  return { x, y };
}

/** Labels by feature 0: missing → `missingLabel`, else x0 > 0 (10% noise); other features noise with some NaNs. */
function missingData(n: number, missingLabel: 0 | 1, seed: number): { x: Matrix; y: Uint8Array } {
  const rng = new Random(seed);
  const x = matrix(n, 3);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < 3; f++) x.data[i * 3 + f] = rng.next() < 0.05 ? NaN : rng.normal();
    const missing = rng.next() < 0.3;
    if (missing) x.data[i * 3] = NaN;
    const label = missing ? missingLabel : x.data[i * 3]! > 0 ? 1 : 0;
    y[i] = rng.next() < 0.1 ? 1 - label : label;
  }
  return { x, y };
}

function rows(values: number[][]): Matrix {
  const x = matrix(values.length, values[0]!.length);
  values.forEach((row, i) => x.data.set(row, i * row.length));
  return x;
}

function sameModel(a: GbdtModel, b: GbdtModel): void {
  assert.deepEqual(a.toJSON(), b.toJSON());
  assert.deepEqual(a.toOnnx(), b.toOnnx());
}

const fieldIs = (field: string) => (error: unknown) => error instanceof InvalidInput && error.field === field;

describe('gbdt', () => {
  it('learns an XOR problem that no single feature explains', async () => {
    const train = xorData(4000, 5, 1);
    const test = xorData(2000, 5, 2);
    const progress: Array<{ done: number; total: number }> = [];
    const model = await fitGbdt(train.x, train.y, { maxIter: 60 }, { onProgress: (p) => progress.push(p) });
    const score = auc(model.predictProba(test.x), test.y);
    assert.ok(score > 0.85, `test AUC ${score}`);
    assert.equal(model.trees.length, 60);
    assert.deepEqual(progress.at(-1), { done: 60, total: 60 });
    assert.equal(progress.length, 60);
    const importance = model.featureImportance();
    assert.ok(Math.abs(importance.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assert.ok(importance[0]! + importance[1]! > 0.8, `importance ${Array.from(importance)}`);
  });

  it('matches scikit-learn HistGradientBoostingClassifier on the shared fixture', async () => {
    const fixture = JSON.parse(readFileSync(new URL('../fixtures/sklearn/gbdt_fixture.json', import.meta.url), 'utf8')) as {
      features: number;
      sklearn: { testAuc: number };
      train: { x: Array<number | null>; y: number[] };
      test: { x: Array<number | null>; y: number[] };
    };
    const load = (part: { x: Array<number | null>; y: number[] }) => {
      const x = matrix(part.y.length, fixture.features);
      x.data.set(part.x.map((v) => v ?? NaN));
      return { x, y: Uint8Array.from(part.y) };
    };
    const train = load(fixture.train);
    const test = load(fixture.test);
    const model = await fitGbdt(train.x, train.y, { earlyStopping: false, maxIter: 100, learningRate: 0.1, maxLeafNodes: 31, minSamplesLeaf: 20, l2Regularization: 0 });
    const score = auc(model.predictProba(test.x), test.y);
    assert.ok(score >= fixture.sklearn.testAuc - 0.01, `keel ${score} vs sklearn ${fixture.sklearn.testAuc}`);
  });

  it('is deterministic: same data, params and seed give the same bytes', async () => {
    const { x, y } = xorData(3000, 6, 3);
    const params = { maxIter: 15, rowSubsample: 0.7, colSubsample: 0.6, seed: 42 };
    const a = await fitGbdt(x, y, params);
    const b = await fitGbdt(x, y, params);
    sameModel(a, b);
    const c = await fitGbdt(x, y, { ...params, seed: 43 });
    assert.notDeepEqual(a.toOnnx(), c.toOnnx());
  });

  it('resumes from a checkpoint to exactly the model of an uninterrupted fit', async () => {
    const { x, y } = xorData(12_000, 4, 4);
    const params = { maxIter: 12, rowSubsample: 0.8, colSubsample: 0.75, earlyStopping: true, seed: 7 };
    const checkpoints: GbdtCheckpoint[] = [];
    const full = await fitGbdt(x, y, params, { onCheckpoint: (c) => void checkpoints.push(JSON.parse(JSON.stringify(c)) as GbdtCheckpoint) });
    assert.equal(checkpoints.length, 12);
    const atFive = checkpoints[4]!;
    assert.equal(atFive.trees.length, 5);
    assert.deepEqual(atFive.rng, { seed: 7, nextIteration: 5 });
    const progress: number[] = [];
    const resumed = await fitGbdt(x, y, params, { checkpoint: atFive, onProgress: (p) => progress.push(p.done) });
    sameModel(resumed, full);
    assert.deepEqual(progress, [6, 7, 8, 9, 10, 11, 12]);
    // a finished checkpoint just gives the model back
    assert.ok(checkpoints.at(-1)!.finished);
    sameModel(await fitGbdt(x, y, params, { checkpoint: checkpoints.at(-1)! }), full);
    // a checkpoint of another fit is refused
    await assert.rejects(fitGbdt(x, y, { ...params, seed: 8 }, { checkpoint: atFive }), fieldIs('checkpoint'));
    const otherLabels = y.slice();
    otherLabels[0] = 1 - otherLabels[0]!;
    await assert.rejects(fitGbdt(x, otherLabels, params, { checkpoint: atFive }), fieldIs('checkpoint'));
  });

  it('learns missing values in either direction', async () => {
    for (const missingLabel of [0, 1] as const) {
      const train = missingData(3000, missingLabel, 5 + missingLabel);
      const test = missingData(3000, missingLabel, 7 + missingLabel);
      const model = await fitGbdt(train.x, train.y, { maxIter: 50 });
      // mean P(y = 1) over test rows by x0: missing, negative, positive (true rates with 10% noise: 0.1 or 0.9)
      const p = model.predictProba(test.x);
      const sums = [0, 0, 0];
      const counts = [0, 0, 0];
      for (let i = 0; i < p.length; i++) {
        const x0 = test.x.data[i * 3]!;
        const group = Number.isNaN(x0) ? 0 : x0 <= 0 ? 1 : 2;
        sums[group]! += p[i]!;
        counts[group]!++;
      }
      const [missing, negative, positive] = sums.map((s, g) => s / counts[g]!);
      assert.ok(missingLabel ? missing! > 0.8 : missing! < 0.2, `missing → label ${missingLabel}: mean p ${missing}`);
      assert.ok(negative! < 0.25 && positive! > 0.75, `mean p for x0 <= 0: ${negative}, x0 > 0: ${positive}`);
      const sentLeft = model.trees.flatMap((t) => Array.from(t.feature, (f, i) => (f === 0 ? t.missingLeft[i]! : -1)).filter((v) => v >= 0));
      assert.ok(sentLeft.includes(0) && sentLeft.includes(1), 'splits on x0 send missing values both ways');
    }
  });

  it('sends missing values to the bigger child when training saw none', async () => {
    const rng = new Random(9);
    const x = matrix(2000, 1);
    const y = new Uint8Array(2000);
    for (let i = 0; i < 2000; i++) {
      x.data[i] = rng.next();
      y[i] = x.data[i]! > 0.8 ? 1 : 0;
    }
    const model = await fitGbdt(x, y, { maxIter: 5 });
    for (const tree of model.trees) {
      for (let node = 0; node < tree.feature.length; node++) {
        if (tree.feature[node] === -1) continue;
        const leftBigger = tree.count[tree.left[node]!]! > tree.count[tree.right[node]!]!;
        assert.equal(tree.missingLeft[node], leftBigger ? 1 : 0);
      }
    }
    const [pMissing, pSmall] = model.predictProba(rows([[NaN], [0.3]]));
    assert.equal(pMissing, pSmall);
  });

  it('splits missing against present values, with an infinite threshold that survives JSON', async () => {
    const x = matrix(400, 1);
    const y = new Uint8Array(400);
    for (let i = 0; i < 400; i++) {
      y[i] = i % 2;
      x.data[i] = y[i] ? NaN : i % 4 === 0 ? Infinity : 1;
    }
    const model = await fitGbdt(x, y, { maxIter: 3 });
    assert.equal(model.trees[0]!.threshold[0], Infinity);
    const json = JSON.parse(JSON.stringify(model.toJSON())) as unknown;
    const back = loadGbdt(json);
    sameModel(back, model);
    const [pMissing, pOne, pInfinity] = back.predictProba(rows([[NaN], [1], [Infinity]]));
    assert.ok(pMissing! > 0.5 && pOne! < 0.5 && pInfinity! < 0.5);
  });

  it('stops early on pure noise', async () => {
    const rng = new Random(10);
    const x = matrix(12_000, 4);
    const y = new Uint8Array(12_000);
    for (let i = 0; i < x.data.length; i++) x.data[i] = rng.normal();
    for (let i = 0; i < y.length; i++) y[i] = rng.next() < 0.5 ? 1 : 0;
    const progress: Array<{ done: number; total: number; message?: string }> = [];
    const model = await fitGbdt(x, y, { maxIter: 200 }, { onProgress: (p) => progress.push(p) });
    assert.ok(model.training.earlyStopped);
    assert.ok(model.trees.length < 200, `${model.trees.length} trees`);
    assert.equal(model.training.validationLoss.length, model.trees.length + 1);
    assert.equal(model.training.trainRows, 12_000 - 1200);
    const last = progress.at(-1)!;
    assert.equal(last.done, model.trees.length);
    assert.equal(last.total, last.done);
    assert.match(last.message ?? '', /early stopping/);
    // 'auto' means off at 10 000 rows or fewer
    const small = await fitGbdt({ ...x, rows: 2000, data: x.data.subarray(0, 8000) }, y.subarray(0, 2000), { maxIter: 3 });
    assert.equal(small.training.validationLoss.length, 0);
  });

  it('round-trips through plain JSON exactly', async () => {
    const { x, y } = missingData(2000, 1, 11);
    x.data[5] = Infinity;
    x.data[8] = -Infinity;
    const model = await fitGbdt(x, y, { maxIter: 10, maxDepth: 3 });
    const back = loadGbdt(JSON.parse(JSON.stringify(model)) as unknown);
    sameModel(back, model);
    assert.deepEqual(back.predictProba(x), model.predictProba(x));
    assert.deepEqual(back.featureImportance(), model.featureImportance());
    assert.throws(() => loadGbdt({ format: 'something-else' }), fieldIs('model'));
    const broken = model.toJSON();
    broken.trees[0]!.left[0] = 0;
    assert.throws(() => loadGbdt(broken), fieldIs('model.trees[0]'));
  });

  it('respects maxDepth and maxLeafNodes', async () => {
    const { x, y } = xorData(3000, 4, 12);
    const shallow = await fitGbdt(x, y, { maxIter: 5, maxDepth: 2 });
    for (const tree of shallow.trees) assert.ok(tree.feature.length <= 7);
    const narrow = await fitGbdt(x, y, { maxIter: 5, maxLeafNodes: 4 });
    for (const tree of narrow.trees) assert.ok(Array.from(tree.feature).filter((f) => f === -1).length <= 4);
  });

  it('validates params and data, naming the field', async () => {
    const { x, y } = xorData(200, 2, 13);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ learningRate: -1 }, 'learningRate'],
      [{ learningRate: Number.NaN }, 'learningRate'],
      [{ maxIter: 0 }, 'maxIter'],
      [{ maxIter: 1.5 }, 'maxIter'],
      [{ maxLeafNodes: 1 }, 'maxLeafNodes'],
      [{ maxDepth: 0 }, 'maxDepth'],
      [{ minSamplesLeaf: 0 }, 'minSamplesLeaf'],
      [{ l2Regularization: -0.1 }, 'l2Regularization'],
      [{ maxBins: 256 }, 'maxBins'],
      [{ rowSubsample: 0 }, 'rowSubsample'],
      [{ colSubsample: 1.5 }, 'colSubsample'],
      [{ earlyStopping: 'yes' }, 'earlyStopping'],
      [{ validationFraction: 1 }, 'validationFraction'],
      [{ nIterNoChange: 0 }, 'nIterNoChange'],
      [{ seed: -1 }, 'seed'],
      [{ maxiter: 10 }, 'maxiter'],
    ];
    for (const [params, field] of cases) {
      await assert.rejects(fitGbdt(x, y, params as never), fieldIs(field), JSON.stringify(params));
    }
    await assert.rejects(fitGbdt(x, y.subarray(0, 100)), fieldIs('y'));
    await assert.rejects(fitGbdt(x, new Uint8Array(200).fill(2)), fieldIs('y'));
    await assert.rejects(fitGbdt(x, new Uint8Array(200)), fieldIs('y'));
    await assert.rejects(fitGbdt(x, y, {}, { sampleWeight: new Float64Array(200).fill(-1) }), fieldIs('sampleWeight'));
    await assert.rejects(fitGbdt(x, y, {}, { threads: 0 }), fieldIs('threads'));
    const model = await fitGbdt(x, y, { maxIter: 2 });
    assert.throws(() => model.predictProba(matrix(1, 3)), fieldIs('x'));
  });

  it('weights rows: the baseline is the weighted log-odds', async () => {
    const { x, y } = xorData(1000, 2, 14);
    const weights = Float64Array.from(y, (label) => (label ? 3 : 1));
    const model = await fitGbdt(x, y, { maxIter: 1 }, { sampleWeight: weights });
    const positive = y.reduce((a, b) => a + b, 0) * 3;
    const rate = positive / (positive + (y.length - positive / 3));
    assert.equal(model.baseline, Math.fround(Math.log(rate / (1 - rate))));
  });

  it('builds the same model with the wasm and the JavaScript loops', async () => {
    const { x, y } = missingData(3000, 1, 15);
    const params = { maxIter: 8, rowSubsample: 0.9 };
    sameModel(await fitGbdt(x, y, params, { kernels: 'wasm' }), await fitGbdt(x, y, params, { kernels: 'js' }));
  });

  it('builds the same histograms and models across worker threads', async () => {
    // kernels directly: a pool of two workers against the main thread alone
    const rng = new Random(16);
    const n = 5000;
    const nFeatures = 7;
    const source = allocateSource(n, nFeatures, true);
    for (let i = 0; i < source.binned.length; i++) source.binned[i] = rng.int(256);
    for (let i = 0; i < n; i++) {
      source.gradHess[2 * i] = rng.normal();
      source.gradHess[2 * i + 1] = rng.next();
      source.rows[i] = i;
    }
    // a node made of every third row
    let count = 0;
    for (let i = 0; i < n; i += 3) source.rows[count++] = i;
    const features = Int32Array.from([0, 2, 3, 4, 5, 6]);
    buildHistograms(source, 0, count, false, features, 0, features.length);
    const alone = source.out.slice();
    buildHistograms(source, 0, n, true, features, 0, features.length);
    const aloneContiguous = source.out.slice();
    const pool = await HistogramPool.start(source, 2);
    try {
      pool.features.set(features);
      source.out.fill(0);
      pool.build(0, count, false, features.length);
      assert.deepEqual(source.out, alone);
      for (let i = 0; i < n; i++) source.rows[i] = i;
      pool.build(0, n, true, features.length);
      assert.deepEqual(source.out, aloneContiguous);
    } finally {
      await pool.close();
    }
    // whole fits (counting pools that really started: a pool that fails to start falls back silently)
    const { x, y } = missingData(20_000, 0, 17);
    const params = { maxIter: 6, earlyStopping: false };
    const start = HistogramPool.start.bind(HistogramPool);
    let started = 0;
    HistogramPool.start = async (...args) => {
      const created = await start(...args);
      started++;
      return created;
    };
    try {
      sameModel(await fitGbdt(x, y, params, { threads: 3, parallelThreshold: 0 }), await fitGbdt(x, y, params, { threads: 1 }));
    } finally {
      HistogramPool.start = start;
    }
    assert.equal(started, 1);
  });
});

describe('gbdt binning', () => {
  it('puts thresholds on float32 values between bins, so bins and float32 comparisons agree', () => {
    const rng = new Random(18);
    const n = 5000;
    const x = matrix(n, 3);
    for (let i = 0; i < n; i++) {
      x.data[i * 3] = rng.normal() * 1e-3; // many distinct values: quantiles
      x.data[i * 3 + 1] = rng.int(20) / 7; // few distinct values: midpoints
      x.data[i * 3 + 2] = rng.next() < 0.2 ? NaN : 1 + rng.int(3) * 1.1920928955078125e-7; // adjacent float32s
    }
    const columns = toFloatColumns(x);
    const mapper = fitBinMapper(columns, n, 255, 200_000, new Random(1));
    const binned = binColumns(columns, n, mapper);
    for (let f = 0; f < 3; f++) {
      const thresholds = mapper.thresholds[f]!;
      assert.ok(thresholds.length <= 254);
      for (let b = 0; b < thresholds.length; b++) {
        assert.equal(Math.fround(thresholds[b]!), thresholds[b]);
        if (b > 0) assert.ok(thresholds[b]! > thresholds[b - 1]!);
      }
      for (let i = 0; i < n; i++) {
        const v = Math.fround(x.data[i * 3 + f]!);
        const bin = binned[f * n + i]!;
        if (Number.isNaN(v)) {
          assert.equal(bin, 255);
          continue;
        }
        for (let b = 0; b < thresholds.length; b++) assert.equal(bin <= b, v <= thresholds[b]!, `feature ${f} value ${v} bin ${bin} edge ${b}`);
      }
    }
    assert.equal(mapper.thresholds[1]!.length, 19);
    assert.equal(mapper.thresholds[2]!.length, 2);
  });

  it('sorts float32 values like a comparison sort', () => {
    const rng = new Random(19);
    const values = Float32Array.from({ length: 3000 }, (_, i) => (i % 50 === 0 ? [Infinity, -Infinity, 0, -0][i % 4]! : rng.normal() * 10 ** rng.int(8)));
    const expected = values.slice().sort();
    assert.deepEqual(Array.from(sortFloat32(values, new Uint32Array(values.length)), (v) => v + 0), Array.from(expected, (v) => v + 0));
  });
});
