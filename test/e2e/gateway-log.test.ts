/**
 * The prediction log loses nothing and counts nothing twice: a load run against the real gateway
 * process, Postgres stopped and started again in the middle (the gateway keeps answering from
 * memory and spills the log to a file), SIGTERM while requests are still coming in. Afterwards
 * the `predictions` table holds exactly one live row per 200 answer, with the same request ids.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LocalPostgres } from '../../infra/local/postgres.js';
import { freePort } from '../../infra/local/ports.js';
import { openArtifactStore } from '../../stores/artifacts/index.js';
import { createDb } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { registerServedModel } from '../helpers/served-models.js';
import { atExit, tempDir } from '../helpers/temp.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('after a load run with a Postgres restart and a SIGTERM, logged predictions = 200 answers', { timeout: 300_000 }, async () => {
  // A Postgres of this test's own, so it can be stopped and started again.
  const pgHome = tempDir('keel-e2e-log-pg-');
  const port = await freePort();
  let postgres = await LocalPostgres.start({ home: pgHome, pgHome, port });
  atExit(() => void postgres.stop().catch(() => undefined));
  await migrate(postgres.url);
  const setup = createDb({ url: postgres.url });
  const artifactsDir = tempDir('keel-e2e-log-artifacts-');
  const artifacts = openArtifactStore({ uri: `file://${artifactsDir}`, region: 'us-east-1' });
  await registerServedModel({ db: setup, artifacts }, { model: 'logged', trainer: 'gbdt', params: { maxIter: 10 }, aliases: ['champion'] });
  await setup.end();

  const gateway = await startGatewayProcess({ databaseUrl: postgres.url, artifactsDir, env: { KEEL_SPILL_DIR: tempDir('keel-e2e-log-spill-') } });
  const answered = new Set<string>();
  const refused: string[] = [];
  let sent = 0;
  let stopLoad = false;
  const client = async (id: number) => {
    for (let i = 0; !stopLoad; i++) {
      const requestId = `load-${id}-${i}`;
      sent++;
      try {
        const response = await fetch(`${gateway.url}/v1/models/logged/predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ request_id: requestId, features: { tenure_months: i % 48, monthly_spend: 20 + (i % 80), support_tickets: i % 6, plan: ['basic', 'plus', 'pro'][i % 3] } }),
        });
        const text = await response.text();
        if (response.status === 200) answered.add(requestId);
        else refused.push(`${response.status} ${text.slice(0, 200)}`);
      } catch {
        // The gateway stopped listening (after SIGTERM): this request was never answered.
        if (gateway.child.exitCode !== null || stopLoad) return;
        await sleep(10);
      }
    }
  };
  const load = Promise.all(Array.from({ length: 8 }, (_, id) => client(id)));

  await sleep(2_000);
  const beforeRestart = answered.size;
  await postgres.stop();
  await sleep(3_000);
  const whileDown = answered.size;
  postgres = await LocalPostgres.start({ home: pgHome, pgHome, port });
  await sleep(3_000);
  // SIGTERM with requests still coming in: those in flight finish, then the log is flushed.
  const exitCode = await gateway.stop();
  stopLoad = true;
  await load;

  assert.equal(exitCode, 0, `gateway exit code ${exitCode}:\n${gateway.output().slice(-3000)}`);
  assert.ok(beforeRestart > 50, `load before the restart: ${beforeRestart} answers`);
  assert.ok(whileDown > beforeRestart + 50, `the gateway kept answering while Postgres was down (${beforeRestart} → ${whileDown})`);
  assert.deepEqual(refused, [], 'every answer while the gateway was up was a 200');

  const db = createDb({ url: postgres.url });
  try {
    const { rows } = await db.query<{ request_id: string }>(`SELECT request_id FROM predictions WHERE model = 'logged' AND mode = 'live'`);
    const logged = rows.map((r) => r.request_id);
    assert.equal(logged.length, answered.size, `logged ${logged.length} predictions for ${answered.size} answers (${sent} sent)`);
    assert.deepEqual(new Set(logged), answered);
  } finally {
    await db.end();
    await postgres.stop();
  }
});
