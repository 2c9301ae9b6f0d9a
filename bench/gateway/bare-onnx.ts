/**
 * The floor under scenario (b) of `npm run bench:gateway`, printed as `bareOnnx`: the bare Hono
 * app of scenario (a) that also scores every request with the same two models, the same way the
 * gateway does (Keel's encoder, the micro-batcher, onnxruntime-node with one thread), split 90/10
 * at random. No routing hash, no checks beyond encoding, no prediction log, no auth, no metrics:
 * what any Hono + onnxruntime-node server pays for these models. Environment: PORT, DATABASE_URL,
 * KEEL_ARTIFACTS, MODEL, and VERSIONS ("3,4": the first takes 90 % of requests).
 */
import { randomUUID } from 'node:crypto';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { encodeFeatureRows } from '../../api/serving/encode-request.js';
import { loadServedModel } from '../../api/serving/model-loader.js';
import { openArtifactStore } from '../../stores/artifacts/index.js';
import { createDb } from '../../stores/db.js';

const db = createDb({ url: process.env.DATABASE_URL! });
const artifacts = openArtifactStore({ uri: process.env.KEEL_ARTIFACTS!, region: 'us-east-1' });
const [first, second] = await Promise.all(process.env.VERSIONS!.split(',').map((v) => loadServedModel({ db, artifacts }, process.env.MODEL!, Number(v))));
await db.end();

const app = new Hono();
app.post('/v1/models/:name/predict', async (c) => {
  const body = await c.req.json<{ features?: Record<string, unknown>; request_id?: string }>();
  if (typeof body.features !== 'object' || body.features === null) return c.json({ error: 'send {features}' }, 400);
  const model = Math.random() < 0.9 ? first! : second!;
  const row = encodeFeatureRows([body.features], model.featureSpec, { allowMissing: true });
  const probability = await model.predictOne(row.data);
  return c.json({ prediction: probability > 0.5 ? 1 : 0, probability, model_version: model.version, variant: 'v', request_id: body.request_id ?? randomUUID() });
});
const port = Number(process.env.PORT ?? 8091);
serve({ fetch: app.fetch, hostname: '127.0.0.1', port }, () => process.stdout.write(`bare hono + onnxruntime listening on ${port}\n`));
// Exit on SIGTERM (the bench's stop) so that `--cpu-prof` writes its profile.
process.once('SIGTERM', () => process.exit(0));
