/**
 * Records the history of a `stackCheck` run into test/replay/stack-check.json, for the replay
 * test. Run again only on purpose (a new history is a new compatibility promise):
 *   node --import tsx test/replay/record.ts
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { FsArtifactStore } from '../../stores/artifacts/index.js';
import { createDb } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { testClient, withWorkers } from '../helpers/workers.js';
import { tempDir } from '../helpers/temp.js';

const database = await freshDatabase(await testDatabaseUrl());
await migrate(database.url);
const db = createDb({ url: database.url });
const artifacts = new FsArtifactStore(tempDir('keel-record-'));
const client = await testClient();
const queues = ['keel', 'keel-training'];
const workflowId = 'stack-check-replay';
try {
  const handle = await withWorkers(queues, { db, artifacts }, async () => {
    const h = await client.workflow.start('stackCheck', { taskQueue: 'keel', workflowId, args: [{}] });
    await h.result();
    return h;
  });
  const history = await handle.fetchHistory();
  const out = fileURLToPath(new URL('./stack-check.json', import.meta.url));
  writeFileSync(out, `${JSON.stringify(JSON.parse(historyToJSON(history)), null, 2)}\n`);
  console.log(`wrote ${out} (${history.events?.length} events)`);
} finally {
  await db.end();
  await client.connection.close();
  await database.drop();
}
process.exit(0);
