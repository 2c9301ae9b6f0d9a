/**
 * Registers real, servable model versions for gateway tests and benchmarks without running the
 * training workflow: fits a built-in trainer on a seeded synthetic churn table, exports ONNX and
 * stores the bundle exactly as `registerModel` does (storeModelBundle + registerModelVersion).
 */
import { applyFeatureSpec, defaultFeatureColumns, featureSpecFor, labelsFromColumn } from '../../lib/data/features.js';
import type { FeatureSpec } from '../../lib/data/features.js';
import type { Table } from '../../lib/data/table.js';
import { signatureFor } from '../../lib/ml/signature.js';
import { fitBuiltIn } from '../../activities/training/fit.js';
import { storeModelBundle } from '../../activities/training/register-model.js';
import type { ArtifactStore } from '../../stores/artifacts/index.js';
import { putTable } from '../../stores/datasets.js';
import type { Db } from '../../stores/db.js';
import { recordDataset, registerModelVersion, setAlias } from '../../stores/registry.js';
import { syntheticChurnTable } from './training-data.js';
import { CHURN_FEATURE_SERVICE, CHURN_LABEL, churnDefinitionsFor } from '../../examples/churn/features.js';
import { ensureChurnExample } from '../../examples/churn/generate.js';
import { churnOnDemandFeatures } from '../../examples/churn/on-demand.js';
import type { OnDemandFeature } from '../../lib/features/on-demand.js';
import { applyOnDemandFeatures, onDemandSpec } from '../../lib/features/on-demand.js';
import { getHistoricalFeatures } from '../../stores/features/historical.js';
import { listOnlineViews, materializeFeatureView } from '../../stores/features/materialize.js';
import { applyFeatureDefinitions } from '../../stores/features/registry.js';

/** The synthetic churn table's feature columns (see training-data.ts). */
export const SERVED_FEATURES = ['tenure_months', 'monthly_spend', 'support_tickets', 'plan'] as const;

export interface ServedModelOptions {
  model: string;
  trainer?: 'gbdt' | 'logreg';
  /** Trainer params, e.g. {maxIter: 100} for a 100-tree gbdt. */
  params?: Record<string, unknown>;
  /** Training rows of the synthetic table (default 2 000) or a table of one's own. */
  rows?: number;
  seed?: number;
  table?: Table;
  label?: string;
  features?: readonly string[];
  /** Merged into feature_spec.json: e.g. featureViews / onDemand for enrichment tests. */
  featureSpecExtras?: Record<string, unknown>;
  /** Aliases to point at the new version, e.g. ['champion']. */
  aliases?: string[];
}

export interface ServedModelVersion {
  model: string;
  version: number;
  bundleSha256: string;
  featureNames: string[];
  featureSpec: FeatureSpec & Record<string, unknown>;
}

export async function registerServedModel(deps: { db: Db; artifacts: ArtifactStore }, options: ServedModelOptions): Promise<ServedModelVersion> {
  const trainer = options.trainer ?? 'logreg';
  const label = options.label ?? 'churned';
  const table = options.table ?? syntheticChurnTable({ rows: options.rows ?? 2_000, seed: options.seed ?? 1 });
  const featureNames = [...(options.features ?? SERVED_FEATURES)];
  const spec = featureSpecFor(table, featureNames, label);
  const featureSpec = { ...spec, featureViews: [], onDemand: [], ...options.featureSpecExtras };
  const x = applyFeatureSpec(table, spec);
  const y = labelsFromColumn(table, label);
  const fitted = await fitBuiltIn({ kind: trainer, params: options.params ?? {} }, x, y, options.seed ?? 1);
  const onnx = await deps.artifacts.put(fitted.toOnnx());
  const dataset = await putTable(deps.artifacts, table);
  await recordDataset(deps.db, {
    sha256: dataset.sha256,
    uri: dataset.uri,
    sizeBytes: dataset.size,
    rowCount: table.rowCount,
    columns: table.columns.map((c) => ({ name: c.name, type: c.type })),
    source: { kind: 'test', generator: 'syntheticChurnTable' },
    profileUri: null,
    profileSha256: null,
  });
  const signature = signatureFor(trainer, featureNames);
  const lineage = { format: 'keel-lineage', version: 1, model: options.model, dataset: { uri: dataset.uri, sha256: dataset.sha256 }, trainer, params: options.params ?? {} };
  const { bundle } = await storeModelBundle(deps.artifacts, { onnx, signature, featureSpec, metrics: {}, lineage });
  const { version } = await registerModelVersion(
    deps.db,
    {
      model: options.model,
      bundleUri: bundle.uri,
      bundleSha256: bundle.sha256,
      onnxSha256: onnx.sha256,
      trainer,
      metrics: {},
      gates: [],
      signature,
      featureSpec,
      lineage,
      dataHash: dataset.sha256,
      // Unique per registration, so each call makes a new version.
      trainingWorkflowId: `test-${options.model}-${bundle.sha256.slice(0, 12)}`,
      trainingRunId: `${Date.now()}-${Math.random().toString(36).slice(2)}`,
      codeVersion: 'test',
      createdBy: 'test',
    },
    [],
  );
  for (const alias of options.aliases ?? []) await setAlias(deps.db, options.model, alias, version);
  return { model: options.model, version, bundleSha256: bundle.sha256, featureNames, featureSpec };
}

export interface ChurnFeatureModelOptions {
  model: string;
  trainer?: 'gbdt' | 'logreg';
  params?: Record<string, unknown>;
  /** Label rows of the generated churn example (default 2 000). */
  labelRows?: number;
  /** Postgres schema of the example (default `churn`). */
  schema?: string;
  /** On-demand features computed on the joined rows and recorded in the spec (default the churn example's). */
  onDemand?: readonly OnDemandFeature[];
  aliases?: string[];
}

/**
 * A model of the churn example trained on point-in-time features, whose feature spec names the
 * feature views (with versions) and on-demand functions, so the gateway can serve it from
 * `{entity: {customer_id}}`. The example's period ends today, and every online view is
 * materialized up to now, so online reads find values inside their TTL.
 */
export async function registerChurnFeatureModel(
  deps: { db: Db; artifacts: ArtifactStore },
  options: ChurnFeatureModelOptions,
): Promise<ServedModelVersion & { customerIds: number[] }> {
  const schema = options.schema ?? 'churn';
  const months = 3;
  const start = new Date();
  start.setUTCMonth(start.getUTCMonth() - months);
  await ensureChurnExample(deps.db, { labelRows: options.labelRows ?? 2_000, schema, months, start: start.toISOString().slice(0, 10) });
  await applyFeatureDefinitions(deps.db, churnDefinitionsFor(schema));
  const now = new Date();
  for (const view of await listOnlineViews(deps.db)) await materializeFeatureView(deps.db, { view, end: now, runId: 'test' });
  const retrieved = await getHistoricalFeatures(deps.db, { entities: { table: `${schema}.labels` }, features: { service: CHURN_FEATURE_SERVICE } });
  const onDemand = options.onDemand ?? churnOnDemandFeatures;
  const table = onDemand.length ? applyOnDemandFeatures(retrieved.table, onDemand) : retrieved.table;
  const features = defaultFeatureColumns(table, { label: CHURN_LABEL, entityKeys: retrieved.entityKeys });
  const served = await registerServedModel(deps, {
    model: options.model,
    trainer: options.trainer ?? 'gbdt',
    params: options.params ?? { maxIter: 20 },
    table,
    label: CHURN_LABEL,
    features,
    featureSpecExtras: { featureViews: retrieved.featureViews, onDemand: onDemandSpec(onDemand) },
    aliases: options.aliases ?? [],
  });
  const { rows } = await deps.db.query<{ id: number }>(`SELECT DISTINCT customer_id::int AS id FROM ${schema}.labels ORDER BY 1`);
  return { ...served, customerIds: rows.map((r) => r.id) };
}
