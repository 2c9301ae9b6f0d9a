/**
 * The prediction log with no Postgres to reach (a port nothing listens on): serving never notices,
 * every record lands in a spill file (its journal) as one JSON line, and pending ids stay known for feedback.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { startPredictionLog } from '../../api/serving/prediction-log.js';
import type { PredictionRecord } from '../../api/serving/types.js';
import { freePort } from '../../infra/local/ports.js';
import { createDb } from '../../stores/db.js';
import { tempDir } from '../helpers/temp.js';

const record = (i: number): PredictionRecord => ({
  requestId: `r-${i}`,
  model: 'churn',
  version: 3,
  variant: 'v3',
  mode: 'live',
  features: { tenure: i, plan: 'pro', autopay: false, churned_before: null },
  output: { prediction: 0, probability: 0.125 },
  latencyMs: 0.25,
  ts: new Date(Date.UTC(2026, 0, 2, 3, 4, 5, i)),
});

describe('prediction log without Postgres', () => {
  it('spills every record to a JSON-lines file and keeps its id pending', async () => {
    const db = createDb({ url: `postgres://keel:keel@127.0.0.1:${await freePort()}/keel` });
    const spillDir = tempDir('keel-spill-unit-');
    const log = await startPredictionLog({ db, gatewayId: 'gw/unit 1', spillDir, batchSize: 10, flushIntervalMs: 5, retryMinMs: 50, partitionDays: 0 });
    for (let i = 0; i < 25; i++) log.append(record(i));
    assert.equal(log.depth(), 25);
    await log.close();
    await db.end();

    assert.equal(log.depth(), 25);
    assert.equal(log.stats().spilling, true);
    assert.ok(log.has('r-0') && log.has('r-24') && !log.has('r-25'));
    const files = readdirSync(spillDir);
    assert.equal(files.length, 1, files.join(', '));
    assert.match(files[0]!, /^predictions-gw_unit_1\.\d+-\d+-\d{6}\.jsonl$/, 'named by gateway id (safely) and time');
    const lines = readFileSync(path.join(spillDir, files[0]!), 'utf8').trim().split('\n');
    assert.equal(lines.length, 25);
    const first = JSON.parse(lines.find((l) => l.includes('"r-0"'))!) as Record<string, unknown>;
    assert.deepEqual(first, { ...record(0), ts: Date.UTC(2026, 0, 2, 3, 4, 5, 0) });
  });
});
