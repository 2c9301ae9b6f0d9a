import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { ActivityDeps } from '../../activities/index.js';
import { bundleWorkflows, createKeelWorker } from '../../workers/create-workers.js';
import { testTemporal } from './services.js';

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

/**
 * Runs real Keel workers on the given (test-unique) task queues while `fn` runs, then shuts
 * them down — the samples' `worker.runUntil` idiom for several workers.
 */
export async function withWorkers<T>(queues: string[], deps: ActivityDeps, fn: () => Promise<T>): Promise<T> {
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
