import { ApplicationFailure } from '@temporalio/common';
import { KeelError } from '../lib/errors.js';

/** What a Keel error's activity failure carries besides its message (read by lib/workflow-failures.ts). */
export interface KeelFailureDetails {
  field: string | null;
  /** A value-free summary for API callers when the message quotes data or program output. */
  publicMessage: string | null;
}

/**
 * Keel's own errors (bad input, a corrupt artifact, a trainer over its time limit) are never
 * retried: they fail as non-retryable failures of their type, with their field and public message
 * as details (Temporal's own conversion keeps only the name and message).
 */
export async function keelFailures<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (!(error instanceof KeelError)) throw error;
    const details: KeelFailureDetails = { field: error.field ?? null, publicMessage: error.publicMessage ?? null };
    const failure = ApplicationFailure.create({ type: error.code, message: error.message, nonRetryable: true, details: [details] });
    failure.stack = error.stack; // where it was thrown, for the worker log and the workflow history
    throw failure;
  }
}

/** Every activity of `activities` with its Keel errors converted by `keelFailures`. */
export function withKeelFailureDetails<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped = Object.entries(activities).map(([name, activity]) => [name, (...args: never[]) => keelFailures(() => activity(...args))]);
  return Object.fromEntries(wrapped) as T;
}
