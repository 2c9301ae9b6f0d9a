/**
 * Gateway API keys against a real Postgres: the store (create, list, revoke, verify), the Hono
 * middleware (401 / 403 / 200, open-loopback through a real socket, the x-keel-variant rule) and
 * `keel keys` as users run it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { createAuth, principalOf, variantOverride, type Auth } from '../../api/auth.js';
import type { AuthMode } from '../../lib/config.js';
import { InvalidInput } from '../../lib/errors.js';
import { createApiKey, createApiKeyVerifier, listApiKeys, revokeApiKey, verifyApiKey } from '../../stores/api-keys.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { NotFound } from '../../stores/registry.js';
import { runKeel } from '../helpers/keel-cli.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';

describe('API keys', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  const toClose: Array<() => Promise<void>> = [];

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
  });
  after(async () => {
    for (const close of toClose) await close();
    await db?.end();
    await database?.drop();
  });

  describe('store', () => {
    it('creates a key whose token verifies to its roles, storing only the secret hash', async () => {
      const key = await createApiKey(db, { name: 'scoring-service', roles: ['predict', 'feedback', 'predict'], createdBy: 'test' });
      assert.match(key.token, /^keel_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      assert.equal(key.token.split('_')[1], key.id);
      assert.deepEqual(key.roles, ['predict', 'feedback']);
      assert.equal(key.revokedAt, null);

      const secret = key.token.slice(`keel_${key.id}_`.length);
      const { rows } = await db.query(`SELECT * FROM api_keys WHERE id = $1`, [key.id]);
      assert.equal(rows[0].secret_sha256, createHash('sha256').update(secret).digest('hex'));
      assert.ok(!JSON.stringify(rows[0]).includes(secret), 'the secret itself is not stored');

      assert.deepEqual(await verifyApiKey(db, key.token), { keyId: key.id, name: 'scoring-service', roles: ['predict', 'feedback'] });
    });

    it('rejects a wrong secret, an unknown id and malformed tokens', async () => {
      const key = await createApiKey(db, { name: 'k', roles: ['admin'], createdBy: 'test' });
      const secret = key.token.slice(`keel_${key.id}_`.length);
      const otherSecret = (secret[0] === 'A' ? 'B' : 'A') + secret.slice(1);
      assert.equal(await verifyApiKey(db, `keel_${key.id}_${otherSecret}`), undefined);
      assert.equal(await verifyApiKey(db, `keel_zzzzzzzzzzzz_${secret}`), undefined);
      for (const bad of ['', 'keel_', key.id, `${key.token}x`, `Bearer ${key.token}`, `keel_${key.id.toUpperCase()}_${secret}`]) {
        assert.equal(await verifyApiKey(db, bad), undefined, bad);
      }
    });

    it('lists keys without secrets, and revokes them idempotently', async () => {
      const key = await createApiKey(db, { name: 'to-revoke', roles: ['approver'], createdBy: 'alice' });
      const listed = (await listApiKeys(db)).find((k) => k.id === key.id);
      assert.deepEqual(Object.keys(listed!).sort(), ['createdAt', 'createdBy', 'id', 'lastUsedAt', 'name', 'revokedAt', 'roles']);
      assert.equal(listed!.createdBy, 'alice');

      const first = await revokeApiKey(db, key.id);
      assert.equal(first.alreadyRevoked, false);
      assert.equal(await verifyApiKey(db, key.token), undefined);
      const second = await revokeApiKey(db, key.id);
      assert.equal(second.alreadyRevoked, true);
      assert.equal(second.revokedAt.getTime(), first.revokedAt.getTime(), 'the first revocation time is kept');
      assert.ok((await listApiKeys(db)).find((k) => k.id === key.id)!.revokedAt);
    });

    it('names what is wrong with a new key or a revoke', async () => {
      await assert.rejects(createApiKey(db, { name: 'x', roles: ['root'], createdBy: 't' }), (e) => e instanceof InvalidInput && /unknown role "root"/.test(e.message) && e.field === 'roles');
      await assert.rejects(createApiKey(db, { name: 'x', roles: [], createdBy: 't' }), (e) => e instanceof InvalidInput && e.field === 'roles');
      await assert.rejects(createApiKey(db, { name: '  ', roles: ['predict'], createdBy: 't' }), (e) => e instanceof InvalidInput && e.field === 'name');
      await assert.rejects(revokeApiKey(db, 'abcdefgh1234'), (e) => e instanceof NotFound && /abcdefgh1234/.test(e.message));
      await assert.rejects(revokeApiKey(db, 'keel_x'), InvalidInput);
    });

    it('records when a key was last used, through the verifier', async () => {
      const key = await createApiKey(db, { name: 'used', roles: ['predict'], createdBy: 'test' });
      const verifier = createApiKeyVerifier(db);
      assert.equal((await verifier.verify(key.token))?.keyId, key.id);
      await verifier.close(); // waits for the last_used_at write
      const listed = (await listApiKeys(db)).find((k) => k.id === key.id)!;
      assert.ok(listed.lastUsedAt instanceof Date);
    });

    it('stops accepting a revoked key once its cached answer expires', async () => {
      const key = await createApiKey(db, { name: 'cached', roles: ['predict'], createdBy: 'test' });
      const cached = createApiKeyVerifier(db, { cacheTtlMs: 60_000 });
      const uncached = createApiKeyVerifier(db, { cacheTtlMs: 0 });
      assert.ok(await cached.verify(key.token));
      assert.ok(await uncached.verify(key.token));
      await revokeApiKey(db, key.id);
      assert.ok(await cached.verify(key.token), 'a cached answer is reused within its TTL');
      assert.equal(await uncached.verify(key.token), undefined);
      await Promise.all([cached.close(), uncached.close()]);
    });
  });

  describe('middleware', () => {
    let tokens: Record<'predict' | 'feedback' | 'admin' | 'approver' | 'predictAdmin' | 'revoked', string>;

    before(async () => {
      const make = async (roles: string[]) => (await createApiKey(db, { name: `mw-${roles.join('-')}`, roles, createdBy: 'test' })).token;
      const revokedKey = await createApiKey(db, { name: 'mw-revoked', roles: ['predict', 'admin'], createdBy: 'test' });
      await revokeApiKey(db, revokedKey.id);
      tokens = {
        predict: await make(['predict']),
        feedback: await make(['feedback']),
        admin: await make(['admin']),
        approver: await make(['approver']),
        predictAdmin: await make(['predict', 'admin']),
        revoked: revokedKey.token,
      };
    });

    function gatewayLike(mode: AuthMode, requestsWithoutSocketAreLoopback = false) {
      const auth: Auth = createAuth({ db, mode, verifierOptions: { cacheTtlMs: 0 }, requestsWithoutSocketAreLoopback });
      toClose.push(() => auth.close());
      const app = new Hono();
      app.post('/v1/models/:name/predict', auth.requireRole('predict'), (c) => {
        const override = variantOverride(c);
        if (override.denied) return override.denied;
        return c.json({ ok: true, key: principalOf(c)?.keyId ?? null, variant: override.variant ?? null });
      });
      app.post('/v1/feedback', auth.requireRole('feedback'), (c) => c.json({ ok: true }));
      app.get('/v1/models', auth.requireRole('admin'), (c) => c.json({ ok: true }));
      app.post('/v1/rollouts/:model/decision', auth.requireRole('approver', 'admin'), (c) => c.json({ ok: true }));
      return app;
    }

    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

    it('answers 401 without a key or with a wrong or revoked one, in keys mode', async () => {
      const app = gatewayLike('keys');
      const missing = await app.request('/v1/models/churn/predict', { method: 'POST' });
      assert.equal(missing.status, 401);
      assert.match(missing.headers.get('www-authenticate') ?? '', /^Bearer/);
      const body = (await missing.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'Unauthorized');
      assert.match(body.error.message, /API key/);

      for (const headers of [
        bearer('keel_nosuchkey1_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
        bearer('not-a-token'),
        bearer(tokens.revoked),
        { 'x-api-key': tokens.revoked },
        { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      ]) {
        const res = await app.request('/v1/models/churn/predict', { method: 'POST', headers });
        assert.equal(res.status, 401, JSON.stringify(headers));
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'Unauthorized');
        assert.ok(res.headers.get('www-authenticate'));
      }
    });

    it('answers 403 naming the role for a valid key without it, 200 with it', async () => {
      const app = gatewayLike('keys');
      const wrong = await app.request('/v1/models', { headers: bearer(tokens.predict) });
      assert.equal(wrong.status, 403);
      const body = (await wrong.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'Forbidden');
      assert.match(body.error.message, /role admin/);

      assert.equal((await app.request('/v1/models', { headers: bearer(tokens.admin) })).status, 200);
      assert.equal((await app.request('/v1/feedback', { method: 'POST', headers: { 'x-api-key': tokens.feedback } })).status, 200);
      assert.equal((await app.request('/v1/feedback', { method: 'POST', headers: bearer(tokens.predict) })).status, 403);
      const decision = await app.request('/v1/rollouts/churn/decision', { method: 'POST', headers: bearer(tokens.predict) });
      assert.match(((await decision.json()) as { error: { message: string } }).error.message, /one of the roles approver, admin/);
      assert.equal((await app.request('/v1/rollouts/churn/decision', { method: 'POST', headers: bearer(tokens.approver) })).status, 200);
      assert.equal((await app.request('/v1/rollouts/churn/decision', { method: 'POST', headers: bearer(tokens.admin) })).status, 200);

      const ok = await app.request('/v1/models/churn/predict', { method: 'POST', headers: { authorization: `bearer  ${tokens.predict}` } });
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { key: string }).key, tokens.predict.split('_')[1]);
    });

    it('lets only admin keys pick a variant with x-keel-variant', async () => {
      const app = gatewayLike('keys');
      const predictOnly = await app.request('/v1/models/churn/predict', { method: 'POST', headers: { ...bearer(tokens.predict), 'x-keel-variant': 'candidate' } });
      assert.equal(predictOnly.status, 403);
      assert.match(((await predictOnly.json()) as { error: { message: string } }).error.message, /x-keel-variant.*role admin/);
      const admin = await app.request('/v1/models/churn/predict', { method: 'POST', headers: { ...bearer(tokens.predictAdmin), 'x-keel-variant': 'candidate' } });
      assert.equal(admin.status, 200);
      assert.equal(((await admin.json()) as { variant: string }).variant, 'candidate');
    });

    it('keeps app.request() without a socket closed in open-loopback mode unless told otherwise', async () => {
      assert.equal((await gatewayLike('open-loopback').request('/v1/feedback', { method: 'POST' })).status, 401);
      assert.equal((await gatewayLike('open-loopback', true).request('/v1/feedback', { method: 'POST' })).status, 200);
    });

    describe('open-loopback through a real socket', () => {
      let server: ServerType;
      let base: string;
      before(async () => {
        const app = gatewayLike('open-loopback');
        server = await new Promise<ServerType>((resolve) => {
          const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
        });
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      });
      after(async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      });

      const call = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, { method: 'POST', ...init });

      it('serves predict and feedback to a loopback client without a key', async () => {
        const predict = await call('/v1/models/churn/predict');
        assert.equal(predict.status, 200);
        assert.deepEqual(await predict.json(), { ok: true, key: null, variant: null });
        assert.equal((await call('/v1/feedback')).status, 200);
      });

      it('still checks a key that is presented', async () => {
        assert.equal((await call('/v1/models/churn/predict', { headers: bearer(tokens.revoked) })).status, 401);
        assert.equal((await call('/v1/models/churn/predict', { headers: bearer(tokens.admin) })).status, 403);
        assert.equal((await call('/v1/models/churn/predict', { headers: bearer(tokens.predict) })).status, 200);
      });

      it('always needs a key for admin and approver endpoints and for x-keel-variant', async () => {
        assert.equal((await fetch(`${base}/v1/models`)).status, 401);
        assert.equal((await call('/v1/rollouts/churn/decision')).status, 401);
        assert.equal((await call('/v1/models/churn/predict', { headers: { 'x-keel-variant': 'candidate' } })).status, 401);
        assert.equal((await call('/v1/models/churn/predict', { headers: { ...bearer(tokens.predict), 'x-keel-variant': 'candidate' } })).status, 403);
        assert.equal((await call('/v1/models/churn/predict', { headers: { ...bearer(tokens.predictAdmin), 'x-keel-variant': 'candidate' } })).status, 200);
      });

      it('does not treat proxied requests as local', async () => {
        assert.equal((await call('/v1/feedback', { headers: { 'x-forwarded-for': '203.0.113.9' } })).status, 401);
      });
    });
  });

  describe('keel keys', () => {
    const keel = (args: string[]) => runKeel(args, { ...process.env, DATABASE_URL: database.url });

    it('creates a key, prints its token once, lists it and revokes it', async () => {
      const created = await keel(['keys', 'create', '--name', 'batch-scorer', '--role', 'predict', '--role', 'feedback']);
      assert.equal(created.code, 0, created.stderr);
      const token = created.stdout.trim();
      assert.match(token, /^keel_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
      assert.match(created.stderr, /cannot be shown again/);
      const principal = await verifyApiKey(db, token);
      assert.deepEqual(principal?.roles, ['predict', 'feedback']);
      const id = principal!.keyId;

      const listed = await keel(['keys', 'list', '--json']);
      assert.equal(listed.code, 0, listed.stderr);
      const keys = JSON.parse(listed.stdout) as Array<{ id: string; name: string; roles: string[]; revokedAt: string | null }>;
      const mine = keys.find((k) => k.id === id)!;
      assert.deepEqual({ name: mine.name, roles: mine.roles, revokedAt: mine.revokedAt }, { name: 'batch-scorer', roles: ['predict', 'feedback'], revokedAt: null });
      assert.ok(!listed.stdout.includes(token.split('_').slice(2).join('_')), 'list never shows secrets');
      const table = await keel(['keys', 'list']);
      assert.match(table.stdout, new RegExp(`${id}\\s+batch-scorer\\s+predict,feedback\\s+active`));

      const revoked = await keel(['keys', 'revoke', id, '--json']);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal((JSON.parse(revoked.stdout) as { alreadyRevoked: boolean }).alreadyRevoked, false);
      assert.equal(await verifyApiKey(db, token), undefined);
      const again = await keel(['keys', 'revoke', id]);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /already revoked/);
    });

    it('creates a viewer key, the registry read role', async () => {
      const created = await keel(['keys', 'create', '--name', 'dashboards', '--role', 'viewer', '--json']);
      assert.equal(created.code, 0, created.stderr);
      const out = JSON.parse(created.stdout) as { token: string; roles: string[] };
      assert.deepEqual(out.roles, ['viewer']);
      assert.deepEqual((await verifyApiKey(db, out.token))?.roles, ['viewer']);
    });

    it('prints the token in --json output too', async () => {
      const created = await keel(['keys', 'create', '--name', 'ops', '--role', 'admin,approver', '--json']);
      assert.equal(created.code, 0, created.stderr);
      const out = JSON.parse(created.stdout) as { id: string; token: string; roles: string[] };
      assert.deepEqual(out.roles, ['admin', 'approver']);
      assert.equal((await verifyApiKey(db, out.token))?.keyId, out.id);
    });

    for (const [args, reason] of [
      [['keys', 'create', '--role', 'predict'], /--name/],
      [['keys', 'create', '--name', 'x', '--role', 'superuser'], /unknown role "superuser"/],
      [['keys', 'create', '--name', 'x'], /at least one role/],
      [['keys', 'revoke', 'nosuchkey123'], /no API key with id nosuchkey123/],
      [['keys', 'revoke', 'Not-An-Id'], /not an API key id/],
    ] as const) {
      it(`exits 2 with one line for keel ${args.join(' ')}`, async () => {
        const run = await keel([...args]);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, reason);
        assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
      });
    }
  });
});
