/**
 * The serving state follows routing changes written to Postgres: through LISTEN/NOTIFY (the poll
 * is set too long to matter) and by polling alone; it reports the applied generation in
 * gateway_instances; a version that cannot be loaded never replaces routing that works.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadServedModel, ModelLoadError } from '../../api/serving/model-loader.js';
import type { ServingState } from '../../api/serving/serving-state.js';
import { startServingState } from '../../api/serving/serving-state.js';
import { storeModelBundle } from '../../activities/training/register-model.js';
import { signatureFor } from '../../lib/ml/signature.js';
import { openArtifactStore, type ArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { registerModelVersion } from '../../stores/registry.js';
import { clearRoutes, listGatewayInstances, setRoutes, waitForGateways } from '../../stores/routes.js';
import { registerServedModel, type ServedModelVersion } from '../helpers/served-models.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { runKeel } from '../helpers/keel-cli.js';
import { Hono } from 'hono';
import { onGatewayError } from '../../api/errors.js';
import { routingRoutes } from '../../api/routes/routing.js';

let db: Db;
let url: string;
let drop: () => Promise<void>;
let artifacts: ArtifactStore;
let v1: ServedModelVersion;
let v2: ServedModelVersion;
const states: ServingState[] = [];

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

before(async () => {
  const fresh = await freshDatabase(await testDatabaseUrl());
  url = fresh.url;
  drop = fresh.drop;
  await migrate(url);
  db = createDb({ url });
  artifacts = openArtifactStore({ uri: `file://${tempDir('keel-routing-artifacts-')}`, region: 'us-east-1' });
  v1 = await registerServedModel({ db, artifacts }, { model: 'churn', trainer: 'logreg', aliases: ['champion'] });
  v2 = await registerServedModel({ db, artifacts }, { model: 'churn', trainer: 'gbdt', params: { maxIter: 20 } });
});

after(async () => {
  await Promise.all(states.map((s) => s.close()));
  await db.end();
  await drop();
});

test('starts on the champion, follows a split through NOTIFY, reports the generation, skips a broken version', async () => {
  const cacheDir = tempDir('keel-routing-cache-');
  const state = await startServingState({ db, databaseUrl: url, artifacts, cacheDir, gatewayId: 'gw-listen', pollMs: 600_000 });
  states.push(state);
  assert.ok(state.ready());
  const first = state.current().routing.get('churn')!;
  assert.equal(first.implicit, true);
  assert.deepEqual(first.live.map((t) => t.version), [v1.version]);
  const served = state.current().models.get(`churn@${v1.version}`)!;
  const p = await served.predictOne(Float64Array.of(12, 50, 1, 0));
  assert.ok(p > 0 && p < 1);
  assert.ok((await readdir(cacheDir)).length >= 4, 'bundle files cached locally');

  const { generation } = await setRoutes(
    db,
    'churn',
    [
      { version: v1.version, weight: 0.9, variant: 'control' },
      { version: v2.version, weight: 0.1, variant: 'candidate' },
    ],
    { updatedBy: 'test' },
  );
  await until('the split to be applied', () => state.appliedGeneration() >= generation);
  const split = state.current().routing.get('churn')!;
  assert.deepEqual(split.live.map((t) => [t.variant, t.weight]), [['control', 0.9], ['candidate', 0.1]]);
  assert.ok(state.current().models.has(`churn@${v2.version}`));
  assert.equal((await waitForGateways(db, generation, { timeoutMs: 5_000 })).ok, true);
  const row = (await listGatewayInstances(db)).find((g) => g.id === 'gw-listen')!;
  assert.ok(row.appliedGeneration >= generation);

  // A version whose model.onnx is not a model: registered, routed, never served.
  const garbage = await artifacts.put(Buffer.from('not an onnx model'));
  const { bundle } = await storeModelBundle(artifacts, {
    onnx: garbage,
    signature: signatureFor('logreg', v1.featureNames),
    featureSpec: v1.featureSpec,
    metrics: {},
    lineage: {},
  });
  const dataHash = (await db.query<{ data_hash: string }>('SELECT data_hash FROM model_versions WHERE model = $1 AND version = $2', ['churn', v1.version])).rows[0]!.data_hash;
  const broken = await registerModelVersion(db, {
    model: 'churn',
    bundleUri: bundle.uri,
    bundleSha256: bundle.sha256,
    onnxSha256: garbage.sha256,
    trainer: 'logreg',
    metrics: {},
    gates: [],
    signature: signatureFor('logreg', v1.featureNames),
    featureSpec: v1.featureSpec,
    lineage: {},
    dataHash,
    trainingWorkflowId: 'broken',
    trainingRunId: 'broken',
    codeVersion: 'test',
    createdBy: 'test',
  });
  const bad = await setRoutes(db, 'churn', [{ version: broken.version, weight: 1 }], { updatedBy: 'test' });
  await until('the broken change to be tried', () => state.problems().length > 0);
  assert.match(state.problems()[0]!, new RegExp(`churn@${broken.version}`));
  assert.deepEqual(state.current().routing.get('churn')!.live.map((t) => t.version), [v1.version, v2.version], 'the working split stays');
  assert.ok(state.ready(), 'still ready: it serves the previous routing');
  assert.ok(state.appliedGeneration() < bad.generation);
  const waited = await waitForGateways(db, bad.generation, { timeoutMs: 500, pollMs: 50 });
  assert.deepEqual([waited.ok, waited.lagging.includes('gw-listen')], [false, true]);

  // Back to the champion: the implicit route again.
  const cleared = await clearRoutes(db, 'churn');
  await until('clearing to be applied', () => state.appliedGeneration() >= cleared.generation);
  assert.equal(state.current().routing.get('churn')!.implicit, true);
  assert.deepEqual(state.problems(), []);
});

test('polling alone follows changes; a stopped gateway is never waited for', async () => {
  const state = await startServingState({ db, artifacts, gatewayId: 'gw-poll', pollMs: 100 });
  states.push(state);
  const { generation } = await setRoutes(db, 'churn', [{ version: v2.version, weight: 1 }], { updatedBy: 'test', salt: 'rollout-2' });
  await until('polling to apply the change', () => state.appliedGeneration() >= generation);
  const routing = state.current().routing.get('churn')!;
  assert.deepEqual([routing.salt, routing.live.map((t) => t.version)], ['rollout-2', [v2.version]]);
  await state.close();
  const row = (await listGatewayInstances(db)).find((g) => g.id === 'gw-poll')!;
  assert.ok(row.stoppedAt);
  await assert.doesNotReject(async () => {
    const later = await setRoutes(db, 'churn', [{ version: v1.version, weight: 1 }], { updatedBy: 'test' });
    const waited = await waitForGateways(db, later.generation, { timeoutMs: 5_000 });
    assert.ok(!waited.lagging.includes('gw-poll'));
  });
});

test('setRoutes refuses bad routing and keeps what was stored', async () => {
  const before = (await db.query('SELECT version, weight FROM routes WHERE model = $1 ORDER BY version', ['churn'])).rows;
  await assert.rejects(setRoutes(db, 'churn', [{ version: v1.version, weight: 0.5 }, { version: v2.version, weight: 0.4 }], { updatedBy: 't' }), /sum to 0.9/);
  await assert.rejects(setRoutes(db, 'churn', [{ version: 99, weight: 1 }], { updatedBy: 't' }), /no version v99/);
  await assert.rejects(setRoutes(db, 'churn', [{ version: v1.version, mode: 'shadow' }], { updatedBy: 't' }), /at least one live/);
  await assert.rejects(setRoutes(db, 'churn', [{ version: v1.version, weight: 1, variant: 'a' }, { version: v2.version, mode: 'shadow', variant: 'a' }], { updatedBy: 't' }), /variant a is used twice/);
  assert.deepEqual((await db.query('SELECT version, weight FROM routes WHERE model = $1 ORDER BY version', ['churn'])).rows, before);
});

test('a restart loads from the cache dir; a corrupted cache copy is fetched again; micro-batched answers equal a direct run', async () => {
  const cacheDir = tempDir('keel-routing-cache-');
  const first = await loadServedModel({ db, artifacts, cacheDir }, 'churn', v2.version);
  await first.release();
  // A store that holds nothing: the second load can only come from the cache.
  const empty = openArtifactStore({ uri: `file://${tempDir('keel-routing-empty-')}`, region: 'us-east-1' });
  const cached = await loadServedModel({ db, artifacts: empty, cacheDir, batching: { maxWaitMs: 1, maxBatchRows: 64 } }, 'churn', v2.version);
  try {
    const rows = Array.from({ length: 20 }, (_, i) => Float64Array.of(i, 20 + 3 * i, i % 4, i % 3));
    const direct = await cached.predictMany(Float64Array.from(rows.flatMap((r) => [...r])), rows.length);
    const batched = await Promise.all(rows.map((r) => cached.predictOne(r)));
    assert.deepEqual(batched, [...direct]);
    assert.ok(cached.batchingStats().runs < rows.length, 'concurrent single rows share onnxruntime runs');
  } finally {
    await cached.release();
  }
  // Corrupt the cached model.onnx: it no longer hashes to its name, so it is read from the store again.
  const onnxSha = (await db.query<{ onnx_sha256: string }>('SELECT onnx_sha256 FROM model_versions WHERE model = $1 AND version = $2', ['churn', v2.version])).rows[0]!.onnx_sha256;
  await writeFile(path.join(cacheDir, onnxSha), 'garbage');
  await assert.rejects(loadServedModel({ db, artifacts: empty, cacheDir }, 'churn', v2.version), (error: unknown) => {
    assert.ok(error instanceof ModelLoadError);
    assert.match(error.message, new RegExp(`churn@${v2.version}.*model\\.onnx`));
    return true;
  });
  const refetched = await loadServedModel({ db, artifacts, cacheDir }, 'churn', v2.version);
  await refetched.release();
});

test('keel routes set / show, and PUT /v1/routes refuses weights that do not sum to 1 with 422', async () => {
  const keel = (args: string[]) => runKeel(args, { ...process.env, DATABASE_URL: url });
  const set = await keel(['routes', 'set', 'churn', `${v1.version}=0.75`, `${v2.version}=0.25`, '--salt', 'cli-salt', '--json']);
  assert.equal(set.code, 0, set.stderr);
  const generation = (JSON.parse(set.stdout) as { generation: number }).generation;
  const shown = await keel(['routes', 'churn', '--json']);
  assert.equal(shown.code, 0, shown.stderr);
  const routing = (JSON.parse(shown.stdout) as { models: Array<{ generation: number; salt: string; live: Array<{ version: number; weight: number }> }> }).models[0]!;
  assert.deepEqual([routing.generation, routing.salt, routing.live.map((t) => [t.version, t.weight])], [generation, 'cli-salt', [[v1.version, 0.75], [v2.version, 0.25]]]);
  const bad = await keel(['routes', 'set', 'churn', `${v1.version}=0.5`]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /sum to 0.5/);

  const app = new Hono();
  app.onError(onGatewayError(() => undefined));
  app.route('/', routingRoutes({ db }));
  const put = (body: unknown) => app.request('/v1/routes/churn', { method: 'PUT', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const refused = await put({ targets: [{ version: v1.version, weight: 0.6, mode: 'live' }] });
  assert.equal(refused.status, 422);
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /sum to 0.6/);
  const accepted = await put({ targets: [{ version: v1.version, weight: 1, mode: 'live' }, { version: v2.version, mode: 'shadow', variant: 'candidate' }] });
  assert.equal(accepted.status, 200);
  const listed = (await (await app.request('/v1/routes')).json()) as { stored: { models: Array<{ model: string; shadow: Array<{ variant: string }> }> } };
  assert.deepEqual(listed.stored.models.find((m) => m.model === 'churn')!.shadow.map((t) => t.variant), ['candidate']);
});

test('a broken change of one model holds back only the generations from it on', async () => {
  const other = await registerServedModel({ db, artifacts }, { model: 'upsell', trainer: 'logreg', seed: 2 });
  const state = await startServingState({ db, artifacts, gatewayId: 'gw-two-models', pollMs: 100 });
  states.push(state);
  await setRoutes(db, 'churn', [{ version: v1.version, weight: 1 }], { updatedBy: 'test' });
  const good = await setRoutes(db, 'upsell', [{ version: other.version, weight: 1 }], { updatedBy: 'test' });
  // churn's newest version has a garbage model.onnx (registered by the first test).
  const newest = (await db.query<{ v: number }>(`SELECT max(version) AS v FROM model_versions WHERE model = 'churn'`)).rows[0]!.v;
  const bad = await setRoutes(db, 'churn', [{ version: newest, weight: 1 }], { updatedBy: 'test' });
  await until('the broken change to be tried', () => state.problems().some((p) => p.startsWith('churn:')));
  await until('the earlier change to be reported', () => state.appliedGeneration() >= good.generation);
  assert.equal(state.appliedGeneration(), bad.generation - 1);
  assert.ok(state.current().models.has(`upsell@${other.version}`));
  assert.deepEqual(state.current().routing.get('churn')!.live.map((t) => t.version), [v1.version]);
  assert.equal((await waitForGateways(db, good.generation, { timeoutMs: 5_000 })).ok, true);
});
