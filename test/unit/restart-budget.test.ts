import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RestartBudget } from '../../infra/local/restart-budget.js';

describe('RestartBudget (how often keel up restarts a dead Postgres or Temporal)', () => {
  it('backs off 1, 2, 4, 8, 16 s, then refuses the sixth restart within the window', () => {
    let now = 0;
    const budget = new RestartBudget(5, 10, () => now);
    const delays = [];
    for (let i = 0; i < 5; i++) {
      delays.push(budget.next());
      now += 1_000;
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 16_000]);
    assert.equal(budget.used, 5);
    assert.equal(budget.next(), undefined);
  });

  it('forgets restarts older than the window', () => {
    let now = 0;
    const budget = new RestartBudget(2, 10, () => now);
    assert.equal(budget.next(), 1_000);
    assert.equal(budget.next(), 2_000);
    assert.equal(budget.next(), undefined);
    now += 10 * 60_000 + 1;
    assert.equal(budget.next(), 1_000);
  });

  it('caps the wait at 30 s', () => {
    const budget = new RestartBudget(10, 10, () => 0);
    const delays = Array.from({ length: 8 }, () => budget.next());
    assert.equal(delays.at(-1), 30_000);
  });
});
