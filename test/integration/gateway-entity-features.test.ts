/**
 * `{entity}` predictions through the real `keel gateway` process: each answer (and its log row)
 * counts the model's online features present / expired / missing; an entity none of whose online
 * features is present is refused (422 `EntityNotFound` / `FeaturesExpired`, naming the entity,
 * never a value), in a batch too, unless the model is set to be served anyway with
 * `keel models <name> --serve-without-features on`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { runKeel } from '../helpers/keel-cli.js';
import { registerChurnFeatureModel } from '../helpers/served-models.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const UNKNOWN = 987654321;

describe('entity predictions and their online features (real gateway process)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let gateway: GatewayProcess;
  let customers: number[];
  /** The model's online features (its features minus the on-demand outputs). */
  let onlineCount: number;

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    const artifactsDir = tempDir('keel-entity-features-artifacts-');
    const artifacts = openArtifactStore({ uri: `file://${artifactsDir}`, region: 'us-east-1' });
    const served = await registerChurnFeatureModel({ db, artifacts }, { model: 'feat', labelRows: 1000, aliases: ['champion'] });
    // Customers with a row in every online view (not every customer has orders or tickets).
    const complete = await db.query<{ key: string }>(`SELECT entity_key AS key FROM online_features GROUP BY entity_key HAVING count(*) = 3 ORDER BY 1 LIMIT 5`);
    customers = complete.rows.map((r) => (JSON.parse(r.key) as number[])[0]!);
    assert.equal(customers.length, 5);
    onlineCount = served.featureNames.filter((n) => !['spend_per_order_30d', 'is_new_customer'].includes(n)).length;
    gateway = await startGatewayProcess({ databaseUrl: database.url, artifactsDir });
  });

  after(async () => {
    if (gateway) await gateway.stop();
    await db?.end();
    await database?.drop().catch(() => undefined);
  });

  const predict = (body: unknown) =>
    fetch(`${gateway.url}/v1/models/feat/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  /** The logged live row of a request id, once the log has written it. */
  async function loggedPresence(requestId: string): Promise<Json | null | undefined> {
    for (let i = 0; i < 100; i++) {
      const { rows } = await db.query<{ feature_presence: Json | null }>(`SELECT feature_presence FROM predictions WHERE request_id = $1 AND mode = 'live'`, [requestId]);
      if (rows[0]) return rows[0].feature_presence;
      await sleep(100);
    }
    return undefined;
  }

  async function expectRefusal(res: Response, code: string, field: string, entity: number): Promise<Json> {
    const text = await res.text();
    assert.equal(res.status, 422, text);
    const error = (JSON.parse(text) as Json).error;
    assert.equal(error.code, code);
    assert.equal(error.field, field);
    assert.match(error.message, new RegExp(`"customer_id":${entity}\\b`), 'the entity is named');
    assert.match(error.message, /--serve-without-features on/);
    return error;
  }

  it('answers how many online features were present, and logs it', async () => {
    const res = await predict({ entity: { customer_id: customers[0] }, request_id: 'present-1' });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as Json;
    assert.deepEqual(body.features, { present: onlineCount, expired: 0, missing: 0 });
    assert.deepEqual(await loggedPresence('present-1'), body.features);
  });

  it('counts expired features, and serves an entity with some features present', async () => {
    const customer = customers[1]!;
    await db.query(`UPDATE online_features SET event_timestamp = now() - interval '30 days' WHERE view = 'order_activity' AND entity_key = $1`, [`[${customer}]`]);
    const res = await predict({ entity: { customer_id: customer }, request_id: 'partly-expired' });
    assert.equal(res.status, 200, await res.clone().text());
    const { features } = (await res.json()) as Json;
    assert.ok(features.expired > 0 && features.present > 0, JSON.stringify(features));
    assert.equal(features.present + features.expired + features.missing, onlineCount);
    assert.deepEqual(await loggedPresence('partly-expired'), features);
  });

  it('refuses an entity never materialized: 422 EntityNotFound naming it, nothing logged', async () => {
    const error = await expectRefusal(await predict({ entity: { customer_id: UNKNOWN }, request_id: 'unknown-1' }), 'EntityNotFound', 'entity', UNKNOWN);
    assert.match(error.message, new RegExp(`none of the ${onlineCount} online features`));
    assert.equal(await db.query(`SELECT 1 FROM predictions WHERE request_id = 'unknown-1'`).then((r) => r.rowCount), 0);
  });

  it('refuses an entity whose features all expired: 422 FeaturesExpired, never echoing a value', async () => {
    const customer = customers[2]!;
    const key = `[${customer}]`;
    const { rows } = await db.query<{ features: Json }>(`SELECT features FROM online_features WHERE entity_key = $1`, [key]);
    // customer_profile never expires (TTL 0): its row goes, the others age past their 14-day TTL.
    await db.query(`DELETE FROM online_features WHERE view = 'customer_profile' AND entity_key = $1`, [key]);
    await db.query(`UPDATE online_features SET event_timestamp = now() - interval '30 days' WHERE entity_key = $1`, [key]);
    const error = await expectRefusal(await predict({ entity: { customer_id: customer } }), 'FeaturesExpired', 'entity', customer);
    for (const value of rows.flatMap((r) => Object.values(r.features))) {
      if (typeof value === 'string' && value.length > 2) assert.ok(!error.message.includes(value), `the message echoes ${value}`);
    }
    // A feature the request sends itself counts as present: served.
    const sent = await predict({ entity: { customer_id: customer }, features: { monthly_fee: 10 } });
    assert.equal(sent.status, 200, await sent.clone().text());
    assert.deepEqual(((await sent.json()) as Json).features.present, 1);
  });

  it('refuses a batch with one entity not found, naming its row', async () => {
    const res = await predict({ request_id: 'batch-1', instances: [{ entity: { customer_id: customers[3] } }, { entity: { customer_id: UNKNOWN } }] });
    await expectRefusal(res, 'EntityNotFound', 'instances[1].entity', UNKNOWN);
    const ok = await predict({ request_id: 'batch-2', instances: [{ entity: { customer_id: customers[3] } }, { entity: { customer_id: customers[4] } }] });
    assert.equal(ok.status, 200);
    for (const row of ((await ok.json()) as Json).predictions) assert.deepEqual(row.features, { present: onlineCount, expired: 0, missing: 0 });
  });

  it('serves a model set with `keel models --serve-without-features on`, and refuses again when off', async () => {
    const env = { ...process.env, DATABASE_URL: database.url };
    const bad = await runKeel(['models', 'feat', '--serve-without-features', 'maybe'], env);
    assert.equal(bad.code, 2, bad.stderr);
    const unknownModel = await runKeel(['models', 'nope', '--serve-without-features', 'on'], env);
    assert.equal(unknownModel.code, 2, unknownModel.stderr);
    const on = await runKeel(['models', 'feat', '--serve-without-features', 'on'], env);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stdout, /feat: served without online features: on/);

    // Gateways read the option within 5 s.
    let res: Response | undefined;
    for (let i = 0; i < 60; i++) {
      res = await predict({ entity: { customer_id: UNKNOWN }, request_id: `allowed-${i}` });
      if (res.status === 200) break;
      await sleep(500);
    }
    assert.equal(res!.status, 200, await res!.clone().text());
    const body = (await res!.json()) as Json;
    assert.deepEqual(body.features, { present: 0, expired: 0, missing: onlineCount });
    assert.deepEqual(await loggedPresence(body.request_id), body.features);

    assert.equal((await runKeel(['models', 'feat', '--serve-without-features', 'off'], env)).code, 0);
    for (let i = 0; i < 60; i++) {
      res = await predict({ entity: { customer_id: UNKNOWN } });
      if (res.status === 422) break;
      await sleep(500);
    }
    await expectRefusal(res!, 'EntityNotFound', 'entity', UNKNOWN);
  });
});
