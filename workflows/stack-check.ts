import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { StackCheckActivities } from '../activities/stack-check.js';
import { stackCheckInputSchema, type StackCheckResult } from '../lib/schemas/stack-check.js';
import { parseWorkflowInput } from './input.js';

/**
 * Proves the plumbing end to end: on each task queue a worker writes an artifact and a Postgres
 * row. `keel up` runs it to know the workers are really serving, and `keel doctor` on demand.
 */
export async function stackCheck(rawInput: unknown = {}): Promise<StackCheckResult> {
  const input = parseWorkflowInput(stackCheckInputSchema, rawInput);
  const checks = [];
  for (const taskQueue of input.queues) {
    const { recordStackCheck } = proxyActivities<StackCheckActivities>({
      taskQueue,
      startToCloseTimeout: '30 seconds',
      scheduleToCloseTimeout: `${input.timeoutSeconds} seconds`,
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: ['InvalidInput'] },
    });
    checks.push(await recordStackCheck({ taskQueue }));
  }
  return { workflowId: workflowInfo().workflowId, checks };
}
