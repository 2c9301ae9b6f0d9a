/**
 * API keys while Postgres is away, against the real `keel gateway` process in `keys` mode: keys
 * verified recently keep predicting after their cached answer expires (the grace period), a key
 * the gateway never saw gets 503 (counted in `keel_prediction_errors_total`), and a key revoked
 * meanwhile is refused once Postgres answers again.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { openArtifactStore } from '../../stores/artifacts/index.js';
import { createApiKey, revokeApiKey } from '../../stores/api-keys.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { startRestartablePostgres, type RestartablePostgres } from '../helpers/restartable-postgres.js';
import { registerServedModel } from '../helpers/served-models.js';
import { tempDir } from '../helpers/temp.js';

/** The verifier's cache TTL (stores/api-keys.ts), which the outage must outlast. */
const CACHE_TTL_MS = 5_000;
const FEATURES = { tenure_months: 12, monthly_spend: 42.5, support_tickets: 1, plan: 'basic' };

let postgres: RestartablePostgres;
let db: Db;
let gateway: GatewayProcess;

before(async () => {
  postgres = await startRestartablePostgres();
  await migrate(postgres.url);
  db = createDb({ url: postgres.url });
  const artifactsDir = tempDir('keel-grace-artifacts-');
  await registerServedModel({ db, artifacts: openArtifactStore({ uri: `file://${artifactsDir}`, region: 'us-east-1' }) }, { model: 'grace', aliases: ['champion'] });
  gateway = await startGatewayProcess({ databaseUrl: postgres.url, artifactsDir, env: { KEEL_AUTH: 'keys', KEEL_API_KEY_GRACE_SECONDS: '120' } });
});

after(async () => {
  await gateway?.stop();
  await db?.end();
  await postgres?.stop();
});

const predict = (token: string) =>
  fetch(`${gateway.url}/v1/models/grace/predict`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ features: FEATURES }),
  });

async function unavailableCount(): Promise<number> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('keel_prediction_errors_total{code="Unavailable"}'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

test('keys verified before a Postgres outage keep predicting; unknown keys get a counted 503; revocation applies once Postgres is back', async () => {
  const steady = await createApiKey(db, { name: 'steady', roles: ['predict'], createdBy: 'test' });
  const doomed = await createApiKey(db, { name: 'doomed', roles: ['predict'], createdBy: 'test' });
  const unseen = await createApiKey(db, { name: 'unseen', roles: ['predict'], createdBy: 'test' });
  for (const key of [steady, doomed]) assert.equal((await predict(key.token)).status, 200);

  await postgres.stop();
  await sleep(CACHE_TTL_MS + 1_500);
  for (let i = 0; i < 10; i++) {
    const res = await predict(steady.token);
    assert.equal(res.status, 200, `request ${i} with a recently verified key during the outage: ${await res.text()}`);
  }
  assert.equal((await predict(doomed.token)).status, 200);

  const before = await unavailableCount();
  const refused = await predict(unseen.token);
  const body = (await refused.json()) as { error: { code: string; message: string } };
  assert.equal(refused.status, 503, JSON.stringify(body));
  assert.equal(body.error.code, 'Unavailable');
  assert.equal(await unavailableCount(), before + 1);

  await postgres.start();
  await revokeApiKey(db, doomed.id);
  const deadline = Date.now() + CACHE_TTL_MS * 3;
  let status = 0;
  while (Date.now() < deadline) {
    status = (await predict(doomed.token)).status;
    if (status === 401) break;
    await sleep(250);
  }
  assert.equal(status, 401, 'the key revoked during the outage is refused once Postgres answers');
  assert.equal((await predict(steady.token)).status, 200);
  assert.equal((await predict(unseen.token)).status, 200, 'a key Postgres confirms works again');
});
