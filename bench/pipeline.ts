/**
 * `npm run bench:pipeline [-- --sizes 100000,1000000] [-- --concurrent 20]`: runs the whole
 * `trainingPipeline` on the churn example at each size on a real Temporal dev server, Postgres
 * (DATABASE_URL, else embedded) and a filesystem artifact store, and compares the wall time of
 * each run with the sum of its activities' own durations (started → completed, from the
 * history): the difference is the orchestration overhead. Then starts `--concurrent` small
 * pipelines at once and counts failures. Prints a table and writes bench/results/pipeline.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { TrainingPipelineResult } from '../lib/schemas/training-pipeline-result.js';
import type { TrainingPipelineInput } from '../lib/schemas/training-pipeline.js';
import { FsArtifactStore } from '../stores/artifacts/index.js';
import { writeTable } from '../stores/datasets.js';
import { createDb } from '../stores/db.js';
import { migrate } from '../stores/migrate.js';
import { freshDatabase, testDatabaseUrl, uniqueTaskQueue } from '../test/helpers/services.js';
import { tempDir } from '../test/helpers/temp.js';
import { syntheticChurnTable } from '../test/helpers/training-data.js';
import { testClient, withWorkers } from '../test/helpers/workers.js';

const RESULTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100000,1000000' },
    concurrent: { type: 'string', default: '20' },
    'cv-folds': { type: 'string', default: '5' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const concurrent = Number(values.concurrent);
const cvFolds = Number(values['cv-folds']);

type Event = temporal.api.history.v1.IHistoryEvent;
const millis = (event: Event) => Number(event.eventTime!.seconds) * 1000 + Math.round((event.eventTime!.nanos ?? 0) / 1e6);

/** Wall time of the run and the sum of its activities' execution times (last attempt each). */
function timings(events: Event[]) {
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const scheduledType = (id: number) => byId.get(id)?.activityTaskScheduledEventAttributes?.activityType?.name ?? '?';
  const activities: Array<{ activity: string; ms: number }> = [];
  for (const event of events) {
    const done = event.activityTaskCompletedEventAttributes;
    if (!done) continue;
    const started = byId.get(Number(done.startedEventId))!;
    activities.push({ activity: scheduledType(Number(done.scheduledEventId)), ms: millis(event) - millis(started) });
  }
  const wallMs = millis(events.at(-1)!) - millis(events[0]!);
  const activityMs = activities.reduce((sum, a) => sum + a.ms, 0);
  return { wallMs, activityMs, overheadMs: wallMs - activityMs, activities, events: events.length };
}

async function historyOf(handle: WorkflowHandle): Promise<Event[]> {
  return (await handle.fetchHistory()).events ?? [];
}

async function main() {
  const database = await freshDatabase(await testDatabaseUrl());
  await migrate(database.url);
  const db = createDb({ url: database.url });
  const dir = tempDir('keel-bench-pipeline-');
  const artifacts = new FsArtifactStore(path.join(dir, 'artifacts'));
  const client: Client = await testClient();
  const queue = uniqueTaskQueue('keel');
  const report: Record<string, unknown> = { machine: { cpus: (await import('node:os')).availableParallelism(), node: process.version }, cvFolds };
  try {
    await withWorkers([queue, `${queue}-training`], { db, artifacts }, async () => {
      const runs = [];
      for (const labelRows of sizes) {
        const input: TrainingPipelineInput = { model: `churn_${labelRows}`, data: { exampleOptions: { labelRows } }, cvFolds, gates: { minAuc: null, maxCvStd: null, maxCvTestGap: null } };
        const started = performance.now();
        const handle = await client.workflow.start('trainingPipeline', { taskQueue: queue, workflowId: `bench-pipeline-${labelRows}-${Date.now()}`, args: [input] });
        const result = (await handle.result()) as TrainingPipelineResult;
        const clientWallMs = performance.now() - started;
        const t = timings(await historyOf(handle));
        runs.push({ labelRows, clientWallMs: Math.round(clientWallMs), ...t, testAuc: result.metrics.test.auc, registered: result.registered });
        process.stderr.write(`${labelRows} label rows: wall ${(t.wallMs / 1000).toFixed(2)} s, activities ${(t.activityMs / 1000).toFixed(2)} s, overhead ${t.overheadMs} ms\n`);
      }
      report.runs = runs;

      await writeTable(path.join(dir, 'small.csv'), syntheticChurnTable({ rows: 2000, seed: 9 }));
      const startedAll = performance.now();
      const handles = await Promise.all(
        Array.from({ length: concurrent }, (_, i) =>
          client.workflow.start('trainingPipeline', {
            taskQueue: queue,
            workflowId: `bench-concurrent-${i}-${Date.now()}`,
            args: [{ model: `bench_c${i}`, data: { uri: `file://${path.join(dir, 'small.csv')}` }, entityKeys: ['customer_id'], seed: i, cvFolds: 2, trainer: { kind: 'gbdt', params: { maxIter: 30 } } }],
          }),
        ),
      );
      const outcomes = await Promise.allSettled(handles.map((h) => h.result()));
      const overheads = await Promise.all(handles.map(async (h) => timings(await historyOf(h)).overheadMs));
      report.concurrent = {
        pipelines: concurrent,
        succeeded: outcomes.filter((o) => o.status === 'fulfilled').length,
        failed: outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)),
        wallSeconds: Number(((performance.now() - startedAll) / 1000).toFixed(2)),
        overheadMs: { max: Math.max(...overheads), median: overheads.sort((a, b) => a - b)[Math.floor(overheads.length / 2)] },
      };
    });
  } finally {
    await db.end();
    await client.connection.close();
    await database.drop();
  }
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(path.join(RESULTS, 'pipeline.json'), `${JSON.stringify(report, null, 2)}\n`);
  const rows = (report.runs as Array<ReturnType<typeof timings> & { labelRows: number; testAuc: number }>).map(
    (r) => `| ${r.labelRows} | ${(r.wallMs / 1000).toFixed(2)} | ${(r.activityMs / 1000).toFixed(2)} | ${r.overheadMs} | ${r.testAuc.toFixed(4)} |`,
  );
  console.log(['| label rows | wall s | activities s | overhead ms | test AUC |', '|---|---|---|---|---|', ...rows].join('\n'));
  console.log(JSON.stringify(report.concurrent));
}

await main();
process.exit(0);
