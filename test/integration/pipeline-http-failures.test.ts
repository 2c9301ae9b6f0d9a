/**
 * `POST /v1/pipelines/train` on the real `keel gateway` process with real workers and Temporal:
 * the calling key's name is the run's `requestedBy`; a failed run (`?wait=true`) answers its
 * failure in value-free parts (type, step, kind of cause, workflow id), never the data values the
 * full message quotes; `keel train` prints the real cause of a failure (the CLI user is an
 * operator) instead of "Workflow execution failed".
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openArtifactStore, type ArtifactStore } from '../../stores/artifacts/index.js';
import { createApiKey } from '../../stores/api-keys.js';
import { writeTable } from '../../stores/datasets.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { trainingPipelineInputSchema } from '../../lib/schemas/training-pipeline.js';
import { ORCHESTRATION_QUEUE } from '../../lib/task-queues.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { runKeel } from '../helpers/keel-cli.js';
import { freshDatabase, testDatabaseUrl, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { syntheticChurnTable } from '../helpers/training-data.js';
import { withWorkers } from '../helpers/workers.js';

/** A value only the data holds: it must never reach an HTTP caller. */
const SECRET_LABEL = '424242';

describe('training over HTTP: requestedBy and failures without data values', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let dir: string;
  let artifacts: ArtifactStore;
  let gateway: GatewayProcess;
  let env: NodeJS.ProcessEnv;
  let admin: string;
  let viewer: string;
  // The gateway starts runs on the orchestration queue; the heavy steps go to a queue of this test's own.
  const trainingQueue = uniqueTaskQueue('auth-training');
  const queues = [ORCHESTRATION_QUEUE, trainingQueue];

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    dir = tempDir('keel-pipeline-http-');
    artifacts = openArtifactStore({ uri: `file://${path.join(dir, 'artifacts')}`, region: 'us-east-1' });
    await writeTable(path.join(dir, 'train.csv'), syntheticChurnTable({ rows: 1500, seed: 3 }));
    // The same rows with a label value no binary label has, in a few rows.
    const lines = (await readFile(path.join(dir, 'train.csv'), 'utf8')).split('\n');
    for (const i of [2, 5, 9]) lines[i] = lines[i]!.replace(/,[01]$/, `,${SECRET_LABEL}`);
    await writeFile(path.join(dir, 'bad-labels.csv'), lines.join('\n'));
    admin = (await createApiKey(db, { name: 'ci-trainer', roles: ['admin'], createdBy: 'test' })).token;
    viewer = (await createApiKey(db, { name: 'dashboards', roles: ['viewer'], createdBy: 'test' })).token;
    const temporal = await testTemporal();
    env = { ...process.env, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace, DATABASE_URL: database.url, KEEL_ARTIFACTS: `file://${path.join(dir, 'artifacts')}`, KEEL_DATA_ROOTS: dir };
    // The gateway and the CLI fingerprint the data before starting a run: the workers' data rules apply to them too.
    gateway = await startGatewayProcess({
      databaseUrl: database.url,
      artifactsDir: path.join(dir, 'artifacts'),
      env: { KEEL_AUTH: 'keys', TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace, KEEL_DATA_ROOTS: dir },
    });
  });
  after(async () => {
    await gateway?.stop();
    await db?.end();
    await database?.drop();
  });

  const config = (model: string, file: string) => ({
    model,
    data: { uri: `file://${path.join(dir, file)}` },
    label: 'churned',
    trainer: { kind: 'logreg' },
    cvFolds: 0,
    trainingTaskQueue: trainingQueue,
  });
  const train = (body: unknown, wait = true) =>
    fetch(`${gateway.url}/v1/pipelines/train${wait ? '?wait=true' : ''}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('records the calling key name as requestedBy, and refuses a requestedBy from the caller', async () => {
    const chosen = await train({ ...config('by_key', 'train.csv'), requestedBy: 'someone-else' });
    const refused = (await chosen.json()) as { error: { field: string } };
    assert.equal(chosen.status, 422, JSON.stringify(refused));
    assert.equal(refused.error.field, 'requestedBy');

    const result = await withWorkers(queues, { db, artifacts }, async () => {
      const res = await train(config('by_key', 'train.csv'));
      return { status: res.status, body: (await res.json()) as { registered: boolean; version: number } };
    });
    assert.equal(result.status, 200, JSON.stringify(result.body));
    const version = await fetch(`${gateway.url}/v1/models/by_key/versions/${result.body.version}`, { headers: { authorization: `Bearer ${viewer}` } });
    const lineage = ((await version.json()) as { lineage: { requestedBy: string } }).lineage;
    assert.equal(lineage.requestedBy, 'api:ci-trainer');
  });

  it('refuses data outside KEEL_DATA_ROOTS and tables in system schemas before reading them, over HTTP and in keel train', async () => {
    const outside = path.join(path.dirname(dir), `outside-${path.basename(dir)}.csv`);
    await writeFile(outside, await readFile(path.join(dir, 'train.csv'), 'utf8'));
    for (const data of [{ uri: `file://${outside}` }, { uri: `file://${dir}/../${path.basename(outside)}` }, { table: 'pg_catalog.pg_authid' }]) {
      const res = await train({ ...config('outside', 'train.csv'), data });
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, 422, JSON.stringify(body));
      assert.match(body.error.message, /KEEL_DATA_ROOTS|KEEL_DATA_SCHEMAS/);
    }
    const configFile = path.join(dir, 'outside.json');
    await writeFile(configFile, JSON.stringify({ ...config('outside', 'train.csv'), data: { uri: `file://${outside}` } }));
    const cli = await runKeel(['train', configFile], env);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, /KEEL_DATA_ROOTS/);
  });

  it('answers a run that failed validation with its type, step and workflow id, never the values the message quotes; keel train prints them', async () => {
    const configFile = path.join(dir, 'bad-labels.json');
    await writeFile(configFile, JSON.stringify(config('bad_labels', 'bad-labels.csv')));
    const { http, cli } = await withWorkers(queues, { db, artifacts }, async () => {
      const res = await train(config('bad_labels', 'bad-labels.csv'));
      const http = { status: res.status, text: await res.text() };
      return { http, cli: await runKeel(['train', configFile], env) };
    });
    assert.equal(http.status, 422, http.text);
    assert.ok(!http.text.includes(SECRET_LABEL), `the answer quotes the data: ${http.text}`);
    const body = JSON.parse(http.text) as { error: { code: string; message: string; field?: string }; workflowId: string; step: string };
    assert.equal(body.error.code, 'InvalidInput');
    assert.equal(body.error.field, 'churned');
    assert.equal(body.step, 'validateData');
    assert.match(body.error.message, /label_binary \(churned\)/, 'the failed expectation is named');
    assert.match(body.workflowId, /^train-bad_labels-[0-9a-f]{16}$/);
    assert.match(body.error.message, new RegExp(`validateData.*${body.workflowId}`));

    assert.equal(cli.code, 2, cli.stderr);
    assert.match(cli.stderr, new RegExp(`label.*${SECRET_LABEL}`), 'the operator sees the full message');
  });

  it('answers a run that failed on its infrastructure with 503 naming the step and the kind of cause; keel train prints the real cause', async () => {
    // Workers whose artifact store does not answer: every attempt of the first step that writes fails.
    const deadStore = openArtifactStore({ uri: 's3://keel-test/artifacts', s3Endpoint: 'http://127.0.0.1:1', region: 'us-east-1' });
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
    // A short retry window where the pipeline input has one (infrastructure failures are retried for minutes by default).
    const shortRetry = 'retry' in trainingPipelineInputSchema.shape ? { retry: { infrastructureTimeoutSeconds: 5, maximumIntervalSeconds: 2 } } : {};
    const infra = { ...config('infra', 'train.csv'), ...shortRetry };
    const configFile = path.join(dir, 'infra.json');
    await writeFile(configFile, JSON.stringify(infra));
    const { http, cli } = await withWorkers(queues, { db, artifacts: deadStore }, async () => {
      // Both wait on the same run: the CLI joins the one the gateway started.
      const started = train(infra).then(async (res) => ({ status: res.status, text: await res.text() }));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const [http, cli] = await Promise.all([started, runKeel(['train', configFile], env)]);
      return { http, cli };
    });
    assert.equal(http.status, 503, http.text);
    const body = JSON.parse(http.text) as { error: { code: string; message: string }; step: string; workflowId: string };
    assert.equal(body.error.code, 'Unavailable');
    assert.equal(body.step, 'buildTrainingSet');
    assert.match(body.error.message, /at step buildTrainingSet: .*unreachable \(connection refused\)/);
    assert.ok(!/127\.0\.0\.1:1\b/.test(http.text), 'the answer does not quote the error text');

    assert.equal(cli.code, 1, cli.stderr);
    assert.doesNotMatch(cli.stderr, /Workflow execution failed/);
    assert.match(cli.stderr, /training failed at step buildTrainingSet: .*unreachable \(connection refused\): .*ECONNREFUSED/);
    assert.match(cli.stderr, new RegExp(body.workflowId));
  });
});
