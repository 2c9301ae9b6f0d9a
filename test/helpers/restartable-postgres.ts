/**
 * A throwaway embedded Postgres that a test can stop and start again on the same data folder and
 * port (so connection strings stay valid): for code that must survive a database restart.
 */
import { spawnSync } from 'node:child_process';
import { LocalPostgres } from '../../infra/local/postgres.js';
import { freePort } from '../../infra/local/ports.js';
import { atExit, tempDir } from './temp.js';

export interface RestartablePostgres {
  url: string;
  /** Fast shutdown (committed data kept); resolves once the server is gone. */
  stop(): Promise<void>;
  /** Starts the server again on the same folder and port. */
  start(): Promise<void>;
}

export async function startRestartablePostgres(): Promise<RestartablePostgres> {
  const pgHome = tempDir('keel-test-pg-restart-');
  let port = await freePort();
  let server: LocalPostgres;
  for (let attempt = 1; ; attempt++) {
    try {
      server = await LocalPostgres.start({ home: pgHome, pgHome, port });
      break;
    } catch (error) {
      // Another process may have taken the free port in between (tests run side by side).
      if (attempt === 3) throw error;
      process.stderr.write(`[restartable postgres] start failed (${(error as Error).message}); retrying on another port\n`);
      port = await freePort();
    }
  }
  atExit(() => void spawnSync('pkill', ['-KILL', '-f', `-D ${server.dataDir}`]));
  return {
    url: server.url,
    stop: () => server.stop(),
    start: async () => {
      server = await LocalPostgres.start({ home: pgHome, pgHome, port });
    },
  };
}
