/**
 * The prediction endpoints through `app.request()` against real Postgres and real ONNX models:
 * `{features}`, `{entity}` (online store + on-demand functions), `{instances}`; every refusal a JSON
 * 4xx naming the field (in OIP's and MLflow's own error shapes on theirs); the same answer through
 * v1, OIP v2 and MLflow's /invocations; a sticky A/B split; `x-keel-variant` only for admin; shadow
 * versions scored and logged but never returned; the metrics series. The prediction log is an
 * in-memory collector (the log boundary).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Context } from 'hono';
import { createGatewayApp, type GatewayApp, type ServingDeps } from '../../api/app.js';
import { loadServedModel, type LoadedModel } from '../../api/serving/model-loader.js';
import { pickExplicitVariant, pickLiveTarget } from '../../api/serving/routing.js';
import { Random } from '../../lib/ml/random.js';
import type { ModelRouting, PredictionRecord, RouteTarget, ServedModel, ServingSnapshot } from '../../api/serving/types.js';
import { modelKey } from '../../api/serving/types.js';
import { churnOnDemandFeatures } from '../../examples/churn/on-demand.js';
import { FsArtifactStore } from '../../stores/artifacts/fs-store.js';
import { createDb, type Db } from '../../stores/db.js';
import { getOnlineFeatures } from '../../stores/features/online.js';
import { migrate } from '../../stores/migrate.js';
import { assertErrorBody } from '../helpers/error-shapes.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { registerChurnFeatureModel, registerServedModel, SERVED_FEATURES } from '../helpers/served-models.js';
import { tempDir } from '../helpers/temp.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const row = { tenure_months: 3, monthly_spend: 80.5, support_tickets: 4, plan: 'basic' };
const rows = [row, { tenure_months: 40, monthly_spend: 25, support_tickets: 0, plan: 'pro' }, { tenure_months: 12, monthly_spend: 55.2, support_tickets: 2, plan: 'plus' }];

const live = (version: number, weight: number, variant: string): RouteTarget => ({ version, weight, mode: 'live', variant });
const shadow = (version: number, variant: string): RouteTarget => ({ version, weight: 0, mode: 'shadow', variant });
const routingOf = (model: string, liveTargets: RouteTarget[], shadowTargets: RouteTarget[] = []): ModelRouting => ({
  model,
  generation: 1,
  salt: 'test-salt',
  live: liveTargets,
  shadow: shadowTargets,
  implicit: false,
});

describe('gateway prediction endpoints', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let snapshot: ServingSnapshot;
  const served: LoadedModel[] = [];
  const logged: PredictionRecord[] = [];
  let app: GatewayApp;
  let featureCustomers: number[];
  let makeApp: (overrides?: Partial<ServingDeps>) => GatewayApp;

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    const artifacts = new FsArtifactStore(tempDir('keel-gateway-predict-'));
    const deps = { db, artifacts };
    const load = async (model: string, version: number) => {
      const m = await loadServedModel({ db, artifacts }, model, version);
      served.push(m);
      return m;
    };
    const gbdt = await registerServedModel(deps, { model: 'churn', trainer: 'gbdt', params: { maxIter: 15 }, rows: 800 });
    const logreg = await registerServedModel(deps, { model: 'churn', trainer: 'logreg', rows: 800 });
    const shadowGbdt = await registerServedModel(deps, { model: 'churn', trainer: 'gbdt', params: { maxIter: 5 }, rows: 800, seed: 2 });
    const single = await registerServedModel(deps, { model: 'single', trainer: 'logreg', rows: 800 });
    const featA = await registerChurnFeatureModel(deps, { model: 'feat', trainer: 'gbdt', params: { maxIter: 10 }, labelRows: 1000 });
    const featB = await registerChurnFeatureModel(deps, { model: 'feat', trainer: 'logreg', params: {}, labelRows: 1000 });
    featureCustomers = featA.customerIds;
    const models = new Map<string, ServedModel>();
    for (const [model, version] of [
      ['churn', gbdt.version],
      ['churn', logreg.version],
      ['churn', shadowGbdt.version],
      ['single', single.version],
      ['feat', featA.version],
      ['feat', featB.version],
    ] as const) {
      models.set(modelKey(model, version), await load(model, version));
    }
    snapshot = {
      generation: 1,
      models,
      routing: new Map([
        ['churn', routingOf('churn', [live(gbdt.version, 0.5, 'control'), live(logreg.version, 0.5, 'candidate')], [shadow(shadowGbdt.version, 'shadow')])],
        ['single', routingOf('single', [live(single.version, 1, 'control')])],
        ['feat', routingOf('feat', [live(featA.version, 0.5, 'control'), live(featB.version, 0.5, 'candidate')])],
        ['empty', routingOf('empty', [])],
      ]),
    };
    makeApp = (overrides = {}) =>
      createGatewayApp({
        readiness: [],
        serving: {
          state: { current: () => snapshot, ready: () => true },
          picker: { pickLiveTarget, pickExplicitVariant },
          log: { append: (record) => void logged.push(record), depth: () => 7 },
          auth: { canUseVariantHeader: (c: Context) => c.req.header('x-test-admin') === 'yes' },
          onDemand: churnOnDemandFeatures,
          db,
          ...overrides,
        },
      });
    app = makeApp();
  });

  after(async () => {
    await app?.predictor?.idle();
    for (const model of served) await model.release();
    await db?.end();
    await database?.drop();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    app.request(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const predict = (model: string, body: unknown, headers?: Record<string, string>) => post(`/v1/models/${model}/predict`, body, headers);
  const modelOf = (model: string, version: number) => snapshot.models.get(modelKey(model, version))!;

  /** What the model itself gives for `features` (SERVED_FEATURES), straight from onnxruntime. */
  async function direct(model: ServedModel, features: Json): Promise<number> {
    const spec = model.featureSpec.features;
    const data = Float64Array.from(spec, (f) => (f.type === 'category' ? f.categories.indexOf(features[f.name] as string) : (features[f.name] as number)));
    return model.predictOne(data);
  }

  it('answers {features} from the version it names, and logs what it served', async () => {
    const res = await predict('single', { features: row, request_id: 'req-1' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-request-id'), 'req-1');
    const body = (await res.json()) as Json;
    assert.deepEqual(Object.keys(body).sort(), ['model_version', 'prediction', 'probability', 'request_id', 'variant']);
    assert.equal(body.request_id, 'req-1');
    assert.equal(body.variant, 'control');
    const model = modelOf('single', body.model_version);
    assert.equal(body.probability, await direct(model, row));
    assert.equal(body.prediction, body.probability > 0.5 ? 1 : 0);
    const record = logged.find((r) => r.requestId === 'req-1')!;
    assert.equal(record.model, 'single');
    assert.equal(record.version, body.model_version);
    assert.equal(record.mode, 'live');
    assert.deepEqual(record.features, row);
    assert.deepEqual(record.output, { prediction: body.prediction, probability: body.probability });
    // Every feature sent and nothing else: the log may store them from the request's own text.
    assert.deepEqual((JSON.parse(record.requestJson!) as Json).features, row);
  });

  it('generates a request id when none is given, and takes x-request-id', async () => {
    const generated = (await (await predict('single', { features: row })).json()) as Json;
    assert.match(generated.request_id, /^[0-9a-f-]{36}$/);
    const res = await predict('single', { features: row }, { 'x-request-id': 'from-header.1' });
    assert.equal(((await res.json()) as Json).request_id, 'from-header.1');
  });

  it('answers {instances} row by row, with row request ids, wrapped or plain', async () => {
    const res = await predict('single', { request_id: 'batch-1', instances: [rows[0], { features: rows[1] }, rows[2]] });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Json;
    assert.equal(body.request_id, 'batch-1');
    assert.deepEqual(body.predictions.map((p: Json) => p.request_id), ['batch-1:0', 'batch-1:1', 'batch-1:2']);
    const model = modelOf('single', body.predictions[0].model_version);
    for (let i = 0; i < rows.length; i++) assert.equal(body.predictions[i].probability, await direct(model, rows[i]!));
    assert.equal(logged.filter((r) => r.requestId.startsWith('batch-1:')).length, 3);
    // A batch's text holds every row: each record carries only its own features.
    assert.ok(logged.filter((r) => r.requestId.startsWith('batch-1:')).every((r) => r.requestJson === undefined));
  });

  it('gives the same answer through v1, OIP v2 and /invocations', async () => {
    const v1 = (await (await predict('single', { instances: rows })).json()) as Json;
    const expected = v1.predictions.map((p: Json) => p.probability);

    const tensors = SERVED_FEATURES.map((name) => ({
      name,
      datatype: name === 'plan' ? 'BYTES' : 'FP64',
      shape: [rows.length],
      data: rows.map((r) => r[name]),
    }));
    const v2res = await post('/v2/models/single/infer', { id: 'oip-1', inputs: tensors });
    assert.equal(v2res.status, 200);
    const v2 = (await v2res.json()) as Json;
    assert.equal(v2.model_name, 'single');
    assert.equal(v2.id, 'oip-1');
    assert.equal(v2.model_version, String(v1.predictions[0].model_version));
    const probability = v2.outputs.find((o: Json) => o.name === 'probability');
    assert.deepEqual(probability, { name: 'probability', datatype: 'FP64', shape: [3], data: expected });
    assert.deepEqual(v2.outputs.find((o: Json) => o.name === 'prediction').data, v1.predictions.map((p: Json) => p.prediction));

    const split = await post('/invocations?model=single', { dataframe_split: { columns: [...SERVED_FEATURES], data: rows.map((r) => SERVED_FEATURES.map((n) => r[n])) } });
    assert.equal(split.status, 200);
    assert.deepEqual(await split.json(), { predictions: expected });
    const records = await post('/invocations', { dataframe_records: rows }, { 'x-keel-model': 'single' });
    assert.deepEqual(await records.json(), { predictions: expected });
    const columnar = await post('/invocations?model=single', { inputs: Object.fromEntries(SERVED_FEATURES.map((n) => [n, rows.map((r) => r[n])])) });
    assert.deepEqual(await columnar.json(), { predictions: expected });
    const positional = await post('/invocations?model=single', { instances: rows.map((r) => SERVED_FEATURES.map((n) => r[n])) });
    assert.deepEqual(await positional.json(), { predictions: expected });
  });

  it('OIP v2 metadata, readiness and health', async () => {
    const meta = (await (await app.request('/v2/models/single')).json()) as Json;
    assert.equal(meta.name, 'single');
    assert.deepEqual(
      meta.inputs.map((i: Json) => [i.name, i.datatype]),
      [['tenure_months', 'FP64'], ['monthly_spend', 'FP64'], ['support_tickets', 'FP64'], ['plan', 'BYTES']],
    );
    assert.deepEqual(meta.outputs.map((o: Json) => o.name), ['probability', 'prediction']);
    assert.deepEqual(await (await app.request('/v2/models/single/ready')).json(), { name: 'single', ready: true });
    assert.equal((await app.request('/v2/models/nope/ready')).status, 404);
    assert.equal((await app.request('/v2/models/empty/ready')).status, 503);
    assert.deepEqual(await (await app.request('/v2/health/live')).json(), { live: true });
    assert.deepEqual(await (await app.request('/v2/health/ready')).json(), { ready: true });
  });

  it('splits traffic by unit id: roughly by weight, and one entity always sees one variant', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const body = (await (await predict('churn', { features: row, request_id: `ab-${i}` })).json()) as Json;
      counts.set(body.variant, (counts.get(body.variant) ?? 0) + 1);
    }
    const control = counts.get('control') ?? 0;
    assert.ok(control > 60 && control < 140, `control got ${control} of 200`);
    assert.equal(control + (counts.get('candidate') ?? 0), 200);

    // Sticky by entity: the same customer sees the same variant whatever the request id.
    const customer = featureCustomers[0]!;
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add(((await (await predict('feat', { entity: { customer_id: customer } })).json()) as Json).variant);
    assert.equal(seen.size, 1);
    const variants = new Set<string>();
    for (const id of featureCustomers.slice(0, 30)) variants.add(((await (await predict('feat', { entity: { customer_id: id } })).json()) as Json).variant);
    assert.deepEqual([...variants].sort(), ['candidate', 'control']);
  });

  it('x-keel-variant pins a variant for admin only', async () => {
    const denied = await predict('churn', { features: row }, { 'x-keel-variant': 'candidate' });
    assert.equal(denied.status, 403);
    assert.equal(((await denied.json()) as Json).error.code, 'Forbidden');
    for (let i = 0; i < 5; i++) {
      const res = await predict('churn', { features: row, request_id: `pin-${i}` }, { 'x-keel-variant': 'candidate', 'x-test-admin': 'yes' });
      const body = (await res.json()) as Json;
      assert.equal(body.variant, 'candidate');
    }
    const unknown = await predict('churn', { features: row }, { 'x-keel-variant': 'nope', 'x-test-admin': 'yes' });
    assert.equal(unknown.status, 422);
    assert.equal(((await unknown.json()) as Json).error.field, 'x-keel-variant');
  });

  it('scores shadow versions after the answer, logs them, never returns them', async () => {
    const res = await predict('churn', { features: row, request_id: 'shadow-1' });
    const body = (await res.json()) as Json;
    const shadowVersion = snapshot.routing.get('churn')!.shadow[0]!.version;
    assert.notEqual(body.model_version, shadowVersion);
    assert.notEqual(body.variant, 'shadow');
    assert.deepEqual(Object.keys(body).sort(), ['model_version', 'prediction', 'probability', 'request_id', 'variant']);
    await app.predictor!.idle();
    const records = logged.filter((r) => r.requestId === 'shadow-1');
    assert.deepEqual(records.map((r) => r.mode).sort(), ['live', 'shadow']);
    const shadowRecord = records.find((r) => r.mode === 'shadow')!;
    assert.equal(shadowRecord.version, shadowVersion);
    assert.equal((shadowRecord.output as Json).probability, await direct(modelOf('churn', shadowVersion), row));
  });

  it('enriches {entity} from the online store with on-demand features, as training did', async () => {
    const customer = featureCustomers[3]!;
    const res = await predict('feat', { entity: { customer_id: customer }, request_id: 'entity-1' }, { 'x-keel-variant': 'control', 'x-test-admin': 'yes' });
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as Json;
    const model = modelOf('feat', body.model_version);
    const record = logged.find((r) => r.requestId === 'entity-1')!;
    assert.equal(record.requestJson, undefined, 'enriched features are not the request text');
    const online = await getOnlineFeatures(db, {
      features: model.featureNames.filter((n) => !['spend_per_order_30d', 'is_new_customer'].includes(n)).map((n) => `${viewOf(n)}:${n}`),
      entities: [{ customer_id: customer }],
    });
    for (const [name, value] of Object.entries(online.rows[0]!.values)) assert.deepEqual(record.features[name], value, name);
    const spend = online.rows[0]!.values.spend_30d;
    const orders = online.rows[0]!.values.orders_30d;
    assert.equal(record.features.spend_per_order_30d, typeof spend === 'number' && typeof orders === 'number' && orders > 0 ? spend / orders : null);
    assert.equal(record.features.is_new_customer, (online.rows[0]!.values.tenure_days as number) < 90);

    assert.equal(body.features.present, Object.keys(online.rows[0]!.values).length);
    assert.deepEqual(record.presence, body.features);

    // A request value wins over the online one; an unknown entity has no online row: refused.
    const override = await predict('feat', { entity: { customer_id: customer }, features: { monthly_fee: 1 }, request_id: 'entity-2' });
    assert.equal(override.status, 200);
    assert.equal(logged.find((r) => r.requestId === 'entity-2')!.features.monthly_fee, 1);
    const stranger = await predict('feat', { entity: { customer_id: 987654321 }, request_id: 'entity-3' }, { 'x-keel-variant': 'control', 'x-test-admin': 'yes' });
    assert.equal(stranger.status, 422);
    assert.equal(((await stranger.json()) as Json).error.code, 'EntityNotFound');
    assert.equal(logged.find((r) => r.requestId === 'entity-3'), undefined);

    const badKey = await predict('feat', { entity: { customer: customer } });
    assert.equal(badKey.status, 422);
    assert.equal(((await badKey.json()) as Json).error.field, 'entity.customer');
    const noViews = await predict('single', { entity: { customer_id: customer } });
    assert.equal(noViews.status, 422);
    assert.equal(((await noViews.json()) as Json).error.field, 'entity');
  });

  it('refuses a model whose on-demand code changed since training (503), never serving it', async () => {
    const feat = snapshot.routing.get('feat')!;
    const original = modelOf('feat', feat.live[0]!.version);
    const changed: ServedModel = Object.create(original, {
      featureSpec: { value: { ...original.featureSpec, onDemand: original.featureSpec.onDemand!.map((e) => ({ ...e, codeHash: 'a'.repeat(64) })) } },
    }) as ServedModel;
    const models = new Map(snapshot.models);
    models.set(modelKey('feat', changed.version), changed);
    const saved = snapshot;
    snapshot = { ...snapshot, models };
    try {
      const res = await predict('feat', { entity: { customer_id: featureCustomers[0] } }, { 'x-keel-variant': 'control', 'x-test-admin': 'yes' });
      assert.equal(res.status, 503);
      const body = (await res.json()) as Json;
      assert.equal(body.error.code, 'OnDemandMismatch');
      assert.match(body.error.message, /different transformation/);
    } finally {
      snapshot = saved;
    }
  });

  describe('refusals: a JSON 4xx naming the field, never a crash', () => {
    const expectError = async (res: Response, status: number, code: string, field?: string | RegExp) => {
      assert.equal(res.status, status, await res.clone().text());
      assert.match(res.headers.get('content-type') ?? '', /application\/json/);
      const body = (await res.json()) as Json;
      assert.equal(body.error.code, code);
      assert.ok(!/\n\s+at /.test(body.error.message), 'no stack trace');
      if (typeof field === 'string') assert.equal(body.error.field, field);
      else if (field) assert.match(body.error.field, field);
      return body.error as Json;
    };
    /** A refusal in the error shape of `path`'s protocol (test/helpers/error-shapes.ts). */
    const expectProtocolError = async (res: Response, path: string, status: number, message?: RegExp) => {
      const text = await res.text();
      assert.equal(res.status, status, text);
      const said = assertErrorBody(path, text);
      if (message) assert.match(said, message);
    };

    it('unknown and missing features are listed', async () => {
      const unknown = await expectError(await predict('single', { features: { ...row, colour: 'red', size: 3 } }), 422, 'InvalidInput', 'colour');
      assert.match(unknown.message, /unknown features colour, size/);
      const { plan: _p, tenure_months: _t, ...partial } = row;
      const missing = await expectError(await predict('single', { features: partial }), 422, 'InvalidInput', 'tenure_months');
      assert.match(missing.message, /missing features tenure_months, plan/);
      await expectError(await predict('single', { instances: [row, { ...row, extra: 1 }] }), 422, 'InvalidInput', 'instances[1].extra');
    });

    it('a batch of one names its row like any batch', async () => {
      const error = await expectError(await predict('single', { instances: [{ ...row, monthly_spend: 1e39 }] }), 422, 'InvalidInput', 'instances[0].monthly_spend');
      assert.match(error.message, /^instances\[0\]: feature monthly_spend/);
      await expectError(await predict('single', { instances: [{ ...row, extra: 1 }] }), 422, 'InvalidInput', 'instances[0].extra');
    });

    it('wrong types, non-finite and huge numbers name the feature', async () => {
      await expectError(await predict('single', { features: { ...row, monthly_spend: '80' } }), 422, 'InvalidInput', 'monthly_spend');
      await expectError(await predict('single', { features: { ...row, plan: { a: 1 } } }), 422, 'InvalidInput', 'plan');
      await expectError(await predict('single', '{"features":{"tenure_months":1e400,"monthly_spend":1,"support_tickets":1,"plan":"pro"}}'), 422, 'InvalidInput', 'tenure_months');
      await expectError(await predict('single', { features: { ...row, support_tickets: 1e39 } }), 422, 'InvalidInput', 'support_tickets');
      await expectError(await predict('single', '{"features":{"tenure_months":NaN}}'), 400, 'MalformedJson');
      await expectError(await predict('single', { features: [1, 2, 3] }), 422, 'InvalidInput', 'features');
      await expectError(await predict('single', { features: row, instances: [row] }), 422, 'InvalidInput');
      await expectError(await predict('single', { features: row, request_id: 'has space' }), 422, 'InvalidInput', 'request_id');
      await expectError(await predict('single', { features: row, colour: 1 }), 422, 'InvalidInput', 'colour');
    });

    it('malformed JSON, empty bodies and deep nesting', async () => {
      await expectError(await predict('single', '{"features": {'), 400, 'MalformedJson');
      await expectError(await predict('single', ''), 400, 'MalformedJson');
      await expectError(await predict('single', '[]'), 422, 'InvalidInput');
      await expectError(await predict('single', 'null'), 422, 'InvalidInput');
      const deep = `{"features":{"plan":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
      await expectError(await predict('single', deep), 422, 'InvalidInput');
      const deepObject = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
      const res = await predict('single', deepObject);
      assert.ok(res.status === 422 || res.status === 400, String(res.status));
    });

    it('unknown model 404, no live version 503', async () => {
      await expectError(await predict('nope', { features: row }), 404, 'NotFound', 'model');
      await expectError(await predict('empty', { features: row }), 503, 'NoLiveVersion');
      await expectProtocolError(await post('/v2/models/nope/infer', { inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [1] }] }), '/v2', 404, /model nope/);
      await expectProtocolError(await post('/invocations', { dataframe_records: [row] }), '/invocations', 400, /name the model/);
    });

    it('body size 413, batch size 413, timeout 503 (and nothing logged for it)', async () => {
      const small = makeApp({ limits: { maxBodyBytes: 2_000, maxBatchRows: 5 } });
      const big = await small.request('/v1/models/single/predict', { method: 'POST', body: JSON.stringify({ instances: Array(100).fill(row) }) });
      await expectError(big, 413, 'PayloadTooLarge');
      const many = await small.request('/v1/models/single/predict', { method: 'POST', body: JSON.stringify({ instances: Array(6).fill(row) }) });
      await expectError(many, 413, 'BatchTooLarge', 'instances');

      const single = snapshot.routing.get('single')!;
      const model = modelOf('single', single.live[0]!.version);
      const slow: ServedModel = Object.create(model, {
        predictOne: { value: async (r: Float64Array) => new Promise<number>((resolve) => setTimeout(() => resolve(model.predictOne(r)), 300)) },
      }) as ServedModel;
      const models = new Map(snapshot.models);
      models.set(modelKey('single', model.version), slow);
      const slowApp = makeApp({ limits: { timeoutMs: 50 }, state: { current: () => ({ ...snapshot, models }), ready: () => true } });
      const res = await slowApp.request('/v1/models/single/predict', { method: 'POST', body: JSON.stringify({ features: row, request_id: 'too-slow' }) });
      await expectError(res, 503, 'Timeout');
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(logged.filter((r) => r.requestId === 'too-slow').length, 0);
    });

    it('OIP v2 and MLflow answer bad input 400 in their own error shapes', async () => {
      const infer = (body: unknown) => post('/v2/models/single/infer', body);
      await expectProtocolError(await infer({ inputs: [{ name: 'tenure_months', shape: [2], datatype: 'FP64', data: [1] }] }), '/v2', 400, /input tenure_months: shape \[2\]/);
      await expectProtocolError(await infer({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 0] }] }), '/v2', 400, /one tensor per feature/);
      await expectProtocolError(await infer({ inputs: [] }), '/v2', 400, /inputs/);
      await expectProtocolError(await infer({ inputs: [{ name: 'plan', shape: [1], datatype: 'COMPLEX', data: [1] }] }), '/v2', 400);
      await expectProtocolError(await post('/invocations?model=single', { dataframe_split: { columns: ['a'], data: [[1, 2]] } }), '/invocations', 400);
      await expectProtocolError(await post('/invocations?model=single', { something: [] }), '/invocations', 400, /exactly one of/);
    });
  });

  it('answers 1 000 generated bad requests with well-formed JSON 4xx, and keeps serving', async () => {
    const random = new Random(7);
    const pick = <T>(list: readonly T[]): T => list[random.int(list.length)]!;
    const values: unknown[] = [null, true, 'x', '', -1, 0, 1e308, -1e39, 3.5e38, [], {}, [1, [2]], { a: { b: 1 } }, 'pro', '2024-01-01', 'é\u0000'];
    const mutate = (): unknown => {
      const features: Json = { ...row };
      switch (random.int(6)) {
        case 0:
          // Any unseen text is a valid category (missing); numeric features refuse everything but small numbers and null.
          features[pick(['tenure_months', 'monthly_spend', 'support_tickets'])] = pick(values.filter((v) => v !== null && (typeof v !== 'number' || Math.abs(v) > 3.4e38)));
          break;
        case 1:
          delete features[pick(SERVED_FEATURES)];
          break;
        case 2:
          features[`f${random.int(1000)}`] = pick(values);
          break;
        case 3:
          return pick([{ features: pick(values) }, { instances: pick(values) }, { instances: [pick(values)] }, { entity: pick(values) }, pick(values)]);
        case 4:
          return { features, request_id: pick(['', ' ', 'a'.repeat(129), 'ü', 'a/b']) };
        default:
          return { features, [pick(['feature', 'Features', 'instance', 'entities'])]: pick(values) };
      }
      return { features };
    };
    const texts = ['{', '}', '{"features":', 'NaN', 'Infinity', '{"features":{"plan":Infinity}}', "{'a':1}", '\u0000', '[[[[[[', '{"a":1}}', '1e99999'];
    const paths = ['/v1/models/single/predict', '/v1/models/churn/predict', '/v2/models/single/infer', '/invocations?model=single', '/v1/models/no_such/predict'];
    for (let i = 0; i < 1_000; i++) {
      const path = pick(paths);
      const body = random.next() < 0.2 ? pick(texts) : JSON.stringify(path.startsWith('/v2') ? { inputs: [{ name: pick(SERVED_FEATURES), shape: [1], datatype: pick(['FP64', 'BYTES', 'BOOL']), data: [pick(values)] }] } : mutate());
      const res = await post(path, body);
      assert.ok(res.status >= 400 && res.status < 500, `${path} ${body} → ${res.status}`);
      assertErrorBody(path, await res.text(), `${path} ${body}`);
    }
    assert.equal((await predict('single', { features: row })).status, 200);
  });

  it('the gateway keeps serving after all of it, and the metrics show the series', async () => {
    assert.equal((await predict('single', { features: row })).status, 200);
    const text = await (await app.request('/metrics')).text();
    assert.match(text, /^keel_predictions_total\{model="churn",version="\d+",variant="control"\} \d+$/m);
    assert.match(text, /^keel_shadow_predictions_total\{model="churn",version="\d+",variant="shadow"\} \d+$/m);
    assert.match(text, /^keel_prediction_latency_seconds_bucket\{le="0\.005",model="single",protocol="v1"\} \d+$/m);
    assert.match(text, /^keel_prediction_latency_seconds_count\{model="single",protocol="v2"\} \d+$/m);
    assert.match(text, /^keel_prediction_errors_total\{code="InvalidInput"\} \d+$/m);
    assert.match(text, /^keel_prediction_errors_total\{code="NotFound"\} \d+$/m);
    assert.match(text, /^keel_prediction_log_queue_depth 7$/m);
  });

  it('/readyz includes the serving state', async () => {
    const notReady = makeApp({ state: { current: () => snapshot, ready: () => false } });
    const res = await notReady.request('/readyz');
    assert.equal(res.status, 503);
    assert.match(((await res.json()) as Json).error.message, /serving \(models not loaded or routing not applied yet\)/);
    assert.equal((await app.request('/readyz')).status, 200);
  });

  it("the protocols' health endpoints follow the serving state: OIP's /v2/health/ready, MLflow's /ping and /health", async () => {
    const notReady = makeApp({ state: { current: () => snapshot, ready: () => false } });
    for (const [path, body] of [
      ['/v2/health/ready', '{"ready":false}'],
      ['/ping', '\n'],
      ['/health', '\n'],
    ] as const) {
      const res = await notReady.request(path);
      assert.deepEqual([res.status, await res.text()], [503, body], path);
      assert.equal((await app.request(path)).status, 200, path);
    }
    assert.deepEqual(await (await notReady.request('/v2/health/live')).json(), { live: true });
  });
});

/** The churn example's view of a feature (examples/churn/features.ts). */
function viewOf(feature: string): string {
  if (/^(orders_|spend_|avg_order|days_since_last_order)/.test(feature)) return 'order_activity';
  if (/^(tickets_|complaints_|max_severity|days_since_last_ticket)/.test(feature)) return 'support_activity';
  return 'customer_profile';
}
