/**
 * Which Postgres tables a training run may read: only those in the schemas the worker's operator
 * allows (`KEEL_DATA_SCHEMAS`), never the system catalogs (`pg_*`, `information_schema`) whatever
 * the setting, and never Keel's own tables (API keys, the prediction log…) nor their partitions.
 * An unqualified name is checked where Postgres would find it (pg_catalog comes first on the
 * search path, so `pg_shadow` alone is the catalog's).
 */
import { InvalidInput } from '../lib/errors.js';
import type { Db } from './db.js';
import { readMigrations } from './migrate.js';
import { quoteTableName } from './pg-table.js';

const SYSTEM_SCHEMA = /^(pg_.*|information_schema)$/;

let keelTables: Promise<Set<string>> | undefined;
/** Tables Keel's migrations create (`keel_migrations` too): the registry, keys, logs, feature store. */
function ownTables(): Promise<Set<string>> {
  keelTables ??= readMigrations().then((migrations) => {
    const names = new Set(['keel_migrations']);
    for (const { sql } of migrations) {
      for (const match of sql.matchAll(/CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:public\.)?([a-z_][a-z0-9_]*)/gi)) names.add(match[1]!.toLowerCase());
    }
    return names;
  });
  return keelTables;
}

/**
 * Refuses `table` (a `tableNameSchema` name) with a non-retryable InvalidInput naming `field`
 * and the rule unless it is allowed; a table that does not exist is left to the read to report.
 */
export async function checkTableAccess(db: Db, table: string, allowedSchemas: readonly string[], field: string): Promise<void> {
  const refuse = (rule: string) => new InvalidInput(`${field}: ${rule}`, field);
  const notAllowed = () => refuse('schema not allowed by KEEL_DATA_SCHEMAS (system catalogs never are)');
  const schemaAllowed = (schema: string) => !SYSTEM_SCHEMA.test(schema) && allowedSchemas.includes(schema);
  const qualified = table.includes('.') ? table.slice(0, table.indexOf('.')) : undefined;
  // Refused before asking the database, so nothing is learnt about tables in other schemas.
  if (qualified !== undefined && !schemaAllowed(qualified)) throw notAllowed();
  const { rows } = await db.query<{ schema: string; name: string; parent: string | null }>(
    `SELECT n.nspname AS schema, c.relname AS name, p.relname AS parent
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
       LEFT JOIN pg_class p ON p.oid = i.inhparent
      WHERE c.oid = to_regclass($1)`,
    [quoteTableName(table)],
  );
  const found = rows[0];
  if (!found) return;
  if (!schemaAllowed(found.schema)) throw notAllowed();
  const own = await ownTables();
  if (found.schema === 'public' && (own.has(found.name) || rows.some((row) => row.parent !== null && own.has(row.parent)))) {
    throw refuse("Keel's own tables cannot be training data");
  }
}
