import { z } from 'zod';
import { TASK_QUEUES } from '../task-queues.js';

/** Input of the `stackCheck` workflow: which task queues to prove, and how long to wait for each. */
export const stackCheckInputSchema = z
  .object({
    queues: z
      .array(z.string().min(1, 'a task queue name cannot be empty').max(200))
      .min(1, 'name at least one task queue')
      .max(16)
      .default([...TASK_QUEUES]),
    /** A queue with no worker fails the check after this long instead of waiting forever. */
    timeoutSeconds: z.number().int().min(1).max(3600).default(60),
  })
  .strict();

export type StackCheckInput = z.input<typeof stackCheckInputSchema>;

export interface StackCheckRecord {
  taskQueue: string;
  workerIdentity: string;
  artifact: { uri: string; sha256: string; size: number };
}

export interface StackCheckResult {
  workflowId: string;
  checks: StackCheckRecord[];
}
