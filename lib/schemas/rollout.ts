/**
 * Input of the `rollout` workflow and the payloads of its messages, shared by the workflow (its
 * first step), and later `keel rollout` and `POST /v1/rollouts`. Every field has a default: `{}`
 * rolls out the churn model's `candidate`. Pure and workflow-safe (zod only).
 */
import { z } from 'zod';
import { identifierSchema } from '../features/identifiers.js';

const DAY = 24 * 3600;

/** One step of the plan. `requireApproval`: a human approves before this step's traffic starts. */
export const rolloutStepSchema = z
  .object({
    /** shadow: the candidate scores a copy of every request, answers still come from the control. */
    mode: z.enum(['shadow', 'live']).default('live'),
    /** Share of live traffic the candidate answers (live steps, > 0); shadow steps take 0. */
    percent: z.number().min(0).max(100).default(0),
    bakeSeconds: z.number().int().min(0).max(30 * DAY).default(3600),
    /** Predictions per variant (labels for the feedback checks: guardrails.minLabels) below which a check is inconclusive. */
    minSamples: z.number().int().min(1).default(500),
    requireApproval: z.boolean().default(false),
  })
  .strict()
  .superRefine((step, ctx) => {
    if (step.mode === 'live' && step.percent <= 0) ctx.addIssue({ code: 'custom', path: ['percent'], message: 'a live step needs percent > 0' });
    if (step.mode === 'shadow' && step.percent !== 0) ctx.addIssue({ code: 'custom', path: ['percent'], message: 'a shadow step serves no live traffic: percent must be 0' });
  });
export type RolloutStep = z.output<typeof rolloutStepSchema>;

export const DEFAULT_PLAN: z.input<typeof rolloutStepSchema>[] = [
  { mode: 'shadow', percent: 0 },
  { mode: 'live', percent: 5 },
  { mode: 'live', percent: 25 },
  { mode: 'live', percent: 50, requireApproval: true },
  { mode: 'live', percent: 100 },
];

export const approvalPolicySchema = z
  .object({
    /** Who may decide; omitted: anyone the surface admits (over HTTP, a key with role approver). */
    approvers: z.array(z.string().min(1).max(200)).min(1).optional(),
    /** The person who requested the rollout cannot approve it. */
    fourEyes: z.boolean().default(true),
    timeoutSeconds: z.number().int().min(1).max(90 * DAY).default(7 * DAY),
    /** What an unanswered approval does at its timeout: reject (roll back) or hold (keep waiting). */
    onTimeout: z.enum(['reject', 'hold']).default('reject'),
  })
  .strict();
export type ApprovalPolicy = z.output<typeof approvalPolicySchema>;

/** A declarative business metric: the rate of positive labels (feedback) or positive predictions per variant. */
export const businessMetricSchema = z
  .object({
    metric: z.enum(['positive-label-rate', 'positive-prediction-rate']).default('positive-label-rate'),
    /** Churn: a positive label is a churned customer, so lower is better. */
    direction: z.enum(['lower-is-better', 'higher-is-better']).default('lower-is-better'),
    /** sequential: mSPRT over every look of the step (no false-alarm inflation); fixed: two-proportion z-test. */
    test: z.enum(['sequential', 'fixed']).default('sequential'),
    /** mSPRT mixing standard deviation. */
    tau: z.number().gt(0).default(0.05),
  })
  .strict();

export const guardrailsSchema = z
  .object({
    alpha: z.number().gt(0).lt(1).default(0.05),
    latency: z.object({ quantile: z.number().gt(0).lt(1).default(0.99), maxRatio: z.number().gt(0).default(1.5) }).strict().prefault({}),
    scoreDistribution: z.object({ psiThreshold: z.number().gt(0).default(0.2), bins: z.number().int().min(2).max(100).default(10) }).strict().prefault({}),
    shadow: z
      .object({
        decisionThreshold: z.number().gt(0).lt(1).default(0.5),
        minAgreement: z.number().min(0).max(1).default(0.95),
        maxMeanAbsDiff: z.number().min(0).max(1).default(0.1),
      })
      .strict()
      .prefault({}),
    /** Labelled predictions per variant below which AUC and the business metric are inconclusive. */
    minLabels: z.number().int().min(1).default(200),
    businessMetric: businessMetricSchema.nullable().prefault({}),
    /** An inconclusive analysis extends the bake this many times (one bakeSeconds each) ... */
    maxBakeExtensions: z.number().int().min(0).max(100).default(2),
    /** ... then a human decides (`ask`) or the rollout rolls back. */
    whenStillInconclusive: z.enum(['ask', 'rollback']).default('ask'),
    /** How long every live gateway has to acknowledge a routing change before the step fails. */
    gatewayAckTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict();
export type Guardrails = z.output<typeof guardrailsSchema>;

export const rolloutInputSchema = z
  .object({
    model: identifierSchema.default('churn'),
    /** A version number, or an alias resolved when the rollout starts. */
    version: z.union([z.number().int().min(1), identifierSchema]).default('candidate'),
    plan: z.array(rolloutStepSchema).min(1).max(20).prefault(DEFAULT_PLAN),
    approval: approvalPolicySchema.prefault({}),
    guardrails: guardrailsSchema.prefault({}),
    requestedBy: z.string().min(1).max(200).default('temporal-ui'),
  })
  .strict();
export type RolloutInput = z.input<typeof rolloutInputSchema>;
export type RolloutConfig = z.output<typeof rolloutInputSchema>;

const personSchema = z.string().trim().min(1).max(200);
const reasonSchema = z.string().max(2000).default('');

/** Payload of the update and the signal `decide`. `version`, when given, must be the version under rollout. */
export const decisionSchema = z
  .object({
    decision: z.enum(['approve', 'reject']),
    approver: personSchema,
    reason: reasonSchema,
    version: z.number().int().min(1).optional(),
  })
  .strict();
export type DecisionInput = z.input<typeof decisionSchema>;
export type Decision = z.output<typeof decisionSchema>;

/** Payload of the updates `pause`, `resume` and `abort`. */
export const controlSchema = z.object({ by: personSchema.default('temporal-ui'), reason: reasonSchema }).strict();
export type ControlInput = z.input<typeof controlSchema>;
