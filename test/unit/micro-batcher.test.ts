import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMicroBatcher } from '../../api/serving/micro-batcher.js';

/** A scorer boundary: sums each row, and records the batch sizes it was called with. */
function summer() {
  const calls: number[] = [];
  return {
    calls,
    run: async (data: Float64Array, rows: number) => {
      calls.push(rows);
      await new Promise((resolve) => setTimeout(resolve, 2));
      const out = new Float64Array(rows);
      for (let r = 0; r < rows; r++) out[r] = data[r * 3]! + data[r * 3 + 1]! + data[r * 3 + 2]!;
      return out;
    },
  };
}

test('concurrent rows share runs and each caller gets its own row back', async () => {
  const s = summer();
  const batcher = createMicroBatcher({ cols: 3, maxWaitMs: 0, maxBatchRows: 64, run: s.run });
  const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => batcher.submit(Float64Array.of(i, i, 1))));
  assert.deepEqual(answers, Array.from({ length: 200 }, (_, i) => 2 * i + 1));
  assert.ok(s.calls.length < 20, `runs: ${s.calls.join(',')}`);
  assert.ok(Math.max(...s.calls) <= 64);
  assert.equal(batcher.stats().rows, 200);
});

test('a bounded wait gathers rows that arrive a little apart', async () => {
  const s = summer();
  const batcher = createMicroBatcher({ cols: 3, maxWaitMs: 5, maxBatchRows: 64, run: s.run });
  const first = batcher.submit(Float64Array.of(1, 1, 1));
  await new Promise((resolve) => setImmediate(resolve));
  const second = batcher.submit(Float64Array.of(2, 2, 2));
  assert.deepEqual(await Promise.all([first, second]), [3, 6]);
  assert.deepEqual(s.calls, [2]);
});

test('a failing run rejects every caller of its batch, and the next batch runs', async () => {
  let fail = true;
  const batcher = createMicroBatcher({
    cols: 1,
    maxWaitMs: 0,
    maxBatchRows: 8,
    run: async (data, rows) => {
      if (fail) throw new Error('session broke');
      return data.slice(0, rows);
    },
  });
  const results = await Promise.allSettled([batcher.submit(Float64Array.of(1)), batcher.submit(Float64Array.of(2))]);
  assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
  fail = false;
  assert.equal(await batcher.submit(Float64Array.of(5)), 5);
  await assert.rejects(batcher.submit(Float64Array.of(1, 2)), /takes 1/);
});
