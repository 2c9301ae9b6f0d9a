/**
 * Loads one registered model version for serving: the registry row, then `bundle.json` and every
 * file it lists by sha256 (checked on every read, also from the local cache), the signature and
 * feature spec checked against each other, the ONNX session created (lib/onnx/scorer.ts runs a
 * probe batch) and warmed up with a batch of realistic size. Only a model that got through all of
 * this is handed to the serving state; any failure is a `ModelLoadError` naming model@version.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FeatureSpec } from '../../lib/data/features.js';
import { KeelError } from '../../lib/errors.js';
import type { ModelSignature } from '../../lib/ml/signature.js';
import { loadOnnxScorer, type OnnxScorer } from '../../lib/onnx/scorer.js';
import type { ArtifactStore } from '../../stores/artifacts/index.js';
import type { Db } from '../../stores/db.js';
import { getModelVersion } from '../../stores/registry.js';
import { createMicroBatcher, type MicroBatcherStats } from './micro-batcher.js';
import type { ServedFeatureSpec, ServedModel } from './types.js';

export class ModelLoadError extends KeelError {
  constructor(message: string) {
    super('ModelLoadError', message);
  }
}

export interface BatchingOptions {
  /** How long a single row waits for others, ms; 0 = the next event-loop turn. Default 0. */
  maxWaitMs: number;
  /** Largest micro-batch; default 256. */
  maxBatchRows: number;
}

export const DEFAULT_BATCHING: BatchingOptions = { maxWaitMs: 0, maxBatchRows: 256 };

export interface ModelLoaderDeps {
  db: Db;
  artifacts: ArtifactStore;
  /** Where bundle files are kept between restarts; none = read from the artifact store each time. */
  cacheDir?: string;
  batching?: BatchingOptions;
}

export interface LoadedModel extends ServedModel {
  batchingStats(): MicroBatcherStats;
  release(): Promise<void>;
}

const BUNDLE_FILES = ['model.onnx', 'signature.json', 'feature_spec.json'] as const;
const WARM_UP_ROWS = 64;

export async function loadServedModel(deps: ModelLoaderDeps, model: string, version: number): Promise<LoadedModel> {
  const what = `${model}@${version}`;
  const fail = (reason: string): never => {
    throw new ModelLoadError(`cannot serve ${what}: ${reason}`);
  };
  const row = await getModelVersion(deps.db, model, version);
  const read = (sha256: string, name: string) =>
    readArtifact(deps, sha256).catch((error: unknown) => fail(`${name} (${sha256.slice(0, 12)}…): ${(error as Error).message}`));
  const manifest = parseJson<{ format?: string; files?: Record<string, { sha256?: string }> }>(await read(row.bundleSha256, 'bundle.json'), 'bundle.json', fail);
  if (manifest.format !== 'keel-model-bundle' || !manifest.files) fail('bundle.json is not a keel-model-bundle manifest');
  const files = manifest.files!;
  for (const name of BUNDLE_FILES) if (!files[name]?.sha256) fail(`the bundle lists no ${name}`);
  if (files['model.onnx']!.sha256 !== row.onnxSha256) fail(`the bundle's model.onnx (${files['model.onnx']!.sha256}) is not the registered ONNX (${row.onnxSha256})`);
  const [onnx, signatureBytes, specBytes] = await Promise.all(BUNDLE_FILES.map((name) => read(files[name]!.sha256!, name)));
  const signature = parseJson<ModelSignature>(signatureBytes!, 'signature.json', fail);
  const featureSpec = parseJson<ServedFeatureSpec>(specBytes!, 'feature_spec.json', fail);
  const featureNames = signature.inputs?.[0]?.features;
  if (!Array.isArray(featureNames) || featureNames.length === 0) fail('signature.json names no input features');
  const specNames = (featureSpec as FeatureSpec).features?.map((f) => f.name) ?? [];
  if (specNames.join('\u0000') !== featureNames!.join('\u0000')) {
    fail(`signature.json features (${featureNames!.join(', ')}) differ from feature_spec.json (${specNames.join(', ')})`);
  }
  let scorer: OnnxScorer;
  try {
    // One thread per session: single rows and small batches are latency-bound, and a gateway on
    // a small machine serves many requests at once.
    scorer = await loadOnnxScorer(onnx!, featureNames!, {
      label: `${what} model.onnx`,
      sessionOptions: { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' },
    });
  } catch (error) {
    return fail((error as Error).message);
  }
  const cols = featureNames!.length;
  const predictMany = async (data: Float64Array, rows: number) => scorer.predictProba({ data, rows, cols, names: featureNames! });
  try {
    // Warm-up: the first runs of a session allocate; do them before traffic does.
    for (let i = 0; i < 3; i++) await predictMany(new Float64Array(WARM_UP_ROWS * cols), WARM_UP_ROWS);
  } catch (error) {
    await scorer.release();
    return fail(`warm-up failed: ${(error as Error).message}`);
  }
  const batching = deps.batching ?? DEFAULT_BATCHING;
  const batcher = createMicroBatcher({ cols, maxWaitMs: batching.maxWaitMs, maxBatchRows: batching.maxBatchRows, run: predictMany });
  let released = false;
  return {
    model,
    version,
    bundleSha256: row.bundleSha256,
    signature,
    featureNames: featureNames!,
    featureSpec,
    predictOne: (values) => batcher.submit(values),
    predictMany,
    batchingStats: () => batcher.stats(),
    release: async () => {
      if (released) return;
      released = true;
      await scorer.release();
    },
  };
}

function parseJson<T>(bytes: Uint8Array, name: string, fail: (reason: string) => never): T {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  } catch (error) {
    return fail(`${name} is not JSON: ${(error as Error).message}`);
  }
}

/** An artifact's bytes, from the local cache when it holds a copy that still hashes right. */
async function readArtifact(deps: ModelLoaderDeps, sha256: string): Promise<Uint8Array> {
  if (!deps.cacheDir) return deps.artifacts.getBytes(sha256);
  const cached = path.join(deps.cacheDir, sha256);
  const local = await readFile(cached).catch(() => undefined);
  if (local && createHash('sha256').update(local).digest('hex') === sha256) return local;
  const bytes = await deps.artifacts.getBytes(sha256);
  await mkdir(deps.cacheDir, { recursive: true });
  const temp = `${cached}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(temp, bytes);
    await rename(temp, cached);
  } catch {
    await rm(temp, { force: true }); // a cache that cannot be written only costs a download next time
  }
  return bytes;
}
