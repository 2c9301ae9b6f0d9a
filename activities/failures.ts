import { ApplicationFailure } from '@temporalio/common';
import { KeelError } from '../lib/errors.js';

/** What a Keel error's activity failure carries besides its message (read by lib/workflow-failures.ts). */
export interface KeelFailureDetails {
  field: string | null;
  publicMessage: string | null;
}

/**
 * Activities whose Keel errors fail with their field and public message as details: Temporal's
 * own conversion keeps only the name and message. The type stays the error's name, so retry
 * policies (`nonRetryableErrorTypes`) see the same failures as before.
 */
export function withKeelFailureDetails<T extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: T): T {
  const wrapped = Object.entries(activities).map(([name, activity]) => [
    name,
    async (...args: never[]) => {
      try {
        return await activity(...args);
      } catch (error) {
        if (!(error instanceof KeelError)) throw error;
        const details: KeelFailureDetails = { field: error.field ?? null, publicMessage: error.publicMessage ?? null };
        const failure = ApplicationFailure.create({ type: error.name, message: error.message, details: [details] });
        failure.stack = error.stack; // where it was thrown, for the worker log and the workflow history
        throw failure;
      }
    },
  ]);
  return Object.fromEntries(wrapped) as T;
}
