/**
 * The two foreign serving protocols against the real `keel gateway` process in `keys` mode, with
 * clients written from the protocol texts only:
 *
 * - Open Inference Protocol v2 (kserve/open-inference-protocol, inference_rest.md): a client that
 *   reads server and model metadata, builds each listed input tensor (shape -1 → N, the listed
 *   datatype), infers and reads the outputs by name; every version listed in `versions` answers
 *   metadata, ready and infer; every error body is `{"error": "<string>"}` (auth, body limit and
 *   unknown paths too), 400 for malformed tensors, naming the problem without the data.
 * - MLflow's scoring server (mlflow/pyfunc/scoring_server): the request bodies of MLflow's docs
 *   (dataframe_split, dataframe_records, instances, inputs, text/csv as pandas writes it),
 *   `/ping`, `/health`, `/version`, and `{"error_code", "message"}` for every refusal.
 *
 * The answers are checked against Keel's own `/v1/models/:name/predict` for the same rows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KEEL_VERSION } from '../../lib/version.js';
import { openArtifactStore } from '../../stores/artifacts/index.js';
import { createApiKey } from '../../stores/api-keys.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { setRoutes } from '../../stores/routes.js';
import { assertErrorBody } from '../helpers/error-shapes.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { registerServedModel, SERVED_FEATURES } from '../helpers/served-models.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Row = Record<string, number | string>;

const NUMERIC_FEATURES = ['tenure_months', 'monthly_spend', 'support_tickets'] as const;
const rows: Row[] = [
  { tenure_months: 3, monthly_spend: 80.5, support_tickets: 4, plan: 'basic' },
  { tenure_months: 40, monthly_spend: 25, support_tickets: 0, plan: 'pro' },
  { tenure_months: 12, monthly_spend: 55.25, support_tickets: 2, plan: 'plus' },
];
const MAX_BODY_BYTES = 20_000;
/** A value that must never come back in an error message. */
const SECRET = 'do-not-echo-7f3a';

let db: Db;
let drop: () => Promise<void>;
let gateway: GatewayProcess;
const keys: Record<'predict' | 'admin' | 'feedback', string> = { predict: '', admin: '', feedback: '' };
let numericVersions: { live: number; shadow: number };

before(async () => {
  const fresh = await freshDatabase(await testDatabaseUrl());
  drop = fresh.drop;
  await migrate(fresh.url);
  db = createDb({ url: fresh.url });
  const artifactsDir = tempDir('keel-protocols-artifacts-');
  const artifacts = openArtifactStore({ uri: `file://${artifactsDir}`, region: 'us-east-1' });
  const deps = { db, artifacts };
  // `numeric`: numbers only (the [N, F] tensor); a live and a shadow version. `churn`: a category too.
  const live = await registerServedModel(deps, { model: 'numeric', trainer: 'logreg', rows: 600, features: NUMERIC_FEATURES });
  const shadow = await registerServedModel(deps, { model: 'numeric', trainer: 'gbdt', params: { maxIter: 5 }, rows: 600, seed: 2, features: NUMERIC_FEATURES });
  await setRoutes(db, 'numeric', [{ version: live.version, weight: 1 }, { version: shadow.version, mode: 'shadow' }], { updatedBy: 'test' });
  numericVersions = { live: live.version, shadow: shadow.version };
  await registerServedModel(deps, { model: 'churn', trainer: 'gbdt', params: { maxIter: 10 }, rows: 600, aliases: ['champion'] });
  for (const role of ['predict', 'admin', 'feedback'] as const) {
    keys[role] = (await createApiKey(db, { name: `${role}-key`, roles: [role], createdBy: 'test' })).token;
  }
  gateway = await startGatewayProcess({ databaseUrl: fresh.url, artifactsDir, env: { KEEL_AUTH: 'keys', KEEL_MAX_BODY_BYTES: String(MAX_BODY_BYTES) } });
});

after(async () => {
  await gateway?.stop();
  await db?.end();
  await drop?.();
});

const auth = (key: string | undefined): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});

async function call(method: string, path: string, options: { key?: string; body?: string | Uint8Array; contentType?: string } = {}) {
  const headers: Record<string, string> = { ...auth(options.key) };
  if (options.contentType !== undefined) headers['content-type'] = options.contentType;
  const response = await fetch(`${gateway.url}${path}`, { method, headers, body: options.body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) as Json };
}

/** Keel's own answer for the rows, the reference every protocol must match. */
async function v1Probabilities(model: string, features: readonly string[]): Promise<number[]> {
  const instances = rows.map((r) => Object.fromEntries(features.map((f) => [f, r[f]])));
  const res = await call('POST', `/v1/models/${model}/predict`, { key: keys.predict, contentType: 'application/json', body: JSON.stringify({ instances }) });
  assert.equal(res.status, 200, res.text);
  return res.json().predictions.map((p: Json) => p.probability);
}

/**
 * A client of the Open Inference Protocol's REST text, and nothing else: it knows the server's
 * URL, a model name and its own data by column name.
 */
class OipClient {
  constructor(private readonly key?: string) {}

  private async get(path: string) {
    return call('GET', path, { key: this.key });
  }

  serverLive() {
    return this.get('/v2/health/live');
  }
  serverReady() {
    return this.get('/v2/health/ready');
  }
  serverMetadata() {
    return this.get('/v2');
  }
  private modelPath(model: string, version?: string) {
    return `/v2/models/${model}${version === undefined ? '' : `/versions/${version}`}`;
  }
  modelMetadata(model: string, version?: string) {
    return this.get(this.modelPath(model, version));
  }
  modelReady(model: string, version?: string) {
    return this.get(`${this.modelPath(model, version)}/ready`);
  }
  infer(model: string, request: unknown, version?: string) {
    return call('POST', `${this.modelPath(model, version)}/infer`, { key: this.key, contentType: 'application/json', body: JSON.stringify(request) });
  }

  /**
   * Builds one tensor per input the metadata lists: `-1` dimensions become the batch size, the
   * datatype is the listed one; a 2-D input takes the columns its metadata parameters name.
   */
  static request(metadata: Json, data: readonly Row[], id: string): Json {
    const inputs = (metadata.inputs as Json[]).map((input) => {
      const shape = (input.shape as number[]).map((d) => (d === -1 ? data.length : d));
      const columns = shape.length === 2 ? String(metadata.parameters.input_columns).split(',') : [input.name as string];
      assert.equal(columns.length, shape.length === 2 ? shape[1] : 1);
      return { name: input.name, shape, datatype: input.datatype, data: data.flatMap((r) => columns.map((c) => r[c])) };
    });
    return { id, inputs, outputs: (metadata.outputs as Json[]).map((o) => ({ name: o.name })) };
  }
}

/** An OIP error body: exactly `{"error": "<string>"}`. */
function oipError(res: { status: number; text: string }, status: number, message?: RegExp): void {
  assert.equal(res.status, status, res.text);
  const said = assertErrorBody('/v2', res.text, res.text);
  if (message) assert.match(said, message);
  assert.ok(!res.text.includes(SECRET), `the error echoes data: ${res.text}`);
}

describe('Open Inference Protocol v2, as its text says', () => {
  it('server endpoints: live, ready, metadata', async () => {
    const client = new OipClient();
    const live = await client.serverLive();
    assert.equal(live.status, 200);
    assert.deepEqual(live.json(), { live: true });
    const ready = await client.serverReady();
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.json(), { ready: true });
    const meta = await new OipClient(keys.predict).serverMetadata();
    assert.equal(meta.status, 200);
    assert.deepEqual(meta.json(), { name: 'keel', version: KEEL_VERSION, extensions: [] });
    // The OpenAPI file of the protocol spells it /v2/.
    assert.deepEqual((await call('GET', '/v2/')).json(), meta.json());
  });

  for (const [model, features] of [
    ['numeric', NUMERIC_FEATURES],
    ['churn', SERVED_FEATURES],
  ] as const) {
    it(`a client discovers ${model}'s inputs from metadata, infers, and reads the outputs by name`, async () => {
      const client = new OipClient(keys.predict);
      const ready = await client.modelReady(model);
      assert.equal(ready.status, 200, ready.text);
      assert.deepEqual(ready.json(), { name: model, ready: true });
      const metaRes = await client.modelMetadata(model);
      assert.equal(metaRes.status, 200, metaRes.text);
      const meta = metaRes.json();
      assert.equal(meta.name, model);
      assert.equal(meta.platform, 'onnx_onnxv1');
      for (const tensor of [...meta.inputs, ...meta.outputs]) {
        assert.equal(typeof tensor.name, 'string');
        assert.match(tensor.datatype, /^(BOOL|U?INT(8|16|32|64)|FP(16|32|64)|BYTES)$/);
        assert.ok(Array.isArray(tensor.shape) && tensor.shape.every((d: unknown) => Number.isInteger(d)));
      }
      if (model === 'numeric') {
        // Numbers only: one [N, F] tensor, its columns named.
        assert.deepEqual(meta.inputs, [{ name: 'input', datatype: 'FP64', shape: [-1, 3] }]);
        assert.equal(meta.parameters.input_columns, NUMERIC_FEATURES.join(','));
      } else {
        assert.deepEqual(
          meta.inputs.map((i: Json) => [i.name, i.datatype, i.shape]),
          SERVED_FEATURES.map((f) => [f, f === 'plan' ? 'BYTES' : 'FP64', [-1]]),
        );
      }
      const res = await client.infer(model, OipClient.request(meta, rows, 'req-42'));
      assert.equal(res.status, 200, res.text);
      const body = res.json();
      assert.equal(body.model_name, model);
      assert.equal(body.id, 'req-42');
      assert.equal(typeof body.model_version, 'string');
      const outputs = new Map((body.outputs as Json[]).map((o) => [o.name, o]));
      assert.deepEqual([...outputs.keys()].sort(), meta.outputs.map((o: Json) => o.name).sort());
      const probability = outputs.get('probability')!;
      assert.deepEqual([probability.datatype, probability.shape], ['FP64', [rows.length]]);
      assert.deepEqual(probability.data, await v1Probabilities(model, features));
      assert.deepEqual(outputs.get('prediction')!.shape, [rows.length]);
    });
  }

  it('the per-feature tensors are accepted for a numeric model too, and the [N, F] data may be nested', async () => {
    const client = new OipClient(keys.predict);
    const expected = await v1Probabilities('numeric', NUMERIC_FEATURES);
    const perFeature = NUMERIC_FEATURES.map((f) => ({ name: f, shape: [rows.length, 1], datatype: 'FP32', data: rows.map((r) => r[f]) }));
    const a = await client.infer('numeric', { inputs: perFeature, outputs: [{ name: 'probability' }] });
    assert.equal(a.status, 200, a.text);
    assert.deepEqual(a.json().outputs.map((o: Json) => o.name), ['probability']);
    assert.deepEqual(a.json().outputs[0].data, expected);
    const nested = await client.infer('numeric', { inputs: [{ name: 'input', shape: [rows.length, 3], datatype: 'FP64', data: rows.map((r) => NUMERIC_FEATURES.map((f) => r[f])) }] });
    assert.equal(nested.status, 200, nested.text);
    assert.deepEqual(nested.json().outputs[0].data, expected);
  });

  it('every version listed in versions answers metadata, ready and infer (admin); others see no versions and cannot pin', async () => {
    const admin = new OipClient(keys.admin);
    const meta = (await admin.modelMetadata('numeric')).json();
    assert.deepEqual(meta.versions, [String(numericVersions.live), String(numericVersions.shadow)]);
    const request = OipClient.request(meta, rows, 'pinned');
    for (const version of meta.versions as string[]) {
      const versionMeta = await admin.modelMetadata('numeric', version);
      assert.equal(versionMeta.status, 200, versionMeta.text);
      assert.equal(versionMeta.json().name, 'numeric');
      assert.equal(versionMeta.json().parameters.version, Number(version));
      const ready = await admin.modelReady('numeric', version);
      assert.equal(ready.status, 200, ready.text);
      assert.deepEqual(ready.json(), { name: 'numeric', ready: true });
      const res = await admin.infer('numeric', request, version);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().model_version, version);
    }
    // The shadow version gives its own answers when pinned.
    const live = (await admin.infer('numeric', request, meta.versions[0])).json().outputs[0].data;
    const shadow = (await admin.infer('numeric', request, meta.versions[1])).json().outputs[0].data;
    assert.notDeepEqual(live, shadow);

    const predict = new OipClient(keys.predict);
    const predictMeta = (await predict.modelMetadata('numeric')).json();
    assert.equal(predictMeta.versions, undefined, 'no version may be requested by a predict key');
    assert.equal((await predict.modelMetadata('numeric', String(numericVersions.shadow))).status, 200);
    oipError(await predict.infer('numeric', request, String(numericVersions.live)), 403, /role admin/);
    oipError(await admin.modelMetadata('numeric', '999'), 404, /no version 999/);
    oipError(await admin.infer('numeric', request, 'latest'), 404);
  });

  it('auth, body-limit and unknown-path refusals are {"error": "<string>"}', async () => {
    const meta = (await new OipClient(keys.predict).modelMetadata('numeric')).json();
    const request = OipClient.request(meta, rows, 'x');
    const anonymous = new OipClient();
    const noKey = await anonymous.infer('numeric', request);
    oipError(noKey, 401, /API key/);
    assert.match(noKey.headers.get('www-authenticate') ?? '', /^Bearer/);
    oipError(await anonymous.modelMetadata('numeric'), 401);
    oipError(await anonymous.modelReady('numeric'), 401);
    oipError(await new OipClient(keys.feedback).infer('numeric', request), 403, /role/);
    oipError(await new OipClient(keys.feedback).modelMetadata('numeric'), 403);
    const big = { ...request, parameters: { padding: 'x'.repeat(MAX_BODY_BYTES) } };
    oipError(await new OipClient(keys.predict).infer('numeric', big), 413);
    oipError(await new OipClient(keys.predict).modelMetadata('nope'), 404, /nope/);
    oipError(await new OipClient(keys.predict).infer('nope', request), 404);
    oipError(await call('GET', '/v2/models/numeric/infer', { key: keys.predict }), 404);
    oipError(await call('GET', '/v2/nothing/here', { key: keys.predict }), 404);
  });

  it('malformed tensors are 400 naming the problem, never the data', async () => {
    const client = new OipClient(keys.predict);
    const infer = (model: string, inputs: unknown) => client.infer(model, { inputs });
    const tensor = (name: string, datatype: string, data: unknown[], shape = [data.length]) => ({ name, datatype, shape, data });
    const churnInputs = (replace: Json = {}) =>
      SERVED_FEATURES.map((f) => (f in replace ? replace[f] : tensor(f, f === 'plan' ? 'BYTES' : 'FP64', rows.map((r) => r[f])))).filter((t) => t !== null);

    // wrong datatype
    oipError(await infer('churn', churnInputs({ plan: tensor('plan', 'FP64', [1, 2, 3]) })), 400, /input plan: datatype FP64.*category.*BYTES/);
    oipError(await infer('churn', churnInputs({ tenure_months: tensor('tenure_months', 'BYTES', [SECRET, 'b', 'c']) })), 400, /input tenure_months: datatype BYTES/);
    oipError(await infer('numeric', [tensor('input', 'BYTES', [SECRET, 'a', 'b'], [1, 3])]), 400, /datatype BYTES.*numeric/);
    oipError(await infer('numeric', [tensor('input', 'COMPLEX', [1, 2, 3], [1, 3])]), 400);
    // shape not matching the data
    oipError(await infer('churn', churnInputs({ monthly_spend: tensor('monthly_spend', 'FP64', [1, 2], [3]) })), 400, /shape \[3\] holds 3 values, data has 2/);
    oipError(await infer('numeric', [tensor('input', 'FP64', [1, 2, 3, 4, 5, 6, 7], [2, 3])]), 400, /data has more/);
    oipError(await infer('numeric', [tensor('input', 'FP64', [1, 2, 3, 4], [1, 4])]), 400, /takes \[N, 3\]/);
    oipError(await infer('numeric', [tensor('input', 'FP64', [[1, 2], [3, 4, 5]], [2, 3])]), 400, /nested differently/);
    oipError(await infer('churn', churnInputs({ support_tickets: tensor('support_tickets', 'FP64', [1, 2, 3], [1, 3]) })), 400, /\[N\] or \[N, 1\]/);
    // missing inputs, unknown inputs, rows that disagree
    oipError(await infer('churn', churnInputs({ plan: null })), 400, /missing input plan/);
    oipError(await infer('churn', [...churnInputs(), tensor('colour', 'BYTES', ['r', 'g', 'b'])]), 400, /unknown input colour/);
    oipError(await infer('churn', churnInputs({ plan: tensor('plan', 'BYTES', ['basic']) })), 400, /plan has 1 rows, the others 3/);
    oipError(await infer('churn', [tensor('input', 'FP64', [1, 2, 3, 4], [1, 4])]), 400, /one tensor per feature/);
    oipError(await infer('numeric', []), 400, /at least one tensor/);
    // non-numeric data in a numeric tensor, fractions in an integer tensor
    const bad = await infer('churn', churnInputs({ monthly_spend: tensor('monthly_spend', 'FP64', [1, SECRET, 3]) }));
    oipError(bad, 400, /input monthly_spend: element 1 is a string, not a number \(FP64\)/);
    oipError(await infer('numeric', [tensor('input', 'FP64', [1, { secret: SECRET }, 3], [1, 3])]), 400, /element 1 is an object/);
    oipError(await infer('numeric', [tensor('input', 'INT64', [1, 2.5, 3], [1, 3])]), 400, /element 1 is not an integer/);
    oipError(await infer('churn', churnInputs({ plan: tensor('plan', 'BYTES', [1, 2, 3]) })), 400, /element 0 is a number, not a string/);
    // the request itself
    oipError(await client.infer('numeric', { inputs: [tensor('input', 'FP64', [1, 2, 3], [1, 3])], outputs: [{ name: 'logits' }] }), 400, /unknown output logits/);
    oipError(await call('POST', '/v2/models/numeric/infer', { key: keys.predict, contentType: 'application/json', body: '{"inputs": [' }), 400);
    oipError(await call('POST', '/v2/models/numeric/infer', { key: keys.predict, contentType: 'application/json', body: '' }), 400);
  });
});

/** An MLflow error body: `{"error_code", "message"}`. */
function mlflowError(res: { status: number; text: string; json: () => Json }, status: number, errorCode: string, message?: RegExp): void {
  assert.equal(res.status, status, res.text);
  const said = assertErrorBody('/invocations', res.text, res.text);
  assert.equal(res.json().error_code, errorCode, res.text);
  if (message) assert.match(said, message);
  assert.ok(!res.text.includes(SECRET), `the error echoes data: ${res.text}`);
}

describe("MLflow's scoring server, as its docs and code say", () => {
  /** `null`: no Content-Type header / no key. */
  const invoke = (body: string | Uint8Array, contentType: string | null = 'application/json', key: string | null = keys.predict, model = 'churn') =>
    call('POST', `/invocations?model=${model}`, { key: key ?? undefined, body, contentType: contentType ?? undefined });

  it('/ping and /health answer 200 with "\\n", /version the version, all without a key', async () => {
    for (const path of ['/ping', '/health']) {
      const res = await call('GET', path);
      assert.equal(res.status, 200);
      assert.equal(res.text, '\n');
    }
    const version = await call('GET', '/version');
    assert.equal(version.status, 200);
    assert.equal(version.text, KEEL_VERSION);
  });

  it("answers the request bodies of MLflow's docs like /v1 does", async () => {
    const expected = await v1Probabilities('churn', SERVED_FEATURES);
    const columns = [...SERVED_FEATURES];
    const bodies: Array<[string, string, string?]> = [
      ['dataframe_split', JSON.stringify({ dataframe_split: { columns, data: rows.map((r) => columns.map((c) => r[c])) } })],
      ['dataframe_split with an index', JSON.stringify({ dataframe_split: { index: [0, 1, 2], columns, data: rows.map((r) => columns.map((c) => r[c])) } })],
      ['dataframe_records', JSON.stringify({ dataframe_records: rows })],
      ['instances (records)', JSON.stringify({ instances: rows })],
      ['inputs (columnar)', JSON.stringify({ inputs: Object.fromEntries(columns.map((c) => [c, rows.map((r) => r[c])])) })],
      // The docs' curl: `-H "Content-Type:application/json;" --data '{"inputs": [[1, 2], [3, 4], [5, 6]]}'`
      ['inputs (rows in feature order)', JSON.stringify({ inputs: rows.map((r) => columns.map((c) => r[c])) }), 'application/json;'],
      ['params are accepted', JSON.stringify({ dataframe_records: rows, params: { threshold: 0.3 } }), 'application/json; charset=utf-8'],
      ['text/csv with a header', `${columns.join(',')}\n${rows.map((r) => columns.map((c) => r[c]).join(',')).join('\n')}\n`, 'text/csv'],
      // pandas' DataFrame.to_csv(): the index first, under an empty name; CRLF line ends are fine too.
      ['text/csv from DataFrame.to_csv()', `,${columns.join(',')}\r\n${rows.map((r, i) => [i, ...columns.map((c) => r[c])].join(',')).join('\r\n')}\r\n`, 'text/csv; charset=utf-8'],
    ];
    for (const [what, body, contentType] of bodies) {
      const res = await invoke(body, contentType);
      assert.equal(res.status, 200, `${what}: ${res.text}`);
      assert.deepEqual(res.json(), { predictions: expected }, what);
    }
  });

  it('a CSV cell may be empty or NA (missing), as pandas reads it', async () => {
    // gbdt handles missing values: an empty cell and pandas' "NA" are null, as in JSON.
    const csv = `tenure_months,monthly_spend,support_tickets,plan\n3,,NA,basic\n`;
    const res = await invoke(csv, 'text/csv');
    assert.equal(res.status, 200, res.text);
    const json = await invoke(JSON.stringify({ dataframe_records: [{ tenure_months: 3, monthly_spend: null, support_tickets: null, plan: 'basic' }] }));
    assert.deepEqual(res.json(), json.json());
  });

  it('every refusal is {"error_code", "message"}: 400 BAD_REQUEST for bad input', async () => {
    mlflowError(await invoke('{"dataframe_split": {'), 400, 'BAD_REQUEST');
    mlflowError(await invoke(''), 400, 'BAD_REQUEST');
    mlflowError(await invoke(JSON.stringify([rows[0]])), 400, 'BAD_REQUEST', /exactly one of/);
    mlflowError(await invoke(JSON.stringify({ dataframe_records: rows, instances: rows })), 400, 'BAD_REQUEST', /exactly one of/);
    mlflowError(await invoke(JSON.stringify({ dataframe_records: [{ ...rows[0], colour: SECRET }] })), 400, 'BAD_REQUEST', /unknown feature colour/);
    mlflowError(await invoke(JSON.stringify({ dataframe_split: { columns: ['a'], data: [[1, 2]] } })), 400, 'BAD_REQUEST');
    mlflowError(await invoke(JSON.stringify({ instances: [[1, 2]] })), 400, 'BAD_REQUEST', /takes 4/);
    mlflowError(await invoke(JSON.stringify({ dataframe_records: [] })), 400, 'BAD_REQUEST', /no rows/);
    mlflowError(await invoke(`tenure_months,monthly_spend,support_tickets,plan,colour\n3,80.5,4,basic,${SECRET}\n`, 'text/csv'), 400, 'BAD_REQUEST', /unknown feature colour/);
    mlflowError(await invoke(`tenure_months,monthly_spend\n3,80.5,${SECRET}\n`, 'text/csv'), 400, 'BAD_REQUEST', /CSV row 1: 3 fields, the header has 2/);
    mlflowError(await invoke(`a,"b\n1,2\n`, 'text/csv'), 400, 'BAD_REQUEST', /malformed/);
    mlflowError(await invoke('', 'text/csv'), 400, 'BAD_REQUEST', /empty/);
    mlflowError(await invoke('tenure_months,tenure_months\n1,2\n', 'text/csv'), 400, 'BAD_REQUEST', /twice/);
    mlflowError(await call('POST', '/invocations', { key: keys.predict, contentType: 'application/json', body: JSON.stringify({ dataframe_records: rows }) }), 400, 'BAD_REQUEST', /name the model/);
  });

  it('content types other than JSON and CSV (or charsets other than UTF-8) are 415', async () => {
    const body = JSON.stringify({ dataframe_records: rows });
    mlflowError(await invoke(body, 'text/plain'), 415, 'BAD_REQUEST', /application\/json or text\/csv/);
    // Bytes, so that fetch adds no Content-Type of its own.
    mlflowError(await invoke(new TextEncoder().encode(body), null), 415, 'BAD_REQUEST', /none was sent/);
    mlflowError(await invoke(body, 'application/json; charset=latin-1'), 415, 'BAD_REQUEST', /UTF-8/);
    mlflowError(await invoke(body, 'application/json; format=pandas-split'), 415, 'BAD_REQUEST', /format/);
  });

  it('auth, unknown model and body limit refusals have MLflow shape too', async () => {
    const body = JSON.stringify({ dataframe_records: rows });
    mlflowError(await invoke(body, 'application/json', null), 401, 'UNAUTHENTICATED', /API key/);
    mlflowError(await invoke(body, 'application/json', keys.feedback), 403, 'PERMISSION_DENIED');
    mlflowError(await invoke(body, 'application/json', keys.predict, 'nope'), 404, 'RESOURCE_DOES_NOT_EXIST');
    mlflowError(await invoke(JSON.stringify({ dataframe_records: rows, params: { padding: 'x'.repeat(MAX_BODY_BYTES) } })), 413, 'BAD_REQUEST');
  });
});
