/**
 * What a training run may touch is the worker's operator's choice: the real `keel worker` process
 * with KEEL_TRAINER_COMMANDS, KEEL_DATA_ROOTS and KEEL_DATA_SCHEMAS refuses the rest (from
 * whatever client the run came: here a Temporal client, as the Web UI or CLI would), and writes
 * its artifacts owner-only whatever its umask.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import { toFeatures } from '../../lib/data/features.js';
import { fitLogisticRegression } from '../../lib/ml/logreg.js';
import type { TrainingPipelineResult } from '../../lib/schemas/training-pipeline-result.js';
import { writeTable } from '../../stores/datasets.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { REPO_ROOT, freshDatabase, testDatabaseUrl, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { syntheticChurnTable } from '../helpers/training-data.js';
import { expectInvalidInputFailure } from '../helpers/workflow-failures.js';
import { testClient } from '../helpers/temporal-client.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

const SYSTEM_PYTHON = '/usr/bin/python3';
const COMMAND_FEATURES = ['tenure_months', 'monthly_spend', 'support_tickets'];
const pythonReady = spawnSync(SYSTEM_PYTHON, ['-c', 'import sklearn, onnx']).status === 0;

/** Every file and folder under `dir` with its permission bits. */
function modes(dir: string): Array<{ file: string; folder: boolean; mode: number }> {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((name) => {
    const info = statSync(path.join(dir, name));
    return { file: name, folder: info.isDirectory(), mode: info.mode & 0o777 };
  });
}

describe('worker powers: commands, data folders and schemas the operator allows', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let client: Client;
  let worker: WorkerProcess;
  let root: string;
  let outside: string;
  let artifactsDir: string;
  let trainers: string;
  const queue = uniqueTaskQueue('keel');

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    root = tempDir('keel-powers-root-');
    outside = tempDir('keel-powers-outside-');
    artifactsDir = path.join(tempDir('keel-powers-artifacts-'), 'store');
    await writeTable(path.join(root, 'train.csv'), syntheticChurnTable({ rows: 800, seed: 5 }));
    await writeTable(path.join(outside, 'secret.csv'), syntheticChurnTable({ rows: 800, seed: 6 }));
    symlinkSync(path.join(outside, 'secret.csv'), path.join(root, 'link.csv'));
    // An allowed trainer that needs no Python: it hands back a model Keel fitted beforehand.
    trainers = tempDir('keel-powers-trainers-');
    const { x, y } = toFeatures(syntheticChurnTable({ rows: 800, seed: 8 }), { label: 'churned', features: COMMAND_FEATURES });
    writeFileSync(path.join(trainers, 'model.onnx'), fitLogisticRegression(x, y, { C: 1 }).toOnnx());
    writeFileSync(
      path.join(trainers, 'copy-model.js'),
      `const fs = require('node:fs'); const path = require('node:path');\n` +
        `fs.copyFileSync(path.join(__dirname, 'model.onnx'), path.join(process.env.KEEL_OUTPUT, 'model.onnx'));\n`,
    );
    mkdirSync(path.join(root, 'sub'));
    await db.query(`CREATE TABLE public.training_rows AS
      SELECT g AS customer_id, (g % 48)::float8 AS tenure_months, (g % 7)::int AS support_tickets,
             ((g % 7) >= 4 OR (g % 48) < 6 OR g % 11 = 0) AS churned
        FROM generate_series(1, 1500) g`);
    const temporal = await testTemporal();
    worker = startWorkerProcess(
      [queue, `${queue}-training`],
      {
        ...process.env,
        TEMPORAL_ADDRESS: temporal.address,
        DATABASE_URL: database.url,
        KEEL_ARTIFACTS: `file://${artifactsDir}`,
        KEEL_HOME: path.join(root, 'home'),
        KEEL_DATA_ROOTS: root,
        KEEL_TRAINER_COMMANDS: `${path.join(REPO_ROOT, 'examples')},${trainers}`,
        KEEL_DATA_SCHEMAS: 'public',
      },
      { umask: '000' },
    );
  });
  after(async () => {
    await worker?.stop();
    await db?.end();
    await client?.connection.close();
    await database?.drop();
  });

  let runs = 0;
  const run = async (args: Record<string, unknown>) => {
    client ??= await testClient();
    return client.workflow.execute('trainingPipeline', {
      taskQueue: queue,
      workflowId: `powers-${Date.now()}-${runs++}`,
      args: [{ model: 'powers', cvFolds: 0, trainer: { kind: 'logreg' }, ...args }],
    }) as Promise<TrainingPipelineResult>;
  };
  const fileUri = (file: string) => `file://${file}`;

  it('refuses a command the configuration does not allow, without running it', async () => {
    const marker = path.join(outside, 'ran');
    const failure = await expectInvalidInputFailure(
      run({ data: { uri: fileUri(path.join(root, 'train.csv')) }, trainer: { kind: 'command', command: ['sh', '-c', `id; touch ${marker}`] } }),
      /trainer\.command: program not allowed by KEEL_TRAINER_COMMANDS/,
    );
    assert.doesNotMatch(failure.message, /uid=/);
    for (const command of [
      ['python3', '-c', 'print(1)'],
      ['python3', path.join(outside, 'train.py')],
      ['node', path.join(REPO_ROOT, 'examples', '..', 'bin', 'keel.js')],
    ]) {
      await expectInvalidInputFailure(
        run({ data: { uri: fileUri(path.join(root, 'train.csv')) }, trainer: { kind: 'command', command } }),
        /trainer\.command: program not allowed by KEEL_TRAINER_COMMANDS/,
      );
    }
    assert.equal(spawnSync('test', ['-e', marker]).status, 1, 'the refused command never ran');
  });

  it('refuses system catalogs, other schemas and Keel\'s own tables', async () => {
    for (const [table, rule] of [
      ['pg_catalog.pg_shadow', /data\.table: schema not allowed by KEEL_DATA_SCHEMAS/],
      ['pg_shadow', /data\.table: schema not allowed by KEEL_DATA_SCHEMAS/],
      ['information_schema.tables', /data\.table: schema not allowed by KEEL_DATA_SCHEMAS/],
      ['churn.labels', /data\.table: schema not allowed by KEEL_DATA_SCHEMAS/],
      ['api_keys', /data\.table: Keel's own tables cannot be training data/],
      ['public.predictions', /data\.table: Keel's own tables cannot be training data/],
    ] as const) {
      await expectInvalidInputFailure(run({ data: { table } }), rule);
    }
    await expectInvalidInputFailure(
      run({ data: { table: 'public.training_rows', holdoutTable: 'pg_catalog.pg_authid' } }),
      /data\.holdoutTable: schema not allowed by KEEL_DATA_SCHEMAS/,
    );
  });

  it('refuses files outside KEEL_DATA_ROOTS: elsewhere, through .., through a symlink, missing or not', async () => {
    const refused = /data\.(uri|holdoutUri): file not under a folder allowed by KEEL_DATA_ROOTS/;
    for (const data of [
      { uri: fileUri(path.join(outside, 'secret.csv')) },
      { uri: `${fileUri(root)}/sub/../../${path.basename(outside)}/secret.csv` },
      { uri: fileUri(path.join(root, 'link.csv')) },
      { uri: '/etc/keel-no-such-file.csv' },
      { uri: fileUri(path.join(root, 'train.csv')), holdoutUri: fileUri(path.join(outside, 'secret.csv')) },
    ]) {
      const failure = await expectInvalidInputFailure(run({ data }), refused);
      assert.doesNotMatch(failure.message, /secret|keel-no-such-file/, 'the refusal does not echo the path');
    }
  });

  it('allowed ones still work: a file under a root, a public table, the bundled Python example; artifacts are owner-only', async () => {
    const fromFile = await run({ data: { uri: fileUri(path.join(root, 'sub', '..', 'train.csv')) } });
    assert.ok(fromFile.dataset.rows > 0);
    const fromTable = await run({ data: { table: 'training_rows' } });
    assert.ok(fromTable.dataset.rows > 0);
    const fromCommand = await run({
      data: { uri: fileUri(path.join(root, 'train.csv')) },
      features: COMMAND_FEATURES,
      trainer: { kind: 'command', command: ['node', path.join(trainers, 'copy-model.js')] },
    });
    assert.equal(fromCommand.trainer, 'command');
    if (pythonReady) {
      const fromPython = await run({
        data: { uri: fileUri(path.join(root, 'train.csv')) },
        features: COMMAND_FEATURES,
        trainer: { kind: 'command', command: [SYSTEM_PYTHON, 'examples/python-trainer/train.py'], params: { C: 1.0 } },
      });
      assert.equal(fromPython.trainer, 'command');
    }
    // The worker ran under umask 000: the modes below were set explicitly.
    const entries = modes(artifactsDir);
    assert.ok(entries.filter((entry) => !entry.folder).length >= 4, JSON.stringify(entries));
    for (const entry of entries) assert.equal(entry.mode, entry.folder ? 0o700 : 0o400, `${entry.file}: ${entry.mode.toString(8)}`);
    assert.equal(statSync(artifactsDir).mode & 0o777, 0o700);
  });
});
