/**
 * Every route the gateway serves, against the real `keel gateway` process: in `keys` mode no key
 * → 401, a key of a wrong role → 403, a key of a right role → neither; in `open-loopback` mode an
 * anonymous loopback client reaches predict and feedback only. The routes come from the app
 * itself (`app.routes` of an app built as `keel gateway` builds it), so a route added later
 * without a role in api/route-table.ts fails here. Also the HTTP client mistakes that answered
 * 500 (issue 15, item 12) and the body limit on every route.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MiddlewareHandler } from 'hono';
import { createGatewayApp } from '../../api/app.js';
import { PUBLIC, ROUTE_TABLE, type DeclaredRoute } from '../../api/route-table.js';
import { pickExplicitVariant, pickLiveTarget } from '../../api/serving/routing.js';
import { ROLES, type Role } from '../../lib/roles.js';
import { openArtifactStore } from '../../stores/artifacts/index.js';
import { createApiKey } from '../../stores/api-keys.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { setRoutes } from '../../stores/routes.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { registerServedModel } from '../helpers/served-models.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';

const MODEL = 'authm';
const FEATURES = { tenure_months: 12, monthly_spend: 42.5, support_tickets: 1, plan: 'basic' };
const MAX_BODY_BYTES = 4096;

let database: { url: string; drop: () => Promise<void> };
let db: Db;
let artifactsDir: string;
let keys: Gateway;
const tokens = {} as Record<Role, string>;

interface Gateway {
  process: GatewayProcess;
  call(route: { method: string; path: string }, init?: { token?: string; body?: string; headers?: Record<string, string> }): Promise<Response>;
}

async function startGateway(mode: 'keys' | 'open-loopback'): Promise<Gateway> {
  const process = await startGatewayProcess({
    databaseUrl: database.url,
    artifactsDir,
    env: { KEEL_AUTH: mode, KEEL_MAX_BODY_BYTES: String(MAX_BODY_BYTES), TEMPORAL_ADDRESS: '127.0.0.1:1' },
  });
  return {
    process,
    call: (route, init = {}) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...init.headers };
      if (init.token) headers.authorization = `Bearer ${init.token}`;
      const hasBody = route.method !== 'GET';
      return fetch(`${process.url}${route.path}`, { method: route.method, headers, body: hasBody ? (init.body ?? bodyFor(route.path)) : undefined });
    },
  };
}

/** A concrete URL for a declared route: the served model, version 1. */
function concrete(route: DeclaredRoute): { method: string; path: string } {
  return { method: route.method, path: route.path.replace(':name', MODEL).replace(':model', MODEL).replace(':version', '1') };
}

/** A body each route accepts or refuses as bad input (never one that starts work). */
function bodyFor(path: string): string {
  if (path.endsWith('/predict')) return JSON.stringify({ features: FEATURES });
  if (path === '/v1/pipelines/train') return JSON.stringify({ model: 'Not A Model Name' });
  return '{}';
}

/** The routes of an app built with every part `keel gateway` gives it (serving, db, registry, auth). */
function appRoutes(): Array<{ method: string; path: string }> {
  const guard: MiddlewareHandler = async (_c, next) => next();
  const app = createGatewayApp({
    readiness: [],
    registry: { db, temporal: () => Promise.reject(new Error('not used')) },
    serving: {
      state: { current: () => assert.fail('not served'), ready: () => false },
      picker: { pickLiveTarget, pickExplicitVariant },
      log: { append: () => undefined, has: () => false },
      auth: { canUseVariantHeader: () => false, actor: () => undefined },
      db,
    },
    auth: { requireRole: () => guard },
  });
  return app.routes.map((r) => ({ method: r.method, path: r.path }));
}

const allows = (route: DeclaredRoute, role: Role) => route.access !== PUBLIC && route.access.includes(role);

before(async () => {
  database = await freshDatabase(await testDatabaseUrl());
  await migrate(database.url);
  db = createDb({ url: database.url });
  artifactsDir = tempDir('keel-route-auth-artifacts-');
  const artifacts = openArtifactStore({ uri: `file://${artifactsDir}`, region: 'us-east-1' });
  await registerServedModel({ db, artifacts }, { model: MODEL, aliases: ['champion'] });
  for (const role of ROLES) tokens[role] = (await createApiKey(db, { name: `only-${role}`, roles: [role], createdBy: 'test' })).token;
  keys = await startGateway('keys');
});

after(async () => {
  await keys?.process.stop();
  await db?.end();
  await database?.drop();
});

describe('the route table', () => {
  it('declares exactly the routes the gateway app registers', () => {
    const registered = appRoutes().map((r) => `${r.method} ${r.path}`).sort();
    const declared = ROUTE_TABLE.map((r) => `${r.method} ${r.path}`).sort();
    assert.deepEqual(registered, declared);
  });

  it('makes only health, metrics and server metadata public', () => {
    const open = ROUTE_TABLE.filter((r) => r.access === PUBLIC).map((r) => r.path);
    // Keel's, MLflow's (/ping, /health, /version) and the Open Inference Protocol's health and server metadata routes.
    assert.deepEqual(open.filter((p) => !/^\/(healthz|readyz|metrics|ping|health|version|v2\/?)$|^\/v2\/health\//.test(p)), []);
  });

  it('refuses to build an app with a route outside the table', async () => {
    const { Hono } = await import('hono');
    const { createRouteMounter } = await import('../../api/mount-routes.js');
    const app = new Hono();
    const mounter = createRouteMounter(app, {});
    const stray = new Hono();
    stray.get('/v1/secrets', (c) => c.json({}));
    assert.throws(() => mounter.mount(stray), /GET \/v1\/secrets is not in the gateway's route table/);
    app.get('/v1/bypass', (c) => c.json({}));
    assert.throws(() => mounter.assertAllMounted(), /GET \/v1\/bypass was added to the gateway outside the route table/);
  });
});

describe('keys mode, every route on the real gateway process', () => {
  for (const route of ROUTE_TABLE) {
    const target = concrete(route);
    it(`${route.method} ${route.path}: ${route.access === PUBLIC ? 'public' : route.access.join(' or ')}`, async () => {
      const anonymous = await keys.call(target);
      if (route.access === PUBLIC) {
        assert.ok(![401, 403].includes(anonymous.status), `anonymous ${anonymous.status}`);
        return;
      }
      assert.equal(anonymous.status, 401, `no key: ${await anonymous.text()}`);
      for (const role of ROLES) {
        const res = await keys.call(target, { token: tokens[role] });
        const text = await res.text();
        if (allows(route, role)) {
          assert.ok(![401, 403].includes(res.status) && res.status < 500, `role ${role}: ${res.status} ${text}`);
        } else {
          assert.equal(res.status, 403, `role ${role}: ${text}`);
        }
      }
    });
  }

  it('names the roles a route needs in its 403', async () => {
    const res = await keys.call({ method: 'GET', path: '/v1/models' }, { token: tokens.predict });
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(res.status, 403);
    assert.deepEqual(body.error, { code: 'Forbidden', message: 'this endpoint needs an API key with one of the roles viewer, admin' });
  });

  it('still lets only admin keys pin a variant', async () => {
    const predict = concrete(ROUTE_TABLE.find((r) => r.path.endsWith('/predict'))!);
    const pinned = await keys.call(predict, { token: tokens.predict, headers: { 'x-keel-variant': 'v1' } });
    assert.equal(pinned.status, 403);
    assert.equal((await keys.call(predict, { token: tokens.admin, headers: { 'x-keel-variant': 'v1' } })).status, 200);
  });
});

describe('open-loopback mode', () => {
  let open: Gateway;
  before(async () => {
    open = await startGateway('open-loopback');
  });
  after(async () => {
    await open?.process.stop();
  });

  it('serves predict and feedback to an anonymous loopback client, and nothing else that needs a role', async () => {
    for (const route of ROUTE_TABLE) {
      const res = await open.call(concrete(route));
      const text = await res.text();
      const openOnLoopback = route.access === PUBLIC || allows(route, 'predict') || allows(route, 'feedback');
      if (openOnLoopback) assert.ok(![401, 403].includes(res.status) && res.status < 500, `${route.method} ${route.path}: ${res.status} ${text}`);
      else assert.equal(res.status, 401, `${route.method} ${route.path}: ${text}`);
    }
  });
});

describe('client mistakes answer 4xx on the real gateway process', () => {
  const admin = () => ({ token: tokens.admin });

  it('PUT /v1/routes/:model with a version beyond Postgres int is a 422 naming targets', async () => {
    const res = await keys.call({ method: 'PUT', path: `/v1/routes/${MODEL}` }, { ...admin(), body: JSON.stringify({ targets: [{ version: 2147483648, weight: 1 }] }) });
    const body = (await res.json()) as { error: { code: string; message: string; field?: string } };
    assert.equal(res.status, 422, JSON.stringify(body));
    assert.equal(body.error.code, 'InvalidInput');
    assert.match(body.error.message, /version must be at most 2147483647/);
  });

  it('GET /v1/models/:name/versions/<huge number> is a 404', async () => {
    for (const ref of ['99999999999999999999', '2147483648', 'v99999999999999999999']) {
      const res = await keys.call({ method: 'GET', path: `/v1/models/${MODEL}/versions/${ref}` }, admin());
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(res.status, 404, `${ref}: ${JSON.stringify(body)}`);
      assert.equal(body.error.code, 'NotFound');
    }
  });

  it('a NUL character in the salt, or in a model name or alias, is a 4xx', async () => {
    const salted = await keys.call({ method: 'PUT', path: `/v1/routes/${MODEL}` }, { ...admin(), body: JSON.stringify({ targets: [{ version: 1, weight: 1 }], salt: 'a\u0000b' }) });
    const body = (await salted.json()) as { error: { code: string; field?: string } };
    assert.equal(salted.status, 422, JSON.stringify(body));
    assert.equal(body.error.field, 'salt');
    for (const path of ['/v1/models/a%00b', `/v1/models/${MODEL}/versions/a%00b`]) {
      const res = await keys.call({ method: 'GET', path }, admin());
      assert.equal(res.status, 404, `${path}: ${await res.text()}`);
    }
  });

  it('DELETE /v1/routes/<a model without routes> is a 404 and takes no generation', async () => {
    const before = await db.query<{ last_value: string }>('SELECT last_value FROM routing_generation');
    const res = await keys.call({ method: 'DELETE', path: '/v1/routes/no_such_model' }, admin());
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(res.status, 404, JSON.stringify(body));
    assert.equal(body.error.code, 'NotFound');
    const afterward = await db.query<{ last_value: string }>('SELECT last_value FROM routing_generation');
    assert.equal(afterward.rows[0]!.last_value, before.rows[0]!.last_value);
    // A model with routes is still cleared.
    await setRoutes(db, MODEL, [{ version: 1, weight: 1 }], { updatedBy: 'test' });
    const cleared = await keys.call({ method: 'DELETE', path: `/v1/routes/${MODEL}` }, admin());
    assert.equal(cleared.status, 200, await cleared.text());
  });

  it('POST /v1/pipelines/train with an s3:// data URI and no S3 credentials is a 503 naming the problem', async () => {
    const noCredentials = await startGatewayProcess({
      databaseUrl: database.url,
      artifactsDir,
      env: {
        KEEL_AUTH: 'keys',
        TEMPORAL_ADDRESS: '127.0.0.1:1',
        AWS_ACCESS_KEY_ID: '',
        AWS_SECRET_ACCESS_KEY: '',
        AWS_PROFILE: '',
        AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
        AWS_CONFIG_FILE: '/nonexistent/config',
        AWS_EC2_METADATA_DISABLED: 'true',
      },
    });
    try {
      const res = await fetch(`${noCredentials.url}/v1/pipelines/train`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokens.admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'from_s3', data: { uri: 's3://some-bucket/train.csv' } }),
      });
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.match(body.error.message, /no S3 credentials/);
    } finally {
      await noCredentials.stop();
    }
  });

  it('limits the body of every route that takes one', async () => {
    const big = JSON.stringify({ padding: 'x'.repeat(MAX_BODY_BYTES) });
    for (const route of ROUTE_TABLE.filter((r) => r.method !== 'GET')) {
      const res = await keys.call(concrete(route), { token: tokens.admin, body: big });
      const text = await res.text();
      // An admin key may call every non-public route; protocol routes may answer in their own error shape.
      assert.equal(res.status, 413, `${route.method} ${route.path}: ${text}`);
    }
  });
});
