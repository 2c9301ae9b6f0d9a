import { ApplicationFailure } from '@temporalio/common';
import { KeelError } from '../lib/errors.js';

/**
 * Keel's own errors (bad input, a corrupt artifact, a trainer over its time limit) are never
 * retried: they fail as non-retryable failures of their type, with the field they name as details.
 */
export async function keelFailures<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof KeelError) {
      throw ApplicationFailure.create({
        type: error.code,
        message: error.message,
        nonRetryable: true,
        details: [{ field: error.field ?? null }],
      });
    }
    throw error;
  }
}
