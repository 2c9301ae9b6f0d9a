/**
 * What the training activities pass each other (references only) and the helpers they share to
 * turn references back into data: tables, row indexes and JSON documents in the artifact store.
 */
import { sortKeysDeep } from '../../lib/canonical-json.js';
import type { OnDemandSpecEntry } from '../../lib/features/on-demand.js';
import type { TableSchema, Table } from '../../lib/data/table.js';
import { takeTableRows } from '../../lib/data/table.js';
import type { ArtifactRef, ArtifactStore } from '../../stores/artifacts/index.js';
import { getTable } from '../../stores/datasets.js';

export interface FeatureViewVersion {
  name: string;
  version: string;
}

/** Where a training set came from; recorded in `datasets.source` and in lineage.json. */
export type TrainingSetSource =
  | { kind: 'file'; uri: string; sha256: string; holdoutUri?: string; holdoutSha256?: string }
  | { kind: 'table'; table: string; fingerprint: string; holdoutTable?: string; holdoutFingerprint?: string }
  | {
      kind: 'features';
      entities: string;
      timestampColumn: string;
      features: string[];
      featureService: string | null;
      featureViews: FeatureViewVersion[];
      backfillGuard: boolean;
      example: string | null;
      /** On-demand features computed on the joined rows: name, inputs, type and code hash. */
      onDemand: OnDemandSpecEntry[];
      /** Where the point-in-time join ran (absent in training sets built before it was recorded). */
      engine?: 'postgres' | 'duckdb';
    };

export interface TrainingSetRef {
  dataset: ArtifactRef;
  holdout: ArtifactRef | null;
  rows: number;
  holdoutRows: number;
  columns: TableSchema;
  source: TrainingSetSource;
  /** Columns that identify a row (never features). */
  entityKeys: string[];
  /** The row timestamp, when the data has one (never a feature). */
  timestampColumn: string | null;
}

/** Train/test rows: indexes into the dataset, or the whole dataset against the holdout file. */
export type SplitRef =
  | { kind: 'index'; train: ArtifactRef; test: ArtifactRef; trainRows: number; testRows: number }
  | { kind: 'holdout'; trainRows: number; testRows: number };

// Activities of one run mostly read the same one or two tables: keep the last few parsed.
const TABLE_CACHE_SIZE = 3;
const tableCache = new Map<string, Promise<Table>>();

export function loadTable(artifacts: ArtifactStore, ref: ArtifactRef | string): Promise<Table> {
  const sha256 = typeof ref === 'string' ? ref : ref.sha256;
  const key = `${artifacts.rootUri}#${sha256}`;
  let table = tableCache.get(key);
  if (!table) {
    table = getTable(artifacts, sha256);
    table.catch(() => tableCache.delete(key));
    tableCache.set(key, table);
    while (tableCache.size > TABLE_CACHE_SIZE) tableCache.delete(tableCache.keys().next().value!);
  }
  return table;
}

export async function putIndex(artifacts: ArtifactStore, index: Uint32Array): Promise<ArtifactRef> {
  return artifacts.put(new Uint8Array(index.buffer, index.byteOffset, index.byteLength));
}

export async function getIndex(artifacts: ArtifactStore, ref: ArtifactRef): Promise<Uint32Array> {
  const bytes = await artifacts.getBytes(ref.sha256);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Uint32Array(copy.buffer);
}

/** The training and test tables a split describes. */
export async function splitTables(
  artifacts: ArtifactStore,
  trainingSet: Pick<TrainingSetRef, 'dataset' | 'holdout'>,
  split: SplitRef,
): Promise<{ train: Table; test: Table }> {
  const table = await loadTable(artifacts, trainingSet.dataset);
  if (split.kind === 'holdout') {
    if (!trainingSet.holdout) throw new Error('split says holdout but the training set has none');
    return { train: table, test: await loadTable(artifacts, trainingSet.holdout) };
  }
  const [train, test] = await Promise.all([getIndex(artifacts, split.train), getIndex(artifacts, split.test)]);
  return { train: takeTableRows(table, train), test: takeTableRows(table, test) };
}

/** Pretty JSON with sorted keys (the same value always gives the same bytes and sha256) as an artifact. */
export function putJson(artifacts: ArtifactStore, value: unknown): Promise<ArtifactRef> {
  return artifacts.put(Buffer.from(`${JSON.stringify(sortKeysDeep(value), null, 2)}\n`));
}

export async function getJson<T>(artifacts: ArtifactStore, ref: ArtifactRef | string): Promise<T> {
  const bytes = await artifacts.getBytes(typeof ref === 'string' ? ref : ref.sha256);
  return JSON.parse(bytes.toString('utf8')) as T;
}
