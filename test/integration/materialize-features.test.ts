/**
 * The `materializeFeatures` workflow and its per-view Temporal Schedules on a real Temporal dev
 * server and Postgres: `{}` materializes every online view up to workflow time, a second run is
 * incremental, an unknown view fails at once with a non-retryable InvalidInput naming it, and
 * `ensureMaterializationSchedules` creates, lists, updates and deletes schedules (and a triggered
 * schedule runs the workflow).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Client } from '@temporalio/client';
import type { MaterializeFeaturesResult } from '../../lib/schemas/materialize-features.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { listMaterializations } from '../../stores/features/materialize.js';
import { getOnlineFeatures } from '../../stores/features/online.js';
import { applyFeatureDefinitions } from '../../stores/features/registry.js';
import { ensureMaterializationSchedules, startMaterializeFeatures } from '../../stores/features/schedules.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl, uniqueTaskQueue } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { testClient, withWorkers } from '../helpers/workers.js';
import { expectInvalidInputFailure } from '../helpers/workflow-failures.js';

describe('materializeFeatures workflow and schedules (real Temporal and Postgres)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let client: Client;
  const artifacts = new FsArtifactStore(tempDir('keel-materialize-'));
  const queue = uniqueTaskQueue('keel');
  const prefix = `materialize-test-${randomUUID().slice(0, 8)}-`;
  const hourAgo = new Date(Date.now() - 3600_000);

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    client = await testClient();
    await db.query(`CREATE TABLE stats (customer_id int8, event_timestamp timestamptz, created_at timestamptz, spend float8);
      CREATE TABLE flags (customer_id int8, event_timestamp timestamptz, vip bool)`);
    for (let id = 1; id <= 20; id++) {
      const at = new Date(hourAgo.getTime() + id * 1000).toISOString();
      await db.query('INSERT INTO stats VALUES ($1, $2, $2, $3)', [id, at, id * 1.5]);
      await db.query('INSERT INTO flags VALUES ($1, $2, $3)', [id, at, id % 2 === 0]);
    }
    await applyFeatureDefinitions(db, {
      entities: [{ name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' }] }],
      featureViews: [
        { name: 'stats', entity: 'customer', source: { table: 'stats', createdTimestamp: 'created_at' }, features: [{ name: 'spend', type: 'float64' }], ttlSeconds: 86_400 },
        { name: 'flags', entity: 'customer', source: { table: 'flags' }, features: [{ name: 'vip', type: 'bool' }] },
        { name: 'flags_offline', entity: 'customer', source: { table: 'flags' }, features: [{ name: 'vip', type: 'bool' }], online: false },
      ],
    });
  });
  after(async () => {
    await db?.end();
    await client?.connection.close();
    await database?.drop();
  });

  const run = (input: unknown) =>
    withWorkers([queue], { db, artifacts }, () =>
      client.workflow.execute('materializeFeatures', { taskQueue: queue, workflowId: `materialize-test-${randomUUID()}`, args: [input] }),
    ) as Promise<MaterializeFeaturesResult>;

  it('{} materializes every online view up to workflow time; the next run is incremental', async () => {
    const started = Date.now();
    const result = await run({});
    assert.deepEqual(Object.keys(result.views).sort(), ['flags', 'stats']);
    assert.ok(Date.parse(result.end) >= started - 1000 && Date.parse(result.end) <= Date.now());
    for (const view of ['flags', 'stats']) {
      assert.equal(result.views[view]!.rowsWritten, 20);
      assert.equal(result.views[view]!.watermarkFrom, null);
      assert.equal(result.views[view]!.watermarkTo, result.end);
    }
    const online = await getOnlineFeatures(db, { features: ['stats:spend', 'flags:vip'], entities: [{ customer_id: 4 }, { customer_id: 99 }], registryCacheMs: 0 });
    assert.deepEqual(online.rows[0]!.values, { spend: 6, vip: true });
    assert.deepEqual(online.rows[1]!.statuses, { spend: 'missing', vip: 'missing' });
    const states = await listMaterializations(db);
    assert.ok(states.every((s) => s.lastRunId?.startsWith('materialize-test-')));

    const now = new Date().toISOString();
    await db.query('INSERT INTO stats VALUES (4, $1, $1, 100), (21, $1, $1, 7)', [now]);
    const second = await run({ views: ['stats'] });
    assert.deepEqual(Object.keys(second.views), ['stats']);
    assert.equal(second.views.stats!.rowsWritten, 2);
    assert.equal(second.views.stats!.watermarkFrom, result.end);
    const updated = await getOnlineFeatures(db, { features: ['stats:spend'], entities: [{ customer_id: 4 }, { customer_id: 21 }], registryCacheMs: 0 });
    assert.deepEqual(updated.rows.map((r) => r.values.spend), [100, 7]);
  });

  it('an unknown view fails the workflow at once with a non-retryable InvalidInput naming it', async () => {
    for (const [input, pattern] of [
      [{ views: ['stats', 'nope'] }, /unknown feature view nope/],
      [{ views: ['flags_offline'] }, /flags_offline is not online/],
      [{ end: 'yesterday' }, /^end: /],
      [{ views: ['stats'], retry: { maxAttempts: 3 } }, /^retry\.maxAttempts: unknown key$/],
      [null, /^input: .*expected object, received null/],
    ] as const) {
      await expectInvalidInputFailure(run(input), pattern);
    }
  });

  it('ensureMaterializationSchedules creates, lists, updates and deletes per-view schedules (overlap SKIP)', async () => {
    const created = await ensureMaterializationSchedules(client, {
      views: ['stats', { name: 'flags' }, { name: 'flags_offline', online: false }],
      interval: '1 hour',
      taskQueue: queue,
      idPrefix: prefix,
    });
    assert.deepEqual(created, { created: [`${prefix}flags`, `${prefix}stats`], updated: [], deleted: [], unchanged: [] });
    const description = await client.schedule.getHandle(`${prefix}stats`).describe();
    assert.equal(description.policies.overlap, 'SKIP');
    assert.equal(description.spec.intervals?.[0]?.every, 3600_000);
    assert.equal(description.action.type === 'startWorkflow' && description.action.workflowType, 'materializeFeatures');
    assert.deepEqual(description.action.type === 'startWorkflow' && description.action.args, [{ views: ['stats'] }]);

    // listing is eventually consistent: wait until both show up
    const listed = async () => {
      const ids: string[] = [];
      for await (const s of client.schedule.list()) if (s.scheduleId.startsWith(prefix)) ids.push(s.scheduleId);
      return ids.sort();
    };
    for (let i = 0; i < 50 && (await listed()).length < 2; i++) await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await listed(), [`${prefix}flags`, `${prefix}stats`]);

    const same = await ensureMaterializationSchedules(client, { views: ['stats', 'flags'], interval: 3600_000, taskQueue: queue, idPrefix: prefix });
    assert.deepEqual(same.unchanged, [`${prefix}flags`, `${prefix}stats`]);
    const faster = await ensureMaterializationSchedules(client, { views: ['stats', 'flags'], interval: '15 minutes', taskQueue: queue, idPrefix: prefix });
    assert.deepEqual(faster.updated, [`${prefix}flags`, `${prefix}stats`]);
    assert.equal((await client.schedule.getHandle(`${prefix}flags`).describe()).spec.intervals?.[0]?.every, 15 * 60_000);

    // a triggered schedule runs the workflow for its view
    await withWorkers([queue], { db, artifacts }, async () => {
      const handle = client.schedule.getHandle(`${prefix}flags`);
      await handle.trigger();
      let workflowId: string | undefined;
      for (let i = 0; i < 100 && !workflowId; i++) {
        workflowId = (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId;
        if (!workflowId) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(workflowId?.startsWith(`${prefix}flags`), workflowId);
      const result = (await client.workflow.getHandle(workflowId!).result()) as MaterializeFeaturesResult;
      assert.deepEqual(Object.keys(result.views), ['flags']);
    });

    // flags is no longer online: its schedule goes
    const removed = await ensureMaterializationSchedules(client, { views: ['stats', { name: 'flags', online: false }], interval: '15 minutes', taskQueue: queue, idPrefix: prefix });
    assert.deepEqual(removed.deleted, [`${prefix}flags`]);
    await assert.rejects(client.schedule.getHandle(`${prefix}flags`).describe(), { name: 'ScheduleNotFoundError' });
    const none = await ensureMaterializationSchedules(client, { views: [], taskQueue: queue, idPrefix: prefix });
    assert.deepEqual(none.deleted, [`${prefix}stats`]);
  });

  it('startMaterializeFeatures checks the input and starts a run', async () => {
    await assert.rejects(startMaterializeFeatures(client, { views: ['Bad-Name'] }, { taskQueue: queue }), /views\.0/);
    const result = await withWorkers([queue], { db, artifacts }, async () => {
      const handle = await startMaterializeFeatures(client, { views: ['flags'] }, { taskQueue: queue });
      return handle.result();
    });
    assert.deepEqual(Object.keys(result.views), ['flags']);
  });
});
