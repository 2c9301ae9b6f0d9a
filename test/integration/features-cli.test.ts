/**
 * `keel features apply|list|historical|stats` as users run them: the churn example's definitions
 * module applied, changed and pruned; historical retrieval from a labels CSV equal to
 * `getHistoricalFeatures` called directly; statistics equal to `featureViewStatisticsReport`.
 */
import { runKeel } from '../helpers/keel-cli.js';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { columnValues } from '../../lib/data/table.js';
import { generateChurn } from '../../examples/churn/generate.js';
import { readTable, writeTable } from '../../stores/datasets.js';
import { createDb, type Db } from '../../stores/db.js';
import { getHistoricalFeatures } from '../../stores/features/historical.js';
import { loadFeatureDefinitions } from '../../stores/features/registry.js';
import { featureViewStatisticsReport } from '../../stores/features/statistics.js';
import { migrate } from '../../stores/migrate.js';
import { readPostgresTable } from '../../stores/pg-table.js';
import { REPO_ROOT, freshDatabase, testDatabaseUrl } from '../helpers/services.js';
import { tempDir } from '../helpers/temp.js';

const CHURN_MODULE = 'examples/churn/features.ts';

interface ApplyJson {
  dryRun: boolean;
  export: string;
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
  versions: Record<string, string>;
  onDemand: Array<{ name: string; codeHash: string }>;
}

describe('keel features', () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Db;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    database = await freshDatabase(await testDatabaseUrl());
    await migrate(database.url);
    db = createDb({ url: database.url });
    dir = tempDir('keel-features-cli-');
    env = { ...process.env, DATABASE_URL: database.url, KEEL_ARTIFACTS: `file://${path.join(dir, 'artifacts')}` };
    // the temp modules below are ES modules, as in a project whose package.json says so
    await writeFile(path.join(dir, 'package.json'), '{"type": "module"}\n');
    await generateChurn(db, { labelRows: 2000, schema: 'churn' });
    await writeTable(path.join(dir, 'labels.csv'), await readPostgresTable(db, 'churn.labels'));
  });
  after(async () => {
    await db?.end();
    await database?.drop();
  });

  const keel = (args: string[]) => runKeel(args, env);

  async function ok(args: string[]) {
    const result = await keel(args);
    assert.equal(result.code, 0, `keel ${args.join(' ')}: ${result.stderr}`);
    return result;
  }

  async function usage(args: string[], pattern: RegExp) {
    const result = await keel(args);
    assert.equal(result.code, 2, `keel ${args.join(' ')} exits 2: ${result.stdout}${result.stderr}`);
    assert.equal(result.stderr.trimEnd().split('\n').length, 1, `one line: ${result.stderr}`);
    assert.match(result.stderr.trimEnd(), pattern);
    return result;
  }

  it('apply creates, re-apply leaves unchanged, a changed module updates and deletes (dry run writes nothing), list shows it', async () => {
    const first = JSON.parse((await ok(['features', 'apply', CHURN_MODULE, '--json'])).stdout) as ApplyJson;
    assert.equal(first.export, 'churnDefinitions');
    assert.deepEqual(first.created, [
      'entity/customer',
      'feature_view/customer_profile',
      'feature_view/order_activity',
      'feature_view/support_activity',
      'feature_service/churn_model',
    ]);
    const stored = await loadFeatureDefinitions(db);
    assert.deepEqual(stored.versions, first.versions);

    const again = await ok(['features', 'apply', CHURN_MODULE]);
    assert.match(again.stdout, /^unchanged\s+feature_view\/order_activity\s+[0-9a-f]{16}$/m);
    assert.match(again.stdout, /applied examples\/churn\/features\.ts: 0 created, 0 updated, 0 deleted, 5 unchanged/);

    // the project drops support_activity (and its features from the service) and changes a TTL
    const changed = path.join(dir, 'changed.ts');
    await writeFile(
      changed,
      `import { churnDefinitionsFor } from ${JSON.stringify(path.join(REPO_ROOT, 'examples/churn/features.ts'))};
       import { defineOnDemandFeature } from ${JSON.stringify(path.join(REPO_ROOT, 'lib/features/on-demand.ts'))};
       const base = churnDefinitionsFor('churn');
       export const definitions = {
         ...base,
         featureViews: base.featureViews
           .filter((v) => v.name !== 'support_activity')
           .map((v) => (v.name === 'order_activity' ? { ...v, ttlSeconds: 30 * 24 * 3600 } : v)),
         featureServices: base.featureServices!.map((s) => ({ ...s, features: s.features.filter((f) => !f.startsWith('support_activity:')) })),
       };
       export const onDemandFeatures = [
         defineOnDemandFeature({ name: 'spend_per_order_30d', inputs: ['spend_30d', 'orders_30d'], type: 'float64',
           fn: ({ spend_30d, orders_30d }) => (typeof spend_30d === 'number' && typeof orders_30d === 'number' && orders_30d > 0 ? spend_30d / orders_30d : null) }),
       ];
      `,
    );
    const dry = JSON.parse((await ok(['features', 'apply', changed, '--dry-run', '--json'])).stdout) as ApplyJson;
    assert.equal(dry.dryRun, true);
    assert.deepEqual(dry.created, []);
    assert.deepEqual(dry.updated, ['feature_view/order_activity', 'feature_service/churn_model']);
    assert.deepEqual(dry.deleted, ['feature_view/support_activity']);
    assert.deepEqual(dry.unchanged, ['entity/customer', 'feature_view/customer_profile']);
    assert.equal(dry.onDemand[0]?.name, 'spend_per_order_30d');
    assert.match(dry.onDemand[0]!.codeHash, /^[0-9a-f]{64}$/);
    assert.deepEqual((await loadFeatureDefinitions(db)).versions, first.versions, 'a dry run writes nothing');
    const dryText = await ok(['features', 'apply', changed, '--dry-run']);
    assert.match(dryText.stdout, /^would delete\s+feature_view\/support_activity$/m);
    assert.match(dryText.stdout, /nothing written/);

    const applied = JSON.parse((await ok(['features', 'apply', changed, '--json'])).stdout) as ApplyJson;
    assert.deepEqual({ ...applied, dryRun: true, versions: dry.versions, onDemand: dry.onDemand }, dry, 'the dry run predicted the apply');
    const list = JSON.parse((await ok(['features', 'list', '--json'])).stdout) as {
      featureViews: Array<{ name: string; version: string; entity: string; ttlSeconds: number; online: boolean; features: Array<{ name: string; type: string }> }>;
      featureServices: Array<{ name: string; features: string[] }>;
    };
    assert.deepEqual(list.featureViews.map((v) => v.name), ['customer_profile', 'order_activity']);
    const orders = list.featureViews.find((v) => v.name === 'order_activity')!;
    assert.equal(orders.ttlSeconds, 30 * 24 * 3600);
    assert.equal(orders.version, applied.versions['feature_view/order_activity']);
    assert.equal(orders.entity, 'customer');
    assert.equal(orders.online, true);
    assert.deepEqual(orders.features[0], { name: 'orders_7d', type: 'int64' });
    assert.equal(list.featureServices[0]!.features.some((f) => f.startsWith('support_activity:')), false);

    // back to the example: support_activity is created again
    const restored = JSON.parse((await ok(['features', 'apply', CHURN_MODULE, '--json'])).stdout) as ApplyJson;
    assert.deepEqual(restored.created, ['feature_view/support_activity']);
    assert.deepEqual(restored.versions, first.versions);
    const text = await ok(['features', 'list']);
    assert.match(text.stdout, /^support_activity\s+[0-9a-f]{16}\s+customer\s+14d\s+yes\s+tickets_30d:int64/m);
    assert.match(text.stdout, /^customer_profile\s+[0-9a-f]{16}\s+customer\s+forever/m);
  });

  it('a bad module path, a module without definitions and invalid definitions exit 2 with one line naming the problem', async () => {
    await usage(['features', 'apply', 'examples/churn/nope.ts'], /^keel: no such feature module: examples\/churn\/nope\.ts$/);
    const empty = path.join(dir, 'empty.ts');
    await writeFile(empty, 'export const answer = 42;\n');
    await usage(['features', 'apply', empty], /exports no feature definitions/);
    await usage(['features', 'apply', CHURN_MODULE, '--export', 'nothing'], /has no export nothing \(exports: .*churnDefinitions/);
    const invalid = path.join(dir, 'invalid.ts');
    await writeFile(
      invalid,
      `export default { entities: [], featureViews: [{ name: 'v', entity: 'nobody', source: { table: 'churn.labels' }, features: [{ name: 'churned', type: 'bool' }] }] };\n`,
    );
    await usage(['features', 'apply', invalid], /invalid\.ts \(default\): feature view v: entity nobody is not declared/);
    const broken = path.join(dir, 'broken.ts');
    await writeFile(broken, 'export const definitions = {;\n');
    await usage(['features', 'apply', broken], /cannot load feature module .*broken\.ts/);
    assert.deepEqual((await loadFeatureDefinitions(db)).featureViews.length, 3, 'nothing was applied');
  });

  it('historical writes the same CSV as getHistoricalFeatures on the same rows, progress on stderr', async () => {
    const labels = path.join(dir, 'labels.csv');
    const cli = await ok(['features', 'historical', '--entities', labels, '--service', 'churn_model', '--out', path.join(dir, 'training.csv'), '--json']);
    assert.match(cli.stderr, /read 2\d{3} entity rows/);
    assert.match(cli.stderr, /order_activity\s+lateral\s+indexed/);
    assert.match(cli.stderr, /wrote \d+ rows × 22 columns/);
    const summary = JSON.parse(cli.stdout) as { rows: number; features: string[]; entity: string };
    assert.equal(summary.entity, 'customer');
    assert.equal(summary.features.length, 19);

    const direct = await getHistoricalFeatures(db, { entities: { rows: await readTable(labels) }, features: { service: 'churn_model' } });
    assert.equal(summary.rows, direct.table.rowCount);
    await writeTable(path.join(dir, 'direct.csv'), direct.table);
    assert.equal(await readFile(path.join(dir, 'training.csv'), 'utf8'), await readFile(path.join(dir, 'direct.csv'), 'utf8'));
  });

  it('historical with --features, --full-names, --no-backfill-guard into Parquet equals the direct call', async () => {
    const refs = ['order_activity:orders_30d', 'customer_profile:plan', 'support_activity:days_since_last_ticket'];
    const out = path.join(dir, 'picked.parquet');
    await ok(['features', 'historical', '--entities', path.join(dir, 'labels.csv'), '--features', refs.join(','), '--out', out, '--full-names', '--no-backfill-guard']);
    const got = await readTable(out);
    const direct = await getHistoricalFeatures(db, {
      entities: { rows: await readTable(path.join(dir, 'labels.csv')) },
      features: refs,
      fullFeatureNames: true,
      backfillGuard: false,
    });
    assert.deepEqual(got.columns.map((c) => c.name), ['customer_id', 'event_timestamp', 'churned', 'order_activity__orders_30d', 'customer_profile__plan', 'support_activity__days_since_last_ticket']);
    for (const column of direct.table.columns) {
      assert.deepEqual(columnValues(got.columns.find((c) => c.name === column.name)!), columnValues(column), column.name);
    }
  });

  it('apply takes a plain .ts module from a folder without package.json, and from one whose package.json says commonjs', async () => {
    const module = `type Row = Readonly<Record<string, number | string | boolean | null>>;
      export const definitions = {
        entities: [{ name: 'customer', joinKeys: [{ name: 'customer_id', type: 'int64' }] }],
        featureViews: [{ name: 'order_activity', entity: 'customer', ttlSeconds: 14 * 86400,
          source: { table: 'churn.order_activity', eventTimestamp: 'event_timestamp', createdTimestamp: 'created_timestamp' },
          features: [{ name: 'orders_30d', type: 'int64' }, { name: 'spend_30d', type: 'float64' }] }],
      };
      export const onDemandFeatures = [{ name: 'spend_per_order', inputs: ['spend_30d', 'orders_30d'], type: 'float64',
        fn: ({ spend_30d, orders_30d }: Row) => (typeof spend_30d === 'number' && typeof orders_30d === 'number' && orders_30d > 0 ? spend_30d / orders_30d : null) }];
    `;
    const bare = tempDir('keel-features-bare-');
    assert.equal(nearestPackageJson(bare), null, `no package.json above ${bare}`);
    const cjs = tempDir('keel-features-cjs-');
    await writeFile(path.join(cjs, 'package.json'), '{"type": "commonjs"}\n');
    const hashes: string[] = [];
    for (const folder of [bare, cjs]) {
      const file = path.join(folder, 'features.ts');
      await writeFile(file, module);
      const result = JSON.parse((await ok(['features', 'apply', file, '--dry-run', '--json', '--no-prune'])).stdout) as ApplyJson;
      assert.equal(result.export, 'definitions');
      assert.deepEqual(result.onDemand.map((d) => d.name), ['spend_per_order']);
      hashes.push(result.onDemand[0]!.codeHash);
    }
    assert.equal(hashes[0], hashes[1], 'the same function has the same code hash wherever the module lies');
  });

  it('historical --engine duckdb writes the same file as --engine postgres; auto follows KEEL_DUCKDB_AUTO_MIN_ROWS; --engine bogus exits 2', async () => {
    const labels = path.join(dir, 'labels.csv');
    const run = async (engine: string, extraEnv: NodeJS.ProcessEnv = {}) => {
      const out = path.join(dir, `engine-${engine}-${Object.keys(extraEnv).length}.csv`);
      const result = await runKeel(['features', 'historical', '--entities', labels, '--service', 'churn_model', '--out', out, '--engine', engine, '--json'], { ...env, ...extraEnv });
      assert.equal(result.code, 0, result.stderr);
      return { engine: (JSON.parse(result.stdout) as { engine: string }).engine, text: await readFile(out, 'utf8'), stderr: result.stderr };
    };
    const postgres = await run('postgres');
    const duckdb = await run('duckdb');
    assert.equal(postgres.engine, 'postgres');
    assert.equal(duckdb.engine, 'duckdb');
    assert.match(duckdb.stderr, /engine duckdb/);
    assert.match(duckdb.stderr, /order_activity\s+asof/);
    assert.equal(duckdb.text, postgres.text);
    assert.equal((await run('auto')).engine, 'postgres', 'about 2 000 rows stay under the default threshold');
    assert.equal((await run('auto', { KEEL_DUCKDB_AUTO_MIN_ROWS: '1000' })).engine, 'duckdb');
    await usage(['features', 'historical', '--entities', labels, '--service', 'churn_model', '--out', path.join(dir, 'never.csv'), '--engine', 'bogus'], /^keel: --engine must be auto, postgres, duckdb, not bogus$/);
  });

  it('historical refuses bad references (all named), both or neither of --features and --service, and a bad file', async () => {
    const labels = path.join(dir, 'labels.csv');
    const out = path.join(dir, 'never.csv');
    await usage(
      ['features', 'historical', '--entities', labels, '--features', 'order_activity:orders_30d,order_activity:nope,ghost:x', '--out', out],
      /unknown feature references order_activity:nope \(order_activity has no feature nope\), ghost:x \(no feature view ghost\)/,
    );
    await usage(['features', 'historical', '--entities', labels, '--service', 'nope', '--out', out], /unknown feature service "nope"/);
    await usage(['features', 'historical', '--entities', labels, '--out', out], /exactly one of --features/);
    await usage(['features', 'historical', '--entities', path.join(dir, 'missing.csv'), '--service', 'churn_model', '--out', out], /no such file/);
    await usage(['features', 'historical', '--entities', labels, '--service', 'churn_model', '--out', path.join(dir, 'x.txt')], /unknown table format/);
    await usage(['features', 'historical', '--entities', labels, '--service', 'churn_model', '--out', out, '--timestamp-column', 'ts'], /ts/);
  });

  it('stats prints the view profile for a time range as featureViewStatisticsReport computes it', async () => {
    const start = '2025-01-01T00:00:00.000Z';
    const { stdout } = await ok(['features', 'stats', 'order_activity', '--start', start, '--json']);
    const cli = JSON.parse(stdout) as Awaited<ReturnType<typeof featureViewStatisticsReport>>;
    assert.deepEqual(cli, await featureViewStatisticsReport(db, { view: 'order_activity', start }));
    const text = await ok(['features', 'stats', 'customer_profile', '--features', 'plan,monthly_fee']);
    assert.match(text.stdout, /^customer_profile \(version [0-9a-f]{16}\) churn\.customer_profile, event_timestamp in \[-∞, ∞\): \d+ rows$/m);
    assert.match(text.stdout, /^ {2}plan\s+category\s+count \d+ nulls 0 {2}distinct \d+/m);
    assert.match(text.stdout, /^ {2}monthly_fee\s+number\s+count \d+/m);
    await usage(['features', 'stats', 'nope'], /unknown feature view "nope"/);
    await usage(['features', 'stats', 'order_activity', '--end', 'soon'], /end must be a date/);
  });
});

/** The package.json Node would consult for a file in `folder`, or null. */
function nearestPackageJson(folder: string): string | null {
  for (let dir = path.resolve(folder); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'package.json');
    if (path.dirname(dir) === dir) return null;
  }
}
