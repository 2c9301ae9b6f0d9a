import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { withTimeout } from '../../lib/timeout.js';
import { errorBody } from '../errors.js';

/** A dependency the gateway needs before it takes traffic, probed by `/readyz`. */
export interface ReadinessCheck {
  name: string;
  probe: () => Promise<void>;
}

export function healthRoutes({ checks, metrics }: { checks: ReadinessCheck[]; metrics: Registry }) {
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
          return { name, ok: false as const, message: error instanceof Error ? error.message : String(error) };
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
