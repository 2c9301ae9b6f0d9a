/**
 * A process that serves like the gateway does as far as the prediction log is concerned: each
 * `POST /predict` appends one record and answers 200; SIGTERM stops taking connections, lets
 * requests in flight finish, then closes the log (api/server.ts does the same). Used by
 * test/integration/prediction-log.test.ts to prove that every 200 is logged.
 *
 * env: DATABASE_URL, SPILL_DIR, GATEWAY_ID. Prints `listening <port>` when ready.
 */
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { startPredictionLog } from '../../api/serving/prediction-log.js';
import { createDb } from '../../stores/db.js';

const db = createDb({ url: process.env.DATABASE_URL!, max: 4 });
const log = await startPredictionLog({
  db,
  gatewayId: process.env.GATEWAY_ID!,
  spillDir: process.env.SPILL_DIR!,
  batchSize: 100,
  flushIntervalMs: 50,
  writeTimeoutMs: 3_000,
  retryMinMs: 100,
  retryMaxMs: 500,
  partitionDays: 1,
});
const app = new Hono();
app.post('/predict', async (c) => {
  const { request_id: requestId } = (await c.req.json()) as { request_id: string };
  const started = performance.now();
  const probability = (requestId.length % 10) / 10;
  log.append({
    requestId,
    model: 'churn',
    version: 1,
    variant: 'control',
    mode: 'live',
    features: { tenure: requestId.length },
    output: { prediction: probability > 0.5 ? 1 : 0, probability },
    latencyMs: performance.now() - started,
    ts: new Date(),
  });
  return c.json({ request_id: requestId, probability });
});
const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info) => {
  process.stdout.write(`listening ${info.port}\n`);
}) as Server;

process.once('SIGTERM', () => {
  void (async () => {
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await drained;
    await log.close();
    await db.end();
    process.stdout.write(`closed depth=${log.depth()}\n`);
    process.exit(0);
  })();
});
