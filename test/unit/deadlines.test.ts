import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { createDeadlineQueue, type Deadline } from '../../api/serving/deadlines.js';

function entry(log: string[], name: string): Deadline {
  return {
    settled: false,
    expire: () => log.push(name),
  };
}

describe('deadline queue', () => {
  it('expires entries that did not settle in time, in start order, each once; settled ones never', async () => {
    let clock = 0;
    const queue = createDeadlineQueue(100, () => clock);
    const expired: string[] = [];
    const a = entry(expired, 'a');
    const b = entry(expired, 'b');
    const c = entry(expired, 'c');
    queue.add(a);
    queue.add(b);
    clock = 50;
    queue.add(c);
    b.settled = true;
    clock = 99;
    await sleep(20);
    assert.deepEqual(expired, [], 'nothing is due before its deadline');
    clock = 100;
    await sleep(20);
    assert.deepEqual(expired, ['a'], 'a is due at 100; b settled; c is due at 150');
    clock = 1_000;
    await sleep(20);
    assert.deepEqual(expired, ['a', 'c']);
    assert.equal(queue.size(), 0);
    await sleep(20);
    assert.deepEqual(expired, ['a', 'c'], 'each expires once');
  });

  it('keeps working after the queue ran empty, and with thousands of entries', async () => {
    let clock = 0;
    const queue = createDeadlineQueue(40, () => clock);
    const expired: string[] = [];
    const entries = Array.from({ length: 5_000 }, (_, i) => entry(expired, String(i)));
    for (const e of entries) queue.add(e);
    for (let i = 0; i < entries.length; i++) if (i % 1_000 !== 0) entries[i]!.settled = true;
    clock = 40;
    await sleep(30);
    assert.deepEqual(expired, ['0', '1000', '2000', '3000', '4000']);
    assert.equal(queue.size(), 0);
    const late = entry(expired, 'late');
    queue.add(late);
    clock = 80;
    await sleep(30);
    assert.deepEqual(expired.at(-1), 'late');
  });
});
