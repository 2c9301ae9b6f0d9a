/**
 * Thousands of generated bad requests against the real gateway process: every answer must be a
 * well-formed JSON 4xx in its protocol's error shape (Keel's `{error: {code, message}}`, OIP's
 * `{error: "…"}`, MLflow's `{error_code, message}`; no stack trace), the process must not crash,
 * and good requests must keep working in between and afterwards. Seeded, so a failure replays.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Random } from '../../lib/ml/random.js';
import { openArtifactStore } from '../../stores/artifacts/index.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { assertErrorBody } from '../helpers/error-shapes.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { registerServedModel } from '../helpers/served-models.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';

const SEED = Number(process.env.KEEL_FUZZ_SEED ?? 20261126);
const REQUESTS = Number(process.env.KEEL_FUZZ_REQUESTS ?? 3000);

let db: Db;
let drop: () => Promise<void>;
let gateway: GatewayProcess;
const good = { tenure_months: 12, monthly_spend: 42.5, support_tickets: 1, plan: 'basic' };

before(async () => {
  const fresh = await freshDatabase(await testDatabaseUrl());
  drop = fresh.drop;
  await migrate(fresh.url);
  db = createDb({ url: fresh.url });
  const artifactsDir = tempDir('keel-fuzz-artifacts-');
  const artifacts = openArtifactStore({ uri: `file://${artifactsDir}`, region: 'us-east-1' });
  await registerServedModel({ db, artifacts }, { model: 'fuzz', trainer: 'gbdt', params: { maxIter: 10 }, aliases: ['champion'] });
  gateway = await startGatewayProcess({ databaseUrl: fresh.url, artifactsDir });
});

after(async () => {
  await gateway?.stop();
  await db?.end();
  await drop?.();
});

interface BadRequest {
  what: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

const ENDPOINTS = ['/v1/models/fuzz/predict', '/v2/models/fuzz/infer', '/invocations?model=fuzz', '/v1/feedback'];

/** One generated bad request; `kind` cycles through the families so every family is covered. */
function badRequest(random: Random, index: number): BadRequest {
  const pick = <T>(items: readonly T[]): T => items[random.nextUint32() % items.length]!;
  const endpoint = pick(ENDPOINTS);
  const json = { 'content-type': 'application/json' };
  const randomString = (n: number) => Array.from({ length: n }, () => String.fromCharCode(1 + (random.nextUint32() % 0x2fff))).join('');
  const valueOfWrongType = () =>
    pick<unknown>([
      'twelve',
      [1, 2],
      { nested: 1 },
      true,
      '',
      1e39,
      -1e39,
      Number.MAX_VALUE,
      '1e400',
      randomString(50),
    ]);
  const families: Array<() => BadRequest> = [
    // malformed JSON: truncated, garbage bytes, JS literals JSON does not have
    () => {
      const text = JSON.stringify({ features: good });
      return { what: 'truncated JSON', method: 'POST', path: endpoint, headers: json, body: text.slice(0, random.nextUint32() % (text.length - 1)) };
    },
    () => ({ what: 'random bytes', method: 'POST', path: endpoint, headers: json, body: Uint8Array.from({ length: 1 + (random.nextUint32() % 300) }, () => random.nextUint32() & 0xff) }),
    () => ({ what: 'NaN / Infinity literals', method: 'POST', path: endpoint, headers: json, body: `{"features": {"tenure_months": ${pick(['NaN', 'Infinity', '-Infinity', 'undefined'])}}}` }),
    // numbers JSON can hold but a float32 model cannot
    () => ({ what: 'huge number', method: 'POST', path: '/v1/models/fuzz/predict', headers: json, body: `{"features": {"tenure_months": ${pick(['1e400', '-1e400', '1e39', '3.5e38'])}, "monthly_spend": 1, "support_tickets": 1, "plan": "basic"}}` }),
    // wrong types at every level
    () => ({ what: 'wrong top-level type', method: 'POST', path: endpoint, headers: json, body: JSON.stringify(pick<unknown>([[], 'x', 42, null, true, [{ features: good }]])) }),
    () => {
      // Numeric features take numbers only; the category takes text (an unseen category is a
      // missing value, as the training encoder treats it), so only non-scalars are wrong for it.
      const features: Record<string, unknown> = { ...good };
      const name = pick(Object.keys(good));
      features[name] = name === 'plan' ? pick<unknown>([[1, 2], { nested: 1 }, ['basic']]) : valueOfWrongType();
      return { what: 'wrong feature type', method: 'POST', path: '/v1/models/fuzz/predict', headers: json, body: JSON.stringify({ features }) };
    },
    () => ({ what: 'features not an object', method: 'POST', path: '/v1/models/fuzz/predict', headers: json, body: JSON.stringify({ features: valueOfWrongType() }) }),
    () => ({ what: 'unknown feature', method: 'POST', path: '/v1/models/fuzz/predict', headers: json, body: JSON.stringify({ features: { ...good, [randomString(8)]: 1 } }) }),
    () => {
      const features: Record<string, unknown> = { ...good };
      delete features[pick(Object.keys(good))];
      return { what: 'missing feature', method: 'POST', path: '/v1/models/fuzz/predict', headers: json, body: JSON.stringify({ features }) };
    },
    () => ({ what: 'prototype keys', method: 'POST', path: '/v1/models/fuzz/predict', headers: json, body: `{"features": {"__proto__": {"polluted": 1}, "constructor": {"prototype": {"x": 1}}}}` }),
    // deep nesting, in the body and inside a feature value
    () => {
      const depth = 1_000 + (random.nextUint32() % 50_000);
      return { what: 'deep nesting', method: 'POST', path: endpoint, headers: json, body: `{"features": ${'['.repeat(depth)}${']'.repeat(depth)}}` };
    },
    // size limits
    () => ({ what: 'oversized body', method: 'POST', path: endpoint, headers: json, body: JSON.stringify({ features: { ...good, pad: 'x'.repeat(1_100_000 + (random.nextUint32() % 100_000)) } }) }),
    () => ({ what: 'too many instances', method: 'POST', path: '/v1/models/fuzz/predict', headers: json, body: JSON.stringify({ instances: Array.from({ length: 5_000 }, () => ({ features: good })) }) }),
    // unknown model, bad ids, wrong content type, empty body
    () => ({ what: 'unknown model', method: 'POST', path: `/v1/models/${pick(['nope', 'x'.repeat(300), '..%2F..%2Fetc', 'Robert%27)%3B%20DROP%20TABLE%20models'])}/predict`, headers: json, body: JSON.stringify({ features: good }) }),
    () => ({ what: 'bad request id', method: 'POST', path: '/v1/models/fuzz/predict', headers: json, body: JSON.stringify({ features: good, request_id: pick<unknown>(['', 'x'.repeat(500), 'a b', 42, { id: 1 }, randomString(10)]) }) }),
    () => ({ what: 'wrong content type', method: 'POST', path: endpoint, headers: { 'content-type': pick(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) }, body: 'features=1' }),
    () => ({ what: 'empty body', method: 'POST', path: endpoint, headers: json, body: '' }),
    () => ({ what: 'feedback for unknown id', method: 'POST', path: '/v1/feedback', headers: json, body: JSON.stringify({ request_id: `nope-${index}`, label: pick<unknown>([1, 0, 2, 'yes', null, -1]) }) }),
    () => ({ what: 'variant header without admin', method: 'POST', path: '/v1/models/fuzz/predict', headers: { ...json, 'x-keel-variant': pick(['v1', 'control', 'x']) }, body: JSON.stringify({ features: good }) }),
  ];
  return families[index % families.length]!();
}

async function send(request: BadRequest): Promise<{ status: number; contentType: string; text: string }> {
  const response = await fetch(`${gateway.url}${request.path}`, { method: request.method, headers: request.headers, body: request.body });
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text: await response.text() };
}

async function predictsFine(): Promise<void> {
  const answer = await send({ what: 'good', method: 'POST', path: '/v1/models/fuzz/predict', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ features: good }) });
  assert.equal(answer.status, 200, `a good request after bad ones: ${answer.status} ${answer.text}`);
  const body = JSON.parse(answer.text) as { probability: number };
  assert.ok(body.probability >= 0 && body.probability <= 1);
}

test(`${REQUESTS} generated bad requests each get a JSON 4xx and the gateway keeps serving (seed ${SEED})`, { timeout: 600_000 }, async () => {
  const random = new Random(SEED);
  const byFamily = new Map<string, Set<number>>();
  const concurrency = 8;
  let next = 0;
  const worker = async () => {
    while (next < REQUESTS) {
      const index = next++;
      const request = badRequest(random, index);
      const answer = await send(request);
      const where = `request ${index} (${request.what} → ${request.path}): ${answer.status} ${answer.text.slice(0, 300)}`;
      assert.ok(answer.status >= 400 && answer.status < 500, `not a 4xx: ${where}`);
      assert.match(answer.contentType, /application\/json/, `not JSON: ${where}`);
      assertErrorBody(request.path, answer.text, where);
      assert.doesNotMatch(answer.text, /\n\s+at |node:internal|\.ts:\d+/, `stack trace in the answer: ${where}`);
      (byFamily.get(request.what) ?? byFamily.set(request.what, new Set()).get(request.what)!).add(answer.status);
      if (index % 500 === 0) await predictsFine();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  assert.equal(gateway.child.exitCode, null, `the gateway exited:\n${gateway.output()}`);
  await predictsFine();
  // The families that have one right answer get it.
  assert.deepEqual([...byFamily.get('oversized body')!], [413]);
  assert.deepEqual([...byFamily.get('unknown feature')!], [422]);
  assert.deepEqual([...byFamily.get('missing feature')!], [422]);
  // Without a key the caller is anonymous (401); either way the header is refused.
  assert.ok([...byFamily.get('variant header without admin')!].every((s) => s === 401 || s === 403));
  assert.deepEqual([...byFamily.get('feedback for unknown id')!].filter((s) => s !== 422), [404]);
  // Nothing bad reached the prediction log.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM predictions WHERE NOT (features ?& ARRAY['tenure_months', 'monthly_spend', 'support_tickets', 'plan'])`);
  assert.equal(Number(rows[0]!.n), 0);
});
