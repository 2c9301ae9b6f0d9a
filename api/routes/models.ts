import { Hono } from 'hono';
import type { Db } from '../../stores/db.js';
import { getModelVersion, listModels, listVersions } from '../../stores/registry.js';
import { versionView } from '../views.js';

/** The model registry, read-only: `GET /v1/models`, `/v1/models/:name`, `/v1/models/:name/versions/:v` (number or alias). */
export function modelRoutes({ db }: { db: Db }) {
  const app = new Hono();
  app.get('/v1/models', async (c) => c.json({ models: await listModels(db) }));
  app.get('/v1/models/:name', async (c) => {
    const name = c.req.param('name');
    const versions = await listVersions(db, name);
    const models = await listModels(db);
    return c.json({ ...models.find((m) => m.name === name), versions: versions.map((v) => versionView(v, false)) });
  });
  app.get('/v1/models/:name/versions/:version', async (c) => {
    const version = await getModelVersion(db, c.req.param('name'), c.req.param('version'));
    return c.json(versionView(version, true));
  });
  return app;
}
