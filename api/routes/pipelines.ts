import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Hono } from 'hono';
import { trainingPipelineInputSchema } from '../../lib/schemas/training-pipeline.js';
import { describeZodError } from '../../lib/validation.js';
import type { S3Access } from '../../stores/data-files.js';
import type { Db } from '../../stores/db.js';
import { startTrainingPipeline } from '../../stores/training-runs.js';
import { sendError } from '../errors.js';

export interface PipelineRouteDeps {
  db: Db;
  /** Connected lazily: the gateway serves predictions even while Temporal is unreachable. */
  temporal: () => Promise<Client>;
  taskQueue?: string;
  s3?: S3Access;
}

/**
 * `POST /v1/pipelines/train`: validates the config (422 naming the field), starts or joins
 * `train-<model>-<dataHash>` and answers 202 with its ids; `?wait=true` waits and answers the
 * workflow result (200), or 422 when the run failed on bad input.
 */
export function pipelineRoutes(deps: PipelineRouteDeps) {
  const app = new Hono();
  app.post('/v1/pipelines/train', async (c) => {
    let body: unknown;
    try {
      const text = await c.req.text();
      body = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      return sendError(c, 400, 'InvalidJson', 'the request body is not valid JSON');
    }
    if (!body || typeof body !== 'object' || Array.isArray(body)) return sendError(c, 422, 'InvalidInput', 'the pipeline config must be a JSON object');
    const parsed = trainingPipelineInputSchema.safeParse({ requestedBy: 'api', ...body });
    if (!parsed.success) {
      const problem = describeZodError(parsed.error);
      return sendError(c, 422, 'InvalidInput', problem.message, problem.field);
    }
    let client: Client;
    try {
      client = await deps.temporal();
    } catch (error) {
      return sendError(c, 503, 'TemporalUnavailable', `cannot reach Temporal to start the run: ${(error as Error).message}`);
    }
    const run = await startTrainingPipeline(client, deps.db, parsed.data, { taskQueue: deps.taskQueue, s3: deps.s3 });
    if (c.req.query('wait') !== 'true') return c.json({ workflowId: run.workflowId, runId: run.runId }, 202);
    try {
      return c.json(await run.handle.result());
    } catch (error) {
      if (error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure && error.cause.type === 'InvalidInput') {
        return sendError(c, 422, 'InvalidInput', error.cause.message);
      }
      throw error;
    }
  });
  return app;
}
