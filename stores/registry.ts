/**
 * The model registry in Postgres: models, immutable versions with their bundle and lineage, and
 * aliases. Registration is idempotent per (model, training workflow id, run id) and per (model,
 * bundle sha256): a retried or replayed activity, or a second training of the same data and
 * config, gets the version registered the first time.
 */
import { InvalidInput, KeelError } from '../lib/errors.js';
import type { Db, DbClient } from './db.js';
import { withTransaction } from './db.js';

export interface DatasetRecord {
  sha256: string;
  uri: string;
  sizeBytes: number;
  rowCount: number;
  columns: unknown;
  source: unknown;
  profileUri: string | null;
  profileSha256: string | null;
  createdAt?: string;
}

export interface NewModelVersion {
  model: string;
  bundleUri: string;
  bundleSha256: string;
  onnxSha256: string;
  trainer: string;
  metrics: unknown;
  gates: unknown;
  signature: unknown;
  featureSpec: unknown;
  lineage: unknown;
  dataHash: string;
  trainingWorkflowId: string;
  trainingRunId: string;
  codeVersion: string;
  createdBy: string;
}

export interface ModelVersion extends NewModelVersion {
  version: number;
  aliases: string[];
  createdAt: string;
}

export interface ModelSummary {
  name: string;
  description: string;
  createdAt: string;
  latestVersion: number | null;
  versionCount: number;
  aliases: Record<string, number>;
}

export class NotFound extends KeelError {
  constructor(message: string, field?: string) {
    super('NotFound', message, field);
  }
}

/** Records a training set; the same sha256 twice keeps the first record. */
export async function recordDataset(db: Db, dataset: DatasetRecord): Promise<void> {
  await db.query(
    `INSERT INTO datasets (sha256, uri, size_bytes, row_count, columns, source, profile_uri, profile_sha256)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (sha256) DO UPDATE
       SET profile_uri = COALESCE(datasets.profile_uri, EXCLUDED.profile_uri),
           profile_sha256 = COALESCE(datasets.profile_sha256, EXCLUDED.profile_sha256)`,
    [
      dataset.sha256,
      dataset.uri,
      dataset.sizeBytes,
      dataset.rowCount,
      JSON.stringify(dataset.columns),
      JSON.stringify(dataset.source),
      dataset.profileUri,
      dataset.profileSha256,
    ],
  );
}

export async function getDataset(db: Db, sha256: string): Promise<DatasetRecord | undefined> {
  const { rows } = await db.query(`SELECT * FROM datasets WHERE sha256 = $1`, [sha256]);
  const row = rows[0];
  if (!row) return undefined;
  return {
    sha256: row.sha256,
    uri: row.uri,
    sizeBytes: Number(row.size_bytes),
    rowCount: Number(row.row_count),
    columns: row.columns,
    source: row.source,
    profileUri: row.profile_uri,
    profileSha256: row.profile_sha256,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/**
 * Adds the next version of `model` (creating the model on first use) and points `aliases` at it,
 * in one transaction. Idempotent: the same workflow run gets its existing version back, and so
 * does any run whose bundle the model already holds (same data and config, trained again): then
 * nothing changes, aliases included. The model row lock serialises registrations per model; the
 * unique (model, bundle_sha256) index (migration 0007) guards the rule in the database too.
 */
export async function registerModelVersion(
  db: Db,
  entry: NewModelVersion,
  aliases: readonly string[] = [],
): Promise<{ version: number; created: boolean }> {
  try {
    return await insertModelVersion(db, entry, aliases);
  } catch (error) {
    // Only a writer that bypassed the model lock can win the race: its version is the answer.
    if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
    const existing = await existingVersion(db, entry);
    if (existing === undefined) throw error;
    return { version: existing, created: false };
  }
}

const UNIQUE_VIOLATION = '23505';

async function existingVersion(client: DbClient | Db, entry: NewModelVersion): Promise<number | undefined> {
  const { rows } = await client.query<{ version: number }>(
    `SELECT version FROM model_versions
      WHERE model = $1 AND ((training_workflow_id = $2 AND training_run_id = $3) OR (bundle_sha256 = $4 AND duplicate_of IS NULL))
      ORDER BY version LIMIT 1`,
    [entry.model, entry.trainingWorkflowId, entry.trainingRunId, entry.bundleSha256],
  );
  return rows[0]?.version;
}

async function insertModelVersion(db: Db, entry: NewModelVersion, aliases: readonly string[]): Promise<{ version: number; created: boolean }> {
  return withTransaction(db, async (client) => {
    await client.query(`INSERT INTO models (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, [entry.model]);
    // Serialises version numbering per model.
    await client.query(`SELECT name FROM models WHERE name = $1 FOR UPDATE`, [entry.model]);
    const existing = await existingVersion(client, entry);
    if (existing !== undefined) return { version: existing, created: false };
    const next = await client.query<{ next: number }>(
      `SELECT COALESCE(MAX(version), 0) + 1 AS next FROM model_versions WHERE model = $1`,
      [entry.model],
    );
    const version = next.rows[0]!.next;
    await client.query(
      `INSERT INTO model_versions (model, version, bundle_uri, bundle_sha256, onnx_sha256, trainer, metrics, gates,
         signature, feature_spec, lineage, data_hash, training_workflow_id, training_run_id, code_version, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
      [
        entry.model,
        version,
        entry.bundleUri,
        entry.bundleSha256,
        entry.onnxSha256,
        entry.trainer,
        JSON.stringify(entry.metrics),
        JSON.stringify(entry.gates),
        JSON.stringify(entry.signature),
        JSON.stringify(entry.featureSpec),
        JSON.stringify(entry.lineage),
        entry.dataHash,
        entry.trainingWorkflowId,
        entry.trainingRunId,
        entry.codeVersion,
        entry.createdBy,
      ],
    );
    for (const alias of aliases) await setAliasWith(client, entry.model, alias, version);
    return { version, created: true };
  });
}

export async function setAlias(db: Db, model: string, alias: string, version: number): Promise<void> {
  await withTransaction(db, (client) => setAliasWith(client, model, alias, version));
}

async function setAliasWith(client: DbClient, model: string, alias: string, version: number): Promise<void> {
  await client.query(
    `INSERT INTO model_aliases (model, alias, version) VALUES ($1, $2, $3)
     ON CONFLICT (model, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()`,
    [model, alias, version],
  );
}

/** The version an alias points at, or undefined. */
export async function aliasVersion(db: Db, model: string, alias: string): Promise<number | undefined> {
  const { rows } = await db.query<{ version: number }>(`SELECT version FROM model_aliases WHERE model = $1 AND alias = $2`, [model, alias]);
  return rows[0]?.version;
}

export async function listModels(db: Db): Promise<ModelSummary[]> {
  const { rows } = await db.query(
    `SELECT m.name, m.description, m.created_at,
            (SELECT MAX(version) FROM model_versions v WHERE v.model = m.name) AS latest,
            (SELECT COUNT(*) FROM model_versions v WHERE v.model = m.name) AS count,
            COALESCE((SELECT jsonb_object_agg(alias, version) FROM model_aliases a WHERE a.model = m.name), '{}'::jsonb) AS aliases
       FROM models m ORDER BY m.name`,
  );
  return rows.map((row) => ({
    name: row.name,
    description: row.description,
    createdAt: new Date(row.created_at).toISOString(),
    latestVersion: row.latest === null ? null : Number(row.latest),
    versionCount: Number(row.count),
    aliases: row.aliases,
  }));
}

export async function listVersions(db: Db, model: string): Promise<ModelVersion[]> {
  await requireModel(db, model);
  const { rows } = await db.query(`${VERSION_SELECT} WHERE v.model = $1 ORDER BY v.version`, [model]);
  return rows.map(versionFromRow);
}

/** `ref` is a version number or an alias (`3`, `v3`, `champion`). */
export async function getModelVersion(db: Db, model: string, ref: string | number): Promise<ModelVersion> {
  await requireModel(db, model);
  let version: number | undefined;
  const text = String(ref);
  if (/^v?\d+$/.test(text)) version = Number(text.replace(/^v/, ''));
  else {
    version = await aliasVersion(db, model, text);
    if (version === undefined) throw new NotFound(`model ${model} has no alias ${text}`, 'version');
  }
  const { rows } = await db.query(`${VERSION_SELECT} WHERE v.model = $1 AND v.version = $2`, [model, version]);
  if (!rows[0]) throw new NotFound(`model ${model} has no version ${version}`, 'version');
  return versionFromRow(rows[0]);
}

/** Parses `name@version` / `name@alias` (bare `name` means the latest version). */
export function parseModelRef(ref: string): { model: string; version: string } {
  const match = /^([a-z_][a-z0-9_]{0,62})(?:@([A-Za-z0-9_]+))?$/.exec(ref);
  if (!match) throw new InvalidInput(`${JSON.stringify(ref)} is not a model reference (name, name@version or name@alias)`, 'model');
  return { model: match[1]!, version: match[2] ?? 'latest' };
}

/** Like getModelVersion, with `latest` meaning the highest version. */
export async function resolveModelVersion(db: Db, model: string, ref: string): Promise<ModelVersion> {
  if (ref !== 'latest') return getModelVersion(db, model, ref);
  await requireModel(db, model);
  const { rows } = await db.query<{ latest: number | null }>(`SELECT MAX(version) AS latest FROM model_versions WHERE model = $1`, [model]);
  const latest = rows[0]?.latest;
  if (latest === null || latest === undefined) throw new NotFound(`model ${model} has no versions yet`, 'version');
  return getModelVersion(db, model, latest);
}

async function requireModel(db: Db, model: string): Promise<void> {
  const { rows } = await db.query(`SELECT 1 FROM models WHERE name = $1`, [model]);
  if (!rows[0]) throw new NotFound(`no model named ${model}`, 'model');
}

const VERSION_SELECT = `
  SELECT v.*, COALESCE((SELECT array_agg(alias ORDER BY alias) FROM model_aliases a
                        WHERE a.model = v.model AND a.version = v.version), '{}') AS aliases
    FROM model_versions v`;

function versionFromRow(row: Record<string, unknown>): ModelVersion {
  return {
    model: row.model as string,
    version: Number(row.version),
    aliases: row.aliases as string[],
    bundleUri: row.bundle_uri as string,
    bundleSha256: row.bundle_sha256 as string,
    onnxSha256: row.onnx_sha256 as string,
    trainer: row.trainer as string,
    metrics: row.metrics,
    gates: row.gates,
    signature: row.signature,
    featureSpec: row.feature_spec,
    lineage: row.lineage,
    dataHash: row.data_hash as string,
    trainingWorkflowId: row.training_workflow_id as string,
    trainingRunId: row.training_run_id as string,
    codeVersion: row.code_version as string,
    createdBy: row.created_by as string,
    createdAt: new Date(row.created_at as string).toISOString(),
  };
}
