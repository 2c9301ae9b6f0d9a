import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import type { GbdtJson, GbdtModel } from '../../lib/ml/gbdt/index.js';
import { fitGbdt, loadGbdt, resolveGbdtParams } from '../../lib/ml/gbdt/index.js';
import { Random } from '../../lib/ml/random.js';
import type { Matrix } from '../../lib/ml/types.js';
import { matrix } from '../../lib/ml/types.js';
import { onnx } from '../../lib/onnx/builder.js';

/** Interactions, a missingness signal in feature 2, scattered NaNs. */
function trainingData(n: number, seed: number): { x: Matrix; y: Uint8Array } {
  const rng = new Random(seed);
  const cols = 6;
  const x = matrix(n, cols, ['age', 'income', 'score', 'clicks', 'tenure', 'noise']);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const row = i * cols;
    for (let f = 0; f < cols; f++) x.data[row + f] = rng.next() < 0.05 ? NaN : rng.normal();
    if (rng.next() < 0.2) x.data[row + 2] = NaN;
    const a = x.data[row]!;
    const b = x.data[row + 1]!;
    const logit = (Number.isNaN(a * b) ? 0 : 2 * a * b) + (Number.isNaN(x.data[row + 2]!) ? 1.5 : x.data[row + 2]!) + Math.sin(3 * (x.data[row + 3]! || 0));
    y[i] = rng.next() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
  }
  return { x, y };
}

/** Rows with NaN, ±1e30, ±∞, values on split thresholds and one float32 step either side. */
function hardRows(model: GbdtModel, n: number, seed: number): Matrix {
  const rng = new Random(seed);
  const cols = model.featureNames.length;
  const thresholds: number[][] = Array.from({ length: cols }, () => []);
  for (const tree of model.trees) {
    tree.feature.forEach((f, node) => {
      if (f >= 0 && Number.isFinite(tree.threshold[node]!)) thresholds[f]!.push(tree.threshold[node]!);
    });
  }
  const step = (v: number, up: boolean) => {
    const bits = new Float32Array([v]);
    const u = new Int32Array(bits.buffer);
    u[0] = u[0]! + ((v >= 0) === up ? 1 : -1);
    return bits[0]!;
  };
  const x = matrix(n, cols, [...model.featureNames]);
  for (let i = 0; i < n * cols; i++) {
    const f = i % cols;
    const u = rng.next();
    const edges = thresholds[f]!;
    let v: number;
    if (u < 0.1) v = NaN;
    else if (u < 0.15) v = 1e30;
    else if (u < 0.2) v = -1e30;
    else if (u < 0.21) v = Infinity;
    else if (u < 0.22) v = -Infinity;
    else if (u < 0.4 && edges.length > 0) {
      const t = edges[rng.int(edges.length)]!;
      v = [t, step(t, true), step(t, false), t + 1e-12][rng.int(4)]!;
    } else v = rng.normal() * 1.5;
    x.data[i] = v;
  }
  return x;
}

async function runOnnx(bytes: Uint8Array, x: Matrix): Promise<{ probabilities: Float32Array; labels: number[] }> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ input: new ort.Tensor('float32', Float32Array.from(x.data), [x.rows, x.cols]) });
  return {
    probabilities: out.probabilities!.data as Float32Array,
    labels: Array.from(out.label!.data as BigInt64Array, Number),
  };
}

function assertAgrees(model: GbdtModel, x: Matrix, onnxOut: { probabilities: Float32Array; labels: number[] }): number {
  const p = model.predictProba(x);
  let maxDiff = 0;
  for (let i = 0; i < x.rows; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(onnxOut.probabilities[2 * i + 1]! - p[i]!), Math.abs(onnxOut.probabilities[2 * i]! - (1 - p[i]!)));
    // float32 rounding may flip a label only within a hair of 0.5
    if (Math.abs(p[i]! - 0.5) > 1e-5) assert.equal(onnxOut.labels[i], p[i]! > 0.5 ? 1 : 0, `row ${i}: p = ${p[i]}`);
  }
  assert.ok(maxDiff <= 1e-5, `max |ONNX − TS| = ${maxDiff}`);
  return maxDiff;
}

describe('gbdt ONNX export', () => {
  it('agrees with predictProba in onnxruntime, NaN, ±1e30, ±∞ and threshold values included', async () => {
    const { x, y } = trainingData(6000, 1);
    const model = await fitGbdt(x, y, { maxIter: 60 });
    const test = hardRows(model, 6000, 2);
    const out = await runOnnx(model.toOnnx(), test);
    assertAgrees(model, test, out);
    // the training rows too
    assertAgrees(model, x, await runOnnx(model.toOnnx(), x));
  });

  it('is one TreeEnsembleClassifier (ai.onnx.ml 3) with the feature names in the metadata', async () => {
    const { x, y } = trainingData(2000, 3);
    const model = await fitGbdt(x, y, { maxIter: 7 });
    const bytes = model.toOnnx();
    const decoded = onnx.ModelProto.decode(bytes);
    assert.ok(decoded.opsetImport.some((o) => o.domain === 'ai.onnx.ml' && Number(o.version) === 3));
    const metadata = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(metadata.feature_names!), x.names);
    assert.equal(metadata.n_trees, '7');
    const ensembles = (decoded.graph?.node ?? []).filter((n) => n.opType === 'TreeEnsembleClassifier');
    assert.equal(ensembles.length, 1);
    assert.equal(ensembles[0]!.domain, 'ai.onnx.ml');
    const attribute = (name: string) => (ensembles[0]!.attribute ?? []).find((a) => a.name === name)!;
    assert.equal(new TextDecoder().decode(attribute('post_transform').s!), 'LOGISTIC');
    assert.equal(new Set(attribute('nodes_treeids').ints!.map(Number)).size, 7);
    assert.deepEqual(attribute('base_values').floats, [model.baseline]);
    // deterministic bytes, also after a JSON round trip
    assert.deepEqual(loadGbdt(JSON.parse(JSON.stringify(model)) as unknown).toOnnx(), bytes);
    const session = await ort.InferenceSession.create(bytes);
    assert.deepEqual(session.inputNames, ['input']);
    assert.deepEqual([...session.outputNames].sort(), ['label', 'probabilities']);
  });

  it('routes missing values in a split on missingness (infinite threshold)', async () => {
    const x = matrix(400, 1, ['maybe']);
    const y = new Uint8Array(400);
    for (let i = 0; i < 400; i++) {
      y[i] = i % 2;
      x.data[i] = y[i] ? NaN : i % 4 === 0 ? 1e30 : -3;
    }
    const model = await fitGbdt(x, y, { maxIter: 5 });
    assert.equal(model.trees[0]!.threshold[0], Infinity);
    const test = matrix(5, 1);
    test.data.set([NaN, -3, 1e30, Infinity, -Infinity]);
    const out = await runOnnx(model.toOnnx(), test);
    assertAgrees(model, test, out);
    assert.deepEqual(out.labels, [1, 0, 0, 0, 0]);
  });

  it('labels p > 0.5 even when every leaf value is positive', async () => {
    // onnxruntime's own label output thresholds the raw score at 0.5 in this case; ours must not
    const json: GbdtJson = {
      format: 'keel-gbdt',
      version: 1,
      featureNames: ['a'],
      params: resolveGbdtParams({ maxIter: 1 }),
      baseline: 0.25,
      trees: [{ feature: [0, -1, -1], threshold: [0.5, 0, 0], missingLeft: [1, 0, 0], left: [1, 0, 0], right: [2, 0, 0], value: [0, 0.125, 0.5], gain: [1, 0, 0], count: [2, 1, 1] }],
      training: { nIter: 1, earlyStopped: false, trainRows: 2, validationLoss: [] },
    };
    const model = loadGbdt(json);
    const test = matrix(3, 1);
    test.data.set([0, 1, NaN]);
    const out = await runOnnx(model.toOnnx(), test);
    assertAgrees(model, test, out);
    assert.deepEqual(out.labels, [1, 1, 1]);
  });
});
