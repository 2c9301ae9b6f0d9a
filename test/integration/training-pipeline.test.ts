import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createGatewayApp } from '../../api/app.js';
import { churnOnDemandFeatures } from '../../examples/churn/on-demand.js';
import { writeTable } from '../../stores/datasets.js';
import type { TrainingPipelineResult } from '../../lib/schemas/training-pipeline-result.js';
import { progressQuery } from '../../lib/schemas/training-pipeline-result.js';
import type { TrainingPipelineInput } from '../../lib/schemas/training-pipeline.js';
import { trainingPipelineInputSchema } from '../../lib/schemas/training-pipeline.js';
import { FsArtifactStore, openArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { getModelVersion, listVersions, setAlias } from '../../stores/registry.js';
import { startTrainingPipeline } from '../../stores/training-runs.js';
import { freshDatabase, testDatabaseUrl, testS3, uniqueTaskQueue } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { syntheticChurnTable } from '../helpers/training-data.js';
import { testClient, withWorkers } from '../helpers/workers.js';
import { expectInvalidInputFailure } from '../helpers/workflow-failures.js';

describe('trainingPipeline workflow (real Temporal, Postgres, artifact store)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let artifacts: FsArtifactStore;
  let client: Client;
  const dir = tempDir('keel-pipeline-');
  const queue = uniqueTaskQueue('keel');
  const queues = [queue, `${queue}-training`];
  const fileUri = (name: string) => `file://${path.join(dir, name)}`;

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    artifacts = new FsArtifactStore(path.join(dir, 'artifacts'));
    client = await testClient();
    await writeTable(path.join(dir, 'train.csv'), syntheticChurnTable({ rows: 3000, seed: 1, missing: 0.05 }));
    await writeTable(path.join(dir, 'test.csv'), syntheticChurnTable({ rows: 1000, seed: 2, missing: 0.05 }));
    await writeTable(path.join(dir, 'complete.csv'), syntheticChurnTable({ rows: 2000, seed: 3 }));
    await writeTable(path.join(dir, 'rare.csv'), syntheticChurnTable({ rows: 2000, seed: 4, bias: -12 }));
    await writeTable(path.join(dir, 'empty.csv'), syntheticChurnTable({ rows: 0 }));
    // Training sets this small are Parquet artifacts under 4 KiB: they must read back and reach validation.
    await writeTable(path.join(dir, 'one-row.csv'), syntheticChurnTable({ rows: 1 }));
    await writeTable(path.join(dir, 'same-label.csv'), syntheticChurnTable({ rows: 30, bias: -100 }));
  });
  after(async () => {
    await db?.end();
    await client?.connection.close();
    await database?.drop();
  });

  const run = (input: TrainingPipelineInput, workflowId = `train-test-${Math.random().toString(36).slice(2)}`) =>
    withWorkers(queues, { db, artifacts, onDemand: churnOnDemandFeatures }, () =>
      client.workflow.execute('trainingPipeline', { taskQueue: queue, workflowId, args: [input] }),
    ) as Promise<TrainingPipelineResult>;

  const csvInput = (extra: Partial<TrainingPipelineInput> = {}): TrainingPipelineInput => ({
    model: 'churn_csv',
    data: { uri: fileUri('train.csv'), holdoutUri: fileUri('test.csv') },
    label: 'churned',
    entityKeys: ['customer_id'],
    trainer: { kind: 'gbdt', params: { maxIter: 30 } },
    cvFolds: 3,
    ...extra,
  });

  it('trains the two-CSV config, registers version 1 with alias candidate, and records the bundle and lineage', async () => {
    const result = await run(csvInput());
    assert.equal(result.registered, true, JSON.stringify(result.gates));
    assert.equal(result.version, 1);
    assert.deepEqual(result.aliases, ['candidate']);
    assert.equal(result.split.kind, 'holdout');
    assert.equal(result.split.testRows, 1000);
    assert.deepEqual(result.features, ['tenure_months', 'monthly_spend', 'support_tickets', 'plan']);
    assert.ok(result.metrics.test.auc > 0.7, `test AUC ${result.metrics.test.auc}`);
    assert.equal(result.metrics.cv?.folds, 3);
    assert.equal(result.metrics.champion, null);
    assert.ok(result.gates.every((g) => g.passed));
    assert.equal(result.featureImportance?.length, 4);

    const version = await getModelVersion(db, 'churn_csv', 'candidate');
    assert.equal(version.version, 1);
    assert.equal(version.bundleSha256, result.bundle?.sha256);
    assert.equal(version.dataHash, result.dataHash);
    const bundle = JSON.parse((await artifacts.getBytes(version.bundleSha256)).toString()) as { files: Record<string, { sha256: string }> };
    assert.deepEqual(Object.keys(bundle.files).sort(), ['feature_spec.json', 'lineage.json', 'metrics.json', 'model.onnx', 'signature.json']);
    const lineage = version.lineage as Record<string, unknown>;
    assert.equal(lineage.workflowId, result.workflowId);
    assert.equal(lineage.runId, result.runId);
    assert.equal((lineage.dataset as { sha256: string }).sha256, result.dataHash);
    assert.equal((lineage.source as { kind: string }).kind, 'file');
    assert.match(String(lineage.codeVersion), /^([0-9a-f]{40}|unknown)$/);
    // the profile is the drift baseline: one entry per feature and the label
    const profile = JSON.parse((await artifacts.getBytes(result.profile.sha256)).toString()) as { columns: Array<{ name: string }> };
    assert.deepEqual(profile.columns.map((c) => c.name), [...result.features, 'churned']);
  });

  it('{} trains the churn example (labels joined point-in-time with its feature views) and registers it', async () => {
    const result = await run({});
    assert.equal(result.model, 'churn');
    assert.equal(result.registered, true, JSON.stringify(result.gates));
    assert.equal(result.dataset.rows, 20_000);
    assert.ok(result.metrics.test.auc > 0.75, `test AUC ${result.metrics.test.auc}`);
    assert.equal(result.metrics.cv?.folds, 5);
    assert.ok(!result.features.includes('customer_id') && !result.features.includes('event_timestamp'));
    const version = await getModelVersion(db, 'churn', result.version!);
    const lineage = version.lineage as { source: { kind: string; featureService: string; featureViews: Array<{ name: string; version: string }> } };
    assert.equal(lineage.source.kind, 'features');
    assert.equal(lineage.source.featureService, 'churn_model');
    assert.deepEqual(lineage.source.featureViews.map((v) => v.name).sort(), ['customer_profile', 'order_activity', 'support_activity']);
    assert.ok(lineage.source.featureViews.every((v) => /^[0-9a-f]{16}$/.test(v.version)));
  });

  it('computes on-demand features on the joined rows and records their code hashes in the feature spec', async () => {
    const result = await run({ model: 'churn_od', data: { onDemand: ['spend_per_order_30d', 'is_new_customer'] }, cvFolds: 0 });
    assert.equal(result.registered, true, JSON.stringify(result.gates));
    assert.ok(result.features.includes('spend_per_order_30d') && result.features.includes('is_new_customer'));
    const spec = (await getModelVersion(db, 'churn_od', 1)).featureSpec as { onDemand: Array<{ name: string; inputs: string[]; codeHash: string }>; featureViews: Array<{ name: string }> };
    assert.deepEqual(spec.onDemand.map((f) => [f.name, f.inputs, f.codeHash]), churnOnDemandFeatures.map((f) => [f.name, [...f.inputs], f.codeHash]));
    assert.equal(spec.featureViews.length, 3);
    const unknown = await run({ model: 'churn_od', data: { onDemand: ['no_such_fn'] } }).then(() => assert.fail('should fail'), (e: unknown) => e);
    assert.ok(unknown instanceof WorkflowFailedError && unknown.cause instanceof ApplicationFailure);
    assert.match(unknown.cause.message, /unknown on-demand feature no_such_fn \(this worker has: spend_per_order_30d, is_new_customer\)/);
    // the failure names the step and the field, for the CLI and the API to show
    assert.deepEqual(unknown.cause.details, [{ step: 'buildTrainingSet', field: 'data.onDemand' }]);
  });

  it('the HTTP API starts a training (422 naming a bad field) and lists the registry', async () => {
    const app = createGatewayApp({ readiness: [], registry: { db, temporal: async () => client, taskQueue: queue } });
    const bad = await app.request('/v1/pipelines/train', { method: 'POST', body: JSON.stringify({ trainer: { kind: 'svm' } }) });
    assert.equal(bad.status, 422);
    assert.equal(((await bad.json()) as { error: { field: string } }).error.field, 'trainer.kind');
    const notJson = await app.request('/v1/pipelines/train', { method: 'POST', body: '{' });
    assert.equal(notJson.status, 400);
    const started = await withWorkers(queues, { db, artifacts }, async () => {
      const response = await app.request('/v1/pipelines/train?wait=true', { method: 'POST', body: JSON.stringify(csvInput({ model: 'churn_api', cvFolds: 0 })) });
      return { status: response.status, body: (await response.json()) as TrainingPipelineResult };
    });
    assert.equal(started.status, 200);
    assert.equal(started.body.registered, true);
    const list = (await (await app.request('/v1/models')).json()) as { models: Array<{ name: string }> };
    assert.ok(list.models.some((m) => m.name === 'churn_api'));
    const detail = await app.request('/v1/models/churn_api/versions/candidate');
    assert.equal(detail.status, 200);
    const body = (await detail.json()) as { version: number; lineage: { workflowId: string; requestedBy: string } };
    assert.equal(body.version, 1);
    assert.equal(body.lineage.workflowId, started.body.workflowId);
    assert.equal(body.lineage.requestedBy, 'api');
    const missing = await app.request('/v1/models/no_such_model');
    assert.equal(missing.status, 404);
  });

  it('reads s3:// CSV files and stores the bundle in an S3 artifact store (MinIO)', async () => {
    const s3 = await testS3();
    // The S3 clients take credentials from the environment, as in production.
    process.env.AWS_ACCESS_KEY_ID = s3.accessKey;
    process.env.AWS_SECRET_ACCESS_KEY = s3.secretKey;
    const upload = new S3Client({ region: s3.region, endpoint: s3.endpoint, forcePathStyle: true });
    for (const name of ['train.csv', 'test.csv']) {
      await upload.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `pipeline-data/${name}`, Body: await readFile(path.join(dir, name)) }));
    }
    upload.destroy();
    const s3Artifacts = openArtifactStore({ uri: `s3://${s3.bucket}/pipeline-artifacts`, s3Endpoint: s3.endpoint, region: s3.region });
    const deps = { db, artifacts: s3Artifacts, s3: { endpoint: s3.endpoint, region: s3.region } };
    const execute = (data: TrainingPipelineInput['data'], id: string) =>
      withWorkers(queues, deps, () =>
        client.workflow.execute('trainingPipeline', { taskQueue: queue, workflowId: id, args: [csvInput({ model: 'churn_s3', data, cvFolds: 2 })] }),
      ) as Promise<TrainingPipelineResult>;
    const result = await execute({ uri: `s3://${s3.bucket}/pipeline-data/train.csv`, holdoutUri: `s3://${s3.bucket}/pipeline-data/test.csv` }, `train-s3-${Date.now()}`);
    assert.equal(result.registered, true, JSON.stringify(result.gates));
    assert.match(result.bundle!.uri, new RegExp(`^s3://${s3.bucket}/pipeline-artifacts/sha256/`));
    const bundle = JSON.parse((await s3Artifacts.getBytes(result.bundle!.sha256)).toString()) as { files: Record<string, unknown> };
    assert.ok(bundle.files['model.onnx']);
    await expectInvalidInputFailure(execute({ uri: `s3://${s3.bucket}/pipeline-data/nope.csv` }, `train-s3-missing-${Date.now()}`), /nope\.csv: no such object/);
  });

  it('trains on a Postgres table and records its fingerprint as the source', async () => {
    await db.query(`CREATE TABLE public.training_rows AS
      SELECT g AS customer_id, (g % 48)::float8 AS tenure_months, (g % 7)::int AS support_tickets,
             CASE WHEN g % 3 = 0 THEN 'basic' ELSE 'pro' END AS plan,
             ((g % 7) >= 4 OR (g % 48) < 6 OR g % 11 = 0) AS churned
        FROM generate_series(1, 1500) g`);
    const result = await run({ model: 'churn_table', data: { table: 'public.training_rows' }, entityKeys: ['customer_id'], cvFolds: 2, gates: { maxCvStd: null, maxCvTestGap: null } });
    assert.equal(result.registered, true, JSON.stringify(result.gates));
    assert.deepEqual(result.features, ['tenure_months', 'support_tickets', 'plan']);
    const lineage = (await getModelVersion(db, 'churn_table', 1)).lineage as { source: { kind: string; table: string; fingerprint: string } };
    assert.equal(lineage.source.kind, 'table');
    assert.equal(lineage.source.table, 'public.training_rows');
    assert.match(lineage.source.fingerprint, /^1500:/);
  });

  it('joins a running identical training instead of starting a second one', async () => {
    const config = trainingPipelineInputSchema.parse(csvInput({ model: 'churn_dup', cvFolds: 0 }));
    const [a, b] = await withWorkers(queues, { db, artifacts }, async () => {
      const first = await startTrainingPipeline(client, db, config, { taskQueue: queue });
      const second = await startTrainingPipeline(client, db, config, { taskQueue: queue });
      await first.handle.result();
      return [first, second];
    });
    assert.match(a.workflowId, /^train-churn_dup-[0-9a-f]{16}$/);
    assert.equal(b.workflowId, a.workflowId);
    assert.equal(b.runId, a.runId);
    assert.equal((await listVersions(db, 'churn_dup')).length, 1);
  });

  it('training the same data and config twice in two workflows registers one version, and both results name it', async () => {
    const input = csvInput({ model: 'churn_twice', cvFolds: 0 });
    const first = await run(input, `train-twice-a-${Date.now()}`);
    const second = await run(input, `train-twice-b-${Date.now()}`);
    assert.equal(first.registered, true, JSON.stringify(first.gates));
    assert.equal(second.registered, true);
    assert.notEqual(second.workflowId, first.workflowId);
    assert.equal(second.bundle?.sha256, first.bundle?.sha256);
    assert.deepEqual([first.version, second.version], [1, 1]);
    assert.deepEqual(second.aliases, ['candidate']);
    assert.deepEqual((await listVersions(db, 'churn_twice')).map((v) => [v.version, v.trainingWorkflowId]), [[1, first.workflowId]]);
  });

  it('a failed gate completes with registered: false and the gate table, and registers nothing', async () => {
    const result = await run(csvInput({ model: 'churn_gate', gates: { minAuc: 0.99, thresholds: [{ metric: 'logLoss', threshold: 0.01 }] } }));
    assert.equal(result.registered, false);
    assert.equal(result.version, null);
    assert.deepEqual(result.failedGates.sort(), ['logLoss_threshold', 'min_auc']);
    const minAuc = result.gates.find((g) => g.gate === 'min_auc')!;
    assert.equal(minAuc.threshold, 0.99);
    assert.equal(minAuc.value, result.metrics.test.auc);
    assert.equal(minAuc.passed, false);
    await assert.rejects(listVersions(db, 'churn_gate'), /no model named churn_gate/);
  });

  it('compares with the champion on the same holdout and fails the must-beat gate when it is not better', async () => {
    await run(csvInput({ model: 'churn_champ', cvFolds: 0 }));
    await setAlias(db, 'churn_champ', 'champion', 1);
    // a much weaker model: logreg on one feature
    const result = await run(csvInput({ model: 'churn_champ', cvFolds: 0, trainer: { kind: 'logreg' }, features: ['monthly_spend'], validation: { impute: true } }));
    assert.equal(result.metrics.champion?.version, 1);
    assert.ok(result.metrics.champion?.metrics, 'champion scored');
    const gate = result.gates.find((g) => g.gate === 'champion_auc_gain')!;
    assert.equal(gate.baseline, result.metrics.champion.metrics.auc);
    assert.equal(gate.passed, false);
    assert.equal(result.registered, false);
  });

  it('trains logreg with a stratified split and time split from a single file', async () => {
    const stratified = await run({ model: 'churn_lr', data: { uri: fileUri('complete.csv') }, entityKeys: ['customer_id'], trainer: { kind: 'logreg', params: { C: 0.5 } }, cvFolds: 2 });
    assert.equal(stratified.registered, true, JSON.stringify(stratified.gates));
    assert.equal(stratified.split.testRows, 400);
    const timed = await run({ model: 'churn_lr', data: { uri: fileUri('complete.csv') }, entityKeys: ['customer_id'], trainer: { kind: 'logreg' }, split: { kind: 'time', testFraction: 0.25 }, cvFolds: 0 });
    assert.equal(timed.split.testRows, 500);
    assert.equal(timed.version, 2);
  });

  describe('bad input fails at once with a non-retryable InvalidInput naming the problem', () => {
    const cases: Array<[string, TrainingPipelineInput, RegExp]> = [
      ['a missing feature column', csvInput({ features: ['tenure_months', 'no_such_column'] }), /no_such_column/],
      ['a null feature with logreg and no imputation', csvInput({ trainer: { kind: 'logreg' } }), /no_nulls \(tenure_months\)/],
      ['an extreme label rate', { model: 'bad', data: { uri: fileUri('rare.csv') }, cvFolds: 0 }, /label_rate \(churned\)/],
      ['an empty dataset', { model: 'bad', data: { uri: fileUri('empty.csv') } }, /empty|min_rows/],
      ['a one-row dataset', { model: 'bad', data: { uri: fileUri('one-row.csv') }, entityKeys: ['customer_id'] }, /^validateData: .*min_rows/],
      ['a dataset whose labels are all the same', { model: 'bad', data: { uri: fileUri('same-label.csv') }, entityKeys: ['customer_id'], validation: { minRows: 10 } }, /^validateData: .*label_rate \(churned\)/],
      ['an unknown trainer', csvInput({ trainer: { kind: 'xgboost' } as never }), /trainer\.kind/],
      ['an unknown trainer parameter', csvInput({ trainer: { kind: 'gbdt', params: { maxDepthh: 3 } } }), /unknown gbdt parameter maxDepthh/],
      ['an unknown feature view', { model: 'bad', data: { example: null, entities: 'public.nothing', features: ['no_view:x'] } }, /no_view|nothing/],
      ['an unreadable file', csvInput({ data: { uri: fileUri('missing.csv') } }), /missing\.csv: no such file/],
      ['a wrong checksum', csvInput({ data: { uri: fileUri('train.csv'), sha256: '0'.repeat(64) } }), /sha256 is [0-9a-f]{64}, the input expects 0{64}/],
    ];
    for (const [name, input, message] of cases) {
      it(name, async () => {
        const workflowId = `train-bad-${Math.random().toString(36).slice(2)}`;
        await expectInvalidInputFailure(run(input, workflowId), message);
        // no retries burned: every activity ran exactly once
        const history = await client.workflow.getHandle(workflowId).fetchHistory();
        const attempts = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
        assert.ok(attempts.every((a) => a === 1), `attempts ${attempts}`);
      });
    }
    it('registered nothing', async () => {
      await assert.rejects(listVersions(db, 'bad'), /no model named bad/);
    });
  });

  it('answers the progress query with the current step and finishes at done', async () => {
    const workflowId = `train-progress-${Date.now()}`;
    const progress = await withWorkers(queues, { db, artifacts }, async () => {
      const handle = await client.workflow.start('trainingPipeline', { taskQueue: queue, workflowId, args: [csvInput({ model: 'churn_progress', cvFolds: 0 })] });
      await handle.result();
      return handle.query(progressQuery);
    });
    assert.equal(progress.step, 'done');
    assert.equal(progress.model, 'churn_progress');
    assert.deepEqual(
      progress.steps.map((s) => `${s.name}:${s.status}`),
      ['validateInput:done', 'buildTrainingSet:done', 'validateData:done', 'splitData:done', 'trainModel:done', 'evaluateModel:done', 'crossValidate:skipped', 'gates:done', 'registerModel:done'],
    );
    const described = await client.workflow.getHandle(workflowId).describe();
    assert.deepEqual(described.searchAttributes.KeelModel, ['churn_progress']);
    assert.deepEqual(described.searchAttributes.KeelStage, ['candidate']);
    assert.deepEqual(described.searchAttributes.KeelVersion, [1]);
  });
});
