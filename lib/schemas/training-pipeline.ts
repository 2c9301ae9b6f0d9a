/**
 * Input of the `trainingPipeline` workflow, shared by the workflow (its first step), `keel train`
 * and `POST /v1/pipelines/train`. Every field has a default: `{}` trains the churn example.
 * Pure and workflow-safe (zod only).
 */
import { z } from 'zod';
import { featureRefSchema, identifierSchema, tableNameSchema } from '../features/identifiers.js';
import { retrySchema } from './retry.js';

/** `file:///abs/path.csv`, `s3://bucket/key.parquet` (or a plain absolute path) of a CSV or Parquet file. */
export const tableUriSchema = z
  .string()
  .min(1)
  .refine((uri) => /^(file:\/\/|s3:\/\/|\/)/.test(uri), 'must be a file:// or s3:// URI (or an absolute path)')
  .refine((uri) => /\.(csv|parquet)$/i.test(uri), 'must name a .csv or .parquet file');

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');

/** Training rows from CSV/Parquet files; an explicit holdout file replaces the split. */
export const fileDataSchema = z
  .object({
    kind: z.literal('file'),
    uri: tableUriSchema,
    holdoutUri: tableUriSchema.optional(),
    /** When given, the file must have this sha256 (a wrong checksum fails the run at once). */
    sha256: sha256Schema.optional(),
    holdoutSha256: sha256Schema.optional(),
  })
  .strict();

/** Training rows from a Postgres table (optionally a second table as the holdout). */
export const tableDataSchema = z
  .object({
    kind: z.literal('table'),
    table: tableNameSchema,
    holdoutTable: tableNameSchema.optional(),
  })
  .strict();

/** Generation options of the churn example; see examples/churn/generate.ts. */
export const churnExampleOptionsSchema = z
  .object({
    labelRows: z.number().int().min(1000).max(10_000_000).optional(),
    seed: z.number().int().min(0).max(0xffffffff).optional(),
    drift: z.object({ from: z.iso.date(), strength: z.number().min(0).max(1).default(1) }).strict().optional(),
  })
  .strict();

/**
 * Labels (entity key, timestamp, label) joined point-in-time with feature views. `example:
 * "churn"` makes sure the churn example's tables exist first (generated once, seeded).
 */
export const featureDataSchema = z
  .object({
    kind: z.literal('features'),
    example: z.enum(['churn']).nullable().default('churn'),
    exampleOptions: churnExampleOptionsSchema.prefault({}),
    /** The entity table: join keys, `timestampColumn` and the label. */
    entities: tableNameSchema.default('churn.labels'),
    timestampColumn: identifierSchema.default('event_timestamp'),
    /** Feature references `view:feature`; default: every feature of `featureService`. */
    features: z.array(featureRefSchema).min(1).optional(),
    featureService: identifierSchema.default('churn_model'),
    /** Ignore feature rows created after the entity timestamp (backfills), as Feast does not. */
    backfillGuard: z.boolean().default(true),
    /** On-demand features (registered on the workers by name) computed on the joined rows; their code hashes go into the model's feature spec. */
    onDemand: z.array(identifierSchema).default([]),
    /** Where the point-in-time join runs; absent means `auto`: DuckDB from the worker's KEEL_DUCKDB_AUTO_MIN_ROWS entity rows, else Postgres. */
    engine: z.enum(['auto', 'postgres', 'duckdb']).optional(),
  })
  .strict();

/** A training set already in the artifact store (what `keel train --reproduce` uses). */
export const datasetDataSchema = z
  .object({
    kind: z.literal('dataset'),
    sha256: sha256Schema,
    holdoutSha256: sha256Schema.optional(),
  })
  .strict();

/** Fills in `kind` from the keys a user wrote, so `{"uri": …}` and `{"table": …}` need no kind. */
function withDataKind(raw: unknown): unknown {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw) || 'kind' in raw) return raw;
  if ('uri' in raw) return { kind: 'file', ...raw };
  if ('table' in raw) return { kind: 'table', ...raw };
  if ('sha256' in raw) return { kind: 'dataset', ...raw };
  return { kind: 'features', ...raw };
}

export const dataSourceSchema = z.preprocess(
  withDataKind,
  z.discriminatedUnion('kind', [fileDataSchema, tableDataSchema, featureDataSchema, datasetDataSchema]),
);

export const trainerSchema = z.preprocess(
  (raw) => (raw && typeof raw === 'object' && !Array.isArray(raw) && !('kind' in raw) ? { kind: 'gbdt', ...raw } : raw),
  z.discriminatedUnion('kind', [
    z
      .object({
        kind: z.literal('gbdt'),
        /** HistGradientBoostingClassifier-like parameters (camelCase); checked by the trainer's own rules. */
        params: z.record(z.string(), z.unknown()).default({}),
      })
      .strict(),
    z
      .object({
        kind: z.literal('logreg'),
        params: z.record(z.string(), z.unknown()).default({}),
      })
      .strict(),
    z
      .object({
        kind: z.literal('command'),
        /** The program and its arguments, run without a shell; relative paths resolve against the worker's working directory. */
        command: z.array(z.string().min(1)).min(1, 'command needs at least the program to run'),
        params: z.record(z.string(), z.unknown()).default({}),
        timeoutSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(3600),
      })
      .strict(),
  ]),
);

export const splitSchema = z.preprocess(
  (raw) => (raw && typeof raw === 'object' && !Array.isArray(raw) && !('kind' in raw) ? { kind: 'stratified', ...raw } : raw),
  z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('stratified'), testFraction: z.number().gt(0).lt(1).default(0.2) }).strict(),
    /** The latest `testFraction` of rows by `column` are the test set (no look-ahead). */
    z.object({ kind: z.literal('time'), testFraction: z.number().gt(0).lt(1).default(0.2), column: identifierSchema.default('event_timestamp') }).strict(),
  ]),
);

const metricNames = ['auc', 'averagePrecision', 'logLoss', 'brier', 'accuracy', 'precision', 'recall', 'f1'] as const;
export const gateMetricSchema = z.enum(metricNames);
export type GateMetric = z.infer<typeof gateMetricSchema>;

/** MLflow-style threshold on one test metric: an absolute bound and a minimum change against the champion. */
export const metricThresholdSchema = z
  .object({
    metric: gateMetricSchema,
    /** The value must be at least (higher is better) or at most (lower is better) this. */
    threshold: z.number().finite().optional(),
    /** Against the champion on the same holdout: value − baseline must be ≥ this (sign flipped when lower is better). */
    minAbsoluteChange: z.number().finite().optional(),
    /** Against the champion: (value − baseline) / |baseline| must be ≥ this. */
    minRelativeChange: z.number().finite().optional(),
    /** Default: true except for logLoss and brier. */
    higherIsBetter: z.boolean().optional(),
  })
  .strict();

export const gatesSchema = z
  .object({
    minAuc: z.number().min(0).max(1).nullable().default(0.6),
    /** Max standard deviation of the CV AUCs (null: no gate). */
    maxCvStd: z.number().min(0).nullable().default(0.05),
    /** Max |CV mean AUC − test AUC| (null: no gate). */
    maxCvTestGap: z.number().min(0).nullable().default(0.05),
    /** The candidate's test AUC must beat the champion's on the same holdout by at least this (null: no gate). */
    minAucGainOverChampion: z.number().nullable().default(0),
    thresholds: z.array(metricThresholdSchema).default([]),
  })
  .strict();

export const validationSchema = z
  .object({
    minRows: z.number().int().min(1).default(100),
    labelRate: z.object({ min: z.number().min(0).max(1).default(0.01), max: z.number().min(0).max(1).default(0.99) }).strict().prefault({}),
    /** Inclusive bounds per column (numbers; timestamps in epoch ms). */
    ranges: z.record(z.string(), z.object({ min: z.number().optional(), max: z.number().optional() }).strict()).default({}),
    /** The only values a column may hold. */
    categories: z.record(z.string(), z.array(z.string())).default({}),
    /** Let features have nulls even when the trainer cannot take them (they are mean-imputed by logreg). */
    impute: z.boolean().default(false),
  })
  .strict();

export const trainingPipelineInputSchema = z
  .object({
    /** Registry name of the model. */
    model: identifierSchema.default('churn'),
    data: dataSourceSchema.prefault({}),
    label: z.string().min(1).default('churned'),
    /** Feature columns in model order; default every column but the label, entity keys and timestamps. */
    features: z.array(z.string().min(1)).min(1).optional(),
    /** Columns that identify a row (never features; checked for duplicates with the timestamp). */
    entityKeys: z.array(z.string().min(1)).optional(),
    trainer: trainerSchema.prefault({}),
    split: splitSchema.prefault({}),
    /** Stratified k-fold on the training part; 0 skips cross-validation (and its gates). */
    cvFolds: z.number().int().min(0).max(20).refine((k) => k !== 1, 'cvFolds must be 0 (off) or at least 2').default(5),
    gates: gatesSchema.prefault({}),
    validation: validationSchema.prefault({}),
    /** Probability above which a row is predicted positive (precision / recall / F1). */
    threshold: z.number().gt(0).lt(1).default(0.5),
    seed: z.number().int().min(0).max(0xffffffff).default(42),
    /** Who asked for the run; recorded in lineage (the CLI and API fill it in). */
    requestedBy: z.string().max(200).default('temporal-ui'),
    /** A training or cross-validation attempt that sends no heartbeat for this long is retried (from its checkpoint) on another worker. */
    heartbeatTimeoutSeconds: z.number().int().min(2).max(3600).default(60),
    /** Where the CPU-heavy steps run; default `<this workflow's task queue>-training` (keel → keel-training). */
    trainingTaskQueue: z.string().min(1).max(200).optional(),
    /**
     * A CPU-heavy step that no worker of the training task queue starts within this long fails the
     * run, naming the queue (a queue no worker polls would wait forever). Raise it when runs queue
     * behind long trainings on busy workers.
     */
    scheduleToStartTimeoutSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(600),
    /** Retrying of steps that fail for a reason other than bad input. */
    retry: retrySchema.prefault({}),
  })
  .strict();

/** A config from outside (a file, a request body) with `requestedBy` filled in unless it sets one; a non-object stays as it is, for the schema to refuse. */
export function withRequester(raw: unknown, requestedBy: string): unknown {
  return raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? { requestedBy, ...raw } : raw;
}

export type TrainingPipelineInput = z.input<typeof trainingPipelineInputSchema>;
export type TrainingPipelineConfig = z.output<typeof trainingPipelineInputSchema>;
export type DataSource = TrainingPipelineConfig['data'];
export type TrainerConfig = TrainingPipelineConfig['trainer'];
export type SplitConfig = TrainingPipelineConfig['split'];
export type GatesConfig = TrainingPipelineConfig['gates'];
export type MetricThreshold = z.output<typeof metricThresholdSchema>;
