import type { ModelVersion } from '../stores/registry.js';

/** A registry version as the API shows it; lineage and the feature spec only on the detail view. */
export function versionView(v: ModelVersion, detail: boolean) {
  const base = {
    model: v.model,
    version: v.version,
    aliases: v.aliases,
    trainer: v.trainer,
    metrics: v.metrics,
    gates: v.gates,
    bundle: { uri: v.bundleUri, sha256: v.bundleSha256 },
    dataHash: v.dataHash,
    trainingWorkflowId: v.trainingWorkflowId,
    trainingRunId: v.trainingRunId,
    codeVersion: v.codeVersion,
    createdBy: v.createdBy,
    createdAt: v.createdAt,
  };
  return detail ? { ...base, signature: v.signature, featureSpec: v.featureSpec, lineage: v.lineage } : base;
}
