/**
 * Checks a pipeline's trainer parameters up front (in the workflow's first step), so an unknown
 * or out-of-range parameter fails the run at once instead of after the data work.
 */
import { InvalidInput } from '../errors.js';
import { resolveGbdtParams } from '../ml/gbdt/params.js';
import type { GbdtParams } from '../ml/gbdt/params.js';
import { logisticRegressionParamsSchema } from '../ml/logreg-params.js';
import type { TrainerConfig } from '../schemas/training-pipeline.js';
import { describeZodError } from '../validation.js';

/** Throws InvalidInput naming `trainer.params.<name>` when a parameter is unknown or invalid. */
export function checkTrainerParams(trainer: TrainerConfig): void {
  if (trainer.kind === 'gbdt') {
    try {
      resolveGbdtParams(trainer.params as Partial<GbdtParams>);
    } catch (error) {
      if (error instanceof InvalidInput) throw new InvalidInput(`trainer.params: ${error.message}`, `trainer.params.${error.field ?? ''}`);
      throw error;
    }
  } else if (trainer.kind === 'logreg') {
    const parsed = logisticRegressionParamsSchema.safeParse(trainer.params);
    if (!parsed.success) {
      const problem = describeZodError(parsed.error);
      throw new InvalidInput(`trainer.params: logreg ${problem.message}`, `trainer.params.${problem.field}`);
    }
  }
}
