import assert from 'node:assert/strict';
import { cpSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { queryOnce } from '../helpers/pg-query.js';

/** The machine's PostgreSQL 15 (CI has one); skipped with a reason where there is none. */
const PG15_URL = process.env.KEEL_TEST_PG15_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function migrationsCopy(extra: Record<string, string>): string {
  const dir = tempDir('keel-migrations-');
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  for (const [name, sql] of Object.entries(extra)) writeFileSync(path.join(dir, name), sql);
  return dir;
}

const engines = [
  {
    name: process.env.KEEL_TEST_DB_ENGINE === 'embedded' ? 'embedded PostgreSQL 18' : 'DATABASE_URL',
    serverUrl: () => testDatabaseUrl(),
    major: process.env.KEEL_TEST_DB_ENGINE === 'embedded' || !process.env.DATABASE_URL ? 18 : undefined,
  },
  { name: 'PostgreSQL 15 on 127.0.0.1:5432', serverUrl: async () => PG15_URL, major: 15 },
];

for (const engine of engines) {
  describe(`migrations on ${engine.name}`, async () => {
    const available = engine.major === 15 ? await reachable(PG15_URL) : true;
    let db: { url: string; drop: () => Promise<void> };
    before(async () => {
      if (available) db = await freshDatabase(await engine.serverUrl());
    });
    after(async () => db?.drop());
    const test = available ? it : it.skip;

    test('runs on the expected server version', async () => {
      const [row] = await queryOnce<{ server_version_num: string }>(db.url, 'SHOW server_version_num');
      if (engine.major) assert.equal(Math.floor(Number(row!.server_version_num) / 10_000), engine.major);
    });

    test('applies every migration once, in order, and records it', async () => {
      const shipped = await readMigrations();
      const first = await migrate(db.url);
      assert.deepEqual(
        first.applied.map((m) => m.version),
        shipped.map((m) => m.version),
      );
      const second = await migrate(db.url);
      assert.equal(second.applied.length, 0);
      assert.equal(second.alreadyApplied, shipped.length);
      const rows = await queryOnce<{ version: number; sha256: string }>(db.url, 'SELECT version, sha256 FROM keel_migrations ORDER BY version');
      assert.deepEqual(rows, shipped.map((m) => ({ version: m.version, sha256: m.sha256 })));
      await queryOnce(db.url, 'SELECT workflow_id, task_queue, artifact_sha256 FROM stack_checks LIMIT 0');
    });

    test('two processes migrating at once apply each migration exactly once', async () => {
      const fresh = await freshDatabase(await engine.serverUrl());
      try {
        const dir = migrationsCopy({ '0900_slow.sql': 'SELECT pg_sleep(0.5); CREATE TABLE slow_marker (id int);' });
        const results = await Promise.all([migrate(fresh.url, dir), migrate(fresh.url, dir), migrate(fresh.url, dir)]);
        const appliedCounts = results.map((r) => r.applied.length).sort();
        const total = (await readMigrations(dir)).length;
        assert.deepEqual(appliedCounts, [0, 0, total]);
        const [{ count }] = (await queryOnce<{ count: string }>(fresh.url, 'SELECT count(*) FROM keel_migrations')) as [{ count: string }];
        assert.equal(Number(count), total);
      } finally {
        await fresh.drop();
      }
    });

    test('a failing migration is rolled back whole and stops the run', async () => {
      const fresh = await freshDatabase(await engine.serverUrl());
      try {
        const dir = migrationsCopy({
          '0900_half.sql': 'CREATE TABLE half_done (id int); INSERT INTO no_such_table VALUES (1);',
          '0901_after.sql': 'CREATE TABLE after_failure (id int);',
        });
        await assert.rejects(migrate(fresh.url, dir), /migration 900_half failed and was rolled back: relation "no_such_table" does not exist/);
        const tables = await queryOnce<{ table_name: string }>(
          fresh.url,
          "SELECT table_name FROM information_schema.tables WHERE table_name IN ('half_done', 'after_failure', 'stack_checks')",
        );
        assert.deepEqual(tables.map((t) => t.table_name), ['stack_checks']);
        const versions = await queryOnce<{ version: number }>(fresh.url, 'SELECT version FROM keel_migrations ORDER BY version');
        assert.ok(!versions.some((v) => v.version >= 900));
      } finally {
        await fresh.drop();
      }
    });

    test('refuses to run when an applied migration was edited', async () => {
      const fresh = await freshDatabase(await engine.serverUrl());
      try {
        await migrate(fresh.url);
        const dir = migrationsCopy({});
        const [first] = await readMigrations(dir);
        writeFileSync(path.join(dir, `${String(first!.version).padStart(4, '0')}_${first!.name}.sql`), `${first!.sql}\n-- edited\n`);
        await assert.rejects(migrate(fresh.url, dir), /was changed after it was applied; add a new migration instead/);
      } finally {
        await fresh.drop();
      }
    });
  });
}
