/**
 * `rollout`: takes the model's lease → for each plan step (approval first where the plan asks):
 * routing → every live gateway acknowledges → bake (pause / abort interrupt it) → analysis
 * (fail: roll back at once; inconclusive: extend the bake, then ask a human or roll back) →
 * promotion (champion → candidate, old champion → previous, routing cleared) or rollback; the
 * lease is released on every end. A model without a champion gets a first release: approval → 100 %.
 * Deterministic: durations and thresholds are inputs, every side effect is an activity.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  currentUpdateInfo,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { RolloutAnalysisActivities } from '../activities/rollout-analysis.js';
import type { TrafficActivities } from '../activities/traffic.js';
import { KeelError } from '../lib/errors.js';
import type { DecisionRecord, RolloutEnd, RolloutOutcome, RolloutResult, RolloutStatus } from '../lib/schemas/rollout-messages.js';
import {
  abortUpdate,
  decideSignal,
  decideUpdate,
  MESSAGE_DESCRIPTIONS,
  pauseUpdate,
  resumeUpdate,
  stageOf,
  statusQuery,
} from '../lib/schemas/rollout-messages.js';
import type { Decision, RolloutStep } from '../lib/schemas/rollout.js';
import { controlSchema, decisionSchema, rolloutInputSchema } from '../lib/schemas/rollout.js';
import { describeZodError } from '../lib/validation.js';
import type { RolloutLease } from '../stores/rollouts.js';
import { parseWorkflowInput } from './input.js';

const NON_RETRYABLE = ['InvalidInput', 'NotFound', 'GatewaysLagging'];
const RETRY = { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: NON_RETRYABLE };

interface Ending {
  outcome: RolloutOutcome;
  reason: string;
  by: string;
}

/** Refuses a message with a clear, non-retryable reason (validators: the update leaves no history). */
const refuse = (message: string) => ApplicationFailure.create({ type: 'InvalidInput', message, nonRetryable: true });

export async function rollout(rawInput: unknown = {}): Promise<RolloutResult> {
  const config = parseWorkflowInput(rolloutInputSchema, rawInput);
  const info = workflowInfo();
  const run = { workflowId: info.workflowId, runId: info.runId };
  const traffic = proxyActivities<TrafficActivities>({ startToCloseTimeout: '2 minutes', retry: RETRY });
  const gateways = proxyActivities<TrafficActivities>({
    startToCloseTimeout: `${config.guardrails.gatewayAckTimeoutSeconds + 60} seconds`,
    heartbeatTimeout: '30 seconds',
    retry: { ...RETRY, maximumAttempts: 3 },
  });
  const analysis = proxyActivities<RolloutAnalysisActivities>({ startToCloseTimeout: '15 minutes', retry: { ...RETRY, maximumAttempts: 5 } });

  const state: RolloutStatus = {
    workflowId: info.workflowId,
    model: config.model,
    version: null,
    champion: null,
    requestedBy: config.requestedBy,
    stage: 'starting',
    firstRelease: false,
    stepIndex: null,
    plan: [],
    weights: null,
    windowFrom: null,
    paused: false,
    pendingApproval: null,
    decisions: [],
    analyses: [],
    outcome: null,
    reason: null,
  };
  let lease: RolloutLease | undefined;
  /** The decision accepted for the approval pending now (reset at each ask). */
  let decided: DecisionRecord | undefined;
  let abortRequest: { by: string; reason: string } | undefined;
  let signalCount = 0;

  const setStage = (stage: string) => {
    state.stage = stage;
    upsertSearchAttributes({ KeelStage: [stage] });
  };

  /** Why a decision is refused, or undefined: the rules of the synchronous validator. */
  const refusalOf = (decision: Decision): string | undefined => {
    const { approvers, fourEyes } = config.approval;
    if (approvers && !approvers.includes(decision.approver)) return `${decision.approver} is not an approver of this rollout`;
    if (fourEyes && decision.approver === config.requestedBy) return `four-eyes: ${decision.approver} requested this rollout and cannot decide on it`;
    const pending = state.pendingApproval;
    if (!pending) return `no step is waiting for approval (stage ${state.stage})`;
    if (decision.version !== undefined && decision.version !== pending.version) {
      return `the decision is for version ${decision.version} but this rollout is of version ${pending.version}`;
    }
    if (decided) return `${pending.step} was already decided: ${decided.decision} by ${decided.approver}`;
    return undefined;
  };
  const parseDecision = (raw: unknown): Decision => {
    const parsed = decisionSchema.safeParse(raw);
    if (!parsed.success) throw refuse(`decide: ${describeZodError(parsed.error).message}`);
    return parsed.data;
  };
  const recordOf = (decision: Decision, via: DecisionRecord['via'], messageId: string, refusal?: string): DecisionRecord => ({
    decision: decision.decision,
    approver: decision.approver,
    reason: decision.reason,
    step: state.pendingApproval?.step ?? state.stage,
    version: state.pendingApproval?.version ?? lease?.version ?? 0,
    via,
    messageId,
    accepted: refusal === undefined,
    ...(refusal === undefined ? {} : { refusal }),
    at: new Date().toISOString(),
  });
  const writeDecision = (record: DecisionRecord) =>
    traffic.recordApproval({
      ...run,
      model: config.model,
      version: record.version,
      step: record.step,
      approver: record.approver,
      decision: record.decision,
      reason: record.reason,
      via: record.via,
      messageId: record.messageId,
      accepted: record.accepted,
      refusal: record.refusal ?? null,
      decidedAt: record.at,
    });
  /** Accepts a decision for the pending approval (synchronously, so a concurrent second one is refused). */
  const accept = (record: DecisionRecord) => {
    decided = record;
    state.decisions.push(record);
  };

  setHandler(statusQuery, () => state, { description: MESSAGE_DESCRIPTIONS.status });
  setHandler(
    decideUpdate,
    async (raw) => {
      const record = recordOf(parseDecision(raw), 'update', currentUpdateInfo()?.id ?? `update-${state.decisions.length + 1}`);
      accept(record);
      await writeDecision(record);
      return record;
    },
    {
      description: MESSAGE_DESCRIPTIONS.decide,
      validator: (raw) => {
        const refusal = refusalOf(parseDecision(raw));
        if (refusal) throw refuse(refusal);
      },
    },
  );
  setHandler(
    decideSignal,
    async (raw) => {
      const messageId = `signal-${++signalCount}`;
      const parsed = decisionSchema.safeParse(raw);
      if (!parsed.success) {
        log.warn('refused a decide signal with an invalid payload', { messageId, problem: describeZodError(parsed.error).message });
        return;
      }
      const refusal = refusalOf(parsed.data);
      const record = recordOf(parsed.data, 'signal', messageId, refusal);
      if (refusal) state.decisions.push(record);
      else accept(record);
      // Before the lease there is no rollout row to attach the decision to.
      if (lease) await writeDecision(record);
    },
    { description: MESSAGE_DESCRIPTIONS.decideSignal },
  );
  const control = (raw: unknown) => {
    const parsed = controlSchema.safeParse(raw ?? {});
    if (!parsed.success) throw refuse(describeZodError(parsed.error).message);
    return parsed.data;
  };
  const ended = () => state.outcome !== null || abortRequest !== undefined;
  setHandler(
    pauseUpdate,
    (raw?: unknown) => {
      control(raw);
      state.paused = true;
      return state;
    },
    {
      description: MESSAGE_DESCRIPTIONS.pause,
      validator: (raw?: unknown) => {
        control(raw);
        if (ended()) throw refuse('the rollout is ending; nothing to pause');
        if (state.paused) throw refuse('the rollout is already paused');
      },
    },
  );
  setHandler(
    resumeUpdate,
    (raw?: unknown) => {
      control(raw);
      state.paused = false;
      return state;
    },
    {
      description: MESSAGE_DESCRIPTIONS.resume,
      validator: (raw?: unknown) => {
        control(raw);
        if (!state.paused) throw refuse('the rollout is not paused');
      },
    },
  );
  setHandler(
    abortUpdate,
    (raw?: unknown) => {
      abortRequest = control(raw);
      return state;
    },
    {
      description: MESSAGE_DESCRIPTIONS.abort,
      validator: (raw?: unknown) => {
        control(raw);
        if (ended()) throw refuse('the rollout is already ending');
      },
    },
  );

  upsertSearchAttributes({ KeelModel: [config.model], KeelStage: ['starting'] });
  try {
    lease = await traffic.acquireRolloutLease({ ...run, model: config.model, version: config.version, requestedBy: config.requestedBy });
  } catch (error) {
    setStage('failed');
    throw asWorkflowFailure(error);
  }
  const held = lease;
  state.version = held.version;
  state.champion = held.championVersion;
  state.firstRelease = held.championVersion === null;
  upsertSearchAttributes({ KeelVersion: [held.version] });
  // No champion, no control traffic to compare with: approval → 100 %.
  const steps: RolloutStep[] = state.firstRelease ? [{ mode: 'live', percent: 100, bakeSeconds: 0, minSamples: 1, requireApproval: true }] : config.plan;
  const skippedSteps = state.firstRelease ? config.plan.map(stageOf) : [];
  state.plan = steps.map((step) => ({ ...step, stage: stageOf(step), status: 'pending' }));

  const aborted = (): Ending => ({ outcome: 'aborted', reason: `aborted by ${abortRequest!.by}${abortRequest!.reason ? `: ${abortRequest!.reason}` : ''}`, by: abortRequest!.by });

  const bake = async (seconds: number): Promise<void> => {
    let remainingMs = seconds * 1000;
    while (remainingMs > 0 && !abortRequest) {
      if (state.paused) {
        await condition(() => !state.paused || abortRequest !== undefined);
        continue;
      }
      const started = Date.now();
      await condition(() => state.paused || abortRequest !== undefined, remainingMs);
      remainingMs -= Date.now() - started;
    }
  };

  /** Asks for a decision on `stage`; undefined when the rollout was aborted meanwhile. */
  const askApproval = async (stage: string, reason: string): Promise<DecisionRecord | undefined> => {
    decided = undefined;
    await traffic.markRolloutStage({ ...run, stage: `awaiting-approval:${stage}` });
    const askedAt = Date.now();
    const { timeoutSeconds, onTimeout } = config.approval;
    state.pendingApproval = {
      step: stage,
      version: held.version,
      reason,
      askedAt: new Date(askedAt).toISOString(),
      deadline: new Date(askedAt + timeoutSeconds * 1000).toISOString(),
      overdue: false,
    };
    setStage('awaiting-approval');
    const answered = () => decided !== undefined || abortRequest !== undefined;
    // A decision accepted in the same activation as the timer still counts.
    if (!(await condition(answered, `${timeoutSeconds} seconds`)) && !answered()) {
      if (onTimeout === 'reject') {
        const record = recordOf({ decision: 'reject', approver: 'system:approval-timeout', reason: `no decision within ${timeoutSeconds} s` }, 'timeout', `timeout-${stage}`);
        accept(record);
        await writeDecision(record);
      } else {
        state.pendingApproval.overdue = true;
        await condition(answered);
      }
    }
    state.pendingApproval = null;
    return abortRequest ? undefined : decided;
  };
  const rejected = (decision: DecisionRecord): Ending => ({
    outcome: 'rejected',
    reason: `${decision.step} rejected by ${decision.approver}${decision.reason ? `: ${decision.reason}` : ''}`,
    by: decision.approver,
  });

  const runStep = async (index: number, step: RolloutStep): Promise<Ending | undefined> => {
    const entry = state.plan[index]!;
    const stage = entry.stage;
    state.stepIndex = index;
    if (step.requireApproval) {
      const decision = await askApproval(stage, state.firstRelease ? 'first release: the model has no champion yet' : 'the plan asks for an approval before this step');
      if (!decision) return aborted();
      if (decision.decision === 'reject') return rejected(decision);
    }
    await condition(() => !state.paused || abortRequest !== undefined);
    if (abortRequest) return aborted();
    setStage(stage);
    entry.status = 'running';
    state.windowFrom = null;
    const { generation } = await traffic.routeStep({ ...run, model: config.model, control: held.championVersion, candidate: held.version, mode: step.mode, percent: step.percent, stage });
    const share = step.mode === 'shadow' ? 0 : step.percent / 100;
    state.weights = { control: held.championVersion === null ? 0 : 1 - share, candidate: held.championVersion === null ? 1 : share, shadow: step.mode === 'shadow' };
    try {
      await gateways.awaitGateways({ generation, timeoutSeconds: config.guardrails.gatewayAckTimeoutSeconds });
    } catch (error) {
      if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && error.cause.type === 'GatewaysLagging') {
        entry.status = 'failed';
        return { outcome: 'rolled-back', reason: `${stage}: ${error.cause.message}`, by: 'rollout' };
      }
      throw error;
    }
    const from = new Date().toISOString();
    state.windowFrom = from;
    // The 100 % step has no control traffic left to compare with.
    const analysed = held.championVersion !== null && share < 1;
    const lookEnds: string[] = [];
    for (let extensions = 0; ; extensions++) {
      await bake(step.bakeSeconds);
      if (abortRequest) return aborted();
      if (!analysed) break;
      lookEnds.push(new Date().toISOString());
      const result = await analysis.analyseRolloutStep({
        ...run,
        model: config.model,
        control: held.championVersion!,
        candidate: held.version,
        stepIndex: index,
        stage,
        look: lookEnds.length,
        step: { mode: step.mode, minSamples: step.minSamples },
        guardrails: config.guardrails,
        from,
        lookEnds: [...lookEnds],
      });
      state.analyses.push(result);
      if (result.verdict === 'pass') break;
      if (result.verdict === 'fail') {
        entry.status = 'failed';
        const failed = result.checks.filter((c) => c.verdict === 'fail').map((c) => `${c.check} (${c.reason})`);
        return { outcome: 'rolled-back', reason: `${stage}: analysis failed: ${failed.join('; ')}`, by: 'rollout' };
      }
      if (extensions < config.guardrails.maxBakeExtensions) continue;
      if (config.guardrails.whenStillInconclusive === 'rollback') {
        entry.status = 'failed';
        return { outcome: 'rolled-back', reason: `${stage}: analysis still inconclusive after ${extensions} bake extensions`, by: 'rollout' };
      }
      const decision = await askApproval(stage, `analysis still inconclusive after ${extensions} bake extensions`);
      if (!decision) return aborted();
      if (decision.decision === 'reject') return rejected(decision);
      break;
    }
    entry.status = 'passed';
    return undefined;
  };

  const finish = async (status: RolloutEnd, reason: string, by: string): Promise<RolloutResult> => {
    state.outcome = status;
    state.reason = reason;
    state.pendingApproval = null;
    if (status === 'promoted') {
      const promoted = await traffic.promoteRollout({ ...run, movedBy: by });
      if (promoted.generation !== null) await settle(promoted.generation);
    } else {
      const { generation } = await traffic.rollbackRollout({ ...run, status, reason, by });
      if (generation !== null) await settle(generation);
    }
    state.weights = null;
    state.windowFrom = null;
    const result: RolloutResult = {
      ...run,
      model: config.model,
      version: held.version,
      previousChampion: held.championVersion,
      outcome: status,
      reason,
      firstRelease: state.firstRelease,
      skippedSteps,
      decisions: state.decisions,
      analyses: state.analyses,
    };
    await traffic.releaseRolloutLease({ ...run, status, result });
    setStage(status);
    return result;
  };
  /** After promotion or rollback the gateways follow; a lagging one no longer changes the outcome. */
  const settle = async (generation: number) => {
    try {
      await gateways.awaitGateways({ generation, timeoutSeconds: config.guardrails.gatewayAckTimeoutSeconds });
    } catch (error) {
      log.warn('gateways did not acknowledge the final routing in time', { generation, error: String(error) });
    }
  };

  let ending: Ending = { outcome: 'promoted', reason: state.firstRelease ? 'first release approved' : 'every step passed', by: `rollout:${info.workflowId}` };
  try {
    for (const [index, step] of steps.entries()) {
      const stepEnding = await runStep(index, step);
      if (stepEnding) {
        ending = stepEnding;
        break;
      }
    }
    if (ending.outcome === 'promoted') {
      const approver = [...state.decisions].reverse().find((d) => d.accepted && d.decision === 'approve')?.approver;
      ending = { ...ending, by: approver ?? ending.by };
    }
    const result = await finish(ending.outcome, ending.reason, ending.by);
    await condition(allHandlersFinished);
    return result;
  } catch (error) {
    const cancelled = isCancellation(error);
    // An activity's own message says more than "Activity task failed".
    const cause = error instanceof ActivityFailure && error.cause ? error.cause : error;
    const reason = cancelled ? 'the workflow was cancelled' : `failed: ${cause instanceof Error ? cause.message : String(cause)}`;
    // Cleanup must run even when the workflow is being cancelled.
    await CancellationScope.nonCancellable(() => finish(cancelled ? 'cancelled' : 'failed', reason, 'rollout'));
    throw cancelled ? error : asWorkflowFailure(error);
  }
}

/** Bad input from an activity fails the workflow as `InvalidInput` (never retried), with its message. */
function asWorkflowFailure(error: unknown): unknown {
  if (error instanceof KeelError) return ApplicationFailure.create({ type: error.code, message: error.message, nonRetryable: true, details: [{ field: error.field ?? null }] });
  if (error instanceof ActivityFailure && error.cause instanceof ApplicationFailure && NON_RETRYABLE.includes(error.cause.type ?? '')) {
    return ApplicationFailure.create({ type: error.cause.type ?? 'InvalidInput', message: error.cause.message, nonRetryable: true, cause: error });
  }
  return error;
}
