/**
 * Feature store activities of `materializeFeatures` (light I/O: the `keel` queue). A bad view or
 * window is a non-retryable `InvalidInput` naming it; a database failure is retried by Temporal
 * and, since a run commits its rows and watermark together, a retry simply reads the window again.
 */
import { Context } from '@temporalio/activity';
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
      return resolveMaterializationViews(db, views);
    },

    /** Materializes one view for (start, end], its rows and watermark in one transaction. */
    async materializeFeatureView(input: MaterializeFeatureViewInput): Promise<MaterializeViewResult> {
      const context = Context.current();
      const execution = context.info.workflowExecution;
      context.heartbeat({ view: input.view, phase: 'starting' });
      const timer = setInterval(() => context.heartbeat({ view: input.view, phase: 'writing' }), HEARTBEAT_MS);
      try {
        return await materializeFeatureView(db, {
          view: input.view,
          start: input.start ?? null,
          end: input.end,
          runId: execution ? `${execution.workflowId}/${execution.runId}` : undefined,
        });
      } finally {
        clearInterval(timer);
      }
    },
  };
}

export type FeatureActivities = ReturnType<typeof createFeatureActivities>;
