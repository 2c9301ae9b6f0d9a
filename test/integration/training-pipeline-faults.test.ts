/**
 * trainingPipeline (and materializeFeatures) under faults, with real workers, Temporal and
 * Postgres: input that is not an object, a training task queue no worker polls, and Postgres down
 * for a while (back within the retry window: the run succeeds; not back: it fails naming the step
 * and the cause).
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { MaterializeFeaturesResult } from '../../lib/schemas/materialize-features.js';
import type { TrainingPipelineResult } from '../../lib/schemas/training-pipeline-result.js';
import type { TrainingPipelineInput } from '../../lib/schemas/training-pipeline.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { writeTable } from '../../stores/datasets.js';
import { createDb, type Db } from '../../stores/db.js';
import { applyFeatureDefinitions } from '../../stores/features/registry.js';
import { migrate } from '../../stores/migrate.js';
import { listVersions } from '../../stores/registry.js';
import type { RestartablePostgres } from '../helpers/restartable-postgres.js';
import { startRestartablePostgres } from '../helpers/restartable-postgres.js';
import { uniqueTaskQueue } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { syntheticChurnTable } from '../helpers/training-data.js';
import { testClient, withWorkers } from '../helpers/workers.js';
import { expectInvalidInputFailure, expectWorkflowFailure } from '../helpers/workflow-failures.js';

/** Waits until an activity of the run has failed at least once and is being retried. */
async function untilRetrying(handle: WorkflowHandle): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const pending = (await handle.describe()).raw.pendingActivities ?? [];
    const retrying = pending.find((a) => (a.attempt ?? 1) >= 2 && a.lastFailure);
    if (retrying) return retrying.activityType?.name ?? '';
    if (Date.now() > deadline) assert.fail('no activity was retried within 2 minutes');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('trainingPipeline under faults (real Temporal, workers, Postgres)', () => {
  let postgres: RestartablePostgres;
  let db: Db;
  let artifacts: FsArtifactStore;
  let client: Client;
  const dir = tempDir('keel-pipeline-faults-');
  const queue = uniqueTaskQueue('keel');
  const queues = [queue, `${queue}-training`];

  before(async () => {
    postgres = await startRestartablePostgres();
    await migrate(postgres.url);
    db = createDb({ url: postgres.url });
    artifacts = new FsArtifactStore(path.join(dir, 'artifacts'));
    client = await testClient();
    await writeTable(path.join(dir, 'train.csv'), syntheticChurnTable({ rows: 1500, seed: 1 }));
  });
  after(async () => {
    await db?.end();
    await client?.connection.close();
  });

  const input = (extra: Partial<TrainingPipelineInput> = {}): TrainingPipelineInput => ({
    model: 'churn_faults',
    data: { uri: `file://${path.join(dir, 'train.csv')}` },
    entityKeys: ['customer_id'],
    trainer: { kind: 'gbdt', params: { maxIter: 20 } },
    cvFolds: 0,
    ...extra,
  });
  const start = (args: unknown[], workflowId = `train-faults-${Math.random().toString(36).slice(2)}`, workflow = 'trainingPipeline') =>
    client.workflow.start(workflow, { taskQueue: queue, workflowId, args });

  /** Stops Postgres, starts `workflow`, starts Postgres again once a step has failed for 20 s, and answers the result. */
  const throughOutage = (workflow: string, args: unknown[]) =>
    withWorkers(queues, { db, artifacts }, async () => {
      await postgres.stop();
      let restarted = false;
      try {
        const handle = await start(args, `faults-${Math.random().toString(36).slice(2)}`, workflow);
        assert.ok(await untilRetrying(handle), 'a step that needs Postgres is being retried');
        // down longer than the 5 attempts in ~15 s that runs used to get
        await new Promise((resolve) => setTimeout(resolve, 20_000));
        await postgres.start();
        restarted = true;
        return await handle.result();
      } finally {
        if (!restarted) await postgres.start();
      }
    });

  it('null input fails at the first step with InvalidInput, before any activity runs', async () => {
    const handle = await withWorkers(queues, { db, artifacts }, async () => {
      const started = await start([null]);
      await expectInvalidInputFailure(started.result(), /^input: .*expected object, received null/);
      return started;
    });
    const history = await handle.fetchHistory();
    assert.equal((history.events ?? []).filter((e) => e.activityTaskScheduledEventAttributes).length, 0);
  });

  it('a training task queue no worker polls fails the run naming the queue, instead of waiting forever', async () => {
    const nobody = uniqueTaskQueue('nobody-polls');
    const failure = await withWorkers(queues, { db, artifacts }, async () =>
      expectWorkflowFailure(start([input({ trainingTaskQueue: nobody, scheduleToStartTimeoutSeconds: 3 })]).then((h) => h.result())),
    );
    assert.equal(failure.type, 'NoWorker');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, new RegExp(`^trainModel: no worker started it within 3 s on task queue ${nobody} `));
    assert.deepEqual(failure.details, [{ step: 'trainModel', field: 'trainingTaskQueue', taskQueue: nobody }]);
  });

  it('Postgres down for a while within the retry window: the step is retried with backoff and the run succeeds', async () => {
    const result = (await throughOutage('trainingPipeline', [input({ retry: { infrastructureTimeoutSeconds: 300, maximumIntervalSeconds: 2 } })])) as TrainingPipelineResult;
    assert.equal(result.registered, true, JSON.stringify(result.gates));
    assert.deepEqual((await listVersions(db, 'churn_faults')).map((v) => v.version), [result.version]);
  });

  it('materializeFeatures rides out the same outage', async () => {
    await db.query(`CREATE TABLE stats (customer_id int8, event_timestamp timestamptz, spend float8);
      INSERT INTO stats SELECT g, now() - interval '1 hour', g * 1.5 FROM generate_series(1, 20) g`);
    await applyFeatureDefinitions(db, {
      entities: [{ name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' }] }],
      featureViews: [{ name: 'stats', entity: 'customer', source: { table: 'stats' }, features: [{ name: 'spend', type: 'float64' }], ttlSeconds: 86_400 }],
    });
    const result = (await throughOutage('materializeFeatures', [{ views: ['stats'], retry: { infrastructureTimeoutSeconds: 300, maximumIntervalSeconds: 2 } }])) as MaterializeFeaturesResult;
    assert.equal(result.views.stats?.rowsWritten, 20);
  });

  it('Postgres down for longer than the retry window: the run fails naming the step and the cause', async () => {
    const failure = await withWorkers(queues, { db, artifacts }, async () => {
      await postgres.stop();
      try {
        return await expectWorkflowFailure(
          start([input({ model: 'churn_faults_down', retry: { infrastructureTimeoutSeconds: 6, maximumIntervalSeconds: 2 } })]).then((h) => h.result()),
        );
      } finally {
        await postgres.start();
      }
    });
    assert.equal(failure.type, 'StepFailed');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /^(\w+) failed: .*ECONNREFUSED.* \(retried with backoff for about 6 s\)$/);
    const step = /^(\w+) failed/.exec(failure.message)![1];
    assert.deepEqual(failure.details, [{ step }]);
  });
});
