/**
 * The registry's idempotence per (model, bundle sha256), against real Postgres: concurrent
 * registrations of one bundle, and migration 0007 on a database that already holds duplicates.
 */
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { createDb, type Db } from '../../stores/db.js';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../stores/migrate.js';
import type { NewModelVersion } from '../../stores/registry.js';
import { listVersions, recordDataset, registerModelVersion, setAlias } from '../../stores/registry.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';

const sha = (digit: string) => digit.repeat(64);

function entry(model: string, bundle: string, workflowId: string): NewModelVersion {
  return {
    model,
    bundleUri: `file:///artifacts/sha256/${bundle}`,
    bundleSha256: bundle,
    onnxSha256: sha('e'),
    trainer: 'gbdt',
    metrics: {},
    gates: [],
    signature: {},
    featureSpec: {},
    lineage: { workflowId },
    dataHash: sha('d'),
    trainingWorkflowId: workflowId,
    trainingRunId: `run-of-${workflowId}`,
    codeVersion: 'test',
    createdBy: 'test',
  };
}

async function withDatabase(migrations: string | undefined, fn: (db: Db) => Promise<void>): Promise<void> {
  const database = await freshDatabase(await testDatabaseUrl());
  const db = createDb({ url: database.url });
  try {
    await migrate(database.url, migrations);
    await recordDataset(db, { sha256: sha('d'), uri: 'file:///d.parquet', sizeBytes: 1, rowCount: 1, columns: [], source: {}, profileUri: null, profileSha256: null });
    await fn(db);
  } finally {
    await db.end();
    await database.drop();
  }
}

describe('model registry: one version per (model, bundle sha256)', () => {
  it('concurrent registrations of the same bundle from different workflows all answer one version', async () => {
    await withDatabase(undefined, async (db) => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => registerModelVersion(db, entry('churn', sha('a'), `train-${i}`), ['candidate'])));
      assert.deepEqual(new Set(results.map((r) => r.version)), new Set([1]));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.deepEqual((await listVersions(db, 'churn')).map((v) => [v.version, v.bundleSha256]), [[1, sha('a')]]);
      // another bundle is another version; the same bundle under another model is that model's own
      assert.deepEqual(await registerModelVersion(db, entry('churn', sha('b'), 'train-b')), { version: 2, created: true });
      assert.deepEqual(await registerModelVersion(db, entry('upsell', sha('a'), 'train-u')), { version: 1, created: true });
    });
  });

  it('the database refuses a duplicate bundle written behind the registry\'s back', async () => {
    await withDatabase(undefined, async (db) => {
      await registerModelVersion(db, entry('churn', sha('a'), 'train-1'));
      await assert.rejects(
        db.query(
          `INSERT INTO model_versions (model, version, bundle_uri, bundle_sha256, onnx_sha256, trainer, metrics, gates, signature, feature_spec, lineage, data_hash, training_workflow_id, training_run_id, code_version, created_by)
           SELECT model, 2, bundle_uri, bundle_sha256, onnx_sha256, trainer, metrics, gates, signature, feature_spec, lineage, data_hash, 'other', 'other', code_version, created_by FROM model_versions WHERE version = 1`,
        ),
        /model_versions_model_bundle_key/,
      );
    });
  });

  it('migration 0007 applies to a database that already holds duplicates: they are kept and marked, new ones refused', async () => {
    const before0007 = tempDir('keel-migrations-');
    cpSync(MIGRATIONS_DIR, before0007, { recursive: true });
    for (const migration of await readMigrations(before0007)) {
      if (migration.version >= 7) rmSync(path.join(before0007, `${String(migration.version).padStart(4, '0')}_${migration.name}.sql`));
    }
    await withDatabase(before0007, async (db) => {
      // what the registry could do before 0007: the same bundle three times (versions 1, 3, 4), aliases on two
      await db.query(`INSERT INTO models (name) VALUES ('churn')`);
      for (const [version, bundle] of [[1, sha('a')], [2, sha('b')], [3, sha('a')], [4, sha('a')]] as const) {
        const e = entry('churn', bundle, `train-${version}`);
        await db.query(
          `INSERT INTO model_versions (model, version, bundle_uri, bundle_sha256, onnx_sha256, trainer, metrics, gates, signature, feature_spec, lineage, data_hash, training_workflow_id, training_run_id, code_version, created_by)
           VALUES ($1, $2, $3, $4, $5, 'gbdt', '{}', '[]', '{}', '{}', '{}', $6, $7, $8, 'test', 'test')`,
          [e.model, version, e.bundleUri, e.bundleSha256, e.onnxSha256, e.dataHash, e.trainingWorkflowId, e.trainingRunId],
        );
      }
      await setAlias(db, 'churn', 'champion', 1);
      await setAlias(db, 'churn', 'candidate', 3);
      const applied = await migrate((db.options as { connectionString: string }).connectionString);
      assert.ok(applied.applied.some((m) => m.version === 7));
      const rows = await db.query<{ version: number; duplicate_of: number | null }>('SELECT version, duplicate_of FROM model_versions ORDER BY version');
      assert.deepEqual(rows.rows.map((r) => [r.version, r.duplicate_of]), [[1, null], [2, null], [3, 1], [4, 1]]);
      const versions = await listVersions(db, 'churn');
      assert.deepEqual(versions.map((v) => [v.version, v.aliases]), [[1, ['champion']], [2, []], [3, ['candidate']], [4, []]]);
      // registering that bundle again answers the first version
      assert.deepEqual(await registerModelVersion(db, entry('churn', sha('a'), 'after-0007')), { version: 1, created: false });
      assert.equal((await listVersions(db, 'churn')).length, 4);
    });
  });
});
