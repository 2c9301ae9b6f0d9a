/**
 * `splitData`: seeded stratified or time-based train/test split of the training set, stored as
 * two row-index artifacts. With an explicit holdout the whole set trains and the holdout tests.
 */
import { labelsFromColumn } from '../../lib/data/features.js';
import { getColumn } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { TrainTestIndex } from '../../lib/ml/split.js';
import { stratifiedTrainTestSplit, timeSplit } from '../../lib/ml/split.js';
import type { SplitConfig } from '../../lib/schemas/training-pipeline.js';
import type { ArtifactStore } from '../../stores/artifacts/index.js';
import type { SplitRef, TrainingSetRef } from './shared.js';
import { loadTable, putIndex } from './shared.js';

export interface SplitDataInput {
  trainingSet: TrainingSetRef;
  label: string;
  split: SplitConfig;
  seed: number;
}

export async function splitData(deps: { artifacts: ArtifactStore }, input: SplitDataInput): Promise<SplitRef> {
  const { trainingSet, split } = input;
  if (trainingSet.holdout) return { kind: 'holdout', trainRows: trainingSet.rows, testRows: trainingSet.holdoutRows };
  const table = await loadTable(deps.artifacts, trainingSet.dataset);
  let index: TrainTestIndex;
  if (split.kind === 'stratified') {
    index = stratifiedTrainTestSplit(labelsFromColumn(table, input.label), { testFraction: split.testFraction, seed: input.seed });
  } else {
    const column = getColumn(table, split.column);
    if (column.type !== 'timestamp' && column.type !== 'number') {
      throw new InvalidInput(`split.column ${split.column} is ${column.type}; a time split needs a timestamp or number column`, 'split.column');
    }
    index = timeSplit(column.values, { testFraction: split.testFraction });
  }
  const [train, test] = await Promise.all([putIndex(deps.artifacts, index.train), putIndex(deps.artifacts, index.test)]);
  return { kind: 'index', train, test, trainRows: index.train.length, testRows: index.test.length };
}
