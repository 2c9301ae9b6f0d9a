import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { RolloutResult, RolloutStatus } from '../../lib/schemas/rollout-messages.js';
import { abortUpdate, decideSignal, decideUpdate, pauseUpdate, resumeUpdate, statusQuery } from '../../lib/schemas/rollout-messages.js';
import type { RolloutInput } from '../../lib/schemas/rollout.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { setAlias } from '../../stores/registry.js';
import { activeRollout, listAliasHistory, listAnalyses, listApprovals, versionTags } from '../../stores/rollouts.js';
import { freshDatabase, temporalCliPath, testDatabaseUrl, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { registerServedModel } from '../helpers/served-models.js';
import { tempDir } from '../helpers/temp.js';
import { testClient, withWorkers } from '../helpers/workers.js';
import { expectInvalidInputFailure } from '../helpers/workflow-failures.js';

const run = promisify(execFile);

describe('rollout workflow (real Temporal, worker, Postgres)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let artifacts: FsArtifactStore;
  let client: Client;
  const dir = tempDir('keel-rollout-');
  const queue = uniqueTaskQueue('keel');

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    artifacts = new FsArtifactStore(path.join(dir, 'artifacts'));
    client = await testClient();
  });
  after(async () => {
    await db?.end();
    await client?.connection.close();
    await database?.drop();
  });

  const withWorker = <T>(fn: () => Promise<T>) => withWorkers([queue], { db, artifacts }, fn);
  const start = (input: RolloutInput, workflowId = `rollout-test-${Math.random().toString(36).slice(2)}`) =>
    client.workflow.start('rollout', { taskQueue: queue, workflowId, args: [input] }) as Promise<WorkflowHandle<(input: RolloutInput) => Promise<RolloutResult>>>;

  /** A model with version 1 (champion unless `firstRelease`) and a candidate version. */
  async function modelWithCandidate(model: string, { firstRelease = false } = {}): Promise<{ champion: number | null; candidate: number }> {
    let champion: number | null = null;
    if (!firstRelease) champion = (await registerServedModel({ db, artifacts }, { model, seed: 1, aliases: ['champion'] })).version;
    const candidate = (await registerServedModel({ db, artifacts }, { model, seed: 2, aliases: ['candidate'] })).version;
    return { champion, candidate };
  }

  async function waitForStatus(handle: WorkflowHandle, done: (s: RolloutStatus) => boolean, what: string, timeoutMs = 120_000): Promise<RolloutStatus> {
    const deadline = Date.now() + timeoutMs;
    let last: RolloutStatus | undefined;
    while (Date.now() < deadline) {
      last = await handle.query(statusQuery).catch(() => undefined);
      if (last && done(last)) return last;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.fail(`timed out waiting for ${what}; last status ${JSON.stringify(last)}`);
  }

  async function updateRefused(handle: WorkflowHandle, payload: unknown, message: RegExp): Promise<void> {
    const error = await handle.executeUpdate(decideUpdate, { args: [payload as never] }).then(
      () => assert.fail('the update should have been refused'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof WorkflowUpdateFailedError, String(error));
    assert.match(String((error.cause as Error | undefined)?.message), message);
  }

  async function acceptedUpdates(handle: WorkflowHandle): Promise<number> {
    const history = await handle.fetchHistory();
    return (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
  }

  const aliasesOf = async (model: string) =>
    (await db.query<{ alias: string; version: number }>('SELECT alias, version FROM model_aliases WHERE model = $1 ORDER BY alias', [model])).rows;
  const routingOf = async (model: string) => ({
    routing: (await db.query('SELECT model, salt FROM model_routing WHERE model = $1', [model])).rows,
    routes: (await db.query('SELECT version, weight, mode, variant FROM routes WHERE model = $1 ORDER BY version', [model])).rows,
  });

  it('first release: approval → champion; the validator refuses a non-approver, the requester, another version — with no history event', async () => {
    const model = 'first_release';
    const { candidate } = await modelWithCandidate(model, { firstRelease: true });
    await withWorker(async () => {
      const handle = await start({ model, requestedBy: 'alice', approval: { approvers: ['alice', 'bob'], timeoutSeconds: 600 } });
      const waiting = await waitForStatus(handle, (s) => s.pendingApproval !== null, 'the first-release approval');
      assert.equal(waiting.firstRelease, true);
      assert.equal(waiting.stage, 'awaiting-approval');
      assert.equal(waiting.pendingApproval?.version, candidate);

      await updateRefused(handle, { decision: 'approve', approver: 'mallory' }, /mallory is not an approver of this rollout/);
      await updateRefused(handle, { decision: 'approve', approver: 'alice' }, /four-eyes: alice requested this rollout/);
      await updateRefused(handle, { decision: 'approve', approver: 'bob', version: candidate + 7 }, new RegExp(`for version ${candidate + 7} but this rollout is of version ${candidate}`));
      await updateRefused(handle, { decision: 'perhaps', approver: 'bob' }, /decide: decision/);
      assert.equal(await acceptedUpdates(handle), 0, 'refused updates leave no event in history');

      const record = await handle.executeUpdate(decideUpdate, { args: [{ decision: 'approve', approver: 'bob', reason: 'looks good', version: candidate }] });
      assert.equal(record.accepted, true);
      const result = await handle.result();
      assert.equal(result.outcome, 'promoted');
      assert.equal(result.firstRelease, true);
      assert.deepEqual(result.skippedSteps, ['shadow', 'canary-5', 'canary-25', 'canary-50', 'canary-100']);
      assert.equal(await acceptedUpdates(handle), 1);

      assert.deepEqual(await aliasesOf(model), [
        { alias: 'candidate', version: candidate },
        { alias: 'champion', version: candidate },
      ]);
      const history = await listAliasHistory(db, model);
      assert.equal(history.length, 1);
      assert.deepEqual(
        { alias: history[0]!.alias, from: history[0]!.fromVersion, to: history[0]!.toVersion, by: history[0]!.movedBy, workflowId: history[0]!.workflowId },
        { alias: 'champion', from: null, to: candidate, by: 'bob', workflowId: handle.workflowId },
      );
      const approvals = await listApprovals(db, { workflowId: handle.workflowId, runId: result.runId });
      assert.equal(approvals.length, 1);
      assert.deepEqual(
        { approver: approvals[0]!.approver, decision: approvals[0]!.decision, accepted: approvals[0]!.accepted, via: approvals[0]!.via, step: approvals[0]!.step, reason: approvals[0]!.reason },
        { approver: 'bob', decision: 'approve', accepted: true, via: 'update', step: 'canary-100', reason: 'looks good' },
      );
      assert.equal(await activeRollout(db, model), undefined, 'the lease is released');
      assert.deepEqual((await routingOf(model)).routing, [], 'routing cleared: the champion alias serves');
      const description = await handle.describe();
      assert.deepEqual(description.searchAttributes.KeelStage, ['promoted']);
      assert.deepEqual(description.searchAttributes.KeelVersion, [candidate]);
    });
  });

  it('decides through the Temporal CLI: `workflow update execute --name decide` and `workflow signal --name decide`; a refused signal is recorded as refused', async () => {
    const model = 'cli_decisions';
    const { champion, candidate } = await modelWithCandidate(model);
    const { address, namespace } = await testTemporal();
    const temporal = await temporalCliPath();
    const cli = (...args: string[]) => run(temporal, [...args, '--address', address, '--namespace', namespace], { timeout: 60_000 });
    await withWorker(async () => {
      const handle = await start({
        model,
        requestedBy: 'alice',
        // approval before 25 %; the analysis has no traffic, stays inconclusive after one extension, and asks a human
        plan: [{ mode: 'live', percent: 25, bakeSeconds: 1, minSamples: 10, requireApproval: true }],
        guardrails: { maxBakeExtensions: 1, whenStillInconclusive: 'ask' },
      });
      await waitForStatus(handle, (s) => s.pendingApproval?.step === 'canary-25' && s.analyses.length === 0, 'the planned approval');
      const { stdout } = await cli('workflow', 'update', 'execute', '--workflow-id', handle.workflowId, '--name', 'decide', '--input', JSON.stringify({ decision: 'approve', approver: 'bob', reason: 'from the CLI' }));
      assert.match(stdout, /bob/);

      const inconclusive = await waitForStatus(handle, (s) => s.pendingApproval !== null && s.analyses.length === 2, 'the approval after inconclusive analyses');
      assert.match(inconclusive.pendingApproval!.reason, /inconclusive after 1 bake extensions/);
      assert.deepEqual(inconclusive.analyses.map((a) => [a.look, a.verdict]), [[1, 'inconclusive'], [2, 'inconclusive']]);
      assert.deepEqual(inconclusive.weights, { control: 0.75, candidate: 0.25, shadow: false });
      // the requester signals: refused, recorded as refused
      await cli('workflow', 'signal', '--workflow-id', handle.workflowId, '--name', 'decide', '--input', JSON.stringify({ decision: 'approve', approver: 'alice' }));
      await waitForStatus(handle, (s) => s.decisions.some((d) => !d.accepted), 'the refused signal');
      await cli('workflow', 'signal', '--workflow-id', handle.workflowId, '--name', 'decide', '--input', JSON.stringify({ decision: 'approve', approver: 'carol', reason: 'no traffic is fine' }));
      const result = await handle.result();
      assert.equal(result.outcome, 'promoted');

      const approvals = await listApprovals(db, { workflowId: handle.workflowId, runId: result.runId });
      assert.deepEqual(
        approvals.map((a) => [a.via, a.approver, a.accepted, a.step]),
        [
          ['update', 'bob', true, 'canary-25'],
          ['signal', 'alice', false, 'canary-25'],
          ['signal', 'carol', true, 'canary-25'],
        ],
      );
      assert.match(approvals[1]!.refusal ?? '', /four-eyes/);
      assert.equal((await listAnalyses(db, { workflowId: handle.workflowId, runId: result.runId })).length, 2);
      assert.deepEqual(await aliasesOf(model), [
        { alias: 'candidate', version: candidate },
        { alias: 'champion', version: candidate },
        { alias: 'previous', version: champion },
      ]);
      const moves = await listAliasHistory(db, model);
      assert.deepEqual(
        moves.map((m) => [m.alias, m.fromVersion, m.toVersion, m.movedBy]),
        [
          ['champion', champion, candidate, 'carol'],
          ['previous', null, champion, 'carol'],
        ],
      );
      assert.deepEqual((await routingOf(model)).routing, []);
    });
  });

  it('abort rolls back: routing as before, aliases unchanged, reason tagged, lease released; meanwhile a second rollout of the model is refused naming the first', async () => {
    const model = 'abort_me';
    const { champion, candidate } = await modelWithCandidate(model);
    const aliasesBefore = await aliasesOf(model);
    const routingBefore = await routingOf(model);
    await withWorker(async () => {
      const handle = await start({ model, requestedBy: 'alice', plan: [{ mode: 'live', percent: 5, bakeSeconds: 3600 }] }, `rollout-${model}-v${candidate}`);
      const baking = await waitForStatus(handle, (s) => s.stage === 'canary-5', 'the 5 % step');
      assert.deepEqual(baking.weights, { control: 0.95, candidate: 0.05, shadow: false });
      assert.deepEqual((await routingOf(model)).routes, [
        { version: champion, weight: 0.95, mode: 'live', variant: 'control' },
        { version: candidate, weight: 0.05, mode: 'live', variant: 'candidate' },
      ]);
      await updateRefused(handle, { decision: 'approve', approver: 'bob' }, /no step is waiting for approval \(stage canary-5\)/);

      const second = await start({ model, version: candidate, requestedBy: 'dave' });
      await expectInvalidInputFailure(
        second.result(),
        `model ${model} already has a rollout running: workflow rollout-${model}-v${candidate} (version ${candidate}, step canary-5); abort it or wait for it to end`,
      );

      const paused = await handle.executeUpdate(pauseUpdate, { args: [{ by: 'carol' }] });
      assert.equal(paused.paused, true);
      assert.equal((await handle.executeUpdate(resumeUpdate, { args: [{ by: 'carol' }] })).paused, false);
      await handle.executeUpdate(abortUpdate, { args: [{ by: 'carol', reason: 'saw errors on the dashboard' }] });
      const result = await handle.result();
      assert.equal(result.outcome, 'aborted');
      assert.equal(result.reason, 'aborted by carol: saw errors on the dashboard');
      assert.deepEqual(await aliasesOf(model), aliasesBefore);
      assert.deepEqual(await routingOf(model), routingBefore);
      assert.deepEqual(await listAliasHistory(db, model), []);
      const tags = await versionTags(db, model, candidate);
      assert.equal(tags.rollback_reason, 'aborted by carol: saw errors on the dashboard');
      assert.equal(tags.rolled_back_by, 'carol');
      assert.equal(await activeRollout(db, model), undefined);
      const { rows } = await db.query('SELECT status, ended_at IS NOT NULL AS ended FROM rollouts WHERE workflow_id = $1', [handle.workflowId]);
      assert.deepEqual(rows, [{ status: 'aborted', ended: true }]);
      assert.deepEqual((await handle.describe()).searchAttributes.KeelStage, ['aborted']);
    });
  });

  it('an approval timeout with onTimeout reject ends the rollout rejected, champion unchanged', async () => {
    const model = 'nobody_answers';
    const { champion } = await modelWithCandidate(model);
    await withWorker(async () => {
      const handle = await start({ model, plan: [{ mode: 'live', percent: 100, bakeSeconds: 0, requireApproval: true }], approval: { timeoutSeconds: 2, onTimeout: 'reject' } });
      const result = await handle.result();
      assert.equal(result.outcome, 'rejected');
      assert.match(result.reason, /canary-100 rejected by system:approval-timeout: no decision within 2 s/);
      assert.deepEqual((await aliasesOf(model)).find((a) => a.alias === 'champion'), { alias: 'champion', version: champion });
      const approvals = await listApprovals(db, { workflowId: handle.workflowId, runId: result.runId });
      assert.deepEqual(approvals.map((a) => [a.via, a.decision, a.accepted]), [['timeout', 'reject', true]]);
      assert.equal(await activeRollout(db, model), undefined);
    });
  });

  it('a version that is already the champion, or an unknown model, fails at once as InvalidInput', async () => {
    const model = 'already_champion';
    const { champion } = await modelWithCandidate(model);
    await setAlias(db, model, 'candidate', champion!);
    await withWorker(async () => {
      await expectInvalidInputFailure((await start({ model })).result(), `version ${champion} of ${model} is already the champion`);
      await expectInvalidInputFailure((await start({ model: 'no_such_model' })).result(), 'no model named no_such_model');
    });
  });
});
