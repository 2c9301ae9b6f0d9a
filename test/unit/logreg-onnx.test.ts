import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { fitLogisticRegression } from '../../lib/ml/logreg.js';
import { Random } from '../../lib/ml/random.js';
import { matrix } from '../../lib/ml/types.js';
import type { Matrix } from '../../lib/ml/types.js';
import { onnx } from '../../lib/onnx/builder.js';

const NAMES = ['age', 'balance', 'signup_day', 'constant', 'age_echo', 'sometimes_missing', 'skewed'];

/** One row of features like a tabular dataset's: offsets, integers far from zero, a constant, skew. */
function drawRow(random: Random, out: Float64Array, at: number): void {
  const age = random.normal();
  out[at] = age;
  out[at + 1] = 3 * random.normal() + 10;
  out[at + 2] = 20000 + Math.round(50 * random.normal());
  out[at + 3] = 5;
  out[at + 4] = 0.8 * age + 0.6 * random.normal();
  out[at + 5] = random.next() < 0.1 ? NaN : 2 * random.normal() - 1;
  out[at + 6] = Math.exp(random.normal());
}

function trainingData(rows: number): { x: Matrix; y: Uint8Array } {
  const random = new Random(7);
  const x = matrix(rows, NAMES.length, NAMES);
  const y = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    const at = i * NAMES.length;
    drawRow(random, x.data, at);
    const v = x.data;
    const missing = Number.isNaN(v[at + 5]!) ? 0 : v[at + 5]!;
    const logit = 0.8 * v[at]! - 0.3 * (v[at + 1]! - 10) + 0.02 * (v[at + 2]! - 20000) + 0.5 * missing - 0.4 * v[at + 6]!;
    y[i] = random.next() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
  }
  return { x, y };
}

/** Rows the gateway might see, already float32 so both sides read the same numbers. */
function scoringData(rows: number): Matrix {
  const random = new Random(11);
  const cols = NAMES.length;
  const x = matrix(rows, cols, NAMES);
  for (let i = 0; i < rows; i++) {
    const at = i * cols;
    drawRow(random, x.data, at);
    const kind = i % 20;
    for (let j = 0; j < cols; j++) {
      if (random.next() < 0.05) x.data[at + j] = NaN;
      // Every 20th row has out-of-range values, every 20th (other) row is entirely missing.
      if (kind === 1 && random.next() < 0.5) x.data[at + j] = random.next() < 0.5 ? 1e6 : -1e6;
      if (kind === 2) x.data[at + j] = NaN;
    }
  }
  for (let k = 0; k < x.data.length; k++) x.data[k] = Math.fround(x.data[k]!);
  return x;
}

describe('logreg ONNX export', () => {
  const { x, y } = trainingData(3000);
  const model = fitLogisticRegression(x, y, { C: 1 });
  const bytes = model.toOnnx();

  it('gives onnxruntime the probabilities and labels predictProba gives, missing and extreme values included', async () => {
    const rows = 6000;
    const scoring = scoringData(rows);
    const session = await ort.InferenceSession.create(bytes);
    try {
      assert.deepEqual(session.inputNames, ['input']);
      assert.deepEqual([...session.outputNames].sort(), ['label', 'probabilities']);
      const input = new ort.Tensor('float32', Float32Array.from(scoring.data), [rows, NAMES.length]);
      const outputs = await session.run({ input });
      const probabilities = outputs.probabilities!;
      const label = outputs.label!;
      assert.deepEqual(probabilities.dims, [rows, 2]);
      assert.deepEqual(label.dims, [rows]);
      assert.equal(label.type, 'int64');
      const p = probabilities.data as Float32Array;
      const labels = label.data as BigInt64Array;
      const expected = model.predictProba(scoring);

      let maxDifference = 0;
      let saturated = 0;
      for (let i = 0; i < rows; i++) {
        const p1 = p[2 * i + 1]!;
        maxDifference = Math.max(maxDifference, Math.abs(p1 - expected[i]!));
        assert.ok(Math.abs(p[2 * i]! + p1 - 1) <= 1e-6, `row ${i}: probabilities sum to 1`);
        assert.equal(labels[i], p1 > 0.5 ? 1n : 0n, `row ${i}: label is p > 0.5`);
        if (Math.abs(expected[i]! - 0.5) > 1e-5) assert.equal(labels[i], expected[i]! > 0.5 ? 1n : 0n, `row ${i}: label`);
        if (expected[i]! < 1e-9 || expected[i]! > 1 - 1e-9) saturated++;
      }
      assert.ok(maxDifference <= 1e-5, `max |onnx − predictProba| = ${maxDifference}`);
      // The ±1e6 rows really did reach the saturated ends.
      assert.ok(saturated >= 100, `${saturated} saturated rows`);
    } finally {
      await session.release();
    }
  });

  it('scores an all-missing row at the training means', async () => {
    const session = await ort.InferenceSession.create(bytes);
    try {
      const allMissing = new Float32Array(NAMES.length).fill(NaN);
      const atMeans = Float32Array.from(model.means);
      const outputs = await session.run({ input: new ort.Tensor('float32', Float32Array.from([...allMissing, ...atMeans]), [2, NAMES.length]) });
      const p = outputs.probabilities!.data as Float32Array;
      const expected = 1 / (1 + Math.exp(-model.centeredIntercept));
      assert.ok(Math.abs(p[1]! - expected) <= 1e-6);
      assert.ok(Math.abs(p[3]! - expected) <= 1e-5);
    } finally {
      await session.release();
    }
  });

  it('holds the feature names and kind in its metadata and uses only standard ops', () => {
    const decoded = onnx.ModelProto.decode(bytes);
    const metadata = Object.fromEntries(decoded.metadataProps.map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(metadata.feature_names!), NAMES);
    assert.equal(metadata.kind, 'logreg');
    assert.equal(decoded.graph?.name, 'keel-logreg');
    const nodes = decoded.graph?.node ?? [];
    assert.ok(nodes.every((n) => n.domain === ''));
    assert.deepEqual(
      nodes.map((n) => n.opType),
      ['IsNaN', 'Sub', 'Sub', 'Where', 'Gemm', 'Sigmoid', 'Sub', 'Concat', 'Greater', 'Reshape', 'Cast'],
    );
  });

  it('exports the same bytes for the same data and params', () => {
    const again = fitLogisticRegression(x, y, { C: 1 }).toOnnx();
    assert.ok(Buffer.from(again).equals(Buffer.from(bytes)));
  });
});
