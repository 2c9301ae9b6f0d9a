import type { WorkerConfig } from '../lib/config.js';
import type { OnDemandFeature } from '../lib/features/on-demand.js';
import type { ArtifactStore } from '../stores/artifacts/index.js';
import type { S3Access } from '../stores/data-files.js';
import type { Db } from '../stores/db.js';
import { withKeelFailureDetails } from './keel-failures.js';
import { createFeatureActivities } from './features.js';
import { createRolloutAnalysisActivities } from './rollout-analysis.js';
import { createStackCheckActivities } from './stack-check.js';
import { createTrainingActivities } from './training/index.js';
import { createTrafficActivities } from './traffic.js';

/** What every activity may use; built once per worker process. */
export interface ActivityDeps {
  db: Db;
  artifacts: ArtifactStore;
  /** Endpoint and region for reading `s3://` training data (credentials from the AWS_* environment). */
  s3?: S3Access;
  /** On-demand feature functions this worker can compute, by name (the churn example's by default). */
  onDemand?: readonly OnDemandFeature[];
  /** Engine `auto` of feature-view training sets runs DuckDB from this many entity rows (`KEEL_DUCKDB_AUTO_MIN_ROWS`). */
  duckdbAutoMinRows?: number;
  /** What this worker's operator allows (`KEEL_TRAINER_COMMANDS`, `KEEL_DATA_ROOTS`, `KEEL_DATA_SCHEMAS`). */
  worker: WorkerConfig;
}

/** All activity implementations, registered on both task queues. */
export function createActivities(deps: ActivityDeps) {
  return withKeelFailureDetails({
    ...createStackCheckActivities(deps),
    ...createTrainingActivities(deps),
    ...createFeatureActivities(deps),
    ...createTrafficActivities(deps),
    ...createRolloutAnalysisActivities(deps),
  });
}

export type KeelActivities = ReturnType<typeof createActivities>;
