/**
 * The training pipeline's activities, bound to a worker's stores. Light I/O steps run on the
 * `keel` queue, CPU-heavy ones (trainModel, evaluateModel, crossValidate) on `keel-training`;
 * every worker registers all of them and the workflow picks the queue.
 */
import type { WorkerConfig } from '../../lib/config.js';
import type { OnDemandFeature } from '../../lib/features/on-demand.js';
import type { ArtifactStore } from '../../stores/artifacts/index.js';
import type { S3Access } from '../../stores/data-files.js';
import type { Db } from '../../stores/db.js';
import type { BuildTrainingSetInput } from './build-training-set.js';
import { buildTrainingSet } from './build-training-set.js';
import type { CrossValidateInput } from './cross-validate.js';
import { crossValidate } from './cross-validate.js';
import type { EvaluateModelInput } from './evaluate-model.js';
import { evaluateModel } from './evaluate-model.js';
import type { RegisterModelInput } from './register-model.js';
import { registerModel } from './register-model.js';
import type { SplitDataInput } from './split-data.js';
import { splitData } from './split-data.js';
import type { TrainModelInput } from './train-model.js';
import { trainModel } from './train-model.js';
import type { ValidateDataInput } from './validate-data.js';
import { validateData } from './validate-data.js';

export interface TrainingDeps {
  db: Db;
  artifacts: ArtifactStore;
  s3?: S3Access;
  onDemand?: readonly OnDemandFeature[];
  duckdbAutoMinRows?: number;
  /** What this worker's operator allows: trainer commands, data folders and schemas. */
  worker: WorkerConfig;
}

export function createTrainingActivities(deps: TrainingDeps) {
  // Keel's errors leave as non-retryable failures naming the field: createActivities wraps every activity (../keel-failures.ts).
  return {
    buildTrainingSet: (input: BuildTrainingSetInput) => buildTrainingSet(deps, input),
    validateData: (input: ValidateDataInput) => validateData(deps, input),
    splitData: (input: SplitDataInput) => splitData(deps, input),
    trainModel: (input: TrainModelInput) => trainModel(deps, input),
    evaluateModel: (input: EvaluateModelInput) => evaluateModel(deps, input),
    crossValidate: (input: CrossValidateInput) => crossValidate(deps, input),
    registerModel: (input: RegisterModelInput) => registerModel(deps, input),
  };
}

export type TrainingActivities = ReturnType<typeof createTrainingActivities>;
export type { TrainingSetRef, SplitRef } from './shared.js';
export type { TrainModelResult, FeatureImportance } from './train-model.js';
export type { EvaluateModelResult, ChampionEvaluation } from './evaluate-model.js';
export type { RegisterModelResult } from './register-model.js';
export type { ValidateDataResult } from './validate-data.js';
