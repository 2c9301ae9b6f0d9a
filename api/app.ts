import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { sendError, onGatewayError } from './errors.js';
import { createMetricsRegistry } from './metrics.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';

export interface GatewayDeps {
  /** Probed by `/readyz`: the gateway is ready only when all pass. */
  readiness: ReadinessCheck[];
  metrics?: Registry;
  logError?: (error: unknown) => void;
}

/** The gateway as a Hono app, with no socket: tests call `app.request()` directly. */
export function createGatewayApp(deps: GatewayDeps) {
  const metrics = deps.metrics ?? createMetricsRegistry();
  const app = new Hono();
  app.route('/', healthRoutes({ checks: deps.readiness, metrics }));
  app.notFound((c) => sendError(c, 404, 'NotFound', `no route for ${c.req.method} ${c.req.path}`));
  app.onError(onGatewayError(deps.logError ?? ((error) => console.error(error))));
  return app;
}
