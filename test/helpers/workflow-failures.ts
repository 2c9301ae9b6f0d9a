import assert from 'node:assert/strict';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';

/** Awaits a workflow that must fail with an `ApplicationFailure`; returns that failure. */
export async function expectWorkflowFailure(run: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await run.then(
    () => assert.fail('the workflow should have failed'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError, String(error));
  const cause = error.cause;
  assert.ok(cause instanceof ApplicationFailure, String(cause));
  return cause;
}

/**
 * Awaits a workflow that must fail on bad input: a `WorkflowFailedError` caused by a
 * non-retryable `ApplicationFailure` of type `InvalidInput` whose message matches `message`.
 * Returns the failure for further checks.
 */
export async function expectInvalidInputFailure(run: Promise<unknown>, message: RegExp | string): Promise<ApplicationFailure> {
  const cause = await expectWorkflowFailure(run);
  assert.equal(cause.type, 'InvalidInput');
  assert.equal(cause.nonRetryable, true);
  if (typeof message === 'string') assert.equal(cause.message, message);
  else assert.match(cause.message, message);
  return cause;
}
