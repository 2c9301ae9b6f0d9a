/**
 * `materializeFeatures` (task queue `keel`; started by a Temporal Schedule per online view with
 * overlap SKIP, by `keel features materialize`, or from the UI with `{}`): copies the latest values
 * per entity of each view from its offline table to `online_features`, incrementally from the
 * view's watermark (stores/features/materialize.ts). One activity per view, all in parallel; each
 * commits its rows and its watermark together, so a failed view leaves its watermark where it was
 * and the next run fills the gap, while the other views still complete.
 *
 * `end` defaults to the workflow's current time (workflow time: deterministic on replay).
 */
import { ActivityFailure, ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { FeatureActivities } from '../activities/features.js';
import type { MaterializeFeaturesInput, MaterializeFeaturesResult, MaterializeViewResult } from '../lib/schemas/materialize-features.js';
import { materializeFeaturesInputSchema } from '../lib/schemas/materialize-features.js';
import { parseWorkflowInput } from './input.js';
import { retryPolicy, stepFailure } from './retry.js';

const NON_RETRYABLE = ['InvalidInput'];

export async function materializeFeatures(rawInput: MaterializeFeaturesInput = {}): Promise<MaterializeFeaturesResult> {
  const input = parseWorkflowInput(materializeFeaturesInputSchema, rawInput);
  // Postgres down for a while is retried with backoff for input.retry's window, not 5 attempts in 15 s.
  const retry = retryPolicy(input.retry, NON_RETRYABLE);
  const { resolveMaterializationViews } = proxyActivities<FeatureActivities>({ startToCloseTimeout: '1 minute', retry });
  const { materializeFeatureView } = proxyActivities<FeatureActivities>({ startToCloseTimeout: '2 hours', heartbeatTimeout: '1 minute', retry });
  const end = input.end ?? new Date().toISOString();
  const start = input.start ?? null;
  if (start !== null && Date.parse(start) >= Date.parse(end)) {
    throw ApplicationFailure.create({
      type: 'InvalidInput',
      message: `start: ${start} must be before end ${end}`,
      nonRetryable: true,
      details: [{ field: 'start' }],
    });
  }
  const views = await resolveMaterializationViews({ ...(input.views ? { views: input.views } : {}) }).catch((error: unknown) => {
    throw stepFailure('resolveMaterializationViews', error, input.retry) ?? error;
  });

  const settled = await Promise.allSettled(views.map((view) => materializeFeatureView({ view, start, end })));
  const results: Record<string, MaterializeViewResult> = {};
  const failures: Array<{ view: string; error: unknown }> = [];
  settled.forEach((outcome, i) => {
    if (outcome.status === 'fulfilled') results[views[i]!] = outcome.value;
    else failures.push({ view: views[i]!, error: outcome.reason });
  });
  if (failures.length > 0) {
    const first = failures[0]!;
    const cause = first.error instanceof ActivityFailure ? first.error.cause : first.error;
    const type = cause instanceof ApplicationFailure ? (cause.type ?? 'MaterializationFailed') : 'MaterializationFailed';
    const message = cause instanceof Error ? cause.message : String(cause);
    throw ApplicationFailure.create({
      type,
      message:
        `materializing feature view ${first.view} failed: ${message}` +
        (failures.length > 1 ? ` (also failed: ${failures.slice(1).map((f) => f.view).join(', ')})` : ''),
      nonRetryable: true,
      details: [{ failed: failures.map((f) => f.view), materialized: results }],
      cause: first.error instanceof Error ? first.error : undefined,
    });
  }
  return { workflowId: workflowInfo().workflowId, start, end, views: results };
}
