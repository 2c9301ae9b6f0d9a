import type { ArtifactStore } from '../stores/artifacts/index.js';
import type { Db } from '../stores/db.js';
import { createStackCheckActivities } from './stack-check.js';

/** What every activity may use; built once per worker process. */
export interface ActivityDeps {
  db: Db;
  artifacts: ArtifactStore;
}

/** All activity implementations, registered on both task queues. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createStackCheckActivities(deps),
  };
}

export type KeelActivities = ReturnType<typeof createActivities>;
