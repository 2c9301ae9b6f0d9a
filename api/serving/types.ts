/**
 * The contracts between the gateway's parts: model loading and routing (model-loader.ts,
 * routing.ts, routing-follower.ts), the prediction log (prediction-log.ts), authentication
 * (../auth.ts) and the protocol routes (../routes/predict.ts, oip.ts, mlflow.ts, feedback.ts).
 */
import type { FeatureSpec } from '../../lib/data/features.js';
import type { OnDemandSpecEntry } from '../../lib/features/on-demand.js';
import type { ModelSignature } from '../../lib/ml/signature.js';

export type RouteMode = 'live' | 'shadow';

/** One version of a model as the gateway serves it: loaded, verified and warmed up. */
export interface ServedModel {
  readonly model: string;
  readonly version: number;
  readonly bundleSha256: string;
  readonly signature: ModelSignature;
  /** Feature names in the order the model takes them (signature.inputs[0].features). */
  readonly featureNames: readonly string[];
  /** The bundle's feature_spec.json: encoding, feature views read online, on-demand functions. */
  readonly featureSpec: ServedFeatureSpec;
  /**
   * P(y = 1) for one row (length = featureNames.length, NaN = missing). Concurrent calls are
   * micro-batched into one onnxruntime run (bounded wait).
   */
  predictOne(row: Float64Array): Promise<number>;
  /** P(y = 1) for `rows` rows, row-major in `data`; one onnxruntime run per batch. */
  predictMany(data: Float64Array, rows: number): Promise<Float64Array>;
}

/**
 * feature_spec.json: the encoding (`features`: name, type, category dictionary, in model order)
 * plus what serving needs to fill features itself. Other members are kept as they are.
 */
export interface ServedFeatureSpec extends FeatureSpec {
  /** Feature views with their registry versions, for online enrichment. */
  featureViews?: Array<{ name: string; version: string; features?: string[] }>;
  onDemand?: OnDemandSpecEntry[];
  [key: string]: unknown;
}

export interface RouteTarget {
  version: number;
  /** Share of live traffic in [0, 1]; 0 for shadow routes. */
  weight: number;
  mode: RouteMode;
  /** The name predictions and metrics carry, e.g. `control` / `candidate` / `v3`. */
  variant: string;
}

/** A model's routing as applied by a gateway. */
export interface ModelRouting {
  model: string;
  /** Generation of this model's routing (0 when it is the implicit champion route). */
  generation: number;
  salt: string;
  /** Live targets, weights summing to 1, in a fixed order (by version). */
  live: RouteTarget[];
  shadow: RouteTarget[];
  /** True when there is no `routes` row and the `champion` alias serves all traffic. */
  implicit: boolean;
}

/** An immutable snapshot of everything the gateway serves; swapped atomically as a whole. */
export interface ServingSnapshot {
  /** The highest routing generation this snapshot reflects. */
  generation: number;
  routing: ReadonlyMap<string, ModelRouting>;
  /** Loaded models by `model@version`. Every target of every routing entry is present. */
  models: ReadonlyMap<string, ServedModel>;
}

export function modelKey(model: string, version: number): string {
  return `${model}@${version}`;
}

/** Of the model's online features for one entity row: how many were present, expired, missing. */
export interface FeaturePresence {
  present: number;
  expired: number;
  missing: number;
}

/** One served prediction, live or shadow, as the log stores it. */
export interface PredictionRecord {
  requestId: string;
  model: string;
  version: number;
  variant: string;
  mode: RouteMode;
  /** The features as used (after enrichment and on-demand), by name. */
  features: Record<string, number | string | boolean | null>;
  /**
   * The request's JSON text when its `features` member is exactly `features`: the log stores the
   * features from this text (Postgres parses it) instead of serialising them again, which cost
   * ~5 µs of the gateway's CPU per record (20 numbers formatted).
   */
  requestJson?: string;
  /** e.g. {prediction: 1, probability: 0.83} */
  output: Record<string, unknown>;
  /** For `{entity}` rows: how many of the model's online features were present / expired / missing. */
  presence?: FeaturePresence;
  latencyMs: number;
  ts: Date;
}

export { ROLES, type Role } from '../../lib/roles.js';
