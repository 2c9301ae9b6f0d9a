import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import { fitGbdt } from '../../lib/ml/gbdt/index.js';
import { fitLogisticRegression } from '../../lib/ml/logreg.js';
import { Random } from '../../lib/ml/random.js';
import type { BinaryClassifier, Matrix } from '../../lib/ml/types.js';
import { matrix } from '../../lib/ml/types.js';
import type { NodeProto, TensorProto } from '../../lib/onnx/builder.js';
import { floatTensor, node, onnx } from '../../lib/onnx/builder.js';
import { loadOnnxScorer, readMetadata } from '../../lib/onnx/scorer.js';

const NAMES = ['age', 'income', 'score', 'tenure'];

/** Rows with scattered NaNs and a few extreme values, already float32 so both sides read the same numbers. */
function data(rows: number, seed: number): { x: Matrix; y: Uint8Array } {
  const random = new Random(seed);
  const x = matrix(rows, NAMES.length, [...NAMES]);
  const y = new Uint8Array(rows);
  for (let i = 0; i < rows; i++) {
    const at = i * NAMES.length;
    for (let j = 0; j < NAMES.length; j++) x.data[at + j] = random.next() < 0.05 ? NaN : random.normal() * (j + 1) + j;
    if (i % 97 === 5) x.data[at + 1] = 1e6;
    const a = Number.isNaN(x.data[at]!) ? 0 : x.data[at]!;
    const c = Number.isNaN(x.data[at + 2]!) ? 2 : x.data[at + 2]!;
    y[i] = random.next() < 1 / (1 + Math.exp(-(1.2 * a - 0.4 * (c - 2)))) ? 1 : 0;
  }
  for (let k = 0; k < x.data.length; k++) x.data[k] = Math.fround(x.data[k]!);
  return { x, y };
}

async function assertScoresLike(model: BinaryClassifier, x: Matrix): Promise<void> {
  // A small batch so that several runs are stitched together.
  const scorer = await loadOnnxScorer(model.toOnnx(), NAMES, { batchRows: 777 });
  try {
    assert.equal(scorer.inputName, 'input');
    assert.equal(scorer.outputName, 'probabilities');
    assert.equal(scorer.featureCount, NAMES.length);
    const got = await scorer.predictProba(x);
    const expected = model.predictProba(x);
    assert.equal(got.length, x.rows);
    let maxDifference = 0;
    for (let i = 0; i < x.rows; i++) maxDifference = Math.max(maxDifference, Math.abs(got[i]! - expected[i]!));
    assert.ok(maxDifference <= 1e-5, `max |onnx − predictProba| = ${maxDifference}`);
  } finally {
    await scorer.release();
  }
}

const T = onnx.TensorProto.DataType;

function valueInfo(name: string, elemType: number, dims: Array<number | string>) {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

/** A hand-made model, for signatures Keel's own exports never have. */
function customModel(spec: {
  inputs: ReturnType<typeof valueInfo>[];
  outputs: ReturnType<typeof valueInfo>[];
  nodes: NodeProto[];
  initializers?: TensorProto[];
  metadata?: Record<string, string>;
}): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'test',
      opsetImport: [{ domain: '', version: 17 }],
      metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: { name: 'custom', node: spec.nodes, initializer: spec.initializers ?? [], input: spec.inputs, output: spec.outputs },
    }),
  ).finish();
}

/** input x float [N, 4] → score = Sigmoid(x · w) as [N, 1] (or the raw logit when `sigmoid` is false). */
function scoreModel(options: { sigmoid?: boolean; outputName?: string; inputDims?: Array<number | string> } = {}): Uint8Array {
  const out = options.outputName ?? 'score';
  const sigmoid = options.sigmoid ?? true;
  return customModel({
    inputs: [valueInfo('x', T.FLOAT, options.inputDims ?? ['batch', 4])],
    outputs: [valueInfo(out, T.FLOAT, ['batch', 1])],
    nodes: [node('MatMul', ['x', 'w'], [sigmoid ? 'logit' : out]), ...(sigmoid ? [node('Sigmoid', ['logit'], [out])] : [])],
    initializers: [floatTensor('w', [4, 1], [0.5, -0.25, 0.1, 0])],
  });
}

async function assertRefused(bytes: Uint8Array, names: readonly string[], pattern: RegExp): Promise<void> {
  await assert.rejects(loadOnnxScorer(bytes, names), (error: unknown) => {
    assert.ok(error instanceof InvalidInput, `InvalidInput, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('loadOnnxScorer', () => {
  const { x, y } = data(4000, 3);
  const test = data(3000, 4).x;

  it('scores a Keel logreg export like its predictProba (1e-5), missing values included', async () => {
    await assertScoresLike(fitLogisticRegression(x, y, { C: 1 }), test);
  });

  it('scores a Keel gbdt export like its predictProba (1e-5), missing values included', async () => {
    await assertScoresLike(await fitGbdt(x, y, { maxIter: 30 }), test);
  });

  it('reads the feature names from the metadata without decoding the graph', () => {
    const metadata = readMetadata(fitLogisticRegression(x, y, { C: 1 }).toOnnx());
    assert.deepEqual(JSON.parse(metadata!.get('feature_names')!), NAMES);
    assert.equal(metadata!.get('kind'), 'logreg');
  });

  it('refuses a model with a different feature count, naming both counts and the features', async () => {
    const three = fitLogisticRegression({ ...x, cols: 3, names: NAMES.slice(0, 3), data: x.data.filter((_, k) => k % 4 !== 3) }, y).toOnnx();
    await assertRefused(three, ['a', 'b', 'c', 'd', 'e'], /^model\.onnx takes 3 features, the training set has 5 \(a, b, c, d, e\)$/);
  });

  it('refuses a model whose metadata feature_names are in another order', async () => {
    const bytes = fitLogisticRegression(x, y).toOnnx();
    await assertRefused(bytes, ['income', 'age', 'score', 'tenure'], /feature_names differs .* at position 1: age where income is expected/);
  });

  it('accepts a comma-separated feature_names and refuses one that differs', async () => {
    const bytes = (names: string) =>
      customModel({
        inputs: [valueInfo('x', T.FLOAT, ['N', 2])],
        outputs: [valueInfo('probabilities', T.FLOAT, ['N', 2])],
        nodes: [node('Sigmoid', ['x'], ['probabilities'])],
        metadata: { feature_names: names },
      });
    const scorer = await loadOnnxScorer(bytes('a, b'), ['a', 'b']);
    await scorer.release();
    await assertRefused(bytes('a,c'), ['a', 'b'], /at position 2: c where b is expected/);
  });

  it('refuses a model whose input is not float', async () => {
    const bytes = customModel({
      inputs: [valueInfo('x', T.DOUBLE, ['N', 4])],
      outputs: [valueInfo('probabilities', T.FLOAT, ['N', 4])],
      nodes: [node('Cast', ['x'], ['probabilities'], [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.FLOAT }])],
    });
    await assertRefused(bytes, NAMES, /input x has element type float64; Keel feeds float \(float32\) tensors \[N, 4\]/);
  });

  it('refuses two inputs, a fixed batch size and a 3-D input', async () => {
    const two = customModel({
      inputs: [valueInfo('x', T.FLOAT, ['N', 4]), valueInfo('z', T.FLOAT, ['N', 4])],
      outputs: [valueInfo('probabilities', T.FLOAT, ['N', 4])],
      nodes: [node('Add', ['x', 'z'], ['probabilities'])],
    });
    await assertRefused(two, NAMES, /must have exactly one input, a float tensor \[N, 4\]; it has 2: x float32 \[N, 4\]; z float32 \[N, 4\]/);
    await assertRefused(scoreModel({ inputDims: [1, 4] }), NAMES, /fixed batch size of 1/);
    const cube = customModel({
      inputs: [valueInfo('x', T.FLOAT, ['N', 4, 1])],
      outputs: [valueInfo('probabilities', T.FLOAT, ['N', 4, 1])],
      nodes: [node('Sigmoid', ['x'], ['probabilities'])],
    });
    await assertRefused(cube, NAMES, /has shape \[N, 4, 1\]; Keel feeds a 2-D float tensor \[N, 4\]/);
  });

  it('refuses bytes that are not ONNX', async () => {
    await assertRefused(new TextEncoder().encode('not a model'), NAMES, /not a valid ONNX model/);
    await assertRefused(new Uint8Array(0), NAMES, /empty/);
  });

  it('takes a single float output [N, 1] as P(y = 1)', async () => {
    const scorer = await loadOnnxScorer(scoreModel(), NAMES);
    try {
      assert.equal(scorer.inputName, 'x');
      assert.equal(scorer.outputName, 'score');
      const row = matrix(2, 4, [...NAMES]);
      row.data.set([2, 0, 0, 0, 0, 4, 0, 0]);
      const p = await scorer.predictProba(row);
      assert.ok(Math.abs(p[0]! - 1 / (1 + Math.exp(-1))) < 1e-6);
      assert.ok(Math.abs(p[1]! - 1 / (1 + Math.exp(1))) < 1e-6);
    } finally {
      await scorer.release();
    }
  });

  it('refuses outputs that are not probabilities', async () => {
    const onlyLabel = customModel({
      inputs: [valueInfo('x', T.FLOAT, ['N', 4])],
      outputs: [valueInfo('label', T.INT64, ['N', 4])],
      nodes: [node('Cast', ['x'], ['label'], [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.INT64 }])],
    });
    await assertRefused(onlyLabel, NAMES, /no probability output; expected .*; found: label int64 \[N, 4\]/);

    // A logit: loads (0 on the all-zero probe), but scoring real rows finds values outside [0, 1].
    const scorer = await loadOnnxScorer(scoreModel({ sigmoid: false }), NAMES);
    try {
      const row = matrix(1, 4, [...NAMES]);
      row.data.set([8, 0, 0, 0]);
      await assert.rejects(scorer.predictProba(row), /output score gives 4 for row 1; it must be a probability in \[0, 1\]/);
    } finally {
      await scorer.release();
    }
  });

  it('refuses a matrix with the wrong column count', async () => {
    const scorer = await loadOnnxScorer(fitLogisticRegression(x, y).toOnnx(), NAMES);
    try {
      await assert.rejects(scorer.predictProba(matrix(2, 3, ['a', 'b', 'c'])), /takes 4 features, the matrix has 3 \(a, b, c\)/);
    } finally {
      await scorer.release();
    }
  });
});
