import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { KeelError } from '../../lib/errors.js';
import { trainingPipelineInputSchema } from '../../lib/schemas/training-pipeline.js';
import { describeZodError } from '../../lib/validation.js';
import { infrastructureCause, summarizeWorkflowFailure, type KnownService, type WorkflowFailureSummary } from '../../lib/workflow-failures.js';
import type { S3Access } from '../../stores/data-files.js';
import type { Db } from '../../stores/db.js';
import { dataFingerprint, startTrainingPipeline, trainingWorkflowId, type DataAccess } from '../../stores/training-runs.js';
import { principalOf } from '../auth.js';
import { errorBody, sendError } from '../errors.js';

export interface PipelineRouteDeps {
  db: Db;
  /** Connected lazily: the gateway serves predictions even while Temporal is unreachable. */
  temporal: () => Promise<Client>;
  taskQueue?: string;
  s3?: S3Access;
  /** The workers' data rules, applied before the gateway fingerprints a source (KEEL_DATA_ROOTS, KEEL_DATA_SCHEMAS). */
  dataAccess?: DataAccess;
  /** Addresses of Postgres and the artifact store, to name them when a run fails reaching one. */
  services?: readonly KnownService[];
}

/**
 * `POST /v1/pipelines/train`: validates the config (422 naming the field), starts or joins
 * `train-<model>-<dataHash>` and answers 202 with its ids; `?wait=true` waits and answers the
 * workflow result (200), or the failure in value-free parts (type, step, field, kind of cause)
 * with the workflow id: the full message, which may quote data or a trainer's output, is for
 * operators (Temporal UI, worker log). The calling key's name is recorded as `requestedBy`.
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
    if ('requestedBy' in body) {
      return sendError(c, 422, 'InvalidInput', 'requestedBy is set by the gateway (the API key name); leave it out', 'requestedBy');
    }
    const parsed = trainingPipelineInputSchema.safeParse({ ...body, requestedBy: requester(c) });
    if (!parsed.success) {
      const problem = describeZodError(parsed.error);
      return sendError(c, 422, 'InvalidInput', problem.message, problem.field);
    }
    let workflowId: string;
    try {
      // The data first: a source the gateway cannot read is answered before Temporal is involved.
      workflowId = trainingWorkflowId(parsed.data, await dataFingerprint(deps.db, parsed.data.data, deps.s3, deps.dataAccess));
    } catch (error) {
      return unavailable(c, error, 'cannot read the data to fingerprint it', deps.services);
    }
    let client: Client;
    try {
      client = await deps.temporal();
    } catch (error) {
      return sendError(c, 503, 'TemporalUnavailable', `cannot reach Temporal to start the run: ${(error as Error).message}`);
    }
    let run: Awaited<ReturnType<typeof startTrainingPipeline>>;
    try {
      run = await startTrainingPipeline(client, deps.db, parsed.data, { taskQueue: deps.taskQueue, workflowId });
    } catch (error) {
      return unavailable(c, error, 'cannot start the run', deps.services);
    }
    if (c.req.query('wait') !== 'true') return c.json({ workflowId: run.workflowId, runId: run.runId }, 202);
    try {
      return c.json(await run.handle.result());
    } catch (error) {
      if (!(error instanceof WorkflowFailedError)) throw error;
      const failure = summarizeWorkflowFailure(error.cause, deps.services);
      const { status, code, message } = failureAnswer(failure, run.workflowId);
      return c.json({ ...errorBody(code, message, failure.field), workflowId: run.workflowId, runId: run.runId, step: failure.step ?? null }, status);
    }
  });
  return app;
}

/** Keel's own errors go on to the error handler (422 naming the field); an infrastructure cause is a 503 naming its kind. */
function unavailable(c: Context, error: unknown, what: string, services: readonly KnownService[] | undefined): Response {
  const cause = error instanceof KeelError ? undefined : infrastructureCause(error, services);
  if (!cause) throw error;
  return sendError(c, 503, 'Unavailable', `${what}: ${cause}`);
}

/** `api:<key name>`, or `api` when the app runs without auth (tests). */
function requester(c: Context): string {
  const principal = principalOf(c);
  return principal ? `api:${principal.name}`.slice(0, 200) : 'api';
}

/** The HTTP status and a message built only from the failure's value-free parts. */
function failureAnswer(failure: WorkflowFailureSummary, workflowId: string): { status: ContentfulStatusCode; code: string; message: string } {
  const where = failure.step ? ` at step ${failure.step}` : '';
  const what = [failure.type, failure.field && `field ${failure.field}`].filter(Boolean).join(', ');
  const see = `; the full message is in workflow ${workflowId} (Temporal UI) and the worker log`;
  switch (failure.kind) {
    case 'badInput':
      return { status: 422, code: failure.type, message: `the run refused its input${where} (${what})${failure.publicMessage ? `: ${failure.publicMessage}` : ''}${see}` };
    case 'infrastructure':
      return { status: 503, code: 'Unavailable', message: `the run failed${where}: ${failure.cause}${see}` };
    case 'canceled':
      return { status: 409, code: failure.type, message: `the run was ${failure.type.toLowerCase()}${where}${see}` };
    case 'failed':
      return { status: 500, code: 'TrainingFailed', message: `the run failed${where} (${what})${see}` };
  }
}
