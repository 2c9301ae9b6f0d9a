/**
 * test/fixtures/stats/stats.json (written once by make_stats_fixtures.py) and the comparison the
 * lib/stats tests share: |ours − reference| <= tolerance × max(floor, |reference|).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each test file types the part it reads
export const statsFixtures = JSON.parse(readFileSync(new URL('../fixtures/stats/stats.json', import.meta.url), 'utf8')) as Record<string, any>;

/**
 * Relative agreement `tolerance` for values above `floor` in magnitude, absolute `tolerance × floor`
 * below it (p-values near 0 are compared relatively down to `floor`).
 */
export function assertClose(actual: number | null, expected: number | null, tolerance: number, what: string, floor = 1): void {
  if (expected === null) {
    assert.equal(actual, null, `${what}: expected null, got ${actual}`);
    return;
  }
  assert.ok(actual !== null, `${what}: got null, reference ${expected}`);
  if (!Number.isFinite(expected)) {
    assert.equal(actual, expected, what);
    return;
  }
  const bound = tolerance * Math.max(floor, Math.abs(expected));
  assert.ok(Math.abs(actual - expected) <= bound, `${what}: got ${actual}, reference ${expected} (diff ${actual - expected}, bound ${bound})`);
}
