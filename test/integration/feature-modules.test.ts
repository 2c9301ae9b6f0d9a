/**
 * A project's feature module as users ship it: a plain `.ts` file in a folder with no package.json,
 * declaring a feature view, a service and an on-demand feature. `keel features apply` takes it; the
 * real `keel worker` process started with `KEEL_FEATURE_MODULES` trains a model on it (engine
 * `auto` running DuckDB above `KEEL_DUCKDB_AUTO_MIN_ROWS`, the same training set as Postgres gives);
 * the real `keel gateway` process started with it serves that model, and one started without it
 * refuses to; a broken module stops either process at start with one line naming it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { generateChurn } from '../../examples/churn/generate.js';
import type { TrainingPipelineResult } from '../../lib/schemas/training-pipeline-result.js';
import { freePort } from '../../infra/local/ports.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { getModelVersion, setAlias } from '../../stores/registry.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { KEEL_BIN, runKeel } from '../helpers/keel-cli.js';
import { REPO_ROOT, freshDatabase, testDatabaseUrl, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { atExit, tempDir } from '../helpers/temp.js';
import { testClient } from '../helpers/workers.js';

/** Plain TypeScript, no import: the module contract of lib/features/modules.ts. */
const USER_MODULE = `type Row = Readonly<Record<string, number | string | boolean | null>>;

export const definitions = {
  entities: [{ name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' as const }] }],
  featureViews: [
    {
      name: 'order_activity',
      entity: 'customer',
      source: { table: 'churn.order_activity', eventTimestamp: 'event_timestamp', createdTimestamp: 'created_timestamp' },
      ttlSeconds: 14 * 86_400,
      features: [
        { name: 'orders_7d', type: 'int64' as const },
        { name: 'orders_30d', type: 'int64' as const },
        { name: 'spend_30d', type: 'float64' as const },
      ],
    },
  ],
  featureServices: [{ name: 'user_model', features: ['order_activity:orders_7d', 'order_activity:orders_30d', 'order_activity:spend_30d'] }],
};

export const onDemandFeatures = [
  {
    name: 'spend_per_order_user',
    inputs: ['spend_30d', 'orders_30d'],
    type: 'float64' as const,
    fn: ({ spend_30d, orders_30d }: Row): number | null =>
      typeof spend_30d === 'number' && typeof orders_30d === 'number' && orders_30d > 0 ? spend_30d / orders_30d : null,
  },
];
`;

interface ApplyJson {
  created: string[];
  onDemand: Array<{ name: string; codeHash: string }>;
}

type Lineage = { source: { kind: string; engine?: string; onDemand: Array<{ name: string; codeHash: string }> } };

describe('feature modules (KEEL_FEATURE_MODULES) in the CLI, workers and gateway; engine auto in the pipeline', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let client: Client;
  let dir: string;
  let modulePath: string;
  let artifactsDir: string;
  let env: NodeJS.ProcessEnv;
  let worker: ChildProcess | undefined;
  let workerOutput = '';
  let appliedHash: string;
  let autoRun: TrainingPipelineResult;
  const queue = uniqueTaskQueue('keel');
  const trainingQueue = `${queue}-training`;

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    client = await testClient();
    dir = tempDir('keel-feature-modules-');
    artifactsDir = path.join(dir, 'artifacts');
    modulePath = path.join(dir, 'features.ts');
    await writeFile(modulePath, USER_MODULE);
    await generateChurn(db, { labelRows: 2000, schema: 'churn' });
    env = {
      ...process.env,
      TEMPORAL_ADDRESS: (await testTemporal()).address,
      DATABASE_URL: database.url,
      KEEL_ARTIFACTS: `file://${artifactsDir}`,
      KEEL_FEATURE_MODULES: modulePath,
      // about 2 000 label rows: above this, so engine auto runs DuckDB
      KEEL_DUCKDB_AUTO_MIN_ROWS: '1000',
    };
  });
  after(async () => {
    if (worker?.exitCode === null) {
      process.kill(-worker.pid!, 'SIGTERM');
      await new Promise((resolve) => worker!.once('exit', resolve));
    }
    await client?.connection.close();
    await db?.end();
    await database?.drop();
  });

  /** The real `keel worker` process on this test's queues, ready once it says it polls. */
  async function startWorker(): Promise<void> {
    const child = spawn(process.execPath, [KEEL_BIN, 'worker', '--queue', queue, trainingQueue], { env, cwd: REPO_ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    worker = child;
    atExit(() => {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    });
    const collect = (chunk: Buffer) => void (workerOutput = (workerOutput + chunk.toString()).slice(-100_000));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    const deadline = Date.now() + 120_000;
    while (!workerOutput.includes('workers polling')) {
      if (child.exitCode !== null) assert.fail(`keel worker exited with ${child.exitCode}:\n${workerOutput}`);
      if (Date.now() > deadline) assert.fail(`keel worker not polling within 2 minutes:\n${workerOutput}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  const pipeline = (model: string, engine?: string) => ({
    model,
    data: { kind: 'features', example: null, entities: 'churn.labels', featureService: 'user_model', onDemand: ['spend_per_order_user'], ...(engine ? { engine } : {}) },
    label: 'churned',
    trainer: { kind: 'gbdt', params: { maxIter: 10 } },
    cvFolds: 0,
    gates: { minAuc: null, minAucGainOverChampion: null },
    trainingTaskQueue: trainingQueue,
  });

  async function train(model: string, engine?: string): Promise<TrainingPipelineResult> {
    const handle = await client.workflow.start('trainingPipeline', { taskQueue: queue, workflowId: `train-${model}-${Date.now()}`, args: [pipeline(model, engine)] });
    try {
      return (await handle.result()) as TrainingPipelineResult;
    } catch (error) {
      assert.fail(`trainingPipeline ${model} failed: ${String((error as { cause?: unknown }).cause ?? error)}\nworker output:\n${workerOutput}`);
    }
  }

  it('keel features apply takes the plain .ts module from a folder with no package.json', async () => {
    for (let folder = dir; path.dirname(folder) !== folder; folder = path.dirname(folder)) {
      assert.equal(existsSync(path.join(folder, 'package.json')), false, `no package.json in ${folder}`);
    }
    const result = await runKeel(['features', 'apply', modulePath, '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    const applied = JSON.parse(result.stdout) as ApplyJson;
    assert.deepEqual(applied.created, ['entity/customer', 'feature_view/order_activity', 'feature_service/user_model']);
    assert.deepEqual(applied.onDemand.map((d) => d.name), ['spend_per_order_user']);
    appliedHash = applied.onDemand[0]!.codeHash;
  });

  it('a missing or broken module stops keel worker and keel gateway at start with one line naming it', async () => {
    const broken = path.join(dir, 'broken.ts');
    await writeFile(broken, 'export const onDemandFeatures = [{ name: "x", inputs: [], type: "float64", fn: () => 1 }];\n');
    const cases = [
      { module: path.join(dir, 'missing.ts'), problem: /no such feature module: .*missing\.ts$/ },
      { module: broken, problem: /broken\.ts \(onDemandFeatures\): on-demand feature x: inputs must list at least one/ },
    ];
    for (const { module, problem } of cases) {
      for (const command of [['worker', '--queue', uniqueTaskQueue('never')], ['gateway']]) {
        // spawnSync with a timeout: a process that ignored the module would run until killed
        const run = spawnSync(process.execPath, [KEEL_BIN, ...command], {
          env: { ...env, KEEL_FEATURE_MODULES: module, PORT: String(await freePort()), KEEL_AUTH: 'open-loopback' },
          cwd: REPO_ROOT,
          encoding: 'utf8',
          timeout: 60_000,
        });
        assert.equal(run.status, 2, `keel ${command[0]} with ${module}: ${run.stdout}${run.stderr}`);
        const lines = run.stderr.trimEnd().split('\n');
        assert.equal(lines.length, 1, `one line: ${run.stderr}`);
        assert.match(lines[0]!, /^keel: KEEL_FEATURE_MODULES: /);
        assert.match(lines[0]!, problem);
      }
    }
  });

  it('keel worker with the module trains a model using its on-demand feature, with DuckDB above the auto threshold; keel gateway with it serves the model', async () => {
    await startWorker();
    autoRun = await train('user_churn');
    assert.equal(autoRun.registered, true);
    const version = await getModelVersion(db, 'user_churn', autoRun.version!);
    const spec = version.featureSpec as { onDemand: Array<{ name: string; codeHash: string }> };
    assert.deepEqual(spec.onDemand.map((d) => [d.name, d.codeHash]), [['spend_per_order_user', appliedHash]], 'the worker ran the function keel features apply hashed');
    const lineage = version.lineage as Lineage;
    assert.equal(lineage.source.engine, 'duckdb', `2 000 entity rows ≥ KEEL_DUCKDB_AUTO_MIN_ROWS 1000`);
    await setAlias(db, 'user_churn', 'champion', autoRun.version!);

    const features = { orders_7d: 1, orders_30d: 4, spend_30d: 120.5 };
    const gateway = await startGatewayProcess({ databaseUrl: database.url, artifactsDir, env: { KEEL_FEATURE_MODULES: modulePath } });
    try {
      const response = await fetch(`${gateway.url}/v1/models/user_churn/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features }) });
      const body = (await response.json()) as { model_version?: number; probability?: number };
      assert.equal(response.status, 200, `${JSON.stringify(body)}\n${gateway.output()}`);
      assert.equal(body.model_version, autoRun.version);
      assert.ok(typeof body.probability === 'number' && body.probability >= 0 && body.probability <= 1, JSON.stringify(body));
    } finally {
      await gateway.stop();
    }
    // Without the module the gateway has no such function and must not serve the model.
    const without = await startGatewayProcess({ databaseUrl: database.url, artifactsDir, env: { KEEL_FEATURE_MODULES: '' } });
    try {
      const response = await fetch(`${without.url}/v1/models/user_churn/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features }) });
      assert.equal(response.status, 503, await response.text());
    } finally {
      await without.stop();
    }
  });

  it('engine postgres on the same pipeline gives the same training set (sha256) as the DuckDB run, recorded in lineage', async () => {
    assert.ok(autoRun, 'the DuckDB run above succeeded');
    const viaPostgres = await train('user_churn_pg', 'postgres');
    const lineage = (await getModelVersion(db, 'user_churn_pg', viaPostgres.version!)).lineage as Lineage;
    assert.equal(lineage.source.engine, 'postgres');
    assert.equal(viaPostgres.dataset.rows, autoRun.dataset.rows);
    assert.equal(viaPostgres.dataset.sha256, autoRun.dataset.sha256, 'the same rows, columns and values, byte for byte');
  });
});
