import { ApplicationFailure, ChildWorkflowFailure, executeChild, patched, proxyActivities, proxyLocalActivities, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import type { StackCheckActivities } from '../activities/stack-check.js';
import { stackCheckInputSchema, type StackCheckRecord, type StackCheckResult } from '../lib/schemas/stack-check.js';
import { parseWorkflowInput } from './input.js';

/** Since this patch each queue is checked by a child workflow on it (see `stackCheckQueue`). */
const CHILD_PER_QUEUE = 'stack-check-child-per-queue';

/**
 * Proves the plumbing end to end: on each task queue a worker writes an artifact and a Postgres
 * row. `keel up` runs it to know the workers are really serving, and `keel doctor` on demand.
 */
export async function stackCheck(rawInput: unknown = {}): Promise<StackCheckResult> {
  const input = parseWorkflowInput(stackCheckInputSchema, rawInput);
  const { workflowId } = workflowInfo();
  const checks = [];
  for (const taskQueue of input.queues) {
    if (patched(CHILD_PER_QUEUE)) {
      checks.push(await checkQueueInChild(workflowId, taskQueue, input.timeoutSeconds));
      continue;
    }
    const { recordStackCheck } = proxyActivities<StackCheckActivities>({
      taskQueue,
      startToCloseTimeout: '30 seconds',
      scheduleToCloseTimeout: `${input.timeoutSeconds} seconds`,
      retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: ['InvalidInput'] },
    });
    checks.push(await recordStackCheck({ taskQueue }));
  }
  return { workflowId, checks };
}

async function checkQueueInChild(workflowId: string, taskQueue: string, timeoutSeconds: number): Promise<StackCheckRecord> {
  try {
    return await executeChild(stackCheckQueue, {
      taskQueue,
      workflowId: `${workflowId}/${taskQueue}`,
      args: [{ workflowId, taskQueue }],
      workflowExecutionTimeout: `${timeoutSeconds} seconds`,
    });
  } catch (error) {
    if (!(error instanceof ChildWorkflowFailure && error.cause instanceof TimeoutFailure)) throw error;
    throw ApplicationFailure.nonRetryable(
      `no worker completed the check on task queue ${taskQueue} within ${timeoutSeconds} s (timed out): is a worker polling it?`,
      'StackCheckTimeout',
    );
  }
}

/**
 * Runs on the task queue it checks, so a worker polling that queue took its workflow task, and
 * records the check in a local activity on that same worker. Neither needs an activity slot:
 * a `keel-training` worker busy with its one training still passes.
 */
export async function stackCheckQueue({ workflowId, taskQueue }: { workflowId: string; taskQueue: string }): Promise<StackCheckRecord> {
  const { recordStackCheck } = proxyLocalActivities<StackCheckActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', nonRetryableErrorTypes: ['InvalidInput'] },
  });
  return recordStackCheck({ taskQueue, workflowId });
}
