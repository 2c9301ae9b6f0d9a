/**
 * Admin endpoints for traffic routing: what this gateway has applied, the routing stored in
 * Postgres, changing a model's split, and the gateway instances with their applied generations.
 * The rollout workflow writes routing through the same store function (stores/routes.ts).
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { InvalidInput } from '../../lib/errors.js';
import type { Db } from '../../stores/db.js';
import { clearRoutes, listGatewayInstances, readRouting, routeTargetSchema, setRoutes } from '../../stores/routes.js';
import type { ServingSnapshot } from '../serving/types.js';

export interface RoutingRouteDeps {
  db: Db;
  state?: { current(): ServingSnapshot; appliedGeneration?(): number; problems?(): string[] };
  /** Who made a change, for model_routing.updated_by (the key's name); default `api`. */
  actor?: (c: Context) => string | undefined;
}

const putRoutesSchema = z.object({
  targets: z.array(routeTargetSchema).min(1),
  salt: z.string().min(1).max(200).optional(),
});

export function routingRoutes(deps: RoutingRouteDeps) {
  const app = new Hono();
  app.get('/v1/routes', async (c) => {
    const stored = await readRouting(deps.db);
    const snapshot = deps.state?.current();
    return c.json({
      stored,
      applied: snapshot && {
        generation: deps.state?.appliedGeneration?.() ?? snapshot.generation,
        models: [...snapshot.routing.values()],
        problems: deps.state?.problems?.() ?? [],
      },
    });
  });
  app.put('/v1/routes/:model', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new InvalidInput('the body is not valid JSON');
    }
    const parsed = putRoutesSchema.safeParse(body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new InvalidInput(`${issue.path.join('.') || 'body'}: ${issue.message}`, issue.path.join('.') || undefined);
    }
    const updatedBy = deps.actor?.(c) ?? 'api';
    const result = await setRoutes(deps.db, c.req.param('model'), parsed.data.targets, { salt: parsed.data.salt, updatedBy });
    return c.json({ model: c.req.param('model'), ...result });
  });
  app.delete('/v1/routes/:model', async (c) => c.json({ model: c.req.param('model'), ...(await clearRoutes(deps.db, c.req.param('model'))) }));
  app.get('/v1/gateways', async (c) => c.json({ gateways: await listGatewayInstances(deps.db) }));
  return app;
}
