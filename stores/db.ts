import pg from 'pg';

export type Db = pg.Pool;

/** The largest Postgres `int` (versions, generations): a larger number names no row. */
export const PG_INT_MAX = 2_147_483_647;
export type DbClient = pg.PoolClient;

export interface DbOptions {
  url: string;
  /** Shown in pg_stat_activity, so operators can tell workers from gateways. */
  applicationName?: string;
  max?: number;
}

/** The one way Keel connects to Postgres: a pool over a connection string. */
export function createDb({ url, applicationName = 'keel', max = 10 }: DbOptions): Db {
  const pool = new pg.Pool({ connectionString: url, application_name: applicationName, max });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => undefined);
  return pool;
}

/** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
export async function withTransaction<T>(db: Db, work: (client: DbClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** Waits until the server answers, so a starting stack can tell "still booting" from "wrong URL". */
export async function waitForDatabase(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** A connection string with the password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable DATABASE_URL>';
  }
}
