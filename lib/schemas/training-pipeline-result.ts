/**
 * What `trainingPipeline` answers: its result, its `progress` query and the `trainerProgress`
 * signal the training activities send it. Workflow-safe; clients import the same definitions.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { GateResult } from '../pipeline/gates.js';
import type { CvMetrics, EvaluationMetrics } from '../pipeline/metrics.js';

export const PIPELINE_STEPS = [
  'validateInput',
  'buildTrainingSet',
  'validateData',
  'splitData',
  'trainModel',
  'evaluateModel',
  'crossValidate',
  'gates',
  'registerModel',
] as const;
export type PipelineStep = (typeof PIPELINE_STEPS)[number];

export interface Ref {
  uri: string;
  sha256: string;
  size: number;
}

export interface TrainerProgressUpdate {
  step: string;
  done: number;
  total: number;
  message?: string;
  /** Trees (gbdt) saved in the latest checkpoint: where a retried attempt would resume. */
  checkpointed?: number;
}

export interface TrainingPipelineProgress {
  workflowId: string;
  model: string;
  /** The step running now, `done` at the end, `failed` after a failure. */
  step: PipelineStep | 'done' | 'failed';
  steps: Array<{ name: PipelineStep; status: 'pending' | 'running' | 'done' | 'skipped' | 'failed'; startedAt?: string; finishedAt?: string }>;
  /** The latest report of the running trainer (trees / folds done), null between training steps. */
  trainer: TrainerProgressUpdate | null;
}

export interface TrainingPipelineResult {
  workflowId: string;
  runId: string;
  model: string;
  registered: boolean;
  version: number | null;
  aliases: string[];
  trainer: string;
  /** sha256 of the training set (Parquet) the model was trained on. */
  dataHash: string;
  dataset: { uri: string; sha256: string; rows: number };
  profile: Ref;
  split: { kind: 'index' | 'holdout'; trainRows: number; testRows: number };
  features: string[];
  metrics: {
    test: EvaluationMetrics;
    cv: CvMetrics | null;
    champion: { version: number; metrics: EvaluationMetrics | null; note?: string } | null;
  };
  gates: GateResult[];
  /** Names of the gates that failed (empty when registered). */
  failedGates: string[];
  featureImportance: Array<{ feature: string; importance: number }> | null;
  /** The training step: rows, time, and for gbdt the trees grown and how many a resumed attempt started from. */
  training: { trainRows: number; elapsedMs: number; trees?: number; resumedFromTrees?: number };
  onnx: Ref;
  bundle: Ref | null;
}

export const progressQuery = defineQuery<TrainingPipelineProgress>('progress');
export const trainerProgressSignal = defineSignal<[TrainerProgressUpdate]>('trainerProgress');
