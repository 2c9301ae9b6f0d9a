import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { RolloutResult, RolloutStatus } from '../../lib/schemas/rollout-messages.js';
import { abortUpdate, decideUpdate, pauseUpdate, resumeUpdate, statusQuery } from '../../lib/schemas/rollout-messages.js';
import type { RolloutInput } from '../../lib/schemas/rollout.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { setAlias } from '../../stores/registry.js';
import { markGatewayStopped, registerGatewayInstance } from '../../stores/routes.js';
import { activeRollout, listAliasHistory, listAnalyses, listApprovals, versionTags } from '../../stores/rollouts.js';
import { freshDatabase, temporalCliPath, testDatabaseUrl, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { registerServedModel } from '../helpers/served-models.js';
import { tempDir } from '../helpers/temp.js';
import { Random } from '../../lib/ml/random.js';
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
  // A bounded run time: a rollout that should have failed at once fails the test instead of hanging it.
  const start = (input: RolloutInput, workflowId = `rollout-test-${Math.random().toString(36).slice(2)}`) =>
    client.workflow.start('rollout', { taskQueue: queue, workflowId, args: [input], workflowExecutionTimeout: '4 minutes' }) as Promise<
      WorkflowHandle<(input: RolloutInput) => Promise<RolloutResult>>
    >;

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

  interface LoggedPrediction {
    requestId: string;
    version: number;
    variant: 'control' | 'candidate';
    mode: 'live' | 'shadow';
    probability: number;
    latencyMs: number;
    tsMs: number;
  }
  async function insertPredictions(model: string, rows: LoggedPrediction[]): Promise<void> {
    const column = <K extends keyof LoggedPrediction>(key: K) => rows.map((r) => r[key]);
    await db.query(
      `INSERT INTO predictions (request_id, model, version, variant, mode, features, output, latency_ms, ts)
       SELECT r, $1, v, n, m, '{}'::jsonb, jsonb_build_object('prediction', (p > 0.5)::int, 'probability', p), l, to_timestamp(t / 1000.0)
         FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::float8[], $7::float8[], $8::float8[]) AS x(r, v, n, m, p, l, t)`,
      [model, column('requestId'), column('version'), column('variant'), column('mode'), column('probability'), column('latencyMs'), column('tsMs')],
    );
  }
  async function insertFeedback(labels: Array<[string, number]>): Promise<void> {
    await db.query('INSERT INTO feedback (request_id, label) SELECT * FROM unnest($1::text[], $2::float8[])', [labels.map((l) => l[0]), labels.map((l) => l[1])]);
  }
  /** A churn-like score: positives (churners) score higher, with noise. */
  const churnScore = (label: number, random: () => number) => Math.min(0.99, Math.max(0.01, 0.25 + 0.3 * label + 0.4 * (random() - 0.5)));

  /** 1 000 live requests per variant with feedback, inside the step's window; churn rate per variant as given. */
  async function logLiveTraffic(model: string, windowFrom: string, arms: Array<[variant: 'control' | 'candidate', version: number, churnRate: number]>, seed: number): Promise<void> {
    const rng = new Random(seed);
    const random = () => rng.next();
    const from = Date.parse(windowFrom);
    const rows: LoggedPrediction[] = [];
    const labels: Array<[string, number]> = [];
    for (const [variant, version, churnRate] of arms) {
      for (let i = 0; i < 1000; i++) {
        const requestId = `${model}-${variant}-${seed}-${i}`;
        const label = random() < churnRate ? 1 : 0;
        rows.push({ requestId, version, variant, mode: 'live', probability: churnScore(label, random), latencyMs: 5 + 10 * random(), tsMs: from + 100 + i });
        labels.push([requestId, label]);
      }
    }
    await insertPredictions(model, rows);
    await insertFeedback(labels);
  }

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
      await expectInvalidInputFailure(
        (await start({ model, requestedBy: 'dave' })).result(),
        `model ${model} already has a rollout running: workflow ${handle.workflowId} (version ${candidate}, step awaiting-approval:canary-25); abort it or wait for it to end`,
      );
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
      const workflowId = `rollout-${model}-v${candidate}-${Date.now()}`;
      const handle = await start({ model, requestedBy: 'alice', plan: [{ mode: 'live', percent: 5, bakeSeconds: 3600 }] }, workflowId);
      const baking = await waitForStatus(handle, (s) => s.stage === 'canary-5' && s.windowFrom !== null, 'the 5 % step');
      assert.deepEqual(baking.weights, { control: 0.95, candidate: 0.05, shadow: false });
      assert.deepEqual((await routingOf(model)).routes, [
        { version: champion, weight: 0.95, mode: 'live', variant: 'control' },
        { version: candidate, weight: 0.05, mode: 'live', variant: 'candidate' },
      ]);
      await updateRefused(handle, { decision: 'approve', approver: 'bob' }, /no step is waiting for approval \(stage canary-5\)/);

      const second = await start({ model, version: candidate, requestedBy: 'dave' });
      await expectInvalidInputFailure(
        second.result(),
        `model ${model} already has a rollout running: workflow ${workflowId} (version ${candidate}, step canary-5); abort it or wait for it to end`,
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

  it('an approval timeout with onTimeout hold keeps waiting (overdue) and still takes a decision', async () => {
    const model = 'hold_on';
    const { candidate } = await modelWithCandidate(model);
    await withWorker(async () => {
      const handle = await start({ model, plan: [{ mode: 'live', percent: 100, bakeSeconds: 0, requireApproval: true }], approval: { timeoutSeconds: 1, onTimeout: 'hold' } });
      const overdue = await waitForStatus(handle, (s) => s.pendingApproval?.overdue === true, 'the overdue approval');
      assert.equal(overdue.stage, 'awaiting-approval');
      await handle.executeUpdate(decideUpdate, { args: [{ decision: 'approve', approver: 'bob' }] });
      const result = await handle.result();
      assert.equal(result.outcome, 'promoted');
      assert.deepEqual((await aliasesOf(model)).find((a) => a.alias === 'champion'), { alias: 'champion', version: candidate });
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
  it('two approvals sent at once: one is accepted, the other refused as already decided; the champion moves once', async () => {
    const model = 'double_approve';
    const { candidate } = await modelWithCandidate(model, { firstRelease: true });
    await withWorker(async () => {
      const handle = await start({ model, requestedBy: 'alice' });
      await waitForStatus(handle, (s) => s.pendingApproval !== null, 'the approval');
      const outcomes = await Promise.allSettled(
        ['bob', 'carol'].map((approver) => handle.executeUpdate(decideUpdate, { args: [{ decision: 'approve', approver }] })),
      );
      assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, JSON.stringify(outcomes));
      const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      assert.match(String((refused.reason as WorkflowUpdateFailedError).cause?.message), /already decided|no step is waiting/);
      const result = await handle.result();
      assert.equal(result.outcome, 'promoted');
      assert.equal(await acceptedUpdates(handle), 1);
      assert.deepEqual((await listAliasHistory(db, model)).map((m) => [m.alias, m.toVersion]), [['champion', candidate]]);
      assert.equal((await listApprovals(db, { workflowId: handle.workflowId, runId: result.runId })).length, 1);
    });
  });

  it('cancelling the workflow rolls back and releases the lease before it ends', async () => {
    const model = 'cancel_me';
    const { candidate } = await modelWithCandidate(model);
    const routingBefore = await routingOf(model);
    await withWorker(async () => {
      const handle = await start({ model, plan: [{ mode: 'shadow', percent: 0, bakeSeconds: 3600 }] });
      const shadow = await waitForStatus(handle, (s) => s.stage === 'shadow' && s.windowFrom !== null, 'the shadow step');
      assert.deepEqual(shadow.weights, { control: 1, candidate: 0, shadow: true });
      await handle.cancel();
      const error = await handle.result().then(
        () => assert.fail('a cancelled rollout does not succeed'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof WorkflowFailedError && error.cause instanceof CancelledFailure, String(error));
      assert.deepEqual(await routingOf(model), routingBefore);
      assert.equal(await activeRollout(db, model), undefined);
      const { rows } = await db.query('SELECT status FROM rollouts WHERE workflow_id = $1', [handle.workflowId]);
      assert.deepEqual(rows, [{ status: 'cancelled' }]);
      assert.equal((await versionTags(db, model, candidate)).rollback_reason, 'the workflow was cancelled');
    });
  });

  it('a canary whose candidate is worse on the business metric (generated traffic and feedback) is rolled back automatically', async () => {
    const model = 'worse_candidate';
    const { champion, candidate } = await modelWithCandidate(model);
    const aliasesBefore = await aliasesOf(model);
    const routingBefore = await routingOf(model);
    await withWorker(async () => {
      const handle = await start({
        model,
        plan: [{ mode: 'live', percent: 50, bakeSeconds: 10, minSamples: 300 }],
        guardrails: { minLabels: 300, maxBakeExtensions: 0, whenStillInconclusive: 'rollback', latency: { maxRatio: 3 } },
      });
      const baking = await waitForStatus(handle, (s) => s.stage === 'canary-50' && s.windowFrom !== null, 'the 50 % window');
      // 1 000 requests per variant inside the window; churn (positive label) 10 % under the control, 30 % under the candidate
      await logLiveTraffic(model, baking.windowFrom!, [['control', champion!, 0.1], ['candidate', candidate, 0.3]], 7);

      const result = await handle.result();
      assert.equal(result.outcome, 'rolled-back', result.reason);
      assert.match(result.reason, /canary-50: analysis failed: .*business-positive-label-rate/);
      const business = result.analyses[0]!.checks.find((c) => c.check === 'business-positive-label-rate')!;
      assert.equal(business.verdict, 'fail');
      assert.deepEqual(business.n, { control: 1000, candidate: 1000 });
      assert.deepEqual(await aliasesOf(model), aliasesBefore);
      assert.deepEqual(await routingOf(model), routingBefore);
      assert.match(String((await versionTags(db, model, candidate)).rollback_reason), /business-positive-label-rate/);
      const stored = await listAnalyses(db, { workflowId: handle.workflowId, runId: result.runId });
      assert.deepEqual(stored.map((a) => [a.stage, a.look, a.verdict]), [['canary-50', 1, 'fail']]);
      assert.equal(await activeRollout(db, model), undefined);
    });
  });
  it('a candidate as good as the champion passes shadow (paired agreement) and the canary, then is promoted with the old champion as previous', async () => {
    const model = 'good_candidate';
    const { champion, candidate } = await modelWithCandidate(model);
    await withWorker(async () => {
      const handle = await start({
        model,
        plan: [
          { mode: 'shadow', percent: 0, bakeSeconds: 8, minSamples: 300 },
          { mode: 'live', percent: 50, bakeSeconds: 8, minSamples: 300 },
          { mode: 'live', percent: 100, bakeSeconds: 0 },
        ],
        guardrails: { minLabels: 300, maxBakeExtensions: 0, whenStillInconclusive: 'rollback', latency: { maxRatio: 3 } },
      });
      // shadow: the candidate scores the same 1 000 requests, within ±0.02 of the control
      const shadow = await waitForStatus(handle, (s) => s.stage === 'shadow' && s.windowFrom !== null, 'the shadow window');
      const rng = new Random(11);
      const random = () => rng.next();
      const from = Date.parse(shadow.windowFrom!);
      const paired: LoggedPrediction[] = [];
      for (let i = 0; i < 1000; i++) {
        const requestId = `${model}-shadow-${i}`;
        const probability = churnScore(random() < 0.2 ? 1 : 0, random);
        const candidateProbability = Math.min(0.99, Math.max(0.01, probability + 0.04 * (random() - 0.5)));
        paired.push({ requestId, version: champion!, variant: 'control', mode: 'live', probability, latencyMs: 5 + 10 * random(), tsMs: from + 100 + i });
        paired.push({ requestId, version: candidate, variant: 'candidate', mode: 'shadow', probability: candidateProbability, latencyMs: 5 + 10 * random(), tsMs: from + 150 + i });
      }
      await insertPredictions(model, paired);

      const canary = await waitForStatus(handle, (s) => s.stage === 'canary-50' && s.windowFrom !== null, 'the 50 % window');
      assert.deepEqual(canary.analyses.map((a) => [a.stage, a.verdict]), [['shadow', 'pass']]);
      const agreement = canary.analyses[0]!.checks.find((c) => c.check === 'shadow-agreement')!;
      assert.deepEqual(agreement.n, { control: 1000, candidate: 1000 });
      const routing = await routingOf(model);
      assert.deepEqual(routing.routing, [{ model, salt: `rollout:${model}:v${candidate}` }]);
      await logLiveTraffic(model, canary.windowFrom!, [['control', champion!, 0.2], ['candidate', candidate, 0.2]], 13);

      const result = await handle.result();
      assert.equal(result.outcome, 'promoted', result.reason);
      assert.deepEqual(result.analyses.map((a) => [a.stage, a.verdict]), [['shadow', 'pass'], ['canary-50', 'pass']]);
      assert.deepEqual(
        result.analyses[1]!.checks.map((c) => c.check).sort(),
        ['auc', 'business-positive-label-rate', 'latency-p99', 'score-distribution'],
      );
      assert.deepEqual((await aliasesOf(model)).filter((a) => a.alias !== 'candidate'), [
        { alias: 'champion', version: candidate },
        { alias: 'previous', version: champion },
      ]);
      assert.deepEqual((await listAliasHistory(db, model)).map((m) => [m.alias, m.fromVersion, m.toVersion]), [
        ['champion', champion, candidate],
        ['previous', null, champion],
      ]);
      assert.deepEqual((await routingOf(model)).routing, []);
      assert.deepEqual(await versionTags(db, model, candidate), {});
    });
  });
  it('a live gateway that does not acknowledge the step routing fails the step after its timeout and rolls back', async () => {
    const model = 'deaf_gateway';
    const { candidate } = await modelWithCandidate(model);
    const routingBefore = await routingOf(model);
    // a gateway that heartbeats (fresh last_seen) but never applies a new generation
    await registerGatewayInstance(db, { id: 'gw-deaf', host: 'test', pid: 1 });
    try {
      await withWorker(async () => {
        const handle = await start({ model, plan: [{ mode: 'live', percent: 5, bakeSeconds: 3600 }], guardrails: { gatewayAckTimeoutSeconds: 2 } });
        const result = await handle.result();
        assert.equal(result.outcome, 'rolled-back');
        assert.match(result.reason, /^canary-5: gateways gw-deaf did not apply routing generation \d+ within 2 s$/);
        assert.deepEqual(await routingOf(model), routingBefore);
        assert.equal(await activeRollout(db, model), undefined);
        assert.match(String((await versionTags(db, model, candidate)).rollback_reason), /gw-deaf/);
      });
    } finally {
      await markGatewayStopped(db, 'gw-deaf');
    }
  });

  it('a step whose analysis fails on bad data fails the workflow, after rolling back and releasing the lease', async () => {
    const model = 'bad_log';
    const { champion, candidate } = await modelWithCandidate(model);
    const routingBefore = await routingOf(model);
    await withWorker(async () => {
      const handle = await start({ model, plan: [{ mode: 'live', percent: 50, bakeSeconds: 4, minSamples: 1 }] });
      const baking = await waitForStatus(handle, (s) => s.stage === 'canary-50' && s.windowFrom !== null, 'the 50 % window');
      const ts = Date.parse(baking.windowFrom!) + 100;
      await insertPredictions(model, [
        { requestId: 'bad-1', version: champion!, variant: 'control', mode: 'live', probability: 0.3, latencyMs: 5, tsMs: ts },
        { requestId: 'bad-2', version: candidate, variant: 'candidate', mode: 'live', probability: 0.3, latencyMs: Infinity, tsMs: ts },
      ]);
      const error = await handle.result().then(
        () => assert.fail('the rollout should fail'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof WorkflowFailedError, String(error));
      assert.match(String(error.cause?.message), /candidate\[0\] is Infinity/);
      assert.deepEqual(await routingOf(model), routingBefore);
      assert.equal(await activeRollout(db, model), undefined);
      const { rows } = await db.query('SELECT status FROM rollouts WHERE workflow_id = $1', [handle.workflowId]);
      assert.deepEqual(rows, [{ status: 'failed' }]);
      assert.deepEqual((await handle.describe()).searchAttributes.KeelStage, ['failed']);
    });
  });
});
