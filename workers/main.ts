import { NativeConnection } from '@temporalio/worker';
import { churnOnDemandFeatures } from '../examples/churn/on-demand.js';
import type { KeelConfig } from '../lib/config.js';
import { loadOnDemandModules } from '../lib/features/modules.js';
import { openArtifactStore } from '../stores/artifacts/index.js';
import { createDb } from '../stores/db.js';
import { temporalConnectionOptions } from '../stores/temporal.js';
import { bundleWorkflows, createKeelWorker } from './create-workers.js';

export interface RunWorkersOptions {
  config: KeelConfig;
  queues: readonly string[];
  log?: (line: string) => void;
}

/**
 * Runs one worker per task queue until SIGINT/SIGTERM (the Temporal runtime handles those: it
 * stops polling and gives in-flight activities `shutdownGraceTime` to finish).
 */
export async function runWorkers({ config, queues, log = console.error }: RunWorkersOptions): Promise<void> {
  // Before connecting: a broken feature module fails the start with one line naming it.
  const onDemand = await loadOnDemandModules(config.features.modules, churnOnDemandFeatures);
  const connection = await NativeConnection.connect(await temporalConnectionOptions(config.temporal));
  const db = createDb({ url: config.database.url, applicationName: 'keel-worker' });
  try {
    const deps = {
      db,
      worker: config.worker,
      artifacts: openArtifactStore(config.artifacts),
      s3: { endpoint: config.artifacts.s3Endpoint, region: config.artifacts.region },
      onDemand,
      duckdbAutoMinRows: config.features.duckdbAutoMinRows,
    };
    const workflowBundle = await bundleWorkflows();
    const workers = await Promise.all(
      queues.map((taskQueue) =>
        createKeelWorker({ connection, namespace: config.temporal.namespace, taskQueue, workflowBundle, deps }),
      ),
    );
    log(`workers polling task queues ${queues.join(', ')} on ${config.temporal.address} (${config.temporal.namespace})`);
    await Promise.all(workers.map((worker) => worker.run()));
  } finally {
    await db.end();
    await connection.close();
  }
}
