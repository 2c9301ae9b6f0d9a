/**
 * The rollout's side effects on traffic and the registry: the per-model lease, step routing
 * (variants `control` / `candidate` with one salt per rollout, so the 5 % stay inside the 25 %),
 * waiting for every live gateway to apply it, approval records, promotion and rollback. Each is
 * idempotent under retry (see stores/rollouts.ts).
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Db } from '../stores/db.js';
import type { ApprovalRecord, RolloutLease, RolloutRun } from '../stores/rollouts.js';
import { acquireRolloutLease, promoteRollout, recordApproval, recordRolloutStep, releaseRolloutLease, rollbackRollout } from '../stores/rollouts.js';
import { setRoutes, waitForGateways, type RouteTargetInput } from '../stores/routes.js';

export interface TrafficDeps {
  db: Db;
}

export interface StepRouting extends RolloutRun {
  model: string;
  control: number | null;
  candidate: number;
  mode: 'shadow' | 'live';
  percent: number;
  stage: string;
}

/** The salt of a rollout's sticky split: the same for all its steps, so units only ever move to the candidate. */
export const rolloutSalt = (model: string, version: number) => `rollout:${model}:v${version}`;

/** The targets of one step: control live (unless 100 %), candidate live at `percent` or shadow. */
export function stepTargets(step: Pick<StepRouting, 'control' | 'candidate' | 'mode' | 'percent'>): RouteTargetInput[] {
  const candidateShare = step.mode === 'shadow' ? 0 : step.percent / 100;
  const targets: RouteTargetInput[] = [];
  if (step.control !== null && candidateShare < 1) targets.push({ version: step.control, mode: 'live', weight: 1 - candidateShare, variant: 'control' });
  targets.push(
    step.mode === 'shadow'
      ? { version: step.candidate, mode: 'shadow', variant: 'candidate' }
      : { version: step.candidate, mode: 'live', weight: step.control === null ? 1 : candidateShare, variant: 'candidate' },
  );
  return targets;
}

export function createTrafficActivities({ db }: TrafficDeps) {
  return {
    /** First activity of a rollout: the model's lease, the version resolved, the champion read. */
    async acquireRolloutLease(request: RolloutRun & { model: string; version: number | string; requestedBy: string }): Promise<RolloutLease> {
      return acquireRolloutLease(db, request);
    },

    /** Ends the lease with the rollout's outcome (a lease already ended by promote / rollback keeps its status). */
    async releaseRolloutLease(request: RolloutRun & { status: 'promoted' | 'rolled-back' | 'rejected' | 'aborted' | 'failed' | 'cancelled'; result: unknown }): Promise<void> {
      await releaseRolloutLease(db, request, request.status, request.result);
    },

    /** Records where the rollout is (what a refused second rollout names), e.g. `awaiting-approval`. */
    async markRolloutStage(request: RolloutRun & { stage: string }): Promise<void> {
      await recordRolloutStep(db, request, request.stage);
    },

    /** Writes a step's routing and returns its generation. */
    async routeStep(step: StepRouting): Promise<{ generation: number }> {
      const { generation } = await setRoutes(db, step.model, stepTargets(step), {
        salt: rolloutSalt(step.model, step.candidate),
        updatedBy: `rollout:${step.workflowId}`,
      });
      await recordRolloutStep(db, step, step.stage);
      return { generation };
    },

    /**
     * Waits until every live gateway has applied `generation`, heartbeating; after `timeoutSeconds`
     * fails (non-retryable `GatewaysLagging`) naming the gateways that did not acknowledge.
     */
    async awaitGateways({ generation, timeoutSeconds, staleAfterSeconds = 10 }: { generation: number; timeoutSeconds: number; staleAfterSeconds?: number }): Promise<{ live: number }> {
      const context = Context.current();
      const deadline = Date.now() + timeoutSeconds * 1000;
      for (;;) {
        const slice = Math.max(0, Math.min(2_000, deadline - Date.now()));
        const result = await waitForGateways(db, generation, { timeoutMs: slice, staleAfterMs: staleAfterSeconds * 1000 });
        if (result.ok) return { live: result.live };
        if (Date.now() >= deadline) {
          throw ApplicationFailure.create({
            type: 'GatewaysLagging',
            nonRetryable: true,
            message: `gateways ${result.lagging.join(', ')} did not apply routing generation ${generation} within ${timeoutSeconds} s`,
            details: [{ lagging: result.lagging, generation }],
          });
        }
        context.heartbeat({ generation, lagging: result.lagging });
      }
    },

    /** Writes one decision (accepted or refused); idempotent on (run, message id). */
    async recordApproval(approval: ApprovalRecord): Promise<{ recorded: boolean }> {
      return { recorded: await recordApproval(db, approval) };
    },

    async promoteRollout(request: RolloutRun & { movedBy: string }) {
      return promoteRollout(db, request, request.movedBy);
    },

    async rollbackRollout(request: RolloutRun & { status: 'rolled-back' | 'rejected' | 'aborted' | 'failed' | 'cancelled'; reason: string; by: string }) {
      return rollbackRollout(db, request, request);
    },
  };
}

export type TrafficActivities = ReturnType<typeof createTrafficActivities>;
