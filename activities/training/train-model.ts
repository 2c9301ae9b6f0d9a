/**
 * `trainModel` (keel-training queue): fits the configured trainer on the training rows and stores
 * its ONNX export. gbdt checkpoints its trees as artifacts and names the latest one in its
 * heartbeat, so an attempt retried after a worker crash resumes instead of starting over.
 */
import os from 'node:os';
import { Context } from '@temporalio/activity';
import type { WorkerConfig } from '../../lib/config.js';
import type { FeatureSpec } from '../../lib/data/features.js';
import { applyFeatureSpec, featureSpecFor, labelsFromColumn } from '../../lib/data/features.js';
import { selectColumns } from '../../lib/data/table.js';
import type { GbdtCheckpoint } from '../../lib/ml/gbdt/index.js';
import type { TrainerConfig } from '../../lib/schemas/training-pipeline.js';
import type { ArtifactRef, ArtifactStore } from '../../stores/artifacts/index.js';
import { runCommandTrainer } from './command-trainer.js';
import { fitBuiltIn } from './fit.js';
import { progressReporter } from './progress.js';
import type { SplitRef, TrainingSetRef } from './shared.js';
import { getJson, loadTable, putJson, splitTables } from './shared.js';

export interface TrainModelInput {
  trainingSet: TrainingSetRef;
  split: SplitRef;
  label: string;
  features: string[];
  trainer: TrainerConfig;
  seed: number;
}

export interface FeatureImportance {
  feature: string;
  importance: number;
}

export interface TrainModelResult {
  kind: TrainerConfig['kind'];
  onnx: ArtifactRef;
  featureSpec: FeatureSpec;
  /** Normalised to sum 1, highest first; null for a command trainer. */
  featureImportance: FeatureImportance[] | null;
  /** gbdt: trees grown, and how many a resumed attempt started from (0 = a fresh fit). */
  trees?: number;
  resumedFromTrees?: number;
  trainRows: number;
  elapsedMs: number;
}

/** Heartbeat details of a training attempt. */
interface TrainHeartbeat {
  /** sha256 of the latest checkpoint artifact, and the trees it holds. */
  checkpoint?: string;
  checkpointed?: number;
}

// Writing a checkpoint costs a serialisation and an upload: at most this often.
const CHECKPOINT_EVERY_MS = 3_000;

export async function trainModel(deps: { artifacts: ArtifactStore; worker: Pick<WorkerConfig, 'trainerCommands'> }, input: TrainModelInput): Promise<TrainModelResult> {
  const started = Date.now();
  const { trainer, label, features } = input;
  // Captured now: listeners and timers (e.g. the cancellation's abort listener) run outside the activity's async context.
  const context = Context.current();
  const progress = progressReporter('trainModel');
  const full = await loadTable(deps.artifacts, input.trainingSet.dataset);
  const { train } = await splitTables(deps.artifacts, input.trainingSet, input.split);
  // Category dictionaries come from the whole training set, so the test rows encode the same way.
  const featureSpec = featureSpecFor(full, features, label);

  if (trainer.kind === 'command') {
    const result = await runCommandTrainer({
      command: trainer.command,
      allowedCommands: deps.worker.trainerCommands,
      params: trainer.params,
      train: selectColumns(train, [...features, label]),
      label,
      featureNames: features,
      featureSpec,
      workDir: os.tmpdir(),
      timeoutMs: trainer.timeoutSeconds * 1000,
      signal: progress.cancellation,
      heartbeat: ({ elapsedMs }) => progress.report(0, 1, `command running for ${Math.round(elapsedMs / 1000)} s`),
      log: (line) => context.log.info(line),
    });
    const onnx = await deps.artifacts.put(result.onnx);
    return { kind: 'command', onnx, featureSpec, featureImportance: null, trainRows: train.rowCount, elapsedMs: Date.now() - started };
  }

  const x = applyFeatureSpec(train, featureSpec);
  const y = labelsFromColumn(train, label);
  const previous = progress.previous<TrainHeartbeat>();
  const checkpoint = trainer.kind === 'gbdt' && previous?.checkpoint ? await getJson<GbdtCheckpoint>(deps.artifacts, previous.checkpoint) : undefined;
  let lastCheckpointAt = Date.now();
  let checkpointRef = previous?.checkpoint;
  let checkpointed = previous?.checkpointed ?? 0;
  const model = await fitBuiltIn(trainer, x, y, input.seed, {
    checkpoint,
    onProgress: ({ done, total, message }) => {
      // A cancelled fit stops at the next tree instead of holding the worker's training slot.
      progress.cancellation.throwIfAborted();
      progress.report(done, total, message);
    },
    onCheckpoint: async (next) => {
      if (Date.now() - lastCheckpointAt < CHECKPOINT_EVERY_MS && !next.finished) return;
      checkpointRef = (await putJson(deps.artifacts, next)).sha256;
      checkpointed = next.trees.length;
      lastCheckpointAt = Date.now();
      progress.report(checkpointed, Number(next.params.maxIter), 'checkpoint stored', { checkpoint: checkpointRef, checkpointed });
    },
  });
  const onnx = await deps.artifacts.put(model.toOnnx());
  const importance = model.featureImportance();
  const total = importance.reduce((sum, value) => sum + value, 0) || 1;
  const featureImportance = model.featureNames
    .map((feature, i) => ({ feature, importance: importance[i]! / total }))
    .sort((a, b) => b.importance - a.importance || (a.feature < b.feature ? -1 : 1));
  const trees = model.kind === 'gbdt' ? (model.toJSON() as { trees: unknown[] }).trees.length : undefined;
  return {
    kind: trainer.kind,
    onnx,
    featureSpec,
    featureImportance,
    ...(trees === undefined ? {} : { trees, resumedFromTrees: checkpoint?.trees.length ?? 0 }),
    trainRows: train.rowCount,
    elapsedMs: Date.now() - started,
  };
}
