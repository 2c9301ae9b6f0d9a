import os from 'node:os';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { StackCheckRecord } from '../lib/schemas/stack-check.js';
import type { ArtifactStore } from '../stores/artifacts/index.js';
import type { Db } from '../stores/db.js';

export interface StackCheckDeps {
  db: Db;
  artifacts: ArtifactStore;
}

export function createStackCheckActivities({ db, artifacts }: StackCheckDeps) {
  return {
    /**
     * Writes a small report artifact and records it; a retry rewrites the same row. `workflowId`
     * names the `stackCheck` run when a child workflow on the checked queue records it.
     */
    async recordStackCheck({ taskQueue, workflowId: checkId }: { taskQueue: string; workflowId?: string }): Promise<StackCheckRecord> {
      const info = Context.current().info;
      if (info.taskQueue !== taskQueue) {
        throw ApplicationFailure.nonRetryable(
          `asked to check task queue ${taskQueue} but running on ${info.taskQueue}`,
          'InvalidInput',
        );
      }
      const workflowId = checkId ?? info.workflowExecution?.workflowId;
      if (!workflowId) throw ApplicationFailure.nonRetryable('recordStackCheck runs only inside a workflow', 'InvalidInput');
      const workerIdentity = `${process.pid}@${os.hostname()}`;
      const report = { workflowId, taskQueue, node: process.version, platform: `${process.platform}-${process.arch}` };
      const artifact = await artifacts.put(Buffer.from(`${JSON.stringify(report, null, 2)}\n`));
      await db.query(
        `INSERT INTO stack_checks (workflow_id, task_queue, worker_identity, artifact_uri, artifact_sha256)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (workflow_id, task_queue) DO UPDATE
           SET worker_identity = EXCLUDED.worker_identity, artifact_uri = EXCLUDED.artifact_uri,
               artifact_sha256 = EXCLUDED.artifact_sha256, checked_at = now()`,
        [workflowId, taskQueue, workerIdentity, artifact.uri, artifact.sha256],
      );
      return { taskQueue, workerIdentity, artifact };
    },
  };
}

export type StackCheckActivities = ReturnType<typeof createStackCheckActivities>;
