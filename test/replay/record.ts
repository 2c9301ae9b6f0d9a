/**
 * Records the history of a run into test/replay/<name>.json, for the replay tests. Run again
 * only on purpose (a new history is a new compatibility promise):
 *   node --import tsx test/replay/record.ts stack-check
 *   node --import tsx test/replay/record.ts training-pipeline
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { writeTable } from '../../stores/datasets.js';
import { createDb } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { syntheticChurnTable } from '../helpers/training-data.js';
import { testClient, withWorkers } from '../helpers/workers.js';
import { tempDir } from '../helpers/temp.js';

const RUNS: Record<string, { workflowType: string; workflowId: string; input: (dir: string) => Promise<unknown> }> = {
  'stack-check': { workflowType: 'stackCheck', workflowId: 'stack-check-replay', input: async () => ({}) },
  'training-pipeline': {
    workflowType: 'trainingPipeline',
    workflowId: 'training-pipeline-replay',
    input: async (dir) => {
      await writeTable(path.join(dir, 'train.csv'), syntheticChurnTable({ rows: 2000, seed: 5 }));
      return { model: 'churn_replay', data: { uri: `file://${path.join(dir, 'train.csv')}` }, entityKeys: ['customer_id'], trainer: { kind: 'gbdt', params: { maxIter: 20 } }, cvFolds: 2 };
    },
  },
};

const name = process.argv[2] ?? '';
const spec = RUNS[name];
if (!spec) {
  console.error(`usage: record.ts ${Object.keys(RUNS).join('|')}`);
  process.exit(2);
}
const database = await freshDatabase(await testDatabaseUrl());
await migrate(database.url);
const db = createDb({ url: database.url });
const dir = tempDir('keel-record-');
const artifacts = new FsArtifactStore(path.join(dir, 'artifacts'));
const client = await testClient();
const queues = ['keel', 'keel-training'];
try {
  const input = await spec.input(dir);
  const handle = await withWorkers(queues, { db, artifacts }, async () => {
    const h = await client.workflow.start(spec.workflowType, { taskQueue: 'keel', workflowId: spec.workflowId, args: [input] });
    await h.result();
    return h;
  });
  const history = await handle.fetchHistory();
  const out = fileURLToPath(new URL(`./${name}.json`, import.meta.url));
  writeFileSync(out, `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`);
  console.log(`wrote ${out} (${history.events?.length} events)`);
} finally {
  await db.end();
  await client.connection.close();
  await database.drop();
}
process.exit(0);
