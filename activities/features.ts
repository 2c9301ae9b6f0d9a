/**
 * Feature store activities of `materializeFeatures` (light I/O: the `keel` queue). A bad view or
 * window is a non-retryable `InvalidInput` naming it; a database failure is retried by Temporal
 * and, since a run commits its rows and watermark together, a retry simply reads the window again.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { KeelError } from '../lib/errors.js';
import type { MaterializeViewResult } from '../lib/schemas/materialize-features.js';
import type { Db } from '../stores/db.js';
import { materializeFeatureView, resolveMaterializationViews } from '../stores/features/materialize.js';

export interface FeatureDeps {
  db: Db;
}

export interface MaterializeFeatureViewInput {
  view: string;
  /** ISO; default the view's watermark (see stores/features/materialize.ts). */
  start?: string | null;
  /** ISO, inclusive: the new watermark. */
  end: string;
}

/** Heartbeats while the (single-statement) materialization runs, so a dead worker is noticed. */
const HEARTBEAT_MS = 5_000;

export function createFeatureActivities({ db }: FeatureDeps) {
  return {
    /** The views to materialize: `views` checked against the registry (online ones only), or every online view. */
    async resolveMaterializationViews({ views }: { views?: string[] }): Promise<string[]> {
      return keelFailures(() => resolveMaterializationViews(db, views));
    },

    /** Materializes one view for (start, end], its rows and watermark in one transaction. */
    async materializeFeatureView(input: MaterializeFeatureViewInput): Promise<MaterializeViewResult> {
      const context = Context.current();
      const execution = context.info.workflowExecution;
      context.heartbeat({ view: input.view, phase: 'starting' });
      const timer = setInterval(() => context.heartbeat({ view: input.view, phase: 'writing' }), HEARTBEAT_MS);
      try {
        return await keelFailures(() =>
          materializeFeatureView(db, {
            view: input.view,
            start: input.start ?? null,
            end: input.end,
            runId: execution ? `${execution.workflowId}/${execution.runId}` : undefined,
          }),
        );
      } finally {
        clearInterval(timer);
      }
    },
  };
}

/** Keel's own errors (bad input) are never retried: they fail as non-retryable failures of their type. */
async function keelFailures<T>(work: () => Promise<T>): Promise<T> {
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

export type FeatureActivities = ReturnType<typeof createFeatureActivities>;
