import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { fitGbdt } from '../../lib/ml/gbdt/index.js';
import { fitLogisticRegression } from '../../lib/ml/logreg.js';
import { Random } from '../../lib/ml/random.js';
import { modelSignature } from '../../lib/ml/signature.js';
import { matrix } from '../../lib/ml/types.js';

function problem(rows: number) {
  const random = new Random(7);
  const x = matrix(rows, 3, ['tenure_days', 'orders_30d', 'tickets_30d']);
  const y = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < 3; c++) x.data[r * 3 + c] = random.normal();
    y[r] = random.next() < 1 / (1 + Math.exp(-(x.data[r * 3]! - x.data[r * 3 + 2]!))) ? 1 : 0;
  }
  return { x, y };
}

describe('modelSignature', () => {
  const { x, y } = problem(600);
  for (const [kind, fit] of [
    ['logreg', () => Promise.resolve(fitLogisticRegression(x, y))],
    ['gbdt', () => fitGbdt(x, y, { maxIter: 5 })],
  ] as const) {
    it(`describes the ${kind} model exactly as onnxruntime sees it`, async () => {
      const model = await fit();
      const signature = modelSignature(model);
      assert.equal(signature.kind, kind);
      assert.deepEqual(signature.inputs[0]!.features, ['tenure_days', 'orders_30d', 'tickets_30d']);
      const session = await ort.InferenceSession.create(model.toOnnx());
      assert.deepEqual(session.inputNames, signature.inputs.map((i) => i.name));
      assert.deepEqual(session.outputNames, signature.outputs.map((o) => o.name));
      const metadata = JSON.parse(
        (await import('../../lib/onnx/builder.js')).onnx.ModelProto.decode(model.toOnnx())
          .metadataProps.find((p) => p.key === 'feature_names')!.value!,
      ) as string[];
      assert.deepEqual(metadata, signature.inputs[0]!.features);
      await session.release();
    });
  }
});
