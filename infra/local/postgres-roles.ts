/**
 * The roles of the embedded Postgres: the bootstrap superuser `keel_admin` (random password in a
 * 0600 file) sets things up; Keel itself connects as `keel`, which is no superuser but owns the
 * `keel` database and everything in it. Data folders made by versions where `keel` was the
 * bootstrap superuser are converted: that role becomes `keel_admin` and a new `keel` takes over
 * the database (the bootstrap superuser cannot lose its superuser attribute, only its name).
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import pg from 'pg';
import { EMBEDDED_PG } from '../../lib/config.js';
import { StackError } from '../../lib/errors.js';
import { waitForDatabase } from '../../stores/db.js';

export const EMBEDDED_PG_ADMIN = 'keel_admin';
/** A superuser that exists only while a legacy data folder is converted. */
const CONVERSION_ROLE = 'keel_setup';

export function roleUrl(user: string, password: string, port: number, database: string): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'keel-up' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Makes `keel` a non-superuser owning the `keel` database; returns the admin URL (database `postgres`). */
export async function ensureKeelRole(options: { port: number; adminPasswordFile: string; progress: (line: string) => void }): Promise<string> {
  const { port } = options;
  let adminPassword = await readFile(options.adminPasswordFile, 'utf8').then(
    (text) => text.trim(),
    () => undefined,
  );
  if (adminPassword === undefined) adminPassword = await convertLegacyCluster(options);
  const adminUrl = roleUrl(EMBEDDED_PG_ADMIN, adminPassword, port, 'postgres');
  await waitForDatabase(adminUrl, 30_000);
  const { user, password, database } = EMBEDDED_PG;
  const transfer = await withClient(adminUrl, async (client) => {
    const role = await client.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [user]);
    const attributes = `LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD ${client.escapeLiteral(password)}`;
    if (!role.rowCount) await client.query(`CREATE ROLE ${client.escapeIdentifier(user)} ${attributes}`);
    else if (role.rows[0]!.rolsuper) await client.query(`ALTER ROLE ${client.escapeIdentifier(user)} ${attributes}`);
    const db = await client.query<{ owner: string }>('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [database]);
    if (!db.rowCount) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)} OWNER ${client.escapeIdentifier(user)}`);
      return false;
    }
    if (db.rows[0]!.owner === user) return false;
    await client.query(`ALTER DATABASE ${client.escapeIdentifier(database)} OWNER TO ${client.escapeIdentifier(user)}`);
    return true;
  });
  if (transfer) {
    options.progress(`handing the ${database} database's tables to the non-superuser role ${user}`);
    await withClient(roleUrl(EMBEDDED_PG_ADMIN, adminPassword, port, database), (client) => client.query(transferOwnershipSql(user)));
  }
  return adminUrl;
}

/** A data folder from before the admin role: `keel` (password `keel`) is its bootstrap superuser. */
async function convertLegacyCluster(options: { port: number; adminPasswordFile: string; progress: (line: string) => void }): Promise<string> {
  const { port } = options;
  const legacyUrl = roleUrl(EMBEDDED_PG.user, EMBEDDED_PG.password, port, 'postgres');
  await waitForDatabase(legacyUrl, 30_000).catch((error: Error) => {
    throw new StackError(`cannot set up the embedded PostgreSQL's roles (${options.adminPasswordFile} is missing and ${error.message})`);
  });
  options.progress(`making the embedded PostgreSQL's ${EMBEDDED_PG.user} role a non-superuser (the superuser is now ${EMBEDDED_PG_ADMIN})`);
  const password = randomBytes(24).toString('hex');
  await withClient(legacyUrl, async (client) => {
    const { rows } = await client.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
    if (!rows[0]?.rolsuper) {
      throw new StackError(`cannot set up the embedded PostgreSQL's roles: ${options.adminPasswordFile} is missing and ${EMBEDDED_PG.user} is not a superuser`);
    }
    await client.query(`DROP ROLE IF EXISTS ${CONVERSION_ROLE}`);
    await client.query(`CREATE ROLE ${CONVERSION_ROLE} SUPERUSER LOGIN PASSWORD ${client.escapeLiteral(password)}`);
  });
  await withClient(roleUrl(CONVERSION_ROLE, password, port, 'postgres'), async (client) => {
    await client.query(`ALTER ROLE ${client.escapeIdentifier(EMBEDDED_PG.user)} RENAME TO ${EMBEDDED_PG_ADMIN}`);
    await client.query(`ALTER ROLE ${EMBEDDED_PG_ADMIN} PASSWORD ${client.escapeLiteral(password)}`);
  });
  await writeFile(options.adminPasswordFile, `${password}\n`, { mode: 0o600 });
  await withClient(roleUrl(EMBEDDED_PG_ADMIN, password, port, 'postgres'), (client) => client.query(`DROP ROLE ${CONVERSION_ROLE}`));
  return password;
}

/**
 * Gives `role` everything outside the system schemas that the admin role owns in the current
 * database (REASSIGN OWNED refuses the bootstrap superuser). Tables before sequences: a table
 * takes the sequences of its columns along, and those cannot be moved on their own.
 */
function transferOwnershipSql(role: string): string {
  const to = `OWNER TO ${role}`;
  const userSchema = `n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'`;
  const admin = `'${EMBEDDED_PG_ADMIN}'::regrole`;
  return `DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n WHERE n.nspowner = ${admin} AND ${userSchema} LOOP
    EXECUTE format('ALTER SCHEMA %I ${to}', r.nspname);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relowner = ${admin} AND ${userSchema} AND c.relkind IN ('r', 'p', 'v', 'm', 'f') LOOP
    EXECUTE format('ALTER %s %s ${to}', CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.name);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relowner = ${admin} AND ${userSchema} AND c.relkind = 'S' LOOP
    EXECUTE format('ALTER SEQUENCE %s ${to}', r.name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE p.proowner = ${admin} AND ${userSchema} LOOP
    EXECUTE format('ALTER ROUTINE %s ${to}', r.name);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE t.typowner = ${admin} AND ${userSchema} AND t.typtype IN ('e', 'd', 'r')
             AND t.typelem = 0 LOOP
    EXECUTE format('ALTER TYPE %s ${to}', r.name);
  END LOOP;
END $$;`;
}
