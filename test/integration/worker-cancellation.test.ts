/**
 * Cancelling a training run (Web UI "Cancel", `handle.cancel()`) against the real `keel worker`
 * process: the run ends Canceled, the trainer stops, and the same worker process keeps serving.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { CancelledFailure, WorkflowFailedError } from '@temporalio/client';
import type { TrainingPipelineResult } from '../../lib/schemas/training-pipeline-result.js';
import { writeTable } from '../../stores/datasets.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl, testTemporal, uniqueTaskQueue } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';
import { syntheticChurnTable } from '../helpers/training-data.js';
import { testClient } from '../helpers/temporal-client.js';
import type { WorkerProcess } from '../helpers/worker-process.js';
import { startWorkerProcess } from '../helpers/worker-process.js';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms: number, worker: WorkerProcess): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    assert.ok(worker.alive(), `the worker exited while waiting for ${what}:\n${worker.output()}`);
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms / 1000} s\n${worker.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
}

/** The run ends Canceled: its result rejects with a CancelledFailure and describe says CANCELLED. */
async function expectCanceled(handle: WorkflowHandle): Promise<void> {
  const error = await handle.result().then(
    () => assert.fail('the cancelled run completed'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof WorkflowFailedError, String(error));
  assert.ok(error.cause instanceof CancelledFailure, String(error.cause));
  assert.equal((await handle.describe()).status.name, 'CANCELLED');
}

describe('cancelling a training run on a real worker process', () => {
  let database: { url: string; drop: () => Promise<void> };
  let client: Client;
  let worker: WorkerProcess;
  let dir: string;
  const queue = uniqueTaskQueue('keel');

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    client = await testClient();
    dir = tempDir('keel-cancel-');
    await writeTable(path.join(dir, 'small.csv'), syntheticChurnTable({ rows: 600, seed: 3 }));
    await writeTable(path.join(dir, 'big.csv'), syntheticChurnTable({ rows: 20_000, seed: 4 }));
    // A trainer that never finishes on its own: its pid in a file, a stderr line every 100 ms.
    writeFileSync(
      path.join(dir, 'slow-trainer.js'),
      `require('node:fs').writeFileSync(${JSON.stringify(path.join(dir, 'trainer.pid'))}, String(process.pid));\n` +
        `setInterval(() => console.error('still training'), 100);\n`,
    );
    const temporal = await testTemporal();
    worker = startWorkerProcess([queue, `${queue}-training`], {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      DATABASE_URL: database.url,
      KEEL_ARTIFACTS: `file://${path.join(dir, 'artifacts')}`,
      KEEL_HOME: path.join(dir, 'home'),
      KEEL_DATA_ROOTS: dir,
      KEEL_TRAINER_COMMANDS: dir,
    });
  });
  after(async () => {
    await worker?.stop();
    await client?.connection.close();
    await database?.drop();
  });

  const start = (name: string, args: Record<string, unknown>) =>
    client.workflow.start('trainingPipeline', { taskQueue: queue, workflowId: `${name}-${Date.now()}`, args: [{ cvFolds: 0, heartbeatTimeoutSeconds: 5, ...args }] });

  it('a running command trainer: the run ends Canceled, the program is stopped, the worker lives on', async () => {
    const handle = await start('cancel-command', {
      model: 'cancel_command',
      data: { uri: `file://${path.join(dir, 'small.csv')}` },
      trainer: { kind: 'command', command: [process.execPath, path.join(dir, 'slow-trainer.js')], timeoutSeconds: 3600 },
    });
    const pidFile = path.join(dir, 'trainer.pid');
    const pid = await waitFor('the trainer program to start', () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined), 180_000, worker);
    await handle.cancel();
    await expectCanceled(handle);
    // The cancellation reaches the activity with its next heartbeat; the program is then stopped.
    await waitFor('the trainer program to be stopped', () => (isAlive(pid) ? undefined : true), 60_000, worker);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.ok(worker.alive(), `the worker process exited:\n${worker.output()}`);
  });

  it('a built-in gbdt mid-fit: the run ends Canceled and the fit stops', async () => {
    const handle = await start('cancel-gbdt', {
      model: 'cancel_gbdt',
      data: { uri: `file://${path.join(dir, 'big.csv')}` },
      // Far more trees than the test could wait for: only a fit that stops on cancellation stops storing checkpoints.
      trainer: { kind: 'gbdt', params: { maxIter: 1_000_000, earlyStopping: false, learningRate: 0.0001 } },
    });
    await waitFor('a checkpoint being stored', async () => {
      const pending = (await handle.describe()).raw.pendingActivities ?? [];
      const details = pending.find((a) => a.activityType?.name === 'trainModel')?.heartbeatDetails?.payloads?.[0]?.data;
      return details && (JSON.parse(Buffer.from(details).toString()) as { checkpoint?: string }).checkpoint ? true : undefined;
    }, 180_000, worker);
    await handle.cancel();
    await expectCanceled(handle);
    // A fit still running stores a checkpoint artifact every few seconds: once stopped, none for 15 s.
    const stored = () => readdirSync(path.join(dir, 'artifacts', 'sha256'), { recursive: true }).length;
    let last = stored();
    let unchangedSince = Date.now();
    await waitFor('the fit to stop storing checkpoints', () => {
      if (stored() !== last) [last, unchangedSince] = [stored(), Date.now()];
      return Date.now() - unchangedSince >= 15_000 ? true : undefined;
    }, 120_000, worker);
    assert.ok(worker.alive(), `the worker process exited:\n${worker.output()}`);
  });

  it('the same worker process then trains the next run to the end', async () => {
    const handle = await start('after-cancel', {
      model: 'after_cancel',
      data: { uri: `file://${path.join(dir, 'small.csv')}` },
      trainer: { kind: 'logreg' },
    });
    // A worker that died on a cancellation would leave this run waiting forever.
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the next run did not finish within 4 minutes:\n${worker.output()}`)), 240_000);
    });
    const result = (await Promise.race([handle.result(), deadline]).finally(() => clearTimeout(timer))) as TrainingPipelineResult;
    assert.equal(result.trainer, 'logreg');
    assert.ok(worker.alive(), `the worker process exited:\n${worker.output()}`);
  });
});
