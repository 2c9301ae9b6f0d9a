import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities/index.js';
import type { WorkerConfig } from '../../lib/config.js';
import { loadConfig } from '../../lib/config.js';
import { bundleWorkflows, createKeelWorker } from '../../workers/create-workers.js';
import { REPO_ROOT, testTemporal } from './services.js';
import { atExit } from './temp.js';

// Worker state changes at INFO drown test output; warnings and errors still show.
try {
  Runtime.install({ logger: new DefaultLogger('WARN') });
} catch {
  // a runtime already exists in this process
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** Bundling takes seconds: once per test process. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflows();
  return bundle;
}

export async function testClient(): Promise<Client> {
  const { address, namespace } = await testTemporal();
  return new Client({ connection: await Connection.connect({ address }), namespace });
}

/** Activity deps of a test worker; `worker` defaults to testWorkerConfig(). */
export type TestDeps = Omit<ActivityDeps, 'worker'> & { worker?: WorkerConfig };

/** What test workers allow: the defaults plus data under the system temp folder, where tests write their files. */
export function testWorkerConfig(): WorkerConfig {
  const defaults = loadConfig({ env: {}, cwd: REPO_ROOT }).worker;
  return { ...defaults, dataRoots: [...defaults.dataRoots, os.tmpdir()] };
}

/**
 * Runs real Keel workers on the given (test-unique) task queues while `fn` runs, then shuts
 * them down — the samples' `worker.runUntil` idiom for several workers.
 */
export async function withWorkers<T>(queues: string[], testDeps: TestDeps, fn: () => Promise<T>): Promise<T> {
  const deps: ActivityDeps = { ...testDeps, worker: testDeps.worker ?? testWorkerConfig() };
  const { address, namespace } = await testTemporal();
  const connection = await NativeConnection.connect({ address });
  try {
    const workers: Worker[] = [];
    for (const taskQueue of queues) {
      workers.push(await createKeelWorker({ connection, namespace, taskQueue, workflowBundle: await workflowBundle(), deps }));
    }
    const run = workers.reduce<() => Promise<T>>((inner, worker) => () => worker.runUntil(inner()), fn);
    return await run();
  } finally {
    await connection.close();
  }
}

export interface WorkerProcess {
  child: ChildProcess;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** Sends SIGTERM (SIGKILL after 40 s) and resolves once the process is gone. */
  stop(): Promise<void>;
}

/**
 * Runs the real `keel worker --queue …` as a child process (what `keel up` runs), for tests that
 * need what only a process shows: that it is still alive, or what its configuration allows.
 */
export function startWorkerProcess(queues: readonly string[], env: NodeJS.ProcessEnv, options: { umask?: string } = {}): WorkerProcess {
  const command = [process.execPath, path.join(REPO_ROOT, 'bin', 'keel.js'), 'worker', ...queues.flatMap((queue) => ['--queue', queue])];
  // With `umask`, through sh: the worker runs under that umask (e.g. 000, to see modes set explicitly).
  const [program, ...args] = options.umask === undefined ? command : ['/bin/sh', '-c', `umask ${options.umask} && exec "$0" "$@"`, ...command];
  const child = spawn(program!, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  atExit(() => child.kill('SIGKILL'));
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-200_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    output: () => output,
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
