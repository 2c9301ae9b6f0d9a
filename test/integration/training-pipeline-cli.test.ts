/**
 * The training pipeline as users drive it from outside: `keel train` (JSON result, reproduce,
 * exit codes), a team's Python trainer through the `command` kind, and a training worker killed
 * in the middle of a fit.
 */
import { runKeel } from '../helpers/keel-cli.js';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { TrainingPipelineResult } from '../../lib/schemas/training-pipeline-result.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { writeTable } from '../../stores/datasets.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { getModelVersion, listVersions } from '../../stores/registry.js';
import { REPO_ROOT, freshDatabase, testDatabaseUrl, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { syntheticChurnTable } from '../helpers/training-data.js';
import { testClient, withWorkers } from '../helpers/workers.js';

const KEEL = path.join(REPO_ROOT, 'bin', 'keel.js');
const SYSTEM_PYTHON = '/usr/bin/python3';
const pythonReady = spawnSync(SYSTEM_PYTHON, ['-c', 'import sklearn, onnx']).status === 0;

describe('keel train, the command trainer, and a training worker crash', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let artifacts: FsArtifactStore;
  let client: Client;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const queue = uniqueTaskQueue('keel');
  const trainingQueue = `${queue}-training`;

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    dir = tempDir('keel-train-cli-');
    artifacts = new FsArtifactStore(path.join(dir, 'artifacts'));
    client = await testClient();
    const temporal = await testTemporal();
    // KEEL_DATA_ROOTS: the worker process started below reads the test's files.
    env = { ...process.env, TEMPORAL_ADDRESS: temporal.address, DATABASE_URL: database.url, KEEL_ARTIFACTS: `file://${path.join(dir, 'artifacts')}`, KEEL_DATA_ROOTS: dir };
    await writeTable(path.join(dir, 'train.csv'), syntheticChurnTable({ rows: 3000, seed: 11 }));
    await writeTable(path.join(dir, 'test.csv'), syntheticChurnTable({ rows: 1000, seed: 12 }));
  });
  after(async () => {
    await db?.end();
    await client?.connection.close();
    await database?.drop();
  });

  const keel = (args: string[]) => runKeel(args, env);

  it('keel train that.json --json waits and prints the result; --reproduce gives a bundle with the same sha256, so the same version', async () => {
    const config = path.join(dir, 'that.json');
    await writeFile(config, JSON.stringify({
      model: 'churn_csv',
      data: { uri: `file://${path.join(dir, 'train.csv')}`, holdoutUri: `file://${path.join(dir, 'test.csv')}` },
      label: 'churned',
      trainer: { kind: 'gbdt' },
    }));
    const { first, again } = await withWorkers([queue, trainingQueue], { db, artifacts }, async () => {
      const first = await keel(['train', config, '--json', '--task-queue', queue]);
      assert.equal(first.code, 0, first.stderr);
      const again = await keel(['train', '--reproduce', 'churn_csv@1', '--json', '--task-queue', queue]);
      assert.equal(again.code, 0, again.stderr);
      return { first, again };
    });
    const result = JSON.parse(first.stdout) as TrainingPipelineResult;
    assert.equal(result.registered, true);
    assert.equal(result.version, 1);
    assert.ok(result.metrics.test.auc > 0.7);
    assert.equal(result.metrics.cv?.folds, 5);
    assert.ok(Array.isArray(result.gates) && result.gates.length >= 3);
    assert.match(result.workflowId, /^train-churn_csv-[0-9a-f]{16}$/);
    assert.match(first.stderr, /trainModel/, 'every step is shown on stderr');
    // customer_id is a column like any other in plain files: it is a feature unless entityKeys says otherwise
    assert.ok(result.features.includes('customer_id'));

    const reproduced = JSON.parse(again.stdout) as TrainingPipelineResult;
    assert.notEqual(reproduced.workflowId, result.workflowId);
    assert.equal(reproduced.dataHash, result.dataHash);
    assert.equal(reproduced.bundle?.sha256, result.bundle?.sha256, 'same bundle from the same lineage');
    // registration is idempotent per bundle: the reproduction answers the version it reproduced
    assert.equal(reproduced.version, 1);
    const v1 = await getModelVersion(db, 'churn_csv', 1);
    assert.equal(v1.bundleSha256, result.bundle?.sha256);
    assert.equal(v1.trainingWorkflowId, result.workflowId);
  });

  it('keel models and keel lineage show versions and lineage; bad config exits 2 with the field named', async () => {
    const models = await keel(['models', '--json']);
    assert.equal(models.code, 0, models.stderr);
    assert.equal((JSON.parse(models.stdout) as Array<{ name: string; versionCount: number }>).find((m) => m.name === 'churn_csv')?.versionCount, 1);
    const lineage = await keel(['lineage', 'churn_csv@candidate', '--json']);
    assert.equal(lineage.code, 0, lineage.stderr);
    const shown = JSON.parse(lineage.stdout) as { version: number; lineage: { workflowId: string; dataset: { sha256: string }; trainer: { kind: string }; seed: number; requestedBy: string } };
    assert.equal(shown.version, 1);
    assert.equal(shown.lineage.trainer.kind, 'gbdt');
    assert.equal(shown.lineage.seed, 42);
    assert.match(shown.lineage.requestedBy, /^cli:/);

    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, JSON.stringify({ trainer: { kind: 'gbdt', params: {} }, cvFolds: 1 }));
    const refused = await keel(['train', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /cvFolds/);
    const nullConfig = path.join(dir, 'null.json');
    await writeFile(nullConfig, 'null');
    const refusedNull = await keel(['train', nullConfig]);
    assert.equal(refusedNull.code, 2, refusedNull.stderr);
    assert.match(refusedNull.stderr, /expected object, received null/);
    const unknownKey = path.join(dir, 'unknown-key.json');
    await writeFile(unknownKey, JSON.stringify({ trainer: { kind: 'gbdt', maxIter: 3 } }));
    const refusedKey = await keel(['train', unknownKey]);
    assert.equal(refusedKey.code, 2);
    assert.match(refusedKey.stderr, /trainer\.maxIter: unknown key/);
    const missing = await keel(['lineage', 'churn_csv@9']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no version 9/);
    const schema = await keel(['train', '--schema']);
    assert.equal(schema.code, 0);
    assert.ok((JSON.parse(schema.stdout) as { properties: Record<string, unknown> }).properties.trainer);
  });

  it('the command trainer runs the Python example and Keel evaluates its ONNX like any model', { skip: !pythonReady && `${SYSTEM_PYTHON} lacks scikit-learn or onnx (.ci/run installs python3-sklearn and python3-onnx)` }, async () => {
    const result = (await withWorkers([queue, trainingQueue], { db, artifacts }, () =>
      client.workflow.execute('trainingPipeline', {
        taskQueue: queue,
        workflowId: `train-python-${Date.now()}`,
        args: [{
          model: 'churn_py',
          data: { uri: `file://${path.join(dir, 'train.csv')}`, holdoutUri: `file://${path.join(dir, 'test.csv')}` },
          features: ['tenure_months', 'monthly_spend', 'support_tickets'],
          trainer: { kind: 'command', command: [SYSTEM_PYTHON, 'examples/python-trainer/train.py'], params: { C: 1.0 } },
          cvFolds: 2,
        }],
      }),
    )) as TrainingPipelineResult;
    assert.equal(result.registered, true, JSON.stringify(result.gates));
    assert.equal(result.trainer, 'command');
    assert.ok(result.metrics.test.auc > 0.7, `AUC ${result.metrics.test.auc}`);
    assert.equal(result.metrics.cv?.folds, 2);
    const version = await getModelVersion(db, 'churn_py', 'candidate');
    assert.deepEqual((version.signature as { inputs: Array<{ features: string[] }> }).inputs[0]!.features, ['tenure_months', 'monthly_spend', 'support_tickets']);
  });

  it('a training worker killed mid-fit: a new worker resumes from the checkpoint and one version is registered', async () => {
    await writeTable(path.join(dir, 'big.csv'), syntheticChurnTable({ rows: 100_000, seed: 21 }));
    const startWorker = () => spawn(process.execPath, [KEEL, 'worker', '--queue', trainingQueue], { env, cwd: REPO_ROOT, stdio: 'ignore', detached: true });
    const killGroup = (child: ChildProcess) => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    let second: ChildProcess | undefined;
    const first = startWorker();
    try {
      const result = (await withWorkers([queue], { db, artifacts }, async () => {
        const handle = await client.workflow.start('trainingPipeline', {
          taskQueue: queue,
          workflowId: `train-crash-${Date.now()}`,
          args: [{
            model: 'churn_crash',
            data: { uri: `file://${path.join(dir, 'big.csv')}` },
            trainer: { kind: 'gbdt', params: { maxIter: 3000, earlyStopping: false, learningRate: 0.005 } },
            cvFolds: 0,
            heartbeatTimeoutSeconds: 4,
          }],
        });
        // kill as soon as the server holds a heartbeat that names a checkpoint
        const deadline = Date.now() + 120_000;
        for (;;) {
          const pending = (await handle.describe()).raw.pendingActivities ?? [];
          const details = pending.find((a) => a.activityType?.name === 'trainModel')?.heartbeatDetails?.payloads?.[0]?.data;
          if (details && (JSON.parse(Buffer.from(details).toString()) as { checkpoint?: string }).checkpoint) break;
          if (Date.now() > deadline) assert.fail('no checkpoint heartbeat within 2 minutes');
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        killGroup(first);
        second = startWorker();
        return handle.result();
      })) as TrainingPipelineResult;
      assert.equal(result.registered, true, JSON.stringify(result.gates));
      assert.equal(result.training.trees, 3000);
      assert.ok((result.training.resumedFromTrees ?? 0) > 0, `resumed from ${result.training.resumedFromTrees} trees`);
      assert.equal((await listVersions(db, 'churn_crash')).length, 1);
      const history = await client.workflow.getHandle(result.workflowId).fetchHistory();
      const trainAttempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
      // a later attempt finished it (under load, attempts on the new worker may also miss a heartbeat and be retried)
      assert.ok(trainAttempts.some((a) => (a ?? 0) >= 2), `a second attempt ran: ${trainAttempts}`);
    } finally {
      killGroup(first);
      if (second) killGroup(second);
    }
  });
});
