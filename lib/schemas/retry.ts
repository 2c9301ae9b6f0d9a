/**
 * How a workflow retries a step that fails for any reason but bad input (Postgres or the artifact
 * store unreachable, a full disk, a worker that died): exponential backoff from 1 s, for a bounded
 * time, then the run fails naming the step and the cause. Pure and workflow-safe (zod only).
 */
import { z } from 'zod';

export const retrySchema = z
  .object({
    /** Keep retrying a failing step for about this long (the waits between attempts add up to it). */
    infrastructureTimeoutSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(600),
    /** The longest wait between two attempts. */
    maximumIntervalSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict();

export type RetryWindow = z.output<typeof retrySchema>;

/** Attempts whose backoff waits (1 s, 2 s, 4 s … capped at the maximum interval) add up to the window. */
export function attemptsWithin(window: RetryWindow): number {
  let waited = 0;
  let interval = 1;
  let attempts = 1;
  while (waited < window.infrastructureTimeoutSeconds) {
    waited += interval;
    attempts++;
    interval = Math.min(interval * 2, window.maximumIntervalSeconds);
  }
  return attempts;
}
