/**
 * Runs the real worker (`keel worker --queue …`, what `keel up` runs) as a child process for tests
 * that need what only a process shows: that it is still alive, or what its configuration allows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { collectOutput } from './child-output.js';
import { REPO_ROOT } from './services.js';
import { atExit } from './temp.js';

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** Sends SIGTERM (SIGKILL after 40 s) and resolves once the process is gone. */
  stop(): Promise<void>;
}

/** Starts `keel worker` on `queues` with `env`; with `umask`, under that umask (e.g. 000, to see modes set explicitly). */
export function startWorkerProcess(queues: readonly string[], env: NodeJS.ProcessEnv, options: { umask?: string } = {}): WorkerProcess {
  const command = [process.execPath, path.join(REPO_ROOT, 'bin', 'keel.js'), 'worker', ...queues.flatMap((queue) => ['--queue', queue])];
  // With `umask`, through sh: the worker runs under that umask (e.g. 000, to see modes set explicitly).
  const [program, ...args] = options.umask === undefined ? command : ['/bin/sh', '-c', `umask ${options.umask} && exec "$0" "$@"`, ...command];
  const child = spawn(program!, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  atExit(() => child.kill('SIGKILL'));
  const output = collectOutput(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    output,
    alive,
    stop: async () => {
      if (!alive()) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
