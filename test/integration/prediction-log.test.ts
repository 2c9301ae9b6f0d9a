/**
 * The prediction log against a real Postgres that is stopped and started mid-run: serving never
 * waits, nothing is lost or written twice, spill files survive the process, close() flushes, the
 * memory bound holds, and daily partitions are created safely. (The same guarantee through the
 * real gateway process, with a SIGTERM under load: test/e2e/gateway-log.test.ts.)
 */
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startPredictionLog, type PredictionLog } from '../../api/serving/prediction-log.js';
import type { PredictionRecord } from '../../api/serving/types.js';
import { createDb, type Db } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { countPredictions, ensurePredictionPartitions, findPrediction, insertPredictions, partitionName } from '../../stores/predictions.js';
import { startRestartablePostgres, type RestartablePostgres } from '../helpers/restartable-postgres.js';
import { freshDatabase } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';

let sequence = 0;
function record(requestId = `req-${++sequence}`, mode: 'live' | 'shadow' = 'live'): PredictionRecord {
  return {
    requestId,
    model: 'churn',
    version: mode === 'live' ? 1 : 2,
    variant: mode === 'live' ? 'control' : 'candidate',
    mode,
    features: { tenure: sequence % 72, plan: 'basic', autopay: true, missing: null },
    output: { prediction: sequence % 2, probability: 0.25 },
    latencyMs: 0.4,
    ts: new Date(),
  };
}

/** Distinct logged rows, and rows counted twice (must be zero). */
async function tally(db: Db): Promise<{ rows: number; distinct: number }> {
  const { rows } = await db.query<{ rows: string; distinct: string }>(
    `SELECT count(*) AS rows, count(DISTINCT (request_id, mode)) AS distinct FROM predictions`,
  );
  return { rows: Number(rows[0]!.rows), distinct: Number(rows[0]!.distinct) };
}

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const FAST = { batchSize: 50, flushIntervalMs: 20, writeTimeoutMs: 3_000, retryMinMs: 100, retryMaxMs: 400, partitionDays: 1 };

describe('prediction log', () => {
  let postgres: RestartablePostgres;
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;

  before(async () => {
    postgres = await startRestartablePostgres();
  });
  after(async () => {
    await db?.end();
    await database?.drop().catch(() => undefined);
  });

  async function fresh(): Promise<Db> {
    const previous = db;
    db = undefined as unknown as Db;
    await previous?.end();
    await database?.drop().catch(() => undefined);
    database = await freshDatabase(postgres.url);
    await migrate(database.url);
    db = createDb({ url: database.url, max: 4 });
    return db;
  }

  it('logs every record exactly once across a Postgres restart, never making the caller wait', async () => {
    await fresh();
    const spillDir = tempDir('keel-spill-');
    const log = await startPredictionLog({ db, gatewayId: 'gw-restart', spillDir, ...FAST });
    const sent: PredictionRecord[] = [];
    const serve = (n: number) => {
      for (let i = 0; i < n; i++) {
        const live = record();
        const shadow = record(live.requestId, 'shadow');
        log.append(live);
        log.append(shadow);
        sent.push(live, shadow);
      }
    };
    serve(150);
    await log.drained();
    assert.equal(await countPredictions(db), 300);

    await postgres.stop();
    // The gateway keeps serving while Postgres is down: append returns at once and never throws.
    serve(200);
    await until(() => log.stats().spilling && log.stats().spilled > 0, 'the log to spill');
    serve(100);
    await until(() => log.stats().queued === 0, 'memory to be emptied into the spill file');
    assert.equal(log.depth(), 600);
    assert.ok(log.has(sent.at(-1)!.requestId), 'a spilled request id is still known');
    const files = readdirSync(spillDir);
    assert.ok(files.length > 0 && files.every((f) => f.startsWith('predictions-gw-restart')), `spill files: ${files.join(', ')}`);

    await postgres.start();
    await log.drained();
    assert.deepEqual(await tally(db), { rows: 900, distinct: 900 });
    assert.equal(log.has(sent.at(-1)!.requestId), false, 'logged ids are no longer pending');
    assert.deepEqual(readdirSync(spillDir), [], 'replayed spill files are deleted');
    const stored = await findPrediction(db, sent.at(-1)!.requestId);
    assert.equal(stored?.gatewayId, 'gw-restart');
    assert.deepEqual(stored?.features, sent.at(-2)!.features);
    await log.close();
    assert.equal(log.stats().written, 900);
  });

  it('close() while Postgres is down keeps everything in the spill file; the next start replays it', async () => {
    await fresh();
    const spillDir = tempDir('keel-spill-');
    const first = await startPredictionLog({ db, gatewayId: 'gw-crash', spillDir, ...FAST, flushIntervalMs: 60_000, batchSize: 10_000 });
    const ids: string[] = [];
    await postgres.stop();
    for (let i = 0; i < 120; i++) {
      const r = record();
      ids.push(r.requestId);
      first.append(r);
    }
    await first.close();
    assert.equal(first.depth(), 120);
    assert.ok(first.has(ids[0]!));
    const spilled = readdirSync(spillDir).map((f) => readFileSync(path.join(spillDir, f), 'utf8').trim().split('\n').length);
    assert.equal(spilled.reduce((a, b) => a + b, 0), 120);
    // A crash can tear the last line: it is skipped, the rest is replayed.
    appendFileSync(path.join(spillDir, 'predictions-gw-crash.jsonl'), '{"requestId":"torn","model":');

    await postgres.start();
    const second = await startPredictionLog({ db, gatewayId: 'gw-crash', spillDir, ...FAST });
    await second.drained();
    await second.close();
    assert.deepEqual(await tally(db), { rows: 120, distinct: 120 });
    assert.equal(second.stats().corruptLines, 1);
    assert.deepEqual(readdirSync(spillDir), []);
  });

  it('a replay cut short and run again never writes a row twice', async () => {
    await fresh();
    const spillDir = tempDir('keel-spill-');
    const records = Array.from({ length: 80 }, () => record());
    // Half of them reached Postgres before the crash; all of them are in the spill file.
    await insertPredictions(db, records.slice(0, 40), 'gw-partial');
    appendFileSync(
      path.join(spillDir, 'predictions-gw-partial.jsonl'),
      records.map((r) => `${JSON.stringify({ ...r, ts: r.ts.toISOString() })}\n`).join(''),
    );
    const log = await startPredictionLog({ db, gatewayId: 'gw-partial', spillDir, ...FAST });
    await log.drained();
    await log.close();
    assert.deepEqual(await tally(db), { rows: 80, distinct: 80 });
  });

  it('a record Postgres refuses as data goes to the rejected file; the others are written and the log keeps going', async () => {
    await fresh();
    const spillDir = tempDir('keel-spill-');
    // An int column out of range: Postgres answers SQLSTATE 22003, a data error, not an outage.
    const bad = (id: string) => ({ ...record(id), version: 2 ** 40 });
    // One in a spill file left from before (replayed at start), one among live records.
    const spilledGood = record();
    appendFileSync(
      path.join(spillDir, 'predictions-gw-refused.jsonl'),
      [bad('refused-spilled'), spilledGood].map((r) => `${JSON.stringify({ ...r, ts: r.ts.toISOString() })}\n`).join(''),
    );
    const log = await startPredictionLog({ db, gatewayId: 'gw-refused', spillDir, ...FAST });
    const live = Array.from({ length: 30 }, () => record());
    for (const r of live.slice(0, 15)) log.append(r);
    log.append(bad('refused-live'));
    for (const r of live.slice(15)) log.append(r);
    await log.drained();
    assert.equal(log.stats().spilling, false);
    const after = record('after-refusal');
    log.append(after);
    await log.drained();
    await log.close();
    assert.deepEqual(await tally(db), { rows: 32, distinct: 32 });
    assert.ok(await findPrediction(db, 'after-refusal'));
    assert.equal(log.stats().rejected, 2);
    const rejected = readFileSync(path.join(spillDir, 'rejected-gw-refused.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { reason: string; record: PredictionRecord });
    assert.deepEqual(rejected.map((r) => r.record.requestId).sort(), ['refused-live', 'refused-spilled']);
    assert.match(rejected[0]!.reason, /out of range/);
    // The spill file was replayed and removed; only the rejected file stays.
    assert.deepEqual(readdirSync(spillDir), ['rejected-gw-refused.jsonl']);
  });

  it('stores text with NUL characters, lone surrogates and JSON-looking values as they were sent (NUL and lone surrogates as U+FFFD)', async () => {
    await fresh();
    const odd = {
      ...record('odd-1'),
      features: {
        plan: 'ba\u0000sic',
        note: '{"a": [1, "\\"]}',
        quote: 'it\'s "x"',
        empty: '',
        // JSON.parse('"\\udc00"') gives a lone surrogate: JSON.stringify writes it as an escape jsonb refuses.
        low: 'a\udc00b',
        high: '\ud800',
        pair: '\ud83d\ude00',
        escapeText: 'C:\\u0000\\ud800',
      },
    };
    assert.equal(await insertPredictions(db, [odd, record('odd-2')]), 2);
    const stored = await findPrediction(db, 'odd-1');
    assert.deepEqual(stored?.features, {
      plan: 'ba\ufffdsic',
      note: '{"a": [1, "\\"]}',
      quote: 'it\'s "x"',
      empty: '',
      low: 'a\ufffdb',
      high: '\ufffd',
      pair: '\ud83d\ude00',
      escapeText: 'C:\\u0000\\ud800',
    });
  });

  it('stores features from the request text the same as from the parsed features, and falls back where Postgres could not read the text', async () => {
    await fresh();
    // Each body is what a client sent; `features` is what JSON.parse made of its `features` member.
    const bodies = {
      plain: '{"features": {"tenure": 12, "charges": 70.350, "plan": "basic", "autopay": true, "missing": null}}',
      withId: '{"request_id": "abc", "features": {"tenure": 1.5e2, "charges": -0.000123}}',
      escaped: '{"features": {"plan": "ba\\u0000sic", "note": "a\\"b"}}',
      // 1e-20000 is 0 in JavaScript and an overflow for Postgres' numeric: must not reach Postgres.
      tinyExponent: '{"features": {"tenure": 1e-20000, "charges": 2}}',
      // 17 000 digits after the point: a number for JavaScript, beyond numeric's 16 383 for Postgres.
      longNumber: `{"features": {"charges": 0.${'1'.repeat(17_000)}}}`,
    };
    const records = Object.entries(bodies).map(([name, text]) => ({
      ...record(`text-${name}`),
      features: (JSON.parse(text) as { features: PredictionRecord['features'] }).features,
      requestJson: text,
    }));
    assert.equal(await insertPredictions(db, records), records.length);
    for (const sent of records) {
      const stored = await findPrediction(db, sent.requestId);
      assert.deepEqual(stored?.features, sent.requestId === 'text-escaped' ? { plan: 'ba\ufffdsic', note: 'a"b' } : sent.features, sent.requestId);
    }
    // Read from the text, a number keeps the digits the client wrote (70.350, where JavaScript says 70.35).
    const { rows } = await db.query<{ charges: string }>(`SELECT features ->> 'charges' AS charges FROM predictions WHERE request_id = 'text-plain'`);
    assert.equal(rows[0]!.charges, '70.350');
    // Replayed from the journal (maxQueued 0: memory holds nothing), features come from the request text's parse.
    const spillDir = tempDir('keel-spill-');
    const log = await startPredictionLog({ db, gatewayId: 'gw-text', spillDir, ...FAST, maxQueued: 0 });
    // A pretty-printed body: its line breaks must not split the journal line.
    const presence = { present: 1, expired: 0, missing: 2 };
    log.append({ ...record('text-spilled'), features: { tenure: 3 }, requestJson: '{\n  "features": {"tenure": 3}\r\n}', presence });
    await log.drained();
    await log.close();
    const spilled = await findPrediction(db, 'text-spilled');
    assert.deepEqual(spilled?.features, { tenure: 3 });
    assert.deepEqual(spilled?.presence, presence, 'the online feature counts survive the journal');
  });

  it('close() writes what is still in memory', async () => {
    await fresh();
    const log = await startPredictionLog({ db, gatewayId: 'gw-close', spillDir: tempDir('keel-spill-'), ...FAST, flushIntervalMs: 60_000, batchSize: 10_000 });
    for (let i = 0; i < 123; i++) log.append(record());
    assert.equal(await countPredictions(db), 0);
    await log.close();
    assert.equal(await countPredictions(db), 123);
    assert.equal(log.depth(), 0);
  });

  it('holds at most maxQueued records in memory; the rest goes through the spill file', async () => {
    await fresh();
    const spillDir = tempDir('keel-spill-');
    const log = await startPredictionLog({ db, gatewayId: 'gw-bound', spillDir, ...FAST, flushIntervalMs: 60_000, batchSize: 10_000, maxQueued: 10 });
    for (let i = 0; i < 25; i++) log.append(record());
    assert.equal(log.stats().queued, 10);
    assert.equal(log.stats().spilled, 15);
    await until(() => log.stats().spilled === 0, 'the overflow to reach Postgres through the spill file');
    await log.close();
    assert.equal(await countPredictions(db), 25);
    assert.equal(existsSync(path.join(spillDir, 'predictions-gw-bound.jsonl')), false);
  });

  it('journal, spill and rejected files are owner-only (0600 in a 0700 folder) whatever the umask', async () => {
    await fresh();
    const spillDir = path.join(tempDir('keel-spill-modes-'), 'spill');
    const umask = process.umask(0);
    let log: PredictionLog | undefined;
    try {
      mkdirSync(spillDir, { mode: 0o755 });
      log = await startPredictionLog({ db, gatewayId: 'gw-modes', spillDir, ...FAST, flushIntervalMs: 60_000, batchSize: 10_000 });
      assert.equal(statSync(spillDir).mode & 0o777, 0o700, 'an existing folder is made owner-only');
      log.append(record('modes-1'));
      // The journal line is written in a microtask, before the answer could go out.
      await Promise.resolve();
      const journal = readdirSync(spillDir);
      assert.equal(journal.length, 1);
      assert.match(journal[0]!, /^predictions-gw-modes\..*\.journal$/);
      assert.equal(statSync(path.join(spillDir, journal[0]!)).mode & 0o777, 0o600);
      assert.equal(readFileSync(path.join(spillDir, journal[0]!), 'utf8').split('\n').length, 2, 'one line, written before any await');
      log.append({ ...record('modes-refused'), version: 2 ** 40 });
      await log.close();
      assert.deepEqual(readdirSync(spillDir), ['rejected-gw-modes.jsonl']);
      assert.equal(statSync(path.join(spillDir, 'rejected-gw-modes.jsonl')).mode & 0o777, 0o600);
      assert.equal(await countPredictions(db), 1);
    } finally {
      process.umask(umask);
      await log?.close();
    }
  });

  it('a journal that cannot be written loses nothing: the records stay in memory (also over maxQueued) and reach Postgres', async () => {
    await fresh();
    const spillDir = tempDir('keel-spill-');
    const log = await startPredictionLog({ db, gatewayId: 'gw-nodisk', spillDir, ...FAST, maxQueued: 5 });
    // The folder becomes a file: every journal write fails (ENOTDIR), as on a broken disk.
    rmSync(spillDir, { recursive: true });
    writeFileSync(spillDir, 'not a folder');
    try {
      for (let i = 0; i < 40; i++) log.append(record());
      await log.drained();
      assert.equal(await countPredictions(db), 40);
      assert.equal(log.stats().spilled, 0);
    } finally {
      await log.close();
      rmSync(spillDir);
    }
  });

  it('creates daily partitions idempotently, also from concurrent gateways, and never fails on a filled default', async () => {
    await fresh();
    const [a, b] = await Promise.all([ensurePredictionPartitions(db, 2), ensurePredictionPartitions(db, 2)]);
    assert.equal(a.created.length + b.created.length, 3);
    assert.deepEqual((await ensurePredictionPartitions(db, 2)).created, []);
    const today = record();
    await insertPredictions(db, [today]);
    const { rows } = await db.query<{ partition: string }>('SELECT tableoid::regclass::text AS partition FROM predictions WHERE request_id = $1', [today.requestId]);
    assert.equal(rows[0]!.partition, partitionName(new Date()));

    // A day far ahead already has rows in the default partition: its partition is skipped, the rows stay.
    const later = new Date(Date.now() + 40 * 86_400_000);
    await insertPredictions(db, [{ ...record(), ts: later }]);
    const result = await ensurePredictionPartitions(db, 0, later);
    assert.deepEqual(result.created, []);
    assert.equal(result.skipped[0]?.name, partitionName(later));
    assert.equal(await countPredictions(db), 2);
  });
});
