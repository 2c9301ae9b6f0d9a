/**
 * `keel features`: apply a project's feature definitions to the registry, list them, retrieve
 * point-in-time-correct historical features into a CSV / Parquet file, and profile a view's rows.
 */
import { Command } from 'commander';
import { loadConfig } from '../../lib/config.js';
import type { ColumnProfile, FrequencyProfile, TableProfile } from '../../lib/data/profile.js';
import { InvalidInput } from '../../lib/errors.js';
import type { Entity, FeatureDefinitions, FeatureDefinitionsInput, FeatureService, FeatureView } from '../../lib/features/definitions.js';
import { definitionVersion, featureRefSchema } from '../../lib/features/definitions.js';
import { loadFeatureModule } from '../../lib/features/modules.js';
import { onDemandSpec } from '../../lib/features/on-demand.js';
import type { DefinitionKind } from '../../lib/features/validate.js';
import { definitionKey, resolveFeatureRefs, validateFeatureDefinitions } from '../../lib/features/validate.js';
import { columnNames, findColumn } from '../../lib/data/table.js';
import { formatOf, readTable, writeTable } from '../../stores/datasets.js';
import type { Db } from '../../stores/db.js';
import { createDb } from '../../stores/db.js';
import type { HistoricalStrategy } from '../../stores/features/historical.js';
import { HISTORICAL_ENGINES, getHistoricalFeatures } from '../../stores/features/historical.js';
import type { ApplyResult, StoredFeatureDefinitions } from '../../stores/features/registry.js';
import { applyFeatureDefinitions, loadFeatureDefinitions } from '../../stores/features/registry.js';
import { featureViewStatisticsReport } from '../../stores/features/statistics.js';
import { getOnlineFeatures } from '../../stores/features/online.js';
import { ensureMaterializationSchedules, startMaterializeFeatures } from '../../stores/features/schedules.js';
import { connectTemporalClient } from '../../stores/temporal.js';

/** A subcommand that reports usage errors to `main` instead of exiting. */
function subcommand(name: string): Command {
  return new Command(name).exitOverride().configureOutput({ outputError: () => undefined });
}

async function withDb<T>(work: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb({ url: loadConfig().database.url, applicationName: 'keel-cli' });
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

const out = (text: string) => void process.stdout.write(text);
const progress = (text: string) => void process.stderr.write(`${text}\n`);

export function featuresCommand(): Command {
  return new Command('features')
    .description('Feature store: apply definitions, list them, retrieve historical features, profile a view')
    .addCommand(applyCommand())
    .addCommand(listCommand())
    .addCommand(historicalCommand())
    .addCommand(statsCommand())
    .addCommand(materializeCommand())
    .addCommand(onlineCommand())
    .action(() => {
      throw new InvalidInput('features needs a subcommand: apply, list, historical or stats (see keel features --help)');
    });
}

// ---------------------------------------------------------------------------------------------
// apply

/** A feature module's definitions for `apply` (see lib/features/modules.ts for the contract). */
async function loadDefinitionsModule(file: string, exportName?: string) {
  const loaded = await loadFeatureModule(file, { exportName });
  if (loaded.definitions === null || loaded.exportName === null) {
    throw new InvalidInput(
      `${file} exports no feature definitions: export \`definitions\` (or a default export) as {entities, featureViews, featureServices}`,
    );
  }
  return { ...loaded, exportName: loaded.exportName, definitions: loaded.definitions };
}

const KINDS: ReadonlyArray<{ kind: DefinitionKind; list: keyof FeatureDefinitions }> = [
  { kind: 'entity', list: 'entities' },
  { kind: 'feature_view', list: 'featureViews' },
  { kind: 'feature_service', list: 'featureServices' },
];

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** What `applyFeatureDefinitions` would do to a registry holding `stored`, in the same order. */
export function planApply(definitions: FeatureDefinitions, stored: StoredFeatureDefinitions, prune = true): ApplyResult {
  const result: ApplyResult = { created: [], updated: [], deleted: [], unchanged: [] };
  for (const { kind, list } of KINDS) {
    const items = [...(definitions[list] as Array<Entity | FeatureView | FeatureService>)].sort((a, b) => compare(a.name, b.name));
    const wanted = new Set(items.map((i) => i.name));
    for (const item of items) {
      const key = definitionKey(kind, item.name);
      const current = stored.versions[key];
      if (current === undefined) result.created.push(key);
      else if (current === definitionVersion(item)) result.unchanged.push(key);
      else result.updated.push(key);
    }
    if (!prune) continue;
    const gone = (stored[list] as Array<{ name: string }>).map((i) => i.name).filter((n) => !wanted.has(n)).sort(compare);
    result.deleted.push(...gone.map((n) => definitionKey(kind, n)));
  }
  return result;
}

function versionsOf(definitions: FeatureDefinitions): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const { kind, list } of KINDS) {
    for (const item of definitions[list] as Array<Entity | FeatureView | FeatureService>) {
      versions[definitionKey(kind, item.name)] = definitionVersion(item);
    }
  }
  return versions;
}

interface ApplyOptions {
  json?: boolean;
  dryRun?: boolean;
  export?: string;
  prune: boolean;
  schedule?: string;
  taskQueue: string;
}

function applyCommand(): Command {
  return subcommand('apply')
    .description('Make the registry hold exactly the entities, feature views and services a TypeScript module declares')
    .argument('<module>', 'a .ts or .js module exporting `definitions` (or a default export) of type FeatureDefinitionsInput')
    .option('--export <name>', 'take the definitions from this export of the module')
    .option('--dry-run', 'print what would change without writing')
    .option('--no-prune', 'keep registry items the module does not declare (default: delete them)')
    .option('--schedule <interval>', "also keep one Temporal Schedule per online view running materializeFeatures this often (e.g. '15 minutes'), and delete the others")
    .option('--task-queue <name>', 'task queue the schedules start materializeFeatures on', 'keel')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (file: string, options: ApplyOptions) => {
      const loaded = await loadDefinitionsModule(file, options.export);
      const versions = versionsOf(loaded.definitions);
      const result = await withDb(async (db) => {
        if (options.dryRun) return planApply(loaded.definitions, await loadFeatureDefinitions(db), options.prune);
        return applyFeatureDefinitions(db, loaded.definitions, { prune: options.prune });
      });
      const onDemand = onDemandSpec(loaded.onDemand);
      const schedules = options.schedule && !options.dryRun ? await scheduleMaterialization(loaded.definitions, options.schedule, options.taskQueue) : undefined;
      if (options.json) {
        out(`${JSON.stringify({ module: file, export: loaded.exportName, dryRun: !!options.dryRun, ...result, versions, onDemand, ...(schedules ? { schedules } : {}) })}\n`);
        return;
      }
      if (schedules) {
        for (const what of ['created', 'updated', 'deleted', 'unchanged'] as const) {
          for (const id of schedules[what]) out(`${`schedule ${what}`.padEnd(20)} ${id}\n`);
        }
      }
      const verb = options.dryRun
        ? { created: 'would create', updated: 'would update', deleted: 'would delete', unchanged: 'unchanged' }
        : { created: 'created', updated: 'updated', deleted: 'deleted', unchanged: 'unchanged' };
      for (const what of ['created', 'updated', 'deleted', 'unchanged'] as const) {
        for (const key of result[what]) out(`${verb[what].padEnd(13)} ${key.padEnd(40)} ${versions[key] ?? ''}\n`.trimEnd() + '\n');
      }
      for (const spec of onDemand) {
        out(`${'on-demand'.padEnd(13)} ${spec.name.padEnd(40)} code ${spec.codeHash.slice(0, 16)} (not stored: goes into each model's feature spec)\n`);
      }
      const counts = `${result.created.length} created, ${result.updated.length} updated, ${result.deleted.length} deleted, ${result.unchanged.length} unchanged`;
      out(options.dryRun ? `dry run of ${file}: ${counts.replace(/(\d+) (created|updated|deleted)/g, '$1 to be $2')}; nothing written\n` : `applied ${file}: ${counts}\n`);
    });
}

/** One materialization schedule per online view of the applied definitions. */
async function scheduleMaterialization(definitions: FeatureDefinitionsInput, interval: string, taskQueue: string) {
  const views = validateFeatureDefinitions(definitions).featureViews;
  const client = await connectTemporalClient(loadConfig().temporal);
  try {
    return await ensureMaterializationSchedules(client, { views, interval, taskQueue });
  } finally {
    await client.connection.close();
  }
}

// ---------------------------------------------------------------------------------------------
// list

function listCommand(): Command {
  return subcommand('list')
    .description('List the registry: feature views with version, entity, TTL, online flag and features; entities; services')
    .option('--json', 'print JSON on stdout')
    .action(async (options: { json?: boolean }) => {
      const stored = await withDb((db) => loadFeatureDefinitions(db));
      const v = (kind: DefinitionKind, name: string) => stored.versions[definitionKey(kind, name)] ?? '';
      const listing = {
        entities: stored.entities.map((e) => ({ name: e.name, version: v('entity', e.name), joinKeys: e.joinKeys, description: e.description })),
        featureViews: stored.featureViews.map((view) => ({
          name: view.name,
          version: v('feature_view', view.name),
          entity: view.entity,
          table: view.source.table,
          ttlSeconds: view.ttlSeconds,
          online: view.online,
          features: view.features.map((f) => ({ name: f.name, type: f.type })),
        })),
        featureServices: stored.featureServices.map((s) => ({ name: s.name, version: v('feature_service', s.name), features: s.features })),
      };
      if (options.json) return out(`${JSON.stringify(listing)}\n`);
      if (listing.featureViews.length === 0 && listing.entities.length === 0) {
        return out('the feature registry is empty (run keel features apply <module>)\n');
      }
      out(`${'VIEW'.padEnd(24)} ${'VERSION'.padEnd(16)} ${'ENTITY'.padEnd(14)} ${'TTL'.padEnd(8)} ${'ONLINE'.padEnd(6)} FEATURES\n`);
      for (const view of listing.featureViews) {
        const features = view.features.map((f) => `${f.name}:${f.type}`).join(', ');
        out(`${view.name.padEnd(24)} ${view.version.padEnd(16)} ${view.entity.padEnd(14)} ${formatTtl(view.ttlSeconds).padEnd(8)} ${(view.online ? 'yes' : 'no').padEnd(6)} ${features}\n`);
      }
      for (const e of listing.entities) out(`entity  ${e.name} ${e.version}  keys ${e.joinKeys.map((k) => `${k.name}:${k.type}`).join(', ')}\n`);
      for (const s of listing.featureServices) out(`service ${s.name} ${s.version}  ${s.features.length} features\n`);
    });
}

function formatTtl(seconds: number): string {
  if (seconds === 0) return 'forever';
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
  if (seconds % 3600 === 0) return `${seconds / 3600}h`;
  return `${seconds}s`;
}

// ---------------------------------------------------------------------------------------------
// historical

interface HistoricalCliOptions {
  entities: string;
  features?: string;
  service?: string;
  out: string;
  timestampColumn: string;
  backfillGuard: boolean;
  fullNames?: boolean;
  strategy: string;
  engine: string;
  json?: boolean;
}

const STRATEGIES = ['auto', 'lateral', 'distinct_on'];
const isEngine = (value: string): value is (typeof HISTORICAL_ENGINES)[number] => (HISTORICAL_ENGINES as readonly string[]).includes(value);

/** Every reference that does not name a feature of a registered view, all at once. */
function checkRefs(definitions: FeatureDefinitions, refs: string[]): void {
  const bad: string[] = [];
  for (const ref of refs) {
    if (!featureRefSchema.safeParse(ref).success) {
      bad.push(`${JSON.stringify(ref)} (not view:feature)`);
      continue;
    }
    const [viewName, featureName] = ref.split(':') as [string, string];
    const view = definitions.featureViews.find((v) => v.name === viewName);
    if (!view) bad.push(`${ref} (no feature view ${viewName})`);
    else if (!view.features.some((f) => f.name === featureName)) bad.push(`${ref} (${viewName} has no feature ${featureName})`);
  }
  if (bad.length) {
    const views = definitions.featureViews.map((v) => v.name).join(', ') || 'none';
    throw new InvalidInput(`unknown feature reference${bad.length > 1 ? 's' : ''} ${bad.join(', ')}; feature views: ${views}`, 'features');
  }
}

function historicalCommand(): Command {
  return subcommand('historical')
    .description('Point-in-time-correct feature values for every row of an entity file (CSV or Parquet), written to a CSV or Parquet file')
    .requiredOption('--entities <file>', 'entity rows: join keys and a timestamp column (.csv or .parquet)')
    .option('--features <refs>', 'comma-separated view:feature references')
    .option('--service <name>', 'a feature service instead of --features')
    .requiredOption('--out <file>', 'output file (.csv or .parquet): the entity columns, then one column per feature')
    .option('--timestamp-column <name>', "the entity rows' timestamp column", 'event_timestamp')
    .option('--no-backfill-guard', 'also use feature rows created after the entity timestamp')
    .option('--full-names', 'name feature columns view__feature')
    .option('--strategy <strategy>', 'query shape per view: auto, lateral or distinct_on', 'auto')
    .option('--engine <engine>', 'where the join runs: auto (DuckDB from KEEL_DUCKDB_AUTO_MIN_ROWS entity rows), postgres or duckdb', 'auto')
    .option('--json', 'print a summary as JSON on stdout (progress stays on stderr)')
    .action(async (options: HistoricalCliOptions) => {
      if ((options.features === undefined) === (options.service === undefined)) {
        throw new InvalidInput('give exactly one of --features view:feature,… and --service <name>');
      }
      if (!STRATEGIES.includes(options.strategy)) throw new InvalidInput(`--strategy must be auto, lateral or distinct_on, not ${options.strategy}`);
      const engine = options.engine;
      if (!isEngine(engine)) throw new InvalidInput(`--engine must be ${HISTORICAL_ENGINES.join(', ')}, not ${engine}`, 'engine');
      formatOf(options.entities);
      formatOf(options.out);
      const refs = options.features?.split(',').map((r) => r.trim()).filter((r) => r !== '');
      if (refs && refs.length === 0) throw new InvalidInput('--features lists no feature references');

      const result = await withDb(async (db) => {
        const { versions: _versions, ...definitions } = await loadFeatureDefinitions(db);
        if (refs) checkRefs(definitions, refs);
        else resolveFeatureRefs(definitions, { service: options.service! });
        const startedAt = performance.now();
        const entities = await readTable(options.entities);
        if (!findColumn(entities, options.timestampColumn)) {
          throw new InvalidInput(
            `${options.entities} has no timestamp column ${options.timestampColumn} (columns: ${columnNames(entities).join(', ')}); name it with --timestamp-column`,
          );
        }
        progress(`read ${entities.rowCount} entity rows from ${options.entities} (${Math.round(performance.now() - startedAt)} ms)`);
        return getHistoricalFeatures(db, {
          entities: { rows: entities },
          features: refs ?? { service: options.service! },
          definitions,
          timestampColumn: options.timestampColumn,
          backfillGuard: options.backfillGuard,
          fullFeatureNames: !!options.fullNames,
          strategy: options.strategy as HistoricalStrategy | 'auto',
          engine,
          autoMinRows: loadConfig().features.duckdbAutoMinRows,
        });
      });
      const { timings } = result;
      progress(`entity rows loaded in ${Math.round(timings.entityLoadMs)} ms; engine ${result.engine}`);
      for (const view of timings.views) {
        progress(`  ${view.name.padEnd(24)} ${view.strategy.padEnd(11)} ${view.indexed ? 'indexed  ' : 'no index '} ${Math.round(view.ms)} ms`);
      }
      const writeStart = performance.now();
      await writeTable(options.out, result.table);
      progress(
        `wrote ${result.table.rowCount} rows × ${result.table.columns.length} columns to ${options.out} ` +
          `(${Math.round(performance.now() - writeStart)} ms; retrieval ${Math.round(timings.totalMs)} ms)`,
      );
      if (options.json) {
        out(
          `${JSON.stringify({
            out: options.out,
            rows: result.table.rowCount,
            columns: result.table.columns.map((c) => c.name),
            entity: result.entity,
            entityKeys: result.entityKeys,
            features: result.features,
            featureViews: result.featureViews,
            engine: result.engine,
            timings,
          })}\n`,
        );
      }
    });
}

// ---------------------------------------------------------------------------------------------
// stats

interface StatsOptions {
  start?: string;
  end?: string;
  features?: string;
  bins: string;
  json?: boolean;
}

function positiveInt(value: string, option: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidInput(`${option} must be a positive whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function statsCommand(): Command {
  return subcommand('stats')
    .description("Profile a feature view's offline rows (count, nulls, min/max/mean/std, quantiles, histogram or top values)")
    .argument('<view>', 'a feature view name')
    .option('--start <time>', 'only rows with event timestamp >= this ISO 8601 time')
    .option('--end <time>', 'only rows with event timestamp < this ISO 8601 time')
    .option('--features <names>', 'comma-separated features of the view (default: all)')
    .option('--bins <n>', 'histogram bins', '20')
    .option('--json', 'print the statistics as JSON on stdout')
    .action(async (view: string, options: StatsOptions) => {
      const bins = positiveInt(options.bins, '--bins');
      const features = options.features?.split(',').map((f) => f.trim()).filter((f) => f !== '');
      const startedAt = performance.now();
      const report = await withDb((db) =>
        featureViewStatisticsReport(db, { view, start: options.start, end: options.end, features, profile: { bins } }),
      );
      progress(`profiled ${report.profile.rowCount} rows of ${report.table} in ${Math.round(performance.now() - startedAt)} ms`);
      if (options.json) return out(`${JSON.stringify(report)}\n`);
      out(`${report.view} (version ${report.version}) ${report.table}, ${report.eventTimestamp} in [${report.start ?? '-∞'}, ${report.end ?? '∞'}): ${report.profile.rowCount} rows\n`);
      out(formatProfile(report.profile));
    });
}

const num = (value: number | null) => (value === null ? '-' : Number.isInteger(value) ? String(value) : value.toPrecision(6));

function formatColumn(column: ColumnProfile): string {
  if (column.type === 'number' || column.type === 'timestamp') {
    const ts = (value: number | null) => (value === null ? '-' : column.type === 'timestamp' ? new Date(value).toISOString() : num(value));
    return (
      `${column.name.padEnd(24)} ${column.type.padEnd(9)} count ${column.count} nulls ${column.nulls}  ` +
      `min ${ts(column.min)}  p50 ${ts(column.quantiles?.p50 ?? null)}  max ${ts(column.max)}  mean ${ts(column.mean)}  std ${num(column.std)}`
    );
  }
  const frequencies = column as FrequencyProfile;
  const top = frequencies.top.slice(0, 5).map((t) => `${t.value}=${t.count}`).join(' ');
  return `${column.name.padEnd(24)} ${column.type.padEnd(9)} count ${column.count} nulls ${column.nulls}  distinct ${frequencies.distinct}  ${top}${frequencies.distinct > 5 ? ' …' : ''}`;
}

function formatProfile(profile: TableProfile): string {
  return profile.columns.map((c) => `  ${formatColumn(c)}\n`).join('');
}

interface MaterializeOptions {
  views?: string;
  start?: string;
  end?: string;
  wait: boolean;
  taskQueue: string;
  json?: boolean;
}

function materializeCommand(): Command {
  return subcommand('materialize')
    .description('Run the materializeFeatures workflow: copy the latest values per entity into the online store, from each view\'s watermark')
    .option('--views <names>', 'comma-separated feature views (default: every online view)')
    .option('--start <time>', 'window start, ISO 8601 with a time zone (default: each view\'s watermark)')
    .option('--end <time>', 'window end and new watermark, ISO 8601 with a time zone (default: now)')
    .option('--no-wait', 'start the workflow and print its id')
    .option('--task-queue <name>', 'task queue of the orchestration worker', 'keel')
    .option('--json', 'print the workflow result as JSON on stdout')
    .action(async (options: MaterializeOptions) => {
      const views = options.views?.split(',').map((v) => v.trim()).filter((v) => v !== '');
      const client = await connectTemporalClient(loadConfig().temporal);
      try {
        const handle = await startMaterializeFeatures(
          client,
          { ...(views ? { views } : {}), ...(options.start ? { start: options.start } : {}), ...(options.end ? { end: options.end } : {}) },
          { taskQueue: options.taskQueue },
        );
        progress(`materializeFeatures ${handle.workflowId}`);
        if (!options.wait) return out(options.json ? `${JSON.stringify({ workflowId: handle.workflowId })}\n` : `${handle.workflowId}\n`);
        const result = await handle.result();
        if (options.json) return out(`${JSON.stringify(result)}\n`);
        for (const [view, r] of Object.entries(result.views)) {
          out(`${view.padEnd(28)} ${String(r.rowsWritten).padStart(9)} rows  watermark ${r.watermarkFrom ?? '-'} → ${r.watermarkTo}\n`);
        }
      } finally {
        await client.connection.close();
      }
    });
}

interface OnlineOptions {
  features?: string;
  service?: string;
  entity: string[];
  json?: boolean;
}

function onlineCommand(): Command {
  return subcommand('online')
    .description('Read the latest online values for entities, with the views\' TTL applied now (status present, expired or missing)')
    .option('--features <refs>', 'comma-separated view:feature references')
    .option('--service <name>', 'a feature service instead of --features')
    .option('--entity <json...>', 'one JSON object of join keys per entity, e.g. \'{"customer_id": 42}\'')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (options: OnlineOptions) => {
      if (!options.features === !options.service) throw new InvalidInput('give exactly one of --features and --service');
      if (!options.entity?.length) throw new InvalidInput('give at least one --entity \'{"key": value}\'');
      const entities = options.entity.map((text) => {
        try {
          const value = JSON.parse(text) as unknown;
          if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, string | number>;
        } catch {
          // reported below
        }
        throw new InvalidInput(`--entity ${text} is not a JSON object of join keys`);
      });
      const features = options.service ? { service: options.service } : options.features!.split(',').map((f) => f.trim());
      const result = await withDb((db) => getOnlineFeatures(db, { features, entities }));
      if (options.json) return out(`${JSON.stringify(result)}\n`);
      for (const row of result.rows) {
        const cells = Object.entries(row.values).map(([name, value]) => `${name}=${value === null ? `null(${row.statuses[name]})` : String(value)}`);
        out(`${JSON.stringify(row.entity)}  ${cells.join('  ')}\n`);
      }
    });
}
