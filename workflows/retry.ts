/**
 * Retry policies and step failures shared by Keel's workflows. Bad input is never retried; any
 * other failure (Postgres or the artifact store down, a full disk, a worker that died) is retried
 * with exponential backoff for the input's `retry` window, then fails the run, non-retryable,
 * naming the step and the cause. Workflow-safe: no I/O.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, TimeoutFailure } from '@temporalio/workflow';
import type { RetryPolicy } from '@temporalio/workflow';
import { BAD_INPUT_TYPES } from '../lib/errors.js';
import type { RetryWindow } from '../lib/schemas/retry.js';
import { attemptsWithin } from '../lib/schemas/retry.js';

/** A command trainer that ran out of its own `timeoutSeconds` would only do so again. */
export const TRAINING_NON_RETRYABLE = [...BAD_INPUT_TYPES, 'TrainingTimeout'];

export function retryPolicy(window: RetryWindow, nonRetryableErrorTypes: readonly string[] = BAD_INPUT_TYPES): RetryPolicy {
  return {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: `${window.maximumIntervalSeconds} seconds`,
    maximumAttempts: attemptsWithin(window),
    nonRetryableErrorTypes: [...nonRetryableErrorTypes],
  };
}

/** Where a step's activity was queued, to name the queue when no worker took it. */
export interface StepQueue {
  taskQueue: string;
  scheduleToStartSeconds: number;
  /** The input field that chose the queue. */
  field: string;
}

/**
 * What a step's failed activity fails the workflow with: bad input as itself (`<step>: …`), a
 * task no worker took as `NoWorker` naming the queue, anything else as `StepFailed` with the last
 * attempt's cause. All non-retryable, with `{step, field?}` as details; `undefined` when the
 * error is not an activity failure, or is a cancellation (the run then ends Canceled, not failed).
 */
export function stepFailure(step: string, error: unknown, window: RetryWindow, queue?: StepQueue): ApplicationFailure | undefined {
  if (!(error instanceof ActivityFailure) || isCancellation(error)) return undefined;
  const cause = error.cause;
  if (cause instanceof ApplicationFailure && BAD_INPUT_TYPES.includes(cause.type ?? '')) {
    const field = (cause.details?.[0] as { field?: unknown } | undefined)?.field;
    return ApplicationFailure.create({
      type: cause.type ?? 'InvalidInput',
      message: `${step}: ${cause.message}`,
      nonRetryable: true,
      details: [{ step, ...(typeof field === 'string' ? { field } : {}) }],
      cause: error,
    });
  }
  if (cause instanceof TimeoutFailure && cause.timeoutType === 'SCHEDULE_TO_START' && queue) {
    return ApplicationFailure.create({
      type: 'NoWorker',
      message:
        `${step}: no worker started it within ${queue.scheduleToStartSeconds} s on task queue ${queue.taskQueue} ` +
        `(start one with \`keel worker --queue ${queue.taskQueue}\`, check ${queue.field}, or raise scheduleToStartTimeoutSeconds if its workers are busy)`,
      nonRetryable: true,
      details: [{ step, field: queue.field, taskQueue: queue.taskQueue }],
      cause: error,
    });
  }
  const reason = cause?.message || error.message;
  const retried = error.retryState === 'MAXIMUM_ATTEMPTS_REACHED' ? ` (retried with backoff for about ${window.infrastructureTimeoutSeconds} s)` : '';
  return ApplicationFailure.create({
    type: 'StepFailed',
    message: `${step} failed: ${reason}${retried}`,
    nonRetryable: true,
    details: [{ step }],
    cause: error,
  });
}
