/**
 * `evaluateModel` (keel-training queue): scores the candidate's ONNX export with onnxruntime on
 * the test rows — the bytes that will be served, whatever trained them — and the current
 * champion on the same rows, so gates compare like with like.
 */
import type { FeatureSpec } from '../../lib/data/features.js';
import { applyFeatureSpec, labelsFromColumn } from '../../lib/data/features.js';
import type { Table } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import { binaryMetrics } from '../../lib/ml/metrics.js';
import { loadOnnxScorer } from '../../lib/onnx/scorer.js';
import type { EvaluationMetrics } from '../../lib/pipeline/metrics.js';
import type { ArtifactRef, ArtifactStore } from '../../stores/artifacts/index.js';
import type { Db } from '../../stores/db.js';
import { aliasVersion, getModelVersion } from '../../stores/registry.js';
import type { SplitRef, TrainingSetRef } from './shared.js';
import { splitTables } from './shared.js';

export interface EvaluateModelInput {
  model: string;
  trainingSet: TrainingSetRef;
  split: SplitRef;
  label: string;
  onnx: ArtifactRef;
  featureSpec: FeatureSpec;
  threshold: number;
}

export interface ChampionEvaluation {
  version: number;
  metrics: EvaluationMetrics | null;
  /** Why the champion could not be scored on this holdout (e.g. it needs columns the data lacks). */
  note?: string;
}

export interface EvaluateModelResult {
  test: EvaluationMetrics;
  champion: ChampionEvaluation | null;
}

export async function evaluateModel(deps: { db: Db; artifacts: ArtifactStore }, input: EvaluateModelInput): Promise<EvaluateModelResult> {
  const { test } = await splitTables(deps.artifacts, input.trainingSet, input.split);
  const metrics = await scoreOnnx(await deps.artifacts.getBytes(input.onnx.sha256), input.featureSpec, test, input.label, input.threshold);
  return { test: metrics, champion: await evaluateChampion(deps, input, test) };
}

async function evaluateChampion(deps: { db: Db; artifacts: ArtifactStore }, input: EvaluateModelInput, test: Table): Promise<ChampionEvaluation | null> {
  const version = await aliasVersion(deps.db, input.model, 'champion');
  if (version === undefined) return null;
  const champion = await getModelVersion(deps.db, input.model, version);
  try {
    const bytes = await deps.artifacts.getBytes(champion.onnxSha256);
    return { version, metrics: await scoreOnnx(bytes, champion.featureSpec as FeatureSpec, test, input.label, input.threshold) };
  } catch (error) {
    if (error instanceof InvalidInput) return { version, metrics: null, note: `champion v${version} cannot score this holdout: ${error.message}` };
    throw error;
  }
}

export async function scoreOnnx(onnx: Uint8Array, spec: FeatureSpec, table: Table, label: string, threshold: number): Promise<EvaluationMetrics> {
  const x = applyFeatureSpec(table, spec);
  const scorer = await loadOnnxScorer(onnx, x.names);
  try {
    return toEvaluationMetrics(binaryMetrics(labelsFromColumn(table, label), await scorer.predictProba(x), threshold));
  } finally {
    await scorer.release();
  }
}

export function toEvaluationMetrics(m: ReturnType<typeof binaryMetrics>): EvaluationMetrics {
  return {
    n: m.n,
    positives: m.positives,
    threshold: m.threshold,
    auc: m.rocAuc,
    averagePrecision: m.averagePrecision,
    logLoss: m.logLoss,
    brier: m.brierScore,
    accuracy: m.accuracy,
    precision: m.precision,
    recall: m.recall,
    f1: m.f1,
    confusionMatrix: m.confusionMatrix,
    calibration: m.calibration.uniform,
  };
}
