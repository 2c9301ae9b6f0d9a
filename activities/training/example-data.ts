/**
 * The bundled examples a pipeline can train on with no data of its own (`{}` in the Temporal UI
 * trains the churn example): generated once per database and options, with their feature
 * definitions applied to the feature registry.
 */
import { churnDefinitions } from '../../examples/churn/features.js';
import { ensureChurnExample } from '../../examples/churn/generate.js';
import type { z } from 'zod';
import type { churnExampleOptionsSchema } from '../../lib/schemas/training-pipeline.js';
import type { Db } from '../../stores/db.js';
import { applyFeatureDefinitions } from '../../stores/features/registry.js';

export async function prepareExample(
  db: Db,
  example: 'churn',
  options: z.output<typeof churnExampleOptionsSchema>,
  progress: (message: string) => void,
): Promise<void> {
  switch (example) {
    case 'churn':
      progress('making sure the churn example data exists');
      await ensureChurnExample(db, options);
      // Added alongside the project's own definitions, never replacing them.
      await applyFeatureDefinitions(db, churnDefinitions, { prune: false });
  }
}
