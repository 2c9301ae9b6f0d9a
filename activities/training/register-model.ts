/**
 * `registerModel`: stores the model bundle content-addressed (model.onnx, signature.json,
 * feature_spec.json, metrics.json, lineage.json, and bundle.json listing them) and adds the
 * registry version with alias `candidate`. Idempotent per workflow run (a retry or replay gets
 * the same version back) and per bundle: training the same data and config again, in another
 * workflow, answers the version already registered, with its aliases unchanged. Everything in
 * the bundle is deterministic for the same data and config, so reproducing a version from its
 * lineage gives the same bundle sha256 (and so that version); who ran it,
 * when and in which workflow live in the registry row.
 */
import { Context } from '@temporalio/activity';
import type { FeatureSpec } from '../../lib/data/features.js';
import { signatureFor } from '../../lib/ml/signature.js';
import type { GateResult } from '../../lib/pipeline/gates.js';
import type { CvMetrics, EvaluationMetrics } from '../../lib/pipeline/metrics.js';
import type { TrainingPipelineConfig } from '../../lib/schemas/training-pipeline.js';
import type { ArtifactRef, ArtifactStore } from '../../stores/artifacts/index.js';
import type { Db } from '../../stores/db.js';
import { getModelVersion, registerModelVersion } from '../../stores/registry.js';
import { codeVersion } from './code-version.js';
import type { ChampionEvaluation } from './evaluate-model.js';
import type { FeatureImportance } from './train-model.js';
import type { SplitRef, TrainingSetRef } from './shared.js';
import { putJson } from './shared.js';

export interface RegisterModelInput {
  config: TrainingPipelineConfig;
  trainingSet: TrainingSetRef;
  split: SplitRef;
  profile: ArtifactRef;
  features: string[];
  onnx: ArtifactRef;
  featureSpec: FeatureSpec;
  featureImportance: FeatureImportance[] | null;
  metrics: { test: EvaluationMetrics; cv: CvMetrics | null };
  champion: ChampionEvaluation | null;
  gates: GateResult[];
}

export interface RegisterModelResult {
  model: string;
  version: number;
  /** False when the version existed already (a retried activity, a replayed workflow, or the same bundle trained before). */
  created: boolean;
  bundle: ArtifactRef;
  aliases: string[];
}

export const BUNDLE_FORMAT = 'keel-model-bundle';

export interface ModelBundleFiles {
  onnx: ArtifactRef;
  signature: unknown;
  featureSpec: unknown;
  metrics: unknown;
  lineage: unknown;
}

/**
 * Stores a bundle's JSON files and `bundle.json` (their manifest: name → sha256, size), all
 * content-addressed with canonical JSON, so the same content always gives the same bundle sha256.
 */
export async function storeModelBundle(
  artifacts: ArtifactStore,
  contents: ModelBundleFiles,
): Promise<{ bundle: ArtifactRef; files: Array<[string, ArtifactRef]> }> {
  const files: Array<[string, ArtifactRef]> = [
    ['model.onnx', contents.onnx],
    ['signature.json', await putJson(artifacts, contents.signature)],
    ['feature_spec.json', await putJson(artifacts, contents.featureSpec)],
    ['metrics.json', await putJson(artifacts, contents.metrics)],
    ['lineage.json', await putJson(artifacts, contents.lineage)],
  ];
  const bundle = await putJson(artifacts, {
    format: BUNDLE_FORMAT,
    version: 1,
    files: Object.fromEntries(files.map(([name, ref]) => [name, { sha256: ref.sha256, size: ref.size }])),
  });
  return { bundle, files };
}

export async function registerModel(deps: { db: Db; artifacts: ArtifactStore }, input: RegisterModelInput): Promise<RegisterModelResult> {
  const execution = Context.current().info.workflowExecution;
  if (!execution) throw new Error('registerModel runs only inside a workflow');
  const { config, trainingSet } = input;
  const signature = signatureFor(config.trainer.kind, input.features);
  // What serving needs besides the encoding: the views to read online and the on-demand functions (with code hashes) to run.
  const featureSpec = {
    ...input.featureSpec,
    featureViews: trainingSet.source.kind === 'features' ? trainingSet.source.featureViews : [],
    onDemand: trainingSet.source.kind === 'features' ? trainingSet.source.onDemand : [],
  };
  const lineage = {
    format: 'keel-lineage',
    version: 1,
    model: config.model,
    dataset: { uri: trainingSet.dataset.uri, sha256: trainingSet.dataset.sha256, rows: trainingSet.rows },
    holdout: trainingSet.holdout ? { uri: trainingSet.holdout.uri, sha256: trainingSet.holdout.sha256, rows: trainingSet.holdoutRows } : null,
    profile: { uri: input.profile.uri, sha256: input.profile.sha256 },
    source: trainingSet.source,
    featureViews: trainingSet.source.kind === 'features' ? trainingSet.source.featureViews : [],
    label: config.label,
    features: input.features,
    entityKeys: trainingSet.entityKeys,
    trainer: config.trainer,
    split: config.split,
    splitRows: { train: input.split.trainRows, test: input.split.testRows },
    cvFolds: config.cvFolds,
    seed: config.seed,
    threshold: config.threshold,
    codeVersion: codeVersion(),
  };
  const { bundle, files } = await storeModelBundle(deps.artifacts, {
    onnx: input.onnx,
    signature,
    featureSpec,
    metrics: { ...input.metrics, featureImportance: input.featureImportance },
    lineage,
  });
  const runLineage = {
    ...lineage,
    workflowId: execution.workflowId,
    runId: execution.runId,
    requestedBy: config.requestedBy,
    config,
    bundle: Object.fromEntries(files.map(([name, ref]) => [name, ref])),
  };
  const aliases = ['candidate'];
  const { version, created } = await registerModelVersion(
    deps.db,
    {
      model: config.model,
      bundleUri: bundle.uri,
      bundleSha256: bundle.sha256,
      onnxSha256: input.onnx.sha256,
      trainer: config.trainer.kind,
      metrics: { ...input.metrics, champion: input.champion, featureImportance: input.featureImportance },
      gates: input.gates,
      signature,
      featureSpec,
      lineage: runLineage,
      dataHash: trainingSet.dataset.sha256,
      trainingWorkflowId: execution.workflowId,
      trainingRunId: execution.runId,
      codeVersion: lineage.codeVersion,
      createdBy: config.requestedBy,
    },
    aliases,
  );
  // A version registered before (same bundle) keeps its aliases as they are now: answer those.
  const current = created ? aliases : (await getModelVersion(deps.db, config.model, version)).aliases;
  return { model: config.model, version, created, bundle, aliases: current };
}
