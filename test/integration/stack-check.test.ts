import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { existsSync, writeFileSync } from 'node:fs';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createKeelWorker } from '../../workers/create-workers.js';
import { writeTable } from '../../stores/datasets.js';
import { syntheticChurnTable } from '../helpers/training-data.js';
import type { StackCheckResult } from '../../lib/schemas/stack-check.js';
import { loadConfig } from '../../lib/config.js';
import { FsArtifactStore, openArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { WORKFLOWS_PATH } from '../../workers/create-workers.js';
import { freshDatabase, testDatabaseUrl, testS3, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { testClient, testWorkerConfig, withWorkers, workflowBundle } from '../helpers/workers.js';
import { tempDir } from '../helpers/temp.js';
import { expectInvalidInputFailure } from '../helpers/workflow-failures.js';

const REPLAY_DIR = fileURLToPath(new URL('../replay/', import.meta.url));

describe('stackCheck workflow (real Temporal, Postgres and artifact store)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let artifacts: FsArtifactStore;
  let client: Client;

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    artifacts = new FsArtifactStore(tempDir('keel-stack-check-'));
    client = await testClient();
  });
  after(async () => {
    await db?.end();
    await client?.connection.close();
    await database?.drop();
  });

  it('runs an activity on each task queue that writes an artifact and a Postgres row', async () => {
    const queues = [uniqueTaskQueue('keel'), uniqueTaskQueue('keel-training')];
    const workflowId = `stack-check-${queues[0]}`;
    const result: StackCheckResult = await withWorkers(queues, { db, artifacts }, () =>
      client.workflow.execute('stackCheck', { taskQueue: queues[0]!, workflowId, args: [{ queues }] }),
    );
    assert.equal(result.workflowId, workflowId);
    assert.deepEqual(result.checks.map((c) => c.taskQueue), queues);
    for (const check of result.checks) {
      const report = JSON.parse((await artifacts.getBytes(check.artifact.sha256)).toString()) as Record<string, string>;
      assert.equal(report.taskQueue, check.taskQueue);
      assert.equal(report.workflowId, workflowId);
    }
    const { rows } = await db.query<{ task_queue: string; artifact_sha256: string }>(
      'SELECT task_queue, artifact_sha256 FROM stack_checks WHERE workflow_id = $1 ORDER BY task_queue',
      [workflowId],
    );
    assert.deepEqual(
      rows,
      result.checks
        .map((c) => ({ task_queue: c.taskQueue, artifact_sha256: c.artifact.sha256 }))
        .sort((a, b) => a.task_queue.localeCompare(b.task_queue)),
    );
  });

  it('works the same with KEEL_ARTIFACTS=s3://… on an S3-compatible server (MinIO)', async () => {
    const s3 = await testS3();
    // The S3 client takes credentials from the environment, as it does in production.
    process.env.AWS_ACCESS_KEY_ID = s3.accessKey;
    process.env.AWS_SECRET_ACCESS_KEY = s3.secretKey;
    const config = loadConfig({
      env: { KEEL_ARTIFACTS: `s3://${s3.bucket}/stack-check`, S3_ENDPOINT: s3.endpoint, AWS_REGION: s3.region },
      cwd: '/',
    });
    const s3Artifacts = openArtifactStore(config.artifacts);
    const queues = [uniqueTaskQueue('keel'), uniqueTaskQueue('keel-training')];
    const result: StackCheckResult = await withWorkers(queues, { db, artifacts: s3Artifacts }, () =>
      client.workflow.execute('stackCheck', { taskQueue: queues[0]!, workflowId: `s3-${queues[0]}`, args: [{ queues }] }),
    );
    for (const check of result.checks) {
      assert.match(check.artifact.uri, new RegExp(`^s3://${s3.bucket}/stack-check/sha256/`));
      const report = JSON.parse((await s3Artifacts.getBytes(check.artifact.sha256)).toString()) as Record<string, string>;
      assert.equal(report.taskQueue, check.taskQueue);
    }
  });

  it('fails at once with a non-retryable InvalidInput naming the field', async () => {
    const queue = uniqueTaskQueue('keel');
    await withWorkers([queue], { db, artifacts }, () =>
      expectInvalidInputFailure(
        client.workflow.execute('stackCheck', { taskQueue: queue, workflowId: `bad-input-${queue}`, args: [{ queues: [] }] }),
        'queues: name at least one task queue',
      ),
    );
  });

  it('rejects unknown fields instead of ignoring a typo', async () => {
    const queue = uniqueTaskQueue('keel');
    const error = await withWorkers([queue], { db, artifacts }, () =>
      client.workflow
        .execute('stackCheck', { taskQueue: queue, workflowId: `typo-${queue}`, args: [{ queuse: ['x'] }] })
        .then(() => assert.fail('the workflow should have failed'), (e: unknown) => e),
    );
    assert.ok(error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure);
    assert.match(error.cause.message, /queuse/);
  });

  it('a queue with no worker fails after the timeout given in the input', async () => {
    const queue = uniqueTaskQueue('keel');
    const orphanQueue = uniqueTaskQueue('nobody-polls');
    const error = await withWorkers([queue], { db, artifacts }, () =>
      client.workflow
        .execute('stackCheck', {
          taskQueue: queue,
          workflowId: `orphan-${queue}`,
          args: [{ queues: [queue, orphanQueue], timeoutSeconds: 2 }],
        })
        .then(() => assert.fail('the workflow should have failed'), (e: unknown) => e),
    );
    assert.ok(error instanceof WorkflowFailedError);
    assert.match(String((error.cause?.cause as Error | undefined)?.message ?? error.cause?.message), /timeout|timed out/i);
  });

  it('passes while the training worker\'s one activity slot is busy (a training resumed after a crash)', async () => {
    const light = uniqueTaskQueue('keel');
    const heavy = `${light}-training`;
    const dir = tempDir('keel-stack-check-busy-');
    const started = path.join(dir, 'started');
    const release = path.join(dir, 'release');
    await writeTable(path.join(dir, 'train.csv'), syntheticChurnTable({ rows: 400, seed: 5 }));
    // The trainer holds the only slot of the keel-training worker until the test releases it.
    const hold = `require('node:fs').writeFileSync(${JSON.stringify(started)}, ''); setInterval(() => { if (require('node:fs').existsSync(${JSON.stringify(release)})) process.exit(3); }, 100);`;
    const { address, namespace } = await testTemporal();
    const connection = await NativeConnection.connect({ address });
    const bundle = await workflowBundle();
    // The holding trainer is a `node -e` program: this worker's operator allows node.
    const config = testWorkerConfig();
    const deps = { db, artifacts, worker: { ...config, trainerCommands: [...config.trainerCommands, 'node'] } };
    const workers = [
      await createKeelWorker({ connection, namespace, taskQueue: light, workflowBundle: bundle, deps }),
      await createKeelWorker({ connection, namespace, taskQueue: heavy, workflowBundle: bundle, deps, heavy: true }),
    ];
    const workflowId = `stack-check-busy-${light}`;
    const scenario = async () => {
      const training = await client.workflow.start('trainingPipeline', {
        taskQueue: light,
        workflowId: `busy-training-${light}`,
        args: [{ model: 'busy', data: { uri: `file://${path.join(dir, 'train.csv')}` }, label: 'churned', entityKeys: ['customer_id'], cvFolds: 0, trainer: { kind: 'command', command: [process.execPath, '-e', hold], timeoutSeconds: 300 } }],
      });
      try {
        const ended = training.result().then(
          () => 'completed',
          (error: Error) => `failed: ${error.message}`,
        );
        const deadline = Date.now() + 180_000;
        while (!existsSync(started)) {
          const outcome = await Promise.race([ended, new Promise((r) => setTimeout(r, 200))]);
          if (typeof outcome === 'string') assert.fail(`the training ended before its trainer started (${outcome})`);
          assert.ok(Date.now() < deadline, 'the trainer did not start within 3 minutes');
        }
        return await client.workflow.execute('stackCheck', { taskQueue: light, workflowId, args: [{ queues: [light, heavy], timeoutSeconds: 20 }] });
      } finally {
        writeFileSync(release, '');
        await training.result().catch(() => undefined);
      }
    };
    try {
      const run = workers.reduce<() => Promise<StackCheckResult>>((inner, worker) => () => worker.runUntil(inner()), scenario);
      const result = await run();
      assert.deepEqual(result.checks.map((c) => c.taskQueue), [light, heavy]);
      const { rows } = await db.query<{ task_queue: string }>('SELECT task_queue FROM stack_checks WHERE workflow_id = $1 ORDER BY task_queue', [workflowId]);
      assert.deepEqual(rows.map((r) => r.task_queue), [light, heavy].sort());
    } finally {
      await connection.close();
    }
  });

  it('replays the committed history of an earlier run', async () => {
    const history = historyFromJSON(JSON.parse(readFileSync(path.join(REPLAY_DIR, 'stack-check.json'), 'utf8')));
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, 'stack-check-replay');
  });

  it('replay notices a workflow change that alters history', async () => {
    const history = historyFromJSON(JSON.parse(readFileSync(path.join(REPLAY_DIR, 'stack-check.json'), 'utf8')));
    // Drop the first activity's completion, as if the code had scheduled a different command.
    const events = history.events!.filter((e) => !e.activityTaskScheduledEventAttributes);
    await assert.rejects(
      Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, { events }, 'stack-check-replay'),
      (error: unknown) => error instanceof Error && error.name === 'ReplayError' && /History is out of order/.test(error.message),
    );
  });
});
