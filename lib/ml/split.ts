/**
 * Seeded, deterministic train / test splits and folds. Per-class counts follow scikit-learn 1.2.1
 * exactly (StratifiedShuffleSplit, StratifiedKFold); which rows land where comes from `Random`, so
 * it is reproducible here but not equal to numpy's draws. Index arrays are ascending row numbers.
 */
import { InvalidInput } from '../errors.js';
import { Random } from './random.js';
import type { Labels } from './types.js';

export interface TrainTestIndex {
  train: Uint32Array;
  test: Uint32Array;
}

export interface TimeSplit extends TrainTestIndex {
  /** Earliest test timestamp: every train row is strictly earlier, every test row at or after it. */
  cutoff: number;
}

// ---- validation -------------------------------------------------------------------------------

/** Row count of each label, [zeros, ones]; rejects empty input and labels other than 0/1. */
function countClasses(what: string, y: Labels): [number, number] {
  if (y.length === 0) throw new InvalidInput(`${what}: y is empty`, 'y');
  const counts: [number, number] = [0, 0];
  for (let i = 0; i < y.length; i++) {
    const label = y[i]!;
    if (label > 1) throw new InvalidInput(`${what}: y[${i}] is ${label}; labels must be 0 or 1`, 'y');
    counts[label]!++;
  }
  return counts;
}

function checkFraction(what: string, testFraction: number): void {
  if (typeof testFraction !== 'number' || !(testFraction > 0 && testFraction < 1)) {
    throw new InvalidInput(`${what}: testFraction must be in (0, 1), got ${String(testFraction)}`, 'testFraction');
  }
}

function checkSeed(what: string, seed: number | undefined): number {
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) {
    throw new InvalidInput(`${what}: seed must be an integer, got ${String(seed)}`, 'seed');
  }
  return seed;
}

/** sklearn's test size for a float test_size: ceil(testFraction × n), the rest for training. */
function testSize(what: string, n: number, testFraction: number): number {
  const nTest = Math.ceil(testFraction * n);
  if (nTest >= n) {
    throw new InvalidInput(`${what}: testFraction ${testFraction} of ${n} rows leaves no training rows`, 'testFraction');
  }
  return nTest;
}

/** Rows where `inTest` is 1 go to test, the others to train, both ascending. */
function partition(inTest: Uint8Array, testCount: number): TrainTestIndex {
  const train = new Uint32Array(inTest.length - testCount);
  const test = new Uint32Array(testCount);
  let a = 0;
  let b = 0;
  for (let i = 0; i < inTest.length; i++) {
    if (inTest[i]) test[b++] = i;
    else train[a++] = i;
  }
  return { train, test };
}

// ---- stratified train / test ------------------------------------------------------------------

/**
 * sklearn's _approximate_mode: each class gets floor(count / total × draws), and the draws left over
 * go to the largest remainders; equal remainders are broken at random (as sklearn does, with its rng).
 */
function approximateMode(counts: number[], draws: number, random: Random): number[] {
  let total = 0;
  for (const c of counts) total += c;
  const continuous = counts.map((c) => (c / total) * draws);
  const taken = continuous.map(Math.floor);
  let needed = draws - taken.reduce((s, v) => s + v, 0);
  const remainders = continuous.map((v, k) => v - taken[k]!);
  const distinct = [...new Set(remainders)].sort((a, b) => b - a);
  for (const value of distinct) {
    if (needed <= 0) break;
    const tied = remainders.flatMap((r, k) => (r === value ? [k] : []));
    if (tied.length > needed) random.shuffle(tied);
    for (const k of tied.slice(0, needed)) taken[k]!++;
    needed -= Math.min(tied.length, needed);
  }
  return taken;
}

/**
 * A stratified train / test split with sklearn StratifiedShuffleSplit's per-class counts: the test
 * set has ceil(testFraction × n) rows, and each class contributes in proportion (sklearn's
 * _approximate_mode), so class shares match the full data as closely as whole rows allow.
 */
export function stratifiedTrainTestSplit(y: Labels, options: { testFraction: number; seed: number }): TrainTestIndex {
  const what = 'stratifiedTrainTestSplit';
  const counts = countClasses(what, y);
  checkFraction(what, options.testFraction);
  const seed = checkSeed(what, options.seed);
  const n = y.length;
  const nTest = testSize(what, n, options.testFraction);
  const nTrain = n - nTest;
  const present = [0, 1].filter((label) => counts[label]! > 0);
  for (const label of present) {
    if (counts[label]! < 2) {
      throw new InvalidInput(`${what}: class ${label} has only 1 row; each class needs at least 2 to stratify`, 'y');
    }
  }
  if (nTrain < present.length || nTest < present.length) {
    const side = nTrain < present.length ? `train size ${nTrain}` : `test size ${nTest}`;
    throw new InvalidInput(`${what}: ${side} is smaller than the number of classes (${present.length})`, 'testFraction');
  }
  const random = new Random(seed);
  const presentCounts = present.map((label) => counts[label]!);
  const trainCounts = approximateMode(presentCounts, nTrain, random);
  // Mirrors sklearn's second draw; with the default train size it is always "the rest of each class".
  const testCounts = approximateMode(
    presentCounts.map((c, k) => c - trainCounts[k]!),
    nTest,
    random,
  );
  const inTest = new Uint8Array(n);
  for (let k = 0; k < present.length; k++) {
    const label = present[k]!;
    const rows = new Uint32Array(presentCounts[k]!);
    let m = 0;
    for (let i = 0; i < n; i++) if (y[i] === label) rows[m++] = i;
    random.shuffle(rows);
    const end = trainCounts[k]! + testCounts[k]!;
    for (let j = trainCounts[k]!; j < end; j++) inTest[rows[j]!] = 1;
  }
  return partition(inTest, nTest);
}

// ---- stratified k-fold ------------------------------------------------------------------------

/**
 * The test fold of every row, as sklearn's StratifiedKFold assigns it: classes are numbered in
 * order of first appearance, fold class counts come from dealing the class-sorted labels round-robin,
 * and each class's rows get their folds in blocks (0, 0, 1, 1, …) in row order — exactly sklearn's
 * assignment when `shuffle` is false; with `shuffle` (the default) each class's blocks are shuffled
 * with `seed`, keeping the counts.
 */
export function stratifiedFoldOfRow(y: Labels, options: { folds: number; shuffle?: boolean; seed?: number }): Uint32Array {
  const what = 'stratifiedKFold';
  const counts = countClasses(what, y);
  const { folds } = options;
  const shuffle = options.shuffle ?? true;
  if (typeof folds !== 'number' || !Number.isInteger(folds) || folds < 2) {
    throw new InvalidInput(`${what}: folds must be an integer >= 2, got ${String(folds)}`, 'folds');
  }
  const random = shuffle ? new Random(checkSeed(what, options.seed)) : undefined;
  const n = y.length;
  // Classes in order of first appearance, like sklearn's encoding.
  const appearance = y[0] === 1 ? [1, 0] : [0, 1];
  const present = appearance.filter((label) => counts[label]! > 0);
  for (const label of present) {
    if (counts[label]! < folds) {
      throw new InvalidInput(`${what}: class ${label} has only ${counts[label]} rows, fewer than folds = ${folds}`, 'y');
    }
  }
  const foldOfRow = new Uint32Array(n);
  let offset = 0;
  for (const label of present) {
    const count = counts[label]!;
    // Round robin over the class-sorted labels: position j (from `offset`) goes to fold j % folds.
    const foldsForClass = new Uint32Array(count);
    const perFold = new Uint32Array(folds);
    for (let j = 0; j < count; j++) perFold[(offset + j) % folds]!++;
    let m = 0;
    for (let fold = 0; fold < folds; fold++) for (let c = 0; c < perFold[fold]!; c++) foldsForClass[m++] = fold;
    if (random) random.shuffle(foldsForClass);
    m = 0;
    for (let i = 0; i < n; i++) if (y[i] === label) foldOfRow[i] = foldsForClass[m++]!;
    offset += count;
  }
  return foldOfRow;
}

/**
 * Stratified k-fold cross-validation: `folds` train / test pairs whose test sets partition the rows
 * with sklearn StratifiedKFold's per-fold class counts. `seed` is required when `shuffle` is true
 * (the default) and unused otherwise.
 */
export function stratifiedKFold(y: Labels, options: { folds: number; shuffle?: boolean; seed?: number }): TrainTestIndex[] {
  const foldOfRow = stratifiedFoldOfRow(y, options);
  const sizes = new Uint32Array(options.folds);
  for (let i = 0; i < foldOfRow.length; i++) sizes[foldOfRow[i]!]!++;
  const result: TrainTestIndex[] = [];
  for (let fold = 0; fold < options.folds; fold++) {
    const inTest = new Uint8Array(foldOfRow.length);
    for (let i = 0; i < foldOfRow.length; i++) if (foldOfRow[i] === fold) inTest[i] = 1;
    result.push(partition(inTest, sizes[fold]!));
  }
  return result;
}

// ---- time split -------------------------------------------------------------------------------

/**
 * Out-of-time split: the latest rows are the test set, the earliest the training set, aiming at
 * ceil(testFraction × n) test rows. Rows sharing a timestamp never straddle the boundary: if the
 * target cut falls inside a run of equal timestamps, the whole run goes to whichever side leaves the
 * test size closer to the target (to test on a tie), provided both sides stay non-empty. Fails if all
 * rows share one timestamp.
 */
export function timeSplit(timestamps: Float64Array, options: { testFraction: number }): TimeSplit {
  const what = 'timeSplit';
  const n = timestamps.length;
  checkFraction(what, options.testFraction);
  if (n < 2) throw new InvalidInput(`${what}: needs at least 2 rows, got ${n}`, 'timestamps');
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(timestamps[i]!)) {
      throw new InvalidInput(`${what}: timestamps[${i}] is ${timestamps[i]}; timestamps must be finite`, 'timestamps');
    }
  }
  const target = testSize(what, n, options.testFraction);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => timestamps[a]! - timestamps[b]!);
  const at = (position: number) => timestamps[order[position]!]!;
  // `cut` = position (in time order) of the first test row.
  let cut = n - target;
  if (at(cut - 1) === at(cut)) {
    const boundary = at(cut);
    let runStart = cut;
    while (runStart > 0 && at(runStart - 1) === boundary) runStart--;
    let runEnd = cut;
    while (runEnd < n && at(runEnd) === boundary) runEnd++;
    const runToTest = runStart > 0;
    const runToTrain = runEnd < n;
    if (!runToTest && !runToTrain) {
      throw new InvalidInput(`${what}: all ${n} rows share one timestamp (${boundary}); cannot split by time`, 'timestamps');
    }
    // Test sizes: n - runStart (run in test) or n - runEnd (run in train).
    const testMiss = n - runStart - target;
    const trainMiss = target - (n - runEnd);
    cut = runToTest && (!runToTrain || testMiss <= trainMiss) ? runStart : runEnd;
  }
  const inTest = new Uint8Array(n);
  for (let k = cut; k < n; k++) inTest[order[k]!] = 1;
  return { ...partition(inTest, n - cut), cutoff: at(cut) };
}
