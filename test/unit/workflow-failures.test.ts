import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  DefaultFailureConverter,
  defaultPayloadConverter,
  ensureApplicationFailure,
  RetryState,
} from '@temporalio/common';
import pg from 'pg';
import { withKeelFailureDetails } from '../../activities/keel-failures.js';
import { InvalidInput } from '../../lib/errors.js';
import { infrastructureCause, summarizeWorkflowFailure } from '../../lib/workflow-failures.js';

/** An error thrown by an activity as a workflow's caller sees it: converted as the worker does, inside the activity's failure. */
function afterActivity(error: Error, activityType = 'buildTrainingSet'): ActivityFailure {
  const converter = new DefaultFailureConverter();
  const failure = converter.errorToFailure(ensureApplicationFailure(error), defaultPayloadConverter);
  const crossed = converter.failureToError(failure, defaultPayloadConverter);
  return new ActivityFailure('Activity task failed', activityType, '1', RetryState.MAXIMUM_ATTEMPTS_REACHED, 'worker', crossed);
}

class TrainerFailed extends Error {}

describe('workflow failure summaries', () => {
  it('names Postgres refusing connections, by the address the error quotes', async () => {
    const url = 'postgres://keel@127.0.0.1:1/keel';
    const refused = await new pg.Client({ connectionString: url }).connect().then(
      () => assert.fail('port 1 accepted a connection'),
      (e: Error) => e,
    );
    const summary = summarizeWorkflowFailure(afterActivity(refused), [{ name: 'Postgres', address: url }]);
    assert.deepEqual(
      { kind: summary.kind, step: summary.step, cause: summary.cause },
      { kind: 'infrastructure', step: 'buildTrainingSet', cause: 'Postgres unreachable (connection refused)' },
    );
    assert.match(summary.detail, /ECONNREFUSED 127\.0\.0\.1:1/);
    assert.equal(summarizeWorkflowFailure(afterActivity(refused)).cause, 'a service the step uses is unreachable (connection refused)');
  });

  it('names a full disk, a permission problem and missing S3 credentials in fixed words', () => {
    const noSpace = Object.assign(new Error("ENOSPC: no space left on device, write '/data/secret-name.parquet'"), { code: 'ENOSPC' });
    assert.equal(summarizeWorkflowFailure(afterActivity(noSpace)).cause, 'disk full (ENOSPC)');
    assert.equal(infrastructureCause(Object.assign(new Error("EACCES: permission denied, open '/x'"), { code: 'EACCES' })), 'permission denied (EPERM / EACCES)');
    const credentials = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    assert.match(infrastructureCause(credentials)!, /^no S3 credentials/);
    assert.equal(infrastructureCause(new Error('label column churned: e.g. "424242"')), undefined);
  });

  it("carries an activity's field and public message, never its full message, into the summary's value-free parts", async () => {
    const activities = withKeelFailureDetails({
      validateData: async () => {
        throw new InvalidInput('label column churned: e.g. "424242"', 'churned').withPublicMessage('label_binary (churned)');
      },
    });
    const thrown = await activities.validateData().then(
      () => assert.fail('should throw'),
      (e: Error) => e,
    );
    assert.ok(thrown instanceof ApplicationFailure && thrown.type === 'InvalidInput', String(thrown));
    const summary = summarizeWorkflowFailure(afterActivity(thrown, 'validateData'));
    assert.deepEqual(
      { kind: summary.kind, type: summary.type, step: summary.step, field: summary.field, publicMessage: summary.publicMessage },
      { kind: 'badInput', type: 'InvalidInput', step: 'validateData', field: 'churned', publicMessage: 'label_binary (churned)' },
    );
    assert.match(summary.detail, /424242/);
  });

  it('keeps the step and field of bad input, and tells canceled runs and other failures apart', () => {
    const badInput = ApplicationFailure.create({ type: 'InvalidInput', message: 'validateData: e.g. "424242"', nonRetryable: true, details: [{ step: 'validateData', field: 'churned' }] });
    assert.deepEqual(summarizeWorkflowFailure(badInput), { type: 'InvalidInput', kind: 'badInput', step: 'validateData', field: 'churned', detail: 'validateData: e.g. "424242"' });
    assert.equal(summarizeWorkflowFailure(new CancelledFailure('canceled')).kind, 'canceled');
    const trainer = summarizeWorkflowFailure(afterActivity(new TrainerFailed('exit 3: Traceback ...'), 'trainModel'));
    assert.deepEqual({ type: trainer.type, kind: trainer.kind, step: trainer.step, cause: trainer.cause }, { type: 'TrainerFailed', kind: 'failed', step: 'trainModel', cause: undefined });
  });
});
