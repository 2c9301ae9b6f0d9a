import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { churnDefinitions } from '../../examples/churn/features.js';
import { generateChurn } from '../../examples/churn/generate.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { getOnlineFeatures } from '../../stores/features/online.js';
import { applyFeatureDefinitions } from '../../stores/features/registry.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { runKeel } from '../helpers/keel-cli.js';
import { tempDir } from '../helpers/temp.js';
import { testClient, withWorkers } from '../helpers/workers.js';

describe('keel features materialize and keel features online', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let env: NodeJS.ProcessEnv;
  const queue = uniqueTaskQueue('keel');

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    await generateChurn(db, { labelRows: 2000 });
    await applyFeatureDefinitions(db, churnDefinitions);
    env = { ...process.env, TEMPORAL_ADDRESS: (await testTemporal()).address, DATABASE_URL: database.url };
  });
  after(async () => {
    await db?.end();
    await database?.drop();
  });

  const keel = (args: string[]) => runKeel(args, env);

  it('materializes every online view through the workflow, then reads the same values online as the library', async () => {
    const end = '2026-07-01T00:00:00Z';
    const materialized = await withWorkers([queue], { db, artifacts: new FsArtifactStore(tempDir('keel-online-cli-')) }, () =>
      keel(['features', 'materialize', '--end', end, '--task-queue', queue, '--json']),
    );
    assert.equal(materialized.code, 0, materialized.stderr);
    const result = JSON.parse(materialized.stdout) as { views: Record<string, { rowsWritten: number }> };
    assert.deepEqual(Object.keys(result.views).sort(), ['customer_profile', 'order_activity', 'support_activity']);
    assert.ok(Object.values(result.views).every((v) => v.rowsWritten > 0));

    const online = await keel(['features', 'online', '--service', 'churn_model', '--entity', '{"customer_id": 1}', '--entity', '{"customer_id": 999999}', '--json']);
    assert.equal(online.code, 0, online.stderr);
    const shown = JSON.parse(online.stdout) as { rows: Array<{ values: Record<string, unknown>; statuses: Record<string, string> }> };
    const direct = await getOnlineFeatures(db, { features: { service: 'churn_model' }, entities: [{ customer_id: 1 }, { customer_id: 999999 }], registryCacheMs: 0 });
    assert.equal(shown.rows.length, 2);
    assert.deepEqual(Object.keys(shown.rows[0]!.values), Object.keys(direct.rows[0]!.values));
    assert.ok(Object.values(shown.rows[1]!.statuses).every((s) => s === 'missing'), 'an unknown customer is missing');
  });

  it('apply --schedule keeps one materialization schedule per online view', async () => {
    const applied = await keel(['features', 'apply', 'examples/churn/features.ts', '--schedule', '30 minutes', '--task-queue', queue, '--json']);
    assert.equal(applied.code, 0, applied.stderr);
    const { schedules } = JSON.parse(applied.stdout) as { schedules: { created: string[]; updated: string[]; unchanged: string[] } };
    const ids = [...schedules.created, ...schedules.updated, ...schedules.unchanged].sort();
    assert.deepEqual(ids, ['materialize-customer_profile', 'materialize-order_activity', 'materialize-support_activity']);
    const client = await testClient();
    try {
      for (const id of ids) {
        const described = await client.schedule.getHandle(id).describe();
        assert.equal(described.action.type, 'startWorkflow');
        await client.schedule.getHandle(id).delete();
      }
    } finally {
      await client.connection.close();
    }
  });

  it('bad usage exits 2 with one line', async () => {
    const neither = await keel(['features', 'online', '--entity', '{"customer_id": 1}']);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /exactly one of --features and --service/);
    const badEntity = await keel(['features', 'online', '--service', 'churn_model', '--entity', '42']);
    assert.equal(badEntity.code, 2);
    assert.match(badEntity.stderr, /--entity 42 is not a JSON object/);
    const badEnd = await keel(['features', 'materialize', '--end', 'yesterday']);
    assert.equal(badEnd.code, 2);
    assert.match(badEnd.stderr, /end/);
  });
});
