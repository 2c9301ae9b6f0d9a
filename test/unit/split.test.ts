import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import { Random } from '../../lib/ml/random.js';
import { stratifiedFoldOfRow, stratifiedKFold, stratifiedTrainTestSplit, timeSplit } from '../../lib/ml/split.js';
import type { TrainTestIndex } from '../../lib/ml/split.js';

type Counts = [number, number];

const fixtures = JSON.parse(readFileSync(new URL('../fixtures/sklearn/metrics.json', import.meta.url), 'utf8')) as {
  sklearn: string;
  stratifiedShuffleSplit: Array<{ name: string; y: number[]; testFraction: number; outcomes: Array<{ train: Counts; test: Counts }> }>;
  stratifiedKFold: Array<{ name: string; y: number[]; folds: number; testCounts: Counts[]; foldOfRow: number[] }>;
};

/** [zeros, ones] among the rows `index`. */
function classCounts(y: Uint8Array, index: Uint32Array): Counts {
  const counts: Counts = [0, 0];
  for (const i of index) counts[y[i]!]!++;
  return counts;
}

/** Train and test are ascending, disjoint and together cover 0..n-1. */
function assertPartition(split: TrainTestIndex, n: number): void {
  assert.equal(split.train.length + split.test.length, n);
  assert.ok(split.train.length > 0 && split.test.length > 0, 'both sides non-empty');
  const seen = new Uint8Array(n);
  for (const part of [split.train, split.test]) {
    for (let k = 0; k < part.length; k++) {
      if (k > 0) assert.ok(part[k]! > part[k - 1]!, 'ascending');
      assert.equal(seen[part[k]!], 0, `row ${part[k]} appears twice`);
      seen[part[k]!] = 1;
    }
  }
}

function throwsInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidInput, `expected InvalidInput, got ${String(error)}`);
    assert.match(error.message, message);
    return true;
  });
}

function labels(n: number, positives: number, seed: number): Uint8Array {
  const y = new Uint8Array(n);
  y.fill(1, 0, positives);
  return new Random(seed).shuffle(y);
}

describe(`stratifiedTrainTestSplit matches StratifiedShuffleSplit counts (sklearn ${fixtures.sklearn})`, () => {
  for (const c of fixtures.stratifiedShuffleSplit) {
    it(`${c.name}, testFraction ${c.testFraction}`, () => {
      const y = Uint8Array.from(c.y);
      for (const seed of [0, 1, 2, 3, 4]) {
        const split = stratifiedTrainTestSplit(y, { testFraction: c.testFraction, seed });
        assertPartition(split, y.length);
        const got = { train: classCounts(y, split.train), test: classCounts(y, split.test) };
        // More than one outcome only where sklearn breaks a tie between equal remainders at random.
        assert.ok(
          c.outcomes.some((o) => o.train[0] === got.train[0] && o.train[1] === got.train[1] && o.test[0] === got.test[0] && o.test[1] === got.test[1]),
          `seed ${seed}: ${JSON.stringify(got)} not among sklearn's ${JSON.stringify(c.outcomes)}`,
        );
      }
    });
  }

  it('breaks remainder ties both ways across seeds, as sklearn does', () => {
    const c = fixtures.stratifiedShuffleSplit.find((x) => x.name === 'n20_pos10_tie')!;
    assert.equal(c.outcomes.length, 2);
    const y = Uint8Array.from(c.y);
    const seen = new Set<number>();
    for (let seed = 0; seed < 20; seed++) seen.add(classCounts(y, stratifiedTrainTestSplit(y, { testFraction: c.testFraction, seed }).test)[1]);
    assert.deepEqual([...seen].sort(), [2, 3]);
  });

  it('is deterministic per seed and differs between seeds', () => {
    const y = labels(500, 60, 9);
    const a = stratifiedTrainTestSplit(y, { testFraction: 0.2, seed: 42 });
    const b = stratifiedTrainTestSplit(y, { testFraction: 0.2, seed: 42 });
    const c = stratifiedTrainTestSplit(y, { testFraction: 0.2, seed: 43 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.test, c.test);
    assert.deepEqual(classCounts(y, a.test), [88, 12]);
    assert.deepEqual(classCounts(y, c.test), [88, 12]);
  });

  it('rejects bad arguments, naming the problem', () => {
    const y = labels(50, 10, 1);
    for (const testFraction of [0, 1, -0.1, 1.5, Number.NaN]) {
      throwsInvalid(() => stratifiedTrainTestSplit(y, { testFraction, seed: 1 }), /testFraction must be in \(0, 1\)/);
    }
    throwsInvalid(() => stratifiedTrainTestSplit(y, { testFraction: 0.2, seed: 1.5 }), /seed must be an integer/);
    throwsInvalid(() => stratifiedTrainTestSplit(new Uint8Array(0), { testFraction: 0.2, seed: 1 }), /y is empty/);
    throwsInvalid(() => stratifiedTrainTestSplit(Uint8Array.from([0, 1, 3, 1]), { testFraction: 0.5, seed: 1 }), /y\[2\] is 3/);
    throwsInvalid(() => stratifiedTrainTestSplit(Uint8Array.from([0, 0, 0, 1]), { testFraction: 0.5, seed: 1 }), /class 1 has only 1 row/);
    throwsInvalid(() => stratifiedTrainTestSplit(Uint8Array.from([0, 0, 1, 1]), { testFraction: 0.1, seed: 1 }), /test size 1 is smaller than the number of classes \(2\)/);
    throwsInvalid(() => stratifiedTrainTestSplit(Uint8Array.from([0, 0, 1, 1]), { testFraction: 0.9, seed: 1 }), /leaves no training rows/);
  });
});

describe(`stratifiedKFold matches StratifiedKFold (sklearn ${fixtures.sklearn})`, () => {
  for (const c of fixtures.stratifiedKFold) {
    it(`${c.name}, ${c.folds} folds`, () => {
      const y = Uint8Array.from(c.y);
      // Without shuffling sklearn's assignment is deterministic: it must be equal row for row.
      assert.deepEqual(Array.from(stratifiedFoldOfRow(y, { folds: c.folds, shuffle: false })), c.foldOfRow);
      for (const options of [{ shuffle: false }, { seed: 7 }, { seed: 8, shuffle: true }]) {
        const folds = stratifiedKFold(y, { folds: c.folds, ...options });
        assert.equal(folds.length, c.folds);
        const covered = new Uint8Array(y.length);
        folds.forEach((fold, k) => {
          assertPartition(fold, y.length);
          assert.deepEqual(classCounts(y, fold.test), c.testCounts[k], `fold ${k} class counts`);
          for (const i of fold.test) covered[i]!++;
        });
        assert.ok(covered.every((v) => v === 1), 'test folds partition the rows');
      }
    });
  }

  it('is deterministic per seed and differs between seeds', () => {
    const y = labels(200, 50, 3);
    const a = stratifiedFoldOfRow(y, { folds: 5, seed: 1 });
    assert.deepEqual(a, stratifiedFoldOfRow(y, { folds: 5, seed: 1 }));
    assert.notDeepEqual(a, stratifiedFoldOfRow(y, { folds: 5, seed: 2 }));
    assert.notDeepEqual(a, stratifiedFoldOfRow(y, { folds: 5, shuffle: false }));
  });

  it('rejects bad arguments, naming the problem', () => {
    const y = labels(30, 4, 2);
    throwsInvalid(() => stratifiedKFold(y, { folds: 1, seed: 1 }), /folds must be an integer >= 2, got 1/);
    throwsInvalid(() => stratifiedKFold(y, { folds: 2.5, seed: 1 }), /folds must be an integer >= 2, got 2.5/);
    throwsInvalid(() => stratifiedKFold(y, { folds: 5, seed: 1 }), /class 1 has only 4 rows, fewer than folds = 5/);
    throwsInvalid(() => stratifiedKFold(y, { folds: 3 }), /seed must be an integer/);
    throwsInvalid(() => stratifiedKFold(Uint8Array.from([0, 1, 2]), { folds: 2, shuffle: false }), /y\[2\] is 2; labels must be 0 or 1/);
  });
});

describe('timeSplit', () => {
  it('puts the latest rows in test', () => {
    const split = timeSplit(Float64Array.from([5, 1, 3, 3, 3, 9, 7]), { testFraction: 0.3 });
    assert.deepEqual(split, { train: Uint32Array.from([1, 2, 3, 4]), test: Uint32Array.from([0, 5, 6]), cutoff: 5 });
  });

  it('keeps equal timestamps on one side, whichever leaves the test size closer to the target', () => {
    // Target 3 test rows; the run of 2s straddles: all of it in test gives 4 rows, in train 1.
    assert.deepEqual(timeSplit(Float64Array.from([1, 2, 2, 2, 3]), { testFraction: 0.5 }), {
      train: Uint32Array.from([0]),
      test: Uint32Array.from([1, 2, 3, 4]),
      cutoff: 2,
    });
    // Target 2: run to test gives 3, to train gives 1; equally far, so test takes it.
    assert.deepEqual(timeSplit(Float64Array.from([3, 2, 1, 2]), { testFraction: 0.5 }).test, Uint32Array.from([0, 1, 3]));
    // Target 2, but the run starts at the earliest row: it must stay in train.
    assert.deepEqual(timeSplit(Float64Array.from([1, 1, 1, 2]), { testFraction: 0.5 }), {
      train: Uint32Array.from([0, 1, 2]),
      test: Uint32Array.from([3]),
      cutoff: 2,
    });
  });

  it('never puts a later timestamp in train than in test', () => {
    const random = new Random(5);
    const timestamps = new Float64Array(1000);
    for (let i = 0; i < timestamps.length; i++) timestamps[i] = 1.7e12 + random.int(40) * 86_400_000;
    for (const testFraction of [0.1, 0.2, 0.25, 0.5, 0.9]) {
      const split = timeSplit(timestamps, { testFraction });
      assertPartition(split, timestamps.length);
      let latestTrain = -Infinity;
      let earliestTest = Infinity;
      for (const i of split.train) latestTrain = Math.max(latestTrain, timestamps[i]!);
      for (const i of split.test) earliestTest = Math.min(earliestTest, timestamps[i]!);
      assert.ok(latestTrain < earliestTest, `testFraction ${testFraction}: ${latestTrain} >= ${earliestTest}`);
      assert.equal(split.cutoff, earliestTest);
      // 40 distinct days of ~25 rows: the cut lands within half a day's rows of the target.
      assert.ok(Math.abs(split.test.length - Math.ceil(testFraction * 1000)) <= 30, `test size ${split.test.length}`);
    }
  });

  it('rejects bad arguments, naming the problem', () => {
    const ts = Float64Array.from([1, 2, 3, 4]);
    for (const testFraction of [0, 1, 2, Number.NaN]) throwsInvalid(() => timeSplit(ts, { testFraction }), /testFraction must be in \(0, 1\)/);
    throwsInvalid(() => timeSplit(Float64Array.from([1]), { testFraction: 0.5 }), /needs at least 2 rows/);
    throwsInvalid(() => timeSplit(Float64Array.from([1, Number.NaN, 3]), { testFraction: 0.5 }), /timestamps\[1\] is NaN/);
    throwsInvalid(() => timeSplit(Float64Array.from([4, 4, 4]), { testFraction: 0.5 }), /all 3 rows share one timestamp/);
  });
});
