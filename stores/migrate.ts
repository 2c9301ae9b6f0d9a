import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** SQL migrations shipped with Keel: `NNNN_name.sql`, applied in version order. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../infra/migrations/', import.meta.url));

/** Arbitrary constant shared by every Keel process: only one of them migrates at a time. */
const MIGRATION_LOCK_KEY = 0x6b65656c; // "keel"

export interface Migration {
  version: number;
  name: string;
  sql: string;
  sha256: string;
}

export interface MigrationResult {
  applied: Migration[];
  alreadyApplied: number;
}

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export async function readMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new Error(`migration file ${file} is not named NNNN_name.sql`);
    const sql = await readFile(path.join(dir, file), 'utf8');
    const version = Number(match[1]);
    if (migrations.some((m) => m.version === version)) throw new Error(`two migrations share version ${version}`);
    migrations.push({ version, name: match[2]!, sql, sha256: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

/**
 * Applies pending migrations in order, each in its own transaction, under a session advisory
 * lock so that processes starting together apply each migration exactly once. An applied
 * migration whose file has since changed is refused: history is never rewritten in place.
 */
export async function migrate(url: string, dir: string = MIGRATIONS_DIR): Promise<MigrationResult> {
  const migrations = await readMigrations(dir);
  const client = new pg.Client({ connectionString: url, application_name: 'keel-migrate' });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS keel_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      sha256 text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const { rows } = await client.query<{ version: number; name: string; sha256: string }>(
      'SELECT version, name, sha256 FROM keel_migrations ORDER BY version',
    );
    const applied = new Map(rows.map((r) => [r.version, r]));
    for (const row of rows) {
      const known = migrations.find((m) => m.version === row.version);
      if (known && known.sha256 !== row.sha256) {
        throw new Error(
          `migration ${row.version}_${row.name} was changed after it was applied; add a new migration instead`,
        );
      }
    }
    const pending = migrations.filter((m) => !applied.has(m.version));
    for (const migration of pending) {
      try {
        await client.query('BEGIN');
        await client.query(migration.sql);
        await client.query('INSERT INTO keel_migrations (version, name, sha256) VALUES ($1, $2, $3)', [
          migration.version,
          migration.name,
          migration.sha256,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        const reason = error instanceof Error ? error.message : String(error);
        throw new Error(`migration ${migration.version}_${migration.name} failed and was rolled back: ${reason}`, {
          cause: error,
        });
      }
    }
    return { applied: pending, alreadyApplied: applied.size };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}
