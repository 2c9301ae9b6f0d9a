import { INPUT_NAME, LABEL_OUTPUT, PROBABILITIES_OUTPUT } from '../onnx/builder.js';
import type { BinaryClassifier } from './types.js';

/**
 * `signature.json` of a model bundle: what `model.onnx` takes and returns, in the spirit of
 * MLflow's model signature, so that a gateway or a user can call the model without reading it.
 */
export interface ModelSignature {
  format: 'onnx';
  /** The trainer that produced the model (`command` for a team's own program). */
  kind: BinaryClassifier['kind'] | 'command';
  inputs: Array<{ name: string; dtype: 'float32'; shape: [-1, number]; features: string[] }>;
  outputs: Array<{ name: string; dtype: 'int64' | 'float32'; shape: number[]; description: string }>;
}

export function modelSignature(model: BinaryClassifier): ModelSignature {
  return signatureFor(model.kind, model.featureNames);
}

/** The signature of any Keel-served model: one float [N, F] input in `featureNames` order. */
export function signatureFor(kind: ModelSignature['kind'], featureNames: readonly string[]): ModelSignature {
  const features = [...featureNames];
  return {
    format: 'onnx',
    kind,
    inputs: [{ name: INPUT_NAME, dtype: 'float32', shape: [-1, features.length], features }],
    outputs: [
      { name: LABEL_OUTPUT, dtype: 'int64', shape: [-1], description: 'predicted class: 1 when P(y = 1) > 0.5' },
      { name: PROBABILITIES_OUTPUT, dtype: 'float32', shape: [-1, 2], description: '[P(y = 0), P(y = 1)]' },
    ],
  };
}
