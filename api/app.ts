import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { sendError, onGatewayError } from './errors.js';
import { createMetricsRegistry } from './metrics.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { modelRoutes } from './routes/models.js';
import type { PipelineRouteDeps } from './routes/pipelines.js';
import { pipelineRoutes } from './routes/pipelines.js';

export interface GatewayDeps {
  /** Probed by `/readyz`: the gateway is ready only when all pass. */
  readiness: ReadinessCheck[];
  metrics?: Registry;
  logError?: (error: unknown) => void;
  /** The registry and pipeline endpoints need Postgres and (to start runs) Temporal. */
  registry?: PipelineRouteDeps;
}

/** The gateway as a Hono app, with no socket: tests call `app.request()` directly. */
export function createGatewayApp(deps: GatewayDeps) {
  const metrics = deps.metrics ?? createMetricsRegistry();
  const app = new Hono();
  app.route('/', healthRoutes({ checks: deps.readiness, metrics }));
  if (deps.registry) {
    app.route('/', modelRoutes(deps.registry));
    app.route('/', pipelineRoutes(deps.registry));
  }
  app.notFound((c) => sendError(c, 404, 'NotFound', `no route for ${c.req.method} ${c.req.path}`));
  app.onError(onGatewayError(deps.logError ?? ((error) => console.error(error))));
  return app;
}
