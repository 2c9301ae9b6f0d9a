import { Hono, type Context } from 'hono';
import { IDENTIFIER } from '../../lib/features/identifiers.js';
import { PG_INT_MAX, type Db } from '../../stores/db.js';
import { getModelVersion, listModels, listVersions, NotFound } from '../../stores/registry.js';
import { versionView } from '../views.js';

/** A version number (`3`, `v3`) or an alias. */
const VERSION_REF = /^(?:v?\d{1,10}|[A-Za-z0-9_]{1,63})$/;

/** The model registry, read-only: `GET /v1/models`, `/v1/models/:name`, `/v1/models/:name/versions/:v` (number or alias). */
export function modelRoutes({ db }: { db: Db }) {
  const app = new Hono();
  app.get('/v1/models', async (c) => c.json({ models: await listModels(db) }));
  app.get('/v1/models/:name', async (c) => {
    const name = modelName(c);
    const versions = await listVersions(db, name);
    const models = await listModels(db);
    return c.json({ ...models.find((m) => m.name === name), versions: versions.map((v) => versionView(v, false)) });
  });
  app.get('/v1/models/:name/versions/:version', async (c) => {
    const name = modelName(c);
    const ref = c.req.param('version');
    // A number or text that can name no version is a 404 here, not an error from Postgres.
    if (!VERSION_REF.test(ref) || (/^v?\d+$/.test(ref) && Number(ref.replace(/^v/, '')) > PG_INT_MAX)) {
      throw new NotFound(`model ${name} has no version ${ref.slice(0, 64)}`, 'version');
    }
    return c.json(versionView(await getModelVersion(db, name, ref), true));
  });
  return app;
}

/** The `:name` parameter; a name no model can have is a 404. */
function modelName(c: Context): string {
  const name = c.req.param('name')!;
  if (!IDENTIFIER.test(name)) throw new NotFound(`no model named ${name.slice(0, 64)}`, 'model');
  return name;
}
