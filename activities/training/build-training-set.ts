/**
 * `buildTrainingSet`: turns the pipeline's data source into one Parquet training set (and
 * holdout) in the artifact store — from files, a Postgres table, or labels joined point-in-time
 * with feature views — and returns references only.
 */
import { Context } from '@temporalio/activity';
import type { WorkerConfig } from '../../lib/config.js';
import { InvalidInput } from '../../lib/errors.js';
import type { OnDemandFeature } from '../../lib/features/on-demand.js';
import { applyOnDemandFeatures, onDemandRegistry, onDemandSpec } from '../../lib/features/on-demand.js';
import type { Table } from '../../lib/data/table.js';
import { findColumn, schemaOf } from '../../lib/data/table.js';
import type { DataSource } from '../../lib/schemas/training-pipeline.js';
import type { ArtifactStore } from '../../stores/artifacts/index.js';
import type { S3Access } from '../../stores/data-files.js';
import { openDataFile, readDataFile } from '../../stores/data-files.js';
import { putTable } from '../../stores/datasets.js';
import type { Db } from '../../stores/db.js';
import { getHistoricalFeatures } from '../../stores/features/historical.js';
import { readPostgresTable, tableFingerprint } from '../../stores/pg-table.js';
import { checkTableAccess } from '../../stores/table-access.js';
import { getDataset } from '../../stores/registry.js';
import { prepareExample } from './example-data.js';
import type { TrainingSetRef, TrainingSetSource } from './shared.js';
import { loadTable } from './shared.js';


export interface BuildTrainingSetInput {
  data: DataSource;
  entityKeys?: string[];
}

export interface BuildDeps {
  db: Db;
  artifacts: ArtifactStore;
  s3?: S3Access;
  onDemand?: readonly OnDemandFeature[];
  /** Engine `auto`: DuckDB from this many entity rows (default `DUCKDB_AUTO_MIN_ROWS`). */
  duckdbAutoMinRows?: number;
  /** The folders and schemas this worker's operator allows data to be read from. */
  worker: Pick<WorkerConfig, 'dataRoots' | 'dataSchemas'>;
}

const TIMESTAMP_GUESS = 'event_timestamp';

export async function buildTrainingSet(deps: BuildDeps, input: BuildTrainingSetInput): Promise<TrainingSetRef> {
  const { data } = input;
  switch (data.kind) {
    case 'file':
      return fromFiles(deps, data, input.entityKeys);
    case 'table':
      return fromTables(deps, data, input.entityKeys);
    case 'features':
      await checkTableAccess(deps.db, data.entities, deps.worker.dataSchemas, 'data.entities');
      return fromFeatureViews(deps, data);
    case 'dataset':
      return fromDataset(deps, data, input.entityKeys);
  }
}

async function store(deps: BuildDeps, table: Table, holdout: Table | null, source: TrainingSetSource, entityKeys: string[], timestampColumn: string | null): Promise<TrainingSetRef> {
  if (table.rowCount === 0) throw new InvalidInput('the training data is empty (0 rows)', 'data');
  if (holdout && holdout.rowCount === 0) throw new InvalidInput('the holdout data is empty (0 rows)', 'data.holdout');
  const dataset = await putTable(deps.artifacts, table);
  const holdoutRef = holdout ? await putTable(deps.artifacts, holdout) : null;
  return {
    dataset,
    holdout: holdoutRef,
    rows: table.rowCount,
    holdoutRows: holdout?.rowCount ?? 0,
    columns: schemaOf(table),
    source,
    entityKeys,
    timestampColumn,
  };
}

/** The row timestamp of user data: `event_timestamp` when it is a timestamp column. */
function guessTimestamp(table: Table): string | null {
  return findColumn(table, TIMESTAMP_GUESS)?.type === 'timestamp' ? TIMESTAMP_GUESS : null;
}

async function fromFiles(deps: BuildDeps, data: Extract<DataSource, { kind: 'file' }>, entityKeys: string[] = []) {
  const roots = deps.worker.dataRoots;
  const train = await openDataFile(data.uri, { s3: deps.s3, expectedSha256: data.sha256, field: 'data.uri', roots });
  try {
    const table = await readDataFile(train, 'data.uri');
    let holdout: Table | null = null;
    let holdoutSha256: string | undefined;
    if (data.holdoutUri) {
      const file = await openDataFile(data.holdoutUri, { s3: deps.s3, expectedSha256: data.holdoutSha256, field: 'data.holdoutUri', roots });
      try {
        holdout = await readDataFile(file, 'data.holdoutUri');
        holdoutSha256 = file.sha256;
      } finally {
        await file.cleanup();
      }
    }
    const source: TrainingSetSource = {
      kind: 'file',
      uri: data.uri,
      sha256: train.sha256,
      ...(data.holdoutUri ? { holdoutUri: data.holdoutUri, holdoutSha256 } : {}),
    };
    return await store(deps, table, holdout, source, entityKeys, guessTimestamp(table));
  } finally {
    await train.cleanup();
  }
}

async function fromTables(deps: BuildDeps, data: Extract<DataSource, { kind: 'table' }>, entityKeys: string[] = []) {
  await checkTableAccess(deps.db, data.table, deps.worker.dataSchemas, 'data.table');
  if (data.holdoutTable) await checkTableAccess(deps.db, data.holdoutTable, deps.worker.dataSchemas, 'data.holdoutTable');
  const table = await readPostgresTable(deps.db, data.table);
  const holdout = data.holdoutTable ? await readPostgresTable(deps.db, data.holdoutTable) : null;
  const source: TrainingSetSource = {
    kind: 'table',
    table: data.table,
    fingerprint: await tableFingerprint(deps.db, data.table),
    ...(data.holdoutTable ? { holdoutTable: data.holdoutTable, holdoutFingerprint: await tableFingerprint(deps.db, data.holdoutTable) } : {}),
  };
  return store(deps, table, holdout, source, entityKeys, guessTimestamp(table));
}

async function fromFeatureViews(deps: BuildDeps, data: Extract<DataSource, { kind: 'features' }>) {
  if (data.example) await prepareExample(deps.db, data.example, data.exampleOptions, (line) => heartbeatQuietly(line));
  const request = data.features ? data.features : { service: data.featureService };
  const result = await getHistoricalFeatures(deps.db, {
    entities: { table: data.entities },
    timestampColumn: data.timestampColumn,
    features: request,
    backfillGuard: data.backfillGuard,
    engine: data.engine ?? 'auto',
    autoMinRows: deps.duckdbAutoMinRows,
    artifacts: deps.artifacts,
  });
  const onDemand = pickOnDemand(deps.onDemand ?? [], data.onDemand);
  const table = onDemand.length ? applyOnDemandFeatures(result.table, onDemand) : result.table;
  const source: TrainingSetSource = {
    kind: 'features',
    entities: data.entities,
    timestampColumn: data.timestampColumn,
    features: result.features,
    featureService: data.features ? null : data.featureService,
    featureViews: result.featureViews,
    backfillGuard: data.backfillGuard,
    example: data.example,
    onDemand: onDemandSpec(onDemand),
    engine: result.engine,
  };
  return store(deps, table, null, source, result.entityKeys, data.timestampColumn);
}

async function fromDataset(deps: BuildDeps, data: Extract<DataSource, { kind: 'dataset' }>, entityKeys: string[] = []): Promise<TrainingSetRef> {
  const dataset = await deps.artifacts.stat(data.sha256);
  if (!dataset) throw new InvalidInput(`no training set with sha256 ${data.sha256} in ${deps.artifacts.rootUri}`, 'data.sha256');
  const holdout = data.holdoutSha256 ? await deps.artifacts.stat(data.holdoutSha256) : null;
  if (data.holdoutSha256 && !holdout) {
    throw new InvalidInput(`no holdout with sha256 ${data.holdoutSha256} in ${deps.artifacts.rootUri}`, 'data.holdoutSha256');
  }
  const [table, holdoutTable] = await Promise.all([loadTable(deps.artifacts, dataset), holdout ? loadTable(deps.artifacts, holdout) : null]);
  // A recorded dataset keeps the source it was built from, so a reproduced run has the same lineage.
  const recorded = (await getDataset(deps.db, data.sha256))?.source as RecordedSource | undefined;
  return {
    dataset,
    holdout,
    rows: table.rowCount,
    holdoutRows: holdoutTable?.rowCount ?? 0,
    columns: schemaOf(table),
    source: recorded?.source ?? { kind: 'table', table: 'unknown', fingerprint: data.sha256 },
    entityKeys: entityKeys.length ? entityKeys : (recorded?.entityKeys ?? []),
    timestampColumn: recorded ? recorded.timestampColumn : guessTimestamp(table),
  };
}

/** What `datasets.source` holds (written by validateData). */
export interface RecordedSource {
  source: TrainingSetSource;
  entityKeys: string[];
  timestampColumn: string | null;
}

/** The worker's on-demand functions named by the pipeline, in the order asked. */
function pickOnDemand(available: readonly OnDemandFeature[], names: readonly string[]): OnDemandFeature[] {
  const byName = onDemandRegistry(available);
  return names.map((name) => {
    const def = byName.get(name);
    if (!def) {
      const known = [...byName.keys()].join(', ') || 'none';
      throw new InvalidInput(`unknown on-demand feature ${name} (this worker has: ${known})`, 'data.onDemand');
    }
    return def;
  });
}

function heartbeatQuietly(message: string): void {
  try {
    Context.current().heartbeat({ message });
  } catch {
    // outside an activity (tests calling the function directly)
  }
}
