import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { KeelError } from '../../lib/errors.js';
import { withTimeout } from '../../lib/timeout.js';
import { infrastructureCause } from '../../lib/workflow-failures.js';
import { errorBody } from '../errors.js';

/** A dependency the gateway needs before it takes traffic, probed by `/readyz`. */
export interface ReadinessCheck {
  name: string;
  probe: () => Promise<void>;
}

export interface HealthRouteDeps {
  checks: ReadinessCheck[];
  metrics: Registry;
  /** Where a failed probe's full error goes (the answer, public, names only the kind of cause). */
  logProblem?: (check: string, error: unknown) => void;
}

export function healthRoutes({ checks, metrics, logProblem }: HealthRouteDeps) {
  const app = new Hono();
  // Liveness: the process answers. Never touches dependencies, so a slow database never restarts pods.
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    const results = await Promise.all(
      checks.map(async ({ name, probe }) => {
        try {
          await withTimeout(probe(), 2_000);
          return { name, ok: true as const };
        } catch (error) {
          logProblem?.(name, error);
          // /readyz is public: the kind of cause only, never an address or a program's words.
          const message = (error instanceof KeelError && error.publicMessage) || infrastructureCause(error) || 'failing (the gateway log says why)';
          return { name, ok: false as const, message };
        }
      }),
    );
    const failed = results.filter((r) => !r.ok);
    if (failed.length === 0) return c.json({ status: 'ready', checks: results });
    const message = `not ready: ${failed.map((f) => `${f.name} (${f.message})`).join(', ')}`;
    return c.json({ ...errorBody('NotReady', message), checks: results }, 503);
  });
  app.get('/metrics', async (c) => {
    return c.body(await metrics.metrics(), 200, { 'content-type': metrics.contentType });
  });
  return app;
}
