/**
 * `validateData`: checks the training set (and holdout) against the pipeline's expectations,
 * reporting every failure at once, then stores the data profile — the drift baseline — and
 * records the dataset in the registry's `datasets` table.
 */
import type { Expectations } from '../../lib/data/expectations.js';
import { validateTable, validationError } from '../../lib/data/expectations.js';
import { defaultFeatureColumns, labelsFromColumn } from '../../lib/data/features.js';
import { profileTable } from '../../lib/data/profile.js';
import type { ColumnType } from '../../lib/data/table.js';
import { columnNames, findColumn, selectColumns } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { TrainingPipelineConfig } from '../../lib/schemas/training-pipeline.js';
import type { ArtifactRef, ArtifactStore } from '../../stores/artifacts/index.js';
import type { Db } from '../../stores/db.js';
import { recordDataset } from '../../stores/registry.js';
import type { RecordedSource } from './build-training-set.js';
import type { TrainingSetRef } from './shared.js';
import { loadTable, putJson } from './shared.js';

export interface ValidateDataInput {
  trainingSet: TrainingSetRef;
  label: string;
  features?: string[];
  trainer: TrainingPipelineConfig['trainer']['kind'];
  validation: TrainingPipelineConfig['validation'];
}

export interface ValidateDataResult {
  /** Feature columns in model order. */
  features: string[];
  rows: number;
  positives: number;
  profile: ArtifactRef;
  checked: number;
  summary: string;
}

const FEATURE_TYPES: ColumnType[] = ['number', 'boolean', 'category', 'timestamp'];

export async function validateData(deps: { db: Db; artifacts: ArtifactStore }, input: ValidateDataInput): Promise<ValidateDataResult> {
  const { trainingSet, label, validation } = input;
  const table = await loadTable(deps.artifacts, trainingSet.dataset);
  const entityKeys = trainingSet.entityKeys.filter((key) => findColumn(table, key));
  const features = input.features ?? defaultFeatureColumns(table, { label, entityKeys: [...entityKeys, ...(trainingSet.timestampColumn ? [trainingSet.timestampColumn] : [])] });
  if (features.length === 0) {
    throw new InvalidInput(`no feature columns: the data has only ${columnNames(table).join(', ')} (label ${label})`, 'features');
  }
  if (features.includes(label)) throw new InvalidInput(`the label ${label} cannot also be a feature`, 'features');
  // The built-in gbdt routes missing values as HistGradientBoosting does; a command trainer gets them as they are.
  const allowMissing = input.trainer !== 'logreg' || validation.impute;
  const expectations: Expectations = {
    label,
    labelRate: validation.labelRate,
    minRows: validation.minRows,
    features,
    allowMissing,
    columns: Object.fromEntries(features.map((f) => [f, FEATURE_TYPES])),
    ranges: validation.ranges,
    categories: validation.categories,
    ...(entityKeys.length ? { entityKeys: trainingSet.timestampColumn ? [...entityKeys, trainingSet.timestampColumn] : entityKeys } : {}),
  };
  const result = validateTable(table, expectations);
  if (!result.ok) throw validationError(result);
  if (trainingSet.holdout) {
    const holdout = await loadTable(deps.artifacts, trainingSet.holdout);
    const holdoutResult = validateTable(holdout, { ...expectations, minRows: 1, entityKeys: undefined });
    if (!holdoutResult.ok) {
      const error = validationError(holdoutResult);
      throw new InvalidInput(`holdout ${error.message}`, error.field);
    }
  }
  const profile = await putJson(deps.artifacts, profileTable(selectColumns(table, [...features, label])));
  const recorded: RecordedSource = { source: trainingSet.source, entityKeys: trainingSet.entityKeys, timestampColumn: trainingSet.timestampColumn };
  await recordDataset(deps.db, {
    sha256: trainingSet.dataset.sha256,
    uri: trainingSet.dataset.uri,
    sizeBytes: trainingSet.dataset.size,
    rowCount: table.rowCount,
    columns: trainingSet.columns,
    source: recorded,
    profileUri: profile.uri,
    profileSha256: profile.sha256,
  });
  return { features, rows: table.rowCount, positives: labelsFromColumn(table, label).reduce((sum, y) => sum + y, 0), profile, checked: result.checked, summary: result.summary };
}
