/**
 * Trainer progress from inside an activity: a heartbeat (with resume details) as often as the
 * trainer reports, and a `trainerProgress` signal to the pipeline workflow at most every few
 * seconds, so its `progress` query can answer without reading heartbeats.
 */
import { Context } from '@temporalio/activity';

export interface TrainerProgress {
  step: string;
  done: number;
  total: number;
  message?: string;
  /** Trees (or folds) saved in the latest checkpoint a retried attempt would resume from. */
  checkpointed?: number;
}

export const TRAINER_PROGRESS_SIGNAL = 'trainerProgress';
const SIGNAL_EVERY_MS = 2_000;

export function progressReporter(step: string) {
  const context = Context.current();
  let lastSignal = 0;
  // A retried attempt keeps its predecessor's details (e.g. the checkpoint) until it has newer ones.
  let lastDetails: unknown = context.info.heartbeatDetails;
  const signal = (progress: TrainerProgress) => {
    const workflowId = context.info.workflowExecution?.workflowId;
    if (!workflowId) return;
    try {
      const handle = context.client.workflow.getHandle(workflowId, context.info.workflowExecution.runId);
      handle.signal(TRAINER_PROGRESS_SIGNAL, progress).catch(() => undefined);
    } catch {
      // no client (a test environment): progress stays in heartbeats only
    }
  };
  return {
    /** Reports progress; `details` (e.g. a checkpoint ref) go into the heartbeat for resuming. */
    report(done: number, total: number, message?: string, details?: Record<string, unknown>): void {
      if (details !== undefined) lastDetails = details;
      context.heartbeat({ ...(lastDetails as object), done, total, message });
      const now = Date.now();
      if (now - lastSignal >= SIGNAL_EVERY_MS || done === total || details !== undefined) {
        lastSignal = now;
        const checkpointed = (lastDetails as { checkpointed?: number } | undefined)?.checkpointed;
        signal({ step, done, total, ...(message === undefined ? {} : { message }), ...(checkpointed === undefined ? {} : { checkpointed }) });
      }
    },
    /** Heartbeat details of the previous attempt, if it sent any. */
    previous<T>(): T | undefined {
      return context.info.heartbeatDetails as T | undefined;
    },
    cancellation: context.cancellationSignal,
  };
}
