/**
 * Fits a built-in trainer (gbdt or logreg) on a feature matrix: the one place trainModel and
 * crossValidate turn a pipeline's trainer config into a model. The pipeline seed is the
 * trainer's seed unless the params name one.
 */
import type { FitGbdtOptions, GbdtParams } from '../../lib/ml/gbdt/index.js';
import { fitGbdt } from '../../lib/ml/gbdt/index.js';
import { fitLogisticRegression } from '../../lib/ml/logreg.js';
import type { LogisticRegressionParams } from '../../lib/ml/logreg-params.js';
import type { BinaryClassifier, Labels, Matrix } from '../../lib/ml/types.js';

export type BuiltInTrainer = { kind: 'gbdt' | 'logreg'; params: Record<string, unknown> };

export async function fitBuiltIn(
  trainer: BuiltInTrainer,
  x: Matrix,
  y: Labels,
  seed: number,
  options: FitGbdtOptions = {},
): Promise<BinaryClassifier> {
  if (trainer.kind === 'gbdt') {
    const params = { seed, ...trainer.params } as Partial<GbdtParams>;
    return fitGbdt(x, y, params, options);
  }
  return fitLogisticRegression(x, y, trainer.params as LogisticRegressionParams, options.onProgress);
}
