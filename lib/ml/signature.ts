import { INPUT_NAME, LABEL_OUTPUT, PROBABILITIES_OUTPUT } from '../onnx/builder.js';
import type { BinaryClassifier } from './types.js';

/**
 * `signature.json` of a model bundle: what `model.onnx` takes and returns, in the spirit of
 * MLflow's model signature, so that a gateway or a user can call the model without reading it.
 */
export interface ModelSignature {
  format: 'onnx';
  kind: BinaryClassifier['kind'];
  inputs: Array<{ name: string; dtype: 'float32'; shape: [-1, number]; features: string[] }>;
  outputs: Array<{ name: string; dtype: 'int64' | 'float32'; shape: number[]; description: string }>;
}

export function modelSignature(model: BinaryClassifier): ModelSignature {
  const features = [...model.featureNames];
  return {
    format: 'onnx',
    kind: model.kind,
    inputs: [{ name: INPUT_NAME, dtype: 'float32', shape: [-1, features.length], features }],
    outputs: [
      { name: LABEL_OUTPUT, dtype: 'int64', shape: [-1], description: 'predicted class: 1 when P(y = 1) > 0.5' },
      { name: PROBABILITIES_OUTPUT, dtype: 'float32', shape: [-1, 2], description: '[P(y = 0), P(y = 1)]' },
    ],
  };
}
