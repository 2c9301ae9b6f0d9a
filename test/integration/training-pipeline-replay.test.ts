import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { WORKFLOWS_PATH } from '../../workers/create-workers.js';

const HISTORY = fileURLToPath(new URL('../replay/training-pipeline.json', import.meta.url));

describe('trainingPipeline replay', () => {
  const history = historyFromJSON(JSON.parse(readFileSync(HISTORY, 'utf8')));

  it('the committed history of a full run (split, training, CV, registration, progress signals) still replays', async () => {
    const types = (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter(Boolean);
    assert.deepEqual([...new Set(types)], ['buildTrainingSet', 'validateData', 'splitData', 'trainModel', 'evaluateModel', 'crossValidate', 'registerModel']);
    const signals = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'trainerProgress');
    assert.ok(signals.length > 0, 'the history holds trainerProgress signals');
    await Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, history, 'training-pipeline-replay');
  });

  it('a change in the order of steps is caught as nondeterminism', async () => {
    // drop the registerModel scheduling: the workflow code would schedule an activity the history lacks
    const events = (history.events ?? []).map((e) => e);
    const register = events.findIndex((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'registerModel');
    const altered = { events: events.map((e, i) => (i === register ? { ...e, activityTaskScheduledEventAttributes: { ...e.activityTaskScheduledEventAttributes, activityType: { name: 'somethingElse' } } } : e)) };
    await assert.rejects(Worker.runReplayHistory({ workflowsPath: WORKFLOWS_PATH }, altered, 'training-pipeline-replay'), /nondetermin|does not match|Activity type/i);
  });
});
