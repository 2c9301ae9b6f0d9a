/**
 * `crossValidate` (keel-training queue): seeded stratified k-fold on the training rows with the
 * same trainer. Each finished fold's AUC goes into the heartbeat, so a retried attempt skips the
 * folds already done.
 */
import os from 'node:os';
import { Context } from '@temporalio/activity';
import type { WorkerConfig } from '../../lib/config.js';
import type { FeatureSpec } from '../../lib/data/features.js';
import { applyFeatureSpec, labelsFromColumn } from '../../lib/data/features.js';
import { selectColumns, takeTableRows } from '../../lib/data/table.js';
import { rocAuc } from '../../lib/ml/metrics.js';
import { stratifiedKFold } from '../../lib/ml/split.js';
import { takeLabels, takeRows } from '../../lib/ml/types.js';
import { loadOnnxScorer } from '../../lib/onnx/scorer.js';
import type { CvMetrics } from '../../lib/pipeline/metrics.js';
import { cvSummary } from '../../lib/pipeline/metrics.js';
import type { TrainerConfig } from '../../lib/schemas/training-pipeline.js';
import type { ArtifactStore } from '../../stores/artifacts/index.js';
import { runCommandTrainer } from './command-trainer.js';
import { fitBuiltIn } from './fit.js';
import { progressReporter } from './progress.js';
import type { SplitRef, TrainingSetRef } from './shared.js';
import { splitTables } from './shared.js';

export interface CrossValidateInput {
  trainingSet: TrainingSetRef;
  split: SplitRef;
  label: string;
  featureSpec: FeatureSpec;
  trainer: TrainerConfig;
  folds: number;
  seed: number;
}

export async function crossValidate(deps: { artifacts: ArtifactStore; worker: Pick<WorkerConfig, 'trainerCommands'> }, input: CrossValidateInput): Promise<CvMetrics> {
  const { trainer, featureSpec, label, folds } = input;
  // Captured now: listeners and timers (e.g. the cancellation's abort listener) run outside the activity's async context.
  const context = Context.current();
  const progress = progressReporter('crossValidate');
  const { train } = await splitTables(deps.artifacts, input.trainingSet, input.split);
  const x = applyFeatureSpec(train, featureSpec);
  const y = labelsFromColumn(train, label);
  const aucs = [...(progress.previous<{ aucs?: number[] }>()?.aucs ?? [])];
  const splits = stratifiedKFold(y, { folds, shuffle: true, seed: input.seed });
  progress.report(aucs.length, folds, `fold ${aucs.length + 1} of ${folds}`, { aucs });
  for (let k = aucs.length; k < splits.length; k++) {
    const fold = splits[k]!;
    const yTest = takeLabels(y, fold.test);
    let p: Float64Array;
    if (trainer.kind === 'command') {
      const names = featureSpec.features.map((f) => f.name);
      const result = await runCommandTrainer({
        command: trainer.command,
        allowedCommands: deps.worker.trainerCommands,
        params: trainer.params,
        train: selectColumns(takeTableRows(train, fold.train), [...names, label]),
        label,
        featureNames: names,
        featureSpec,
        workDir: os.tmpdir(),
        timeoutMs: trainer.timeoutSeconds * 1000,
        signal: progress.cancellation,
        heartbeat: () => progress.report(k, folds, `fold ${k + 1} of ${folds}: command running`),
        log: (line) => context.log.info(line),
      });
      const scorer = await loadOnnxScorer(result.onnx, names);
      try {
        p = await scorer.predictProba(takeRows(x, fold.test));
      } finally {
        await scorer.release();
      }
    } else {
      const model = await fitBuiltIn(trainer, takeRows(x, fold.train), takeLabels(y, fold.train), input.seed, {
        onProgress: ({ done, total }) => {
          progress.cancellation.throwIfAborted();
          progress.report(k, folds, `fold ${k + 1} of ${folds}: ${done}/${total}`);
        },
      });
      p = model.predictProba(takeRows(x, fold.test));
    }
    aucs.push(rocAuc(yTest, p));
    progress.report(aucs.length, folds, `fold ${k + 1} of ${folds} done`, { aucs });
  }
  return cvSummary(aucs);
}
