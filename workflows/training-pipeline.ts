/**
 * `trainingPipeline`: build the training set → validate it (profile = drift baseline) → split →
 * train (keel-training, heartbeats, resumable) → evaluate with the champion on the same holdout →
 * cross-validate → gates (here, pure) → register with alias `candidate` when every gate passes.
 * A failed gate is an answer (`registered: false` with the gate table), bad input a
 * non-retryable `InvalidInput` failure naming the problem.
 */
import {
  ApplicationFailure,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ActivityOptions } from '@temporalio/workflow';
import type { TrainingActivities } from '../activities/training/index.js';
import { KeelError } from '../lib/errors.js';
import { allGatesPassed, evaluateGates } from '../lib/pipeline/gates.js';
import type { CvMetrics } from '../lib/pipeline/metrics.js';
import { checkTrainerParams } from '../lib/pipeline/trainer-params.js';
import type { PipelineStep, TrainingPipelineProgress, TrainingPipelineResult } from '../lib/schemas/training-pipeline-result.js';
import { PIPELINE_STEPS, progressQuery, trainerProgressSignal } from '../lib/schemas/training-pipeline-result.js';
import type { RetryWindow } from '../lib/schemas/retry.js';
import { trainingPipelineInputSchema } from '../lib/schemas/training-pipeline.js';
import { parseWorkflowInput } from './input.js';
import type { StepQueue } from './retry.js';
import { retryPolicy, stepFailure, TRAINING_NON_RETRYABLE } from './retry.js';

export async function trainingPipeline(rawInput: unknown = {}): Promise<TrainingPipelineResult> {
  const config = parseWorkflowInput(trainingPipelineInputSchema, rawInput);
  const info = workflowInfo();
  const progress: TrainingPipelineProgress = {
    workflowId: info.workflowId,
    model: config.model,
    step: 'validateInput',
    steps: PIPELINE_STEPS.map((name) => ({ name, status: 'pending' })),
    trainer: null,
  };
  setHandler(progressQuery, () => progress);
  setHandler(trainerProgressSignal, (update) => {
    progress.trainer = update;
  });
  upsertSearchAttributes({ KeelModel: [config.model], KeelStage: ['training'] });

  const heavyQueue = config.trainingTaskQueue ?? `${info.taskQueue}-training`;
  // Heavy steps wait for a worker of their queue at most scheduleToStartTimeoutSeconds: a queue no worker polls must not hang the run.
  const heavyPlacement: StepQueue = { taskQueue: heavyQueue, scheduleToStartSeconds: config.scheduleToStartTimeoutSeconds, field: 'trainingTaskQueue' };
  const heavySteps: readonly PipelineStep[] = ['trainModel', 'evaluateModel', 'crossValidate'];
  const activities = (options: ActivityOptions) => proxyActivities<TrainingActivities>({ ...options, retry: retryPolicy(config.retry, TRAINING_NON_RETRYABLE) });
  const heavyActivities = (options: ActivityOptions) =>
    activities({ ...options, taskQueue: heavyQueue, scheduleToStartTimeout: `${config.scheduleToStartTimeoutSeconds} seconds` });

  const step = async <T>(name: PipelineStep, run: () => Promise<T>): Promise<T> => {
    const entry = progress.steps.find((s) => s.name === name)!;
    progress.step = name;
    entry.status = 'running';
    entry.startedAt = new Date().toISOString();
    try {
      const result = await run();
      entry.status = 'done';
      return result;
    } catch (error) {
      entry.status = 'failed';
      progress.step = 'failed';
      upsertSearchAttributes({ KeelStage: ['failed'] });
      throw asWorkflowFailure(name, error, config.retry, heavySteps.includes(name) ? heavyPlacement : undefined);
    } finally {
      entry.finishedAt = new Date().toISOString();
    }
  };
  const skip = (name: PipelineStep) => {
    progress.steps.find((s) => s.name === name)!.status = 'skipped';
  };

  await step('validateInput', async () => checkTrainerParams(config.trainer));

  const light = activities({ startToCloseTimeout: '30 minutes' });
  const validation = activities({ startToCloseTimeout: '30 minutes' });
  const trainer = heavyActivities({
    startToCloseTimeout: config.trainer.kind === 'command' ? `${config.trainer.timeoutSeconds + 60} seconds` : '6 hours',
    heartbeatTimeout: `${config.heartbeatTimeoutSeconds} seconds`,
  });
  const heavy = heavyActivities({ startToCloseTimeout: '2 hours', heartbeatTimeout: `${config.heartbeatTimeoutSeconds} seconds` });
  const evaluator = heavyActivities({ startToCloseTimeout: '1 hour' });
  const registry = activities({ startToCloseTimeout: '10 minutes' });

  const trainingSet = await step('buildTrainingSet', () =>
    light.buildTrainingSet({ data: config.data, ...(config.entityKeys ? { entityKeys: config.entityKeys } : {}) }),
  );
  const validated = await step('validateData', () =>
    validation.validateData({
      trainingSet,
      label: config.label,
      ...(config.features ? { features: config.features } : {}),
      trainer: config.trainer.kind,
      validation: config.validation,
    }),
  );
  const split = await step('splitData', () => light.splitData({ trainingSet, label: config.label, split: config.split, seed: config.seed }));
  const trained = await step('trainModel', () =>
    trainer.trainModel({ trainingSet, split, label: config.label, features: validated.features, trainer: config.trainer, seed: config.seed }),
  );
  progress.trainer = null;
  const evaluation = await step('evaluateModel', () =>
    evaluator.evaluateModel({
      model: config.model,
      trainingSet,
      split,
      label: config.label,
      onnx: trained.onnx,
      featureSpec: trained.featureSpec,
      threshold: config.threshold,
    }),
  );
  let cv: CvMetrics | null = null;
  if (config.cvFolds >= 2) {
    cv = await step('crossValidate', () =>
      heavy.crossValidate({ trainingSet, split, label: config.label, featureSpec: trained.featureSpec, trainer: config.trainer, folds: config.cvFolds, seed: config.seed }),
    );
    progress.trainer = null;
  } else skip('crossValidate');

  const gates = await step('gates', async () => evaluateGates(config.gates, { test: evaluation.test, cv, champion: evaluation.champion?.metrics ?? null }));
  const base = {
    workflowId: info.workflowId,
    runId: info.runId,
    model: config.model,
    trainer: config.trainer.kind,
    dataHash: trainingSet.dataset.sha256,
    dataset: { uri: trainingSet.dataset.uri, sha256: trainingSet.dataset.sha256, rows: trainingSet.rows },
    profile: validated.profile,
    split: { kind: split.kind, trainRows: split.trainRows, testRows: split.testRows },
    features: validated.features,
    metrics: { test: evaluation.test, cv, champion: evaluation.champion },
    gates,
    featureImportance: trained.featureImportance,
    training: {
      trainRows: trained.trainRows,
      elapsedMs: trained.elapsedMs,
      ...(trained.trees === undefined ? {} : { trees: trained.trees, resumedFromTrees: trained.resumedFromTrees }),
    },
    onnx: trained.onnx,
  };
  if (!allGatesPassed(gates)) {
    skip('registerModel');
    progress.step = 'done';
    upsertSearchAttributes({ KeelStage: ['rejected'] });
    return { ...base, registered: false, version: null, bundle: null, aliases: [], failedGates: gates.filter((g) => !g.passed).map((g) => g.gate) };
  }
  const registered = await step('registerModel', () =>
    registry.registerModel({
      config,
      trainingSet,
      split,
      profile: validated.profile,
      features: validated.features,
      onnx: trained.onnx,
      featureSpec: trained.featureSpec,
      featureImportance: trained.featureImportance,
      metrics: { test: evaluation.test, cv },
      champion: evaluation.champion,
      gates,
    }),
  );
  progress.step = 'done';
  upsertSearchAttributes({ KeelVersion: [registered.version], KeelStage: ['candidate'] });
  return { ...base, registered: true, version: registered.version, bundle: registered.bundle, aliases: registered.aliases, failedGates: [] };
}

/**
 * Bad input from any step fails the workflow as `InvalidInput` (never retried), naming the step;
 * a step that failed for another reason after its retries, or that no worker took, fails it too,
 * naming the step and the cause (see ./retry.ts).
 */
function asWorkflowFailure(step: PipelineStep, error: unknown, window: RetryWindow, queue?: StepQueue): unknown {
  if (error instanceof KeelError) {
    return ApplicationFailure.create({ type: error.code, message: error.message, nonRetryable: true, details: [{ step, field: error.field ?? null }] });
  }
  return stepFailure(step, error, window, queue) ?? error;
}
