/**
 * The bodies of the three prediction protocols, checked at the boundary. Only the shape is checked
 * here; feature values stay `unknown` so that encode-request.ts can name the feature whose value
 * is wrong (a zod issue path would say `features.x`, not why the model refuses it).
 */
import { z } from 'zod';

/** A request id: 1–128 characters of [A-Za-z0-9._:-], so it is safe in logs, headers and SQL text. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const requestIdSchema = z.string().regex(REQUEST_ID_PATTERN, 'request_id must be 1–128 characters of A-Z a-z 0-9 . _ : -');

const record = z.record(z.string(), z.unknown());

/** `POST /v1/models/:name/predict` */
export const predictRequestSchema = z
  .object({
    features: record.optional(),
    entity: record.optional(),
    /** Each instance is `{features}`, `{entity, features?}`, or a plain `{feature: value}` object. */
    instances: z.array(record).min(1, 'instances must hold at least one row').optional(),
    request_id: requestIdSchema.optional(),
  })
  .strict()
  .refine((body) => (body.instances === undefined) !== (body.features === undefined && body.entity === undefined), {
    message: 'give either features / entity (one row) or instances (a batch), not both and not neither',
  });
export type PredictRequest = z.output<typeof predictRequestSchema>;

/**
 * The common body `{"features": {...}}`, with or without `request_id`, recognised without zod
 * (the schema's generic walk is a visible share of a prediction's CPU time); the same values
 * `predictRequestSchema` would accept, the same object out. Undefined for any other body, which
 * then goes through the schema and its messages.
 */
export function oneRowFeatures(body: unknown): PredictRequest | undefined {
  if (!isJsonObject(body)) return undefined;
  let keys = 0;
  for (const key in body) {
    if (key !== 'features' && key !== 'request_id') return undefined;
    keys++;
  }
  const { features, request_id: requestId } = body as { features?: unknown; request_id?: unknown };
  if (!isJsonObject(features)) return undefined;
  if (requestId === undefined) return keys === 1 ? { features } : undefined;
  return typeof requestId === 'string' && REQUEST_ID_PATTERN.test(requestId) ? { features, request_id: requestId } : undefined;
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** OIP v2 datatypes Keel reads. */
export const OIP_DATATYPES = ['BOOL', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'FP16', 'FP32', 'FP64', 'BYTES'] as const;

export const oipInputSchema = z
  .object({
    name: z.string().min(1).max(256),
    shape: z.array(z.number().int().min(0)).min(1).max(2),
    datatype: z.enum(OIP_DATATYPES),
    /** Row-major, flat or nested as the shape says. */
    data: z.array(z.unknown()),
    parameters: record.optional(),
  })
  .strict();

/** `POST /v2/models/:name/infer` (Open Inference Protocol v2, JSON). */
export const oipInferRequestSchema = z
  .object({
    id: requestIdSchema.optional(),
    parameters: record.optional(),
    inputs: z.array(oipInputSchema).min(1, 'inputs must hold at least one tensor'),
    outputs: z.array(z.object({ name: z.string(), parameters: record.optional() }).strict()).optional(),
  })
  .strict();
export type OipInferRequest = z.output<typeof oipInferRequestSchema>;
export type OipInput = z.output<typeof oipInputSchema>;

/** `POST /invocations` (MLflow scoring server): exactly one of the four layouts, by key. */
export const MLFLOW_LAYOUTS = {
  dataframe_split: z.object({ dataframe_split: z.object({ columns: z.array(z.string()), data: z.array(z.array(z.unknown())), index: z.array(z.unknown()).optional() }).strict(), params: record.optional() }).strict(),
  dataframe_records: z.object({ dataframe_records: z.array(record), params: record.optional() }).strict(),
  instances: z.object({ instances: z.array(z.unknown()), params: record.optional() }).strict(),
  inputs: z.object({ inputs: z.union([z.array(z.unknown()), record]), params: record.optional() }).strict(),
} as const;
export const mlflowRequestSchema = z.union(Object.values(MLFLOW_LAYOUTS) as unknown as [typeof MLFLOW_LAYOUTS.dataframe_split, typeof MLFLOW_LAYOUTS.dataframe_records, typeof MLFLOW_LAYOUTS.instances, typeof MLFLOW_LAYOUTS.inputs]);
export type MlflowRequest = z.output<typeof mlflowRequestSchema>;

/** The first zod issue as `field: message`, for 422 bodies. */
export function describeIssue(error: z.ZodError): { message: string; field?: string } {
  const issue = error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? (issue as { keys?: string[] }).keys : undefined;
  const path = [...issue.path, ...(keys?.length ? [keys[0]!] : [])];
  const field = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('');
  return field ? { message: `${field}: ${issue.message}`, field } : { message: issue.message };
}
