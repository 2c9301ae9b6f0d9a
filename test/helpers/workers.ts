import os from 'node:os';
import { DefaultLogger, NativeConnection, Runtime, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities/index.js';
import type { WorkerConfig } from '../../lib/config.js';
import { loadConfig } from '../../lib/config.js';
import { bundleWorkflows, createKeelWorker } from '../../workers/create-workers.js';
import { REPO_ROOT, testTemporal } from './services.js';

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

// Re-exported: importing this module installs the native runtime, which tests without in-process workers avoid.
export { testClient } from './temporal-client.js';

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

