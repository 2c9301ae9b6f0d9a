/**
 * Scenario (a) of `npm run bench:gateway`: a bare Hono app on @hono/node-server that parses the
 * same JSON body the gateway gets and answers a JSON object of the same shape, with no model,
 * no routing and no logging: the ceiling of the HTTP stack itself.
 */
import { randomUUID } from 'node:crypto';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.post('/v1/models/:name/predict', async (c) => {
  const body = await c.req.json<{ request_id?: string }>();
  return c.json({ prediction: 0, probability: 0.5, model_version: 1, variant: 'v1', request_id: body.request_id ?? randomUUID() });
});
const port = Number(process.env.PORT ?? 8090);
serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => process.stdout.write(`bare hono listening on ${port}\n`));
// Exit on SIGTERM (the bench's stop) so that `--cpu-prof` writes its profile.
process.once('SIGTERM', () => process.exit(0));
