import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attemptsWithin } from '../../lib/schemas/retry.js';
import { trainingPipelineInputSchema } from '../../lib/schemas/training-pipeline.js';
import { checkTrainerParams } from '../../lib/pipeline/trainer-params.js';
import { describeZodError } from '../../lib/validation.js';

const problem = (input: unknown) => {
  const parsed = trainingPipelineInputSchema.safeParse(input);
  assert.equal(parsed.success, false);
  return describeZodError(parsed.error!);
};

describe('trainingPipeline input', () => {
  it('{} is the churn example with every default filled in', () => {
    const config = trainingPipelineInputSchema.parse({});
    assert.equal(config.model, 'churn');
    assert.deepEqual(config.data, {
      kind: 'features', example: 'churn', exampleOptions: {}, entities: 'churn.labels', timestampColumn: 'event_timestamp', featureService: 'churn_model', backfillGuard: true, onDemand: [],
    });
    assert.deepEqual(config.trainer, { kind: 'gbdt', params: {} });
    assert.deepEqual(config.split, { kind: 'stratified', testFraction: 0.2 });
    assert.equal(config.cvFolds, 5);
    assert.equal(config.gates.minAuc, 0.6);
    assert.equal(config.validation.labelRate.min, 0.01);
    assert.deepEqual(config.retry, { infrastructureTimeoutSeconds: 600, maximumIntervalSeconds: 60 });
    assert.equal(config.scheduleToStartTimeoutSeconds, 600);
  });

  it('retries a failing step with backoff waits that add up to the retry window', () => {
    // 1 + 2 + 4 + 8 + 16 + 32 s, then 9 × 60 s: 603 s of waiting between 16 attempts
    assert.equal(attemptsWithin({ infrastructureTimeoutSeconds: 600, maximumIntervalSeconds: 60 }), 16);
    assert.equal(attemptsWithin({ infrastructureTimeoutSeconds: 6, maximumIntervalSeconds: 2 }), 5);
    assert.equal(attemptsWithin({ infrastructureTimeoutSeconds: 1, maximumIntervalSeconds: 1 }), 2);
    assert.equal(problem({ retry: { infrastructureTimeoutSeconds: 0 } }).field, 'retry.infrastructureTimeoutSeconds');
    assert.equal(problem({ scheduleToStartTimeoutSeconds: 0.5 }).field, 'scheduleToStartTimeoutSeconds');
  });

  it('infers the data kind from the keys the user wrote', () => {
    assert.equal(trainingPipelineInputSchema.parse({ data: { uri: 'file:///a/b.csv', holdoutUri: 's3://bucket/t.parquet' } }).data.kind, 'file');
    assert.equal(trainingPipelineInputSchema.parse({ data: { table: 'public.training_rows' } }).data.kind, 'table');
    assert.equal(trainingPipelineInputSchema.parse({ data: { sha256: 'a'.repeat(64) } }).data.kind, 'dataset');
    assert.equal(trainingPipelineInputSchema.parse({ data: { features: ['order_activity:orders_30d'] } }).data.kind, 'features');
  });

  it('names the field of every bad value', () => {
    assert.equal(problem({ model: 'Churn!' }).field, 'model');
    assert.equal(problem({ data: { uri: 'http://example.com/x.csv' } }).field, 'data.uri');
    assert.equal(problem({ data: { uri: 'file:///x.json' } }).field, 'data.uri');
    assert.equal(problem({ data: { table: 'users; drop table x' } }).field, 'data.table');
    assert.equal(problem({ trainer: { kind: 'svm' } }).field, 'trainer.kind');
    assert.equal(problem({ trainer: { kind: 'command', command: [] } }).field, 'trainer.command');
    assert.equal(problem({ split: { kind: 'time', testFraction: 1.5 } }).field, 'split.testFraction');
    assert.equal(problem({ gates: { thresholds: [{ metric: 'accurracy' }] } }).field, 'gates.thresholds.0.metric');
    assert.equal(problem({ cvFolds: 1 }).field, 'cvFolds');
    assert.equal(problem({ data: { kind: 'features', engine: 'spark' } }).field, 'data.engine');
    assert.match(problem({ epochs: 3 }).message, /epochs/);
  });

  it('names an unknown key as the field, at any depth', () => {
    assert.deepEqual(problem({ epochs: 3 }), { field: 'epochs', message: 'epochs: unknown key' });
    assert.deepEqual(problem({ trainer: { kind: 'gbdt', maxIter: 3 } }), { field: 'trainer.maxIter', message: 'trainer.maxIter: unknown key' });
    assert.deepEqual(problem({ data: { uri: 'file:///a.csv', x: 1, y: 2 } }), { field: 'data.x', message: 'data.x: unknown key (and y)' });
  });

  it('refuses null and other non-objects', () => {
    for (const input of [null, [], 3, 'churn']) assert.match(problem(input).message, /expected object/);
  });

  it('checks trainer parameters before any data work', () => {
    assert.throws(() => checkTrainerParams({ kind: 'gbdt', params: { maxDepthh: 3 } }), { field: 'trainer.params.maxDepthh', message: /unknown gbdt parameter maxDepthh/ });
    assert.throws(() => checkTrainerParams({ kind: 'gbdt', params: { learningRate: -1 } }), /learningRate must be a finite number > 0/);
    assert.throws(() => checkTrainerParams({ kind: 'logreg', params: { C: 0 } }), { field: 'trainer.params.C' });
    assert.throws(() => checkTrainerParams({ kind: 'logreg', params: { penalty: 'l1' } }), /penalty/);
    checkTrainerParams({ kind: 'gbdt', params: { maxIter: 50, maxDepth: null } });
    checkTrainerParams({ kind: 'logreg', params: { C: 0.1, classWeight: 'balanced' } });
  });
});
