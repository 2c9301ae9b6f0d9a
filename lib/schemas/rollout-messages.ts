/**
 * What the `rollout` workflow answers: its messages (update / signal `decide`, updates `pause`,
 * `resume`, `abort`, query `status`), the descriptions the Temporal Web UI lists them with, its
 * status and result. Defined once here; the workflow and its clients import the same definitions.
 * Workflow-safe (no Node built-ins).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { CheckResult, Verdict } from '../stats/rollout-checks.js';
import type { ControlInput, DecisionInput, RolloutStep } from './rollout.js';

export const decideUpdate = defineUpdate<DecisionRecord, [DecisionInput]>('decide');
export const decideSignal = defineSignal<[DecisionInput]>('decide');
export const pauseUpdate = defineUpdate<RolloutStatus, [ControlInput]>('pause');
export const resumeUpdate = defineUpdate<RolloutStatus, [ControlInput]>('resume');
export const abortUpdate = defineUpdate<RolloutStatus, [ControlInput]>('abort');
export const statusQuery = defineQuery<RolloutStatus>('status');

/** Shown by the Temporal Web UI next to each handler: enough for an approver to type the right JSON. */
export const MESSAGE_DESCRIPTIONS = {
  decide:
    'Approve or reject the step waiting for approval: {"decision": "approve" | "reject", "approver": "<your name>", "reason": "...", "version": <optional, the version you reviewed>}. ' +
    'Refused (nothing recorded) for an unknown approver, the requester under four-eyes, another version, or when no step waits.',
  decideSignal: 'Same payload as the update `decide`, for tools that can only signal; a refused decision is recorded as refused in the approvals table.',
  pause: 'Pause the rollout: the bake clock stops, traffic stays as it is. Payload {"by": "<name>", "reason": "..."} (optional).',
  resume: 'Resume a paused rollout. Payload {"by": "<name>", "reason": "..."} (optional).',
  abort: 'Abort: roll back to the champion now (aliases unchanged), recording who aborted. Payload {"by": "<name>", "reason": "..."}.',
  status: 'Step, weights, analyses, pending approval and decisions of this rollout.',
} as const;

export type StepStatus = 'pending' | 'running' | 'passed' | 'failed' | 'skipped';

export interface DecisionRecord {
  decision: 'approve' | 'reject';
  approver: string;
  reason: string;
  /** The step decided on (its stage name, e.g. `canary-50`). */
  step: string;
  version: number;
  /** `update` / `signal` / `timeout` (the approval policy's onTimeout). */
  via: 'update' | 'signal' | 'timeout';
  /** The update id, or `signal-<n>` / `timeout-<n>`: the idempotency key of the approvals row. */
  messageId: string;
  accepted: boolean;
  /** Why a decision was refused (signals only: refused updates never reach history). */
  refusal?: string;
  at: string;
}

export interface PendingApproval {
  step: string;
  version: number;
  /** Why a human is asked: the plan, a first release, or an analysis that stayed inconclusive. */
  reason: string;
  askedAt: string;
  deadline: string;
  /** The timeout passed under onTimeout `hold`: still waiting. */
  overdue: boolean;
}

export interface StepAnalysis {
  stepIndex: number;
  stage: string;
  /** 1 for the first analysis of a step, +1 per bake extension. */
  look: number;
  verdict: Verdict;
  checks: CheckResult[];
  window: { from: string; to: string };
}

export type RolloutOutcome = 'promoted' | 'rolled-back' | 'rejected' | 'aborted';
/** How a rollout ended: an outcome, or `failed` / `cancelled` (the workflow fails / is cancelled after rolling back). */
export type RolloutEnd = RolloutOutcome | 'failed' | 'cancelled';

export interface RolloutStatus {
  workflowId: string;
  model: string;
  version: number | null;
  champion: number | null;
  requestedBy: string;
  /** The KeelStage search attribute: starting, shadow, canary-5, …, awaiting-approval, promoted, rolled-back, … */
  stage: string;
  firstRelease: boolean;
  stepIndex: number | null;
  plan: Array<RolloutStep & { stage: string; status: StepStatus }>;
  /** Live shares and shadow flag of the current routing (null before the first step). */
  weights: { control: number; candidate: number; shadow: boolean } | null;
  /** When the current step's analysis window opened (every live gateway had applied its routing). */
  windowFrom: string | null;
  paused: boolean;
  pendingApproval: PendingApproval | null;
  decisions: DecisionRecord[];
  analyses: StepAnalysis[];
  outcome: RolloutEnd | null;
  reason: string | null;
}

export interface RolloutResult {
  workflowId: string;
  runId: string;
  model: string;
  version: number;
  /** The champion before the rollout (now `previous` when promoted). */
  previousChampion: number | null;
  outcome: RolloutEnd;
  reason: string;
  firstRelease: boolean;
  /** Plan steps not run (a first release skips shadow and canary: there is no control traffic). */
  skippedSteps: string[];
  decisions: DecisionRecord[];
  analyses: StepAnalysis[];
}

/** The stage name of a step: `shadow`, `canary-5`, …, `canary-100`. */
export function stageOf(step: Pick<RolloutStep, 'mode' | 'percent'>): string {
  return step.mode === 'shadow' ? 'shadow' : `canary-${step.percent}`;
}
