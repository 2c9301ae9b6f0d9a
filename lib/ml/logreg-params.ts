/**
 * Hyper-parameters of the logreg trainer. Kept apart from the trainer so that workflows can check
 * a pipeline's parameters without bundling the ONNX encoder.
 */
import { z } from 'zod';

/** 'balanced' weighs class c by n / (2·n_c), as scikit-learn does; or explicit weights per class. */
export const classWeightSchema = z.union([
  z.literal('balanced'),
  z.object({ '0': z.number().positive(), '1': z.number().positive() }).strict(),
]);

export const logisticRegressionParamsSchema = z
  .object({
    /** Inverse regularisation strength (scikit-learn's C): larger C, weaker penalty. */
    C: z.number().positive().default(1),
    classWeight: classWeightSchema.optional(),
    /** Newton iterations; a well-posed fit converges in about ten. */
    maxIter: z.number().int().min(1).max(1000).default(100),
    /** Stop when max |gradient| of the objective divided by C·Σweights is at most this. */
    tol: z.number().positive().max(1).default(1e-10),
    /** Fit on standardised features (mean 0, population std 1), so C means the same for every feature. */
    standardize: z.boolean().default(true),
  })
  .strict();

export type LogisticRegressionParams = z.input<typeof logisticRegressionParamsSchema>;
export type ResolvedLogisticRegressionParams = z.output<typeof logisticRegressionParamsSchema>;
