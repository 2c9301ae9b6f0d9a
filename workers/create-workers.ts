import { fileURLToPath } from 'node:url';
import type { NativeConnection} from '@temporalio/worker';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities/index.js';
import { TRAINING_QUEUE } from '../lib/task-queues.js';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

/** Bundles the workflow code once; every worker in a process shares the bundle. */
export function bundleWorkflows(): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger });
}

const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
};

export interface KeelWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  workflowBundle: WorkflowBundleWithSourceMap;
  deps: ActivityDeps;
  /** Whether this queue runs CPU-heavy activities (training): one at a time per worker then. */
  heavy?: boolean;
}

/** A worker for one task queue with every Keel workflow and activity registered. */
export function createKeelWorker(options: KeelWorkerOptions): Promise<Worker> {
  const heavy = options.heavy ?? options.taskQueue === TRAINING_QUEUE;
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle,
    activities: createActivities(options.deps),
    // In-flight activities get this long to finish (and heartbeat their progress) on shutdown.
    shutdownGraceTime: '30 seconds',
    maxConcurrentActivityTaskExecutions: heavy ? 1 : 50,
  });
}
