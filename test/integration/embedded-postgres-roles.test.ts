import assert from 'node:assert/strict';
import { execFile as execFileCb } from 'node:child_process';
import { chown, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { ensurePostgresUser, LocalPostgres, postgresBinaries } from '../../infra/local/postgres.js';
import { roleUrl } from '../../infra/local/postgres-roles.js';
import { freePort } from '../../infra/local/ports.js';
import { migrate } from '../../stores/migrate.js';
import { tempDir } from '../helpers/temp.js';
import { queryOnce } from '../helpers/pg-query.js';

const execFile = promisify(execFileCb);

/** Keel's role may use its database but is no superuser and cannot read password hashes. */
async function assertUnprivileged(url: string): Promise<void> {
  const [role] = await queryOnce<{ rolsuper: boolean; rolname: string }>(url, 'SELECT rolname, rolsuper FROM pg_roles WHERE rolname = current_user');
  assert.deepEqual(role, { rolname: 'keel', rolsuper: false });
  for (const table of ['pg_catalog.pg_shadow', 'pg_catalog.pg_authid']) {
    await assert.rejects(queryOnce(url, `SELECT * FROM ${table}`), /permission denied/, `${table} is readable`);
  }
  const foreign = await queryOnce(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'keel'");
  assert.deepEqual(foreign, [], 'tables Keel does not own');
}

/**
 * A data folder as versions before the admin role made it: `keel` (password `keel`) is the
 * bootstrap superuser and owns the `keel` database, migrated, with a row in it.
 */
async function legacyDataFolder(pgHome: string, port: number): Promise<void> {
  const owner = process.getuid?.() === 0 ? await ensurePostgresUser() : undefined;
  const bins = await postgresBinaries(owner, () => undefined);
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const dataDir = path.join(pgHome, 'pg');
  const pwfile = path.join(pgHome, 'pw');
  await writeFile(pwfile, 'keel\n', { mode: 0o600 });
  if (owner) {
    await chown(pgHome, owner.uid, owner.gid);
    await chown(pwfile, owner.uid, owner.gid);
  }
  await execFile(bins.initdb, [`--pgdata=${dataDir}`, '--username=keel', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'], { ...asOwner, env: { ...process.env, LC_ALL: 'C' } });
  const flags = `-p ${port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
  await execFile(bins.pg_ctl, ['start', '-D', dataDir, '-w', '-l', path.join(pgHome, 'pg.log'), '-o', flags], asOwner);
  try {
    await queryOnce(roleUrl('keel', 'keel', port, 'postgres'), 'CREATE DATABASE keel');
    const url = roleUrl('keel', 'keel', port, 'keel');
    await migrate(url);
    await queryOnce(url, `INSERT INTO stack_checks (workflow_id, task_queue, worker_identity, artifact_uri, artifact_sha256) VALUES ('legacy', 'keel', 'w', 'file:///x', '${'a'.repeat(64)}')`);
  } finally {
    await execFile(bins.pg_ctl, ['stop', '-D', dataDir, '-m', 'fast', '-w'], asOwner);
  }
}

describe('embedded Postgres roles (real PostgreSQL 18)', () => {
  const servers: LocalPostgres[] = [];
  after(async () => {
    for (const server of servers) await server.stop();
  });

  it('a fresh data folder: Keel connects as a non-superuser that owns its database; migrations apply', async () => {
    const pgHome = tempDir('keel-pg-roles-');
    const server = await LocalPostgres.start({ home: pgHome, pgHome, port: await freePort() });
    servers.push(server);
    assert.equal((await migrate(server.url)).applied.length > 0, true);
    await assertUnprivileged(server.url);
    assert.equal((await stat(path.join(pgHome, 'admin-password'))).mode & 0o777, 0o600);
    // The tests' throwaway databases: the role may create (and so own) databases.
    await queryOnce(server.url, 'CREATE DATABASE keel_roles_probe');
    await queryOnce(server.url, 'DROP DATABASE keel_roles_probe');
  });

  it('a data folder from an earlier version (keel the superuser) is converted on start, data and migrations kept', async () => {
    const pgHome = tempDir('keel-pg-legacy-');
    const port = await freePort();
    await legacyDataFolder(pgHome, port);
    const lines: string[] = [];
    const server = await LocalPostgres.start({ home: pgHome, pgHome, port, progress: (line) => lines.push(line) });
    servers.push(server);
    assert.match(lines.join('\n'), /non-superuser/);
    await assertUnprivileged(server.url);
    assert.deepEqual(await queryOnce(server.url, "SELECT worker_identity FROM stack_checks WHERE workflow_id = 'legacy'"), [{ worker_identity: 'w' }]);
    assert.deepEqual((await migrate(server.url)).applied, []);
    await queryOnce(server.url, "UPDATE stack_checks SET worker_identity = 'v' WHERE workflow_id = 'legacy'");
    // A second start finds everything in place.
    await server.stop();
    servers.pop();
    const again = await LocalPostgres.start({ home: pgHome, pgHome, port });
    servers.push(again);
    await assertUnprivileged(again.url);
  });
});
