/**
 * `POST /v1/feedback` against a real Postgres: unknown ids, the first label kept, duplicates and
 * conflicts answered the same way however they race, labels for predictions still in the log,
 * the batch form and bad bodies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { feedbackRoutes } from '../../api/routes/feedback.js';
import { createDb, type Db } from '../../stores/db.js';
import { findFeedback } from '../../stores/feedback.js';
import { migrate } from '../../stores/migrate.js';
import { insertPredictions } from '../../stores/predictions.js';
import { freePort } from '../../infra/local/ports.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';

const served = (requestId: string) => ({
  requestId,
  model: 'churn',
  version: 1,
  variant: 'control',
  mode: 'live' as const,
  features: { tenure: 3 },
  output: { prediction: 1, probability: 0.9 },
  latencyMs: 1,
  ts: new Date(),
});

describe('POST /v1/feedback', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let app: ReturnType<typeof feedbackRoutes>;
  const pending = new Set(['still-in-the-log']);

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    await insertPredictions(db, ['r-1', 'r-2', 'r-3', 'r-race', 'r-race-2', 'b:0', 'b:1'].map(served));
    app = feedbackRoutes({ db, log: { has: (id) => pending.has(id) } });
  });
  after(async () => {
    await db?.end();
    await database?.drop();
  });

  const post = (body: unknown) =>
    app.request('/v1/feedback', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it('refuses a request id that was never served: 404 naming request_id', async () => {
    const res = await post({ request_id: 'never-served', label: 1 });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: { code: string; field: string } };
    assert.equal(body.error.code, 'NotFound');
    assert.equal(body.error.field, 'request_id');
    assert.equal(await findFeedback(db, 'never-served'), undefined);
  });

  it('records the first label, answers a repeat as duplicate and a different label as a 409 conflict', async () => {
    const first = await post({ request_id: 'r-1', label: 1 });
    assert.equal(first.status, 201);
    assert.deepEqual({ ...((await first.json()) as object), recorded_at: undefined }, { request_id: 'r-1', status: 'recorded', label: 1, recorded_at: undefined });

    const again = await post({ request_id: 'r-1', label: true });
    assert.equal(again.status, 200);
    assert.equal(((await again.json()) as { status: string }).status, 'duplicate');

    const other = await post({ request_id: 'r-1', label: 0 });
    assert.equal(other.status, 409);
    const conflict = (await other.json()) as { error: { code: string; message: string; field: string } };
    assert.equal(conflict.error.code, 'Conflict');
    assert.match(conflict.error.message, /already has label 1/);
    assert.equal((await findFeedback(db, 'r-1'))?.label, 1, 'the first label is kept');
  });

  it('accepts false / true as 0 / 1', async () => {
    const res = await post({ request_id: 'r-2', label: false });
    assert.equal(res.status, 201);
    assert.equal((await findFeedback(db, 'r-2'))?.label, 0);
  });

  it('accepts a label for a prediction still waiting in the prediction log', async () => {
    const res = await post({ request_id: 'still-in-the-log', label: 1 });
    assert.equal(res.status, 201);
  });

  it('resolves concurrent posts of the same id deterministically: one recorded, the rest duplicate or conflict', async () => {
    const same = await Promise.all(Array.from({ length: 8 }, () => post({ request_id: 'r-race', label: 1 })));
    assert.deepEqual(same.map((r) => r.status).sort(), [200, 200, 200, 200, 200, 200, 200, 201]);

    const mixed = await Promise.all([0, 1, 0, 1, 0, 1].map((label) => post({ request_id: 'r-race-2', label })));
    const stored = (await findFeedback(db, 'r-race-2'))!.label;
    const statuses = mixed.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 201).length, 1);
    [0, 1, 0, 1, 0, 1].forEach((label, i) => {
      if (statuses[i] !== 201) assert.equal(statuses[i], label === stored ? 200 : 409);
    });
  });

  it('takes a batch and answers each label on its own', async () => {
    const res = await post({
      feedback: [
        { request_id: 'b:0', label: 1 },
        { request_id: 'b:1', label: 0 },
        { request_id: 'b:0', label: 0 },
        { request_id: 'nope', label: 1 },
      ],
    });
    assert.equal(res.status, 200);
    const { results } = (await res.json()) as { results: Array<{ status?: string; error?: { code: string } }> };
    assert.deepEqual(
      results.map((r) => r.status ?? r.error?.code),
      ['recorded', 'recorded', 'Conflict', 'NotFound'],
    );
  });

  it('answers 503 Unavailable, not 500, when Postgres cannot be reached', async () => {
    const down = createDb({ url: `postgres://keel:keel@127.0.0.1:${await freePort()}/keel` });
    const res = await feedbackRoutes({ db: down }).request('/v1/feedback', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ request_id: 'r-3', label: 1 }),
    });
    await down.end();
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'Unavailable');
  });

  it('rejects bad bodies naming the field', async () => {
    const cases: Array<[unknown, number, string | undefined]> = [
      ['{not json', 400, undefined],
      [{ request_id: 'r-3' }, 422, 'label'],
      [{ request_id: 'r-3', label: 2 }, 422, 'label'],
      [{ request_id: 'r-3', label: 'yes' }, 422, 'label'],
      [{ label: 1 }, 422, 'request_id'],
      [{ request_id: 'has spaces', label: 1 }, 422, 'request_id'],
      [{ feedback: [] }, 422, 'feedback'],
    ];
    for (const [body, status, field] of cases) {
      const res = await post(body);
      assert.equal(res.status, status, JSON.stringify(body));
      const error = ((await res.json()) as { error: { field?: string } }).error;
      if (field) assert.equal(error.field, field, JSON.stringify(body));
    }
    assert.equal(await findFeedback(db, 'r-3'), undefined);
  });
});
