/**
 * Input and result of the `materializeFeatures` workflow, shared by the workflow (its first step),
 * `keel features materialize`, the per-view Temporal Schedules and the activities. Every field has
 * a default: `{}` materializes every online feature view up to the workflow's current time.
 * Pure and workflow-safe (zod only).
 */
import { z } from 'zod';
import { identifierSchema } from '../features/identifiers.js';
import { retrySchema } from './retry.js';

const instantSchema = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time with a time zone (2024-01-31T12:00:00Z)' });

export const materializeFeaturesInputSchema = z
  .object({
    /** Feature views to materialize; default every view with `online: true`. */
    views: z
      .array(identifierSchema)
      .min(1, 'name at least one feature view, or leave views out for every online view')
      .refine((views) => new Set(views).size === views.length, 'a feature view is listed twice')
      .optional(),
    /**
     * Window start (exclusive). Default: each view's watermark; on a view's first run (or after its
     * definition changed) `end − TTL − 1 ms` (the TTL bound is inclusive), or the beginning of its data
     * when the TTL is 0.
     */
    start: instantSchema.optional(),
    /** Window end (inclusive) and the new watermark; default the workflow's current time. */
    end: instantSchema.optional(),
    /** Retrying of a view that fails for a reason other than bad input. */
    retry: retrySchema.prefault({}),
  })
  .strict()
  .refine((input) => input.start === undefined || input.end === undefined || Date.parse(input.start) < Date.parse(input.end), {
    message: 'start must be before end',
    path: ['start'],
  });

export type MaterializeFeaturesInput = z.input<typeof materializeFeaturesInputSchema>;
export type MaterializeFeaturesConfig = z.output<typeof materializeFeaturesInputSchema>;

/** What materializing one view did. Timestamps are ISO strings. */
export interface MaterializeViewResult {
  view: string;
  /** Registry version of the definition materialized. */
  version: string;
  /** The window read: (start, end]; start null = from the beginning. */
  start: string | null;
  end: string;
  /** Entities whose online row was inserted or replaced. */
  rowsWritten: number;
  /** Entities with a new candidate row in the window (written or not: an older row never replaces a newer one). */
  candidateRows: number;
  /** The watermark before (null on the first run or after the definition changed) and after the run. */
  watermarkFrom: string | null;
  watermarkTo: string;
  /** True when the view's online rows were rebuilt from scratch (first run, or definition changed). */
  full: boolean;
  ms: number;
}

export interface MaterializeFeaturesResult {
  workflowId: string;
  start: string | null;
  end: string;
  /** One entry per materialized view, by name. */
  views: Record<string, MaterializeViewResult>;
}
