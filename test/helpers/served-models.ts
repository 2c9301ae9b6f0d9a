/**
 * Registers real, servable model versions for gateway tests and benchmarks without running the
 * training workflow: fits a built-in trainer on a seeded synthetic churn table, exports ONNX and
 * stores the bundle exactly as `registerModel` does (storeModelBundle + registerModelVersion).
 */
import { featureSpecFor, applyFeatureSpec, labelsFromColumn } from '../../lib/data/features.js';
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
