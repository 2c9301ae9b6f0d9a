/**
 * The prediction log table (`predictions`, partitioned by day on `ts`, see
 * infra/migrations/0005_gateway.sql): daily partitions, batched inserts, look-ups by request id.
 */
import type { PredictionRecord } from '../api/serving/types.js';
import type { Db, DbClient } from './db.js';

/** Shared by every Keel process: one of them creates partitions at a time. */
const PARTITION_LOCK_KEY = 0x6b6c7072; // "klpr"

export interface PartitionResult {
  /** Partitions created by this call, e.g. `predictions_20260126`. */
  created: string[];
  /** Days that could not get a partition (the default partition already holds rows of that day). */
  skipped: Array<{ name: string; reason: string }>;
}

/** `predictions_YYYYMMDD` for the UTC day holding `day`. */
export function partitionName(day: Date): string {
  return `predictions_${day.toISOString().slice(0, 10).replaceAll('-', '')}`;
}

/**
 * Creates the daily partitions for today (UTC) and the next `days` days. Idempotent and safe with
 * concurrent gateways (an advisory lock serialises them). A day whose rows already sit in the
 * default partition cannot get a partition (Postgres refuses); it is reported in `skipped` and its
 * rows stay in the default partition, where queries still find them.
 */
export async function ensurePredictionPartitions(db: Db, days = 7, now: Date = new Date()): Promise<PartitionResult> {
  const result: PartitionResult = { created: [], skipped: [] };
  const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const client = await db.connect();
  // A server going away emits 'error' on the checked-out client; the failing query reports it.
  const ignore = () => undefined;
  client.on('error', ignore);
  let broken: Error | undefined;
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PARTITION_LOCK_KEY]);
    try {
      for (let i = 0; i <= days; i++) {
        const from = new Date(start + i * 86_400_000);
        const to = new Date(start + (i + 1) * 86_400_000);
        const name = partitionName(from);
        const outcome = await createPartition(client, name, from, to);
        if (outcome === 'created') result.created.push(name);
        else if (outcome !== 'exists') result.skipped.push({ name, reason: outcome.reason });
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PARTITION_LOCK_KEY]).catch(() => undefined);
    }
  } catch (error) {
    broken = error as Error;
    throw error;
  } finally {
    // A client that failed is destroyed rather than reused (its session may still hold the lock),
    // and keeps its listener: a server shutting down sends its FATAL before the socket closes, so
    // the dying client can still emit 'error' after the failed query, which would be uncaught.
    if (!broken) client.off('error', ignore);
    client.release(broken);
  }
  return result;
}

async function createPartition(client: DbClient, name: string, from: Date, to: Date): Promise<'created' | 'exists' | { reason: string }> {
  const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [name]);
  if (rows[0]!.exists) return 'exists';
  try {
    // The name is built from a date (digits only) and the bounds are ISO timestamps: no user input.
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${name} PARTITION OF predictions FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
    );
    return 'created';
  } catch (error) {
    const code = (error as { code?: string }).code;
    // 42P07 duplicate_table / 23505 on pg_type: another process won a race the lock did not cover.
    if (code === '42P07' || code === '23505') return 'exists';
    // 23514: "updated partition constraint for default partition would be violated by some row".
    if (code === '23514') return { reason: 'the default partition already holds rows of this day; they stay there' };
    throw error;
  }
}

/**
 * Inserts a batch as ONE statement. Rows already present (same ts, request id, model, version,
 * mode) are skipped, so replaying a spill file after a partial write never counts a prediction
 * twice. Returns the number of rows actually inserted.
 */
export async function insertPredictions(db: Db | DbClient, records: readonly PredictionRecord[], gatewayId: string | null = null): Promise<number> {
  if (records.length === 0) return 0;
  const { columns, requestTexts } = batchDocument(records);
  const result = await db.query(
    `INSERT INTO predictions (request_id, model, version, variant, mode, features, output, latency_ms, ts, gateway_id, feature_presence)
     SELECT r.request_id, r.model, r.version::int, r.variant, r.mode,
            COALESCE(NULLIF(r.features, 'null'), r.request -> 'features'), r.output,
            r.latency_ms::float8, to_timestamp(r.ts_ms::float8 / 1000.0), $3, NULLIF(r.feature_presence, 'null')
       FROM (SELECT $1::jsonb AS c, $2::jsonb AS q) AS batch
       CROSS JOIN LATERAL ROWS FROM (
         jsonb_array_elements_text(batch.c -> 'request_id'), jsonb_array_elements_text(batch.c -> 'model'),
         jsonb_array_elements_text(batch.c -> 'version'), jsonb_array_elements_text(batch.c -> 'variant'),
         jsonb_array_elements_text(batch.c -> 'mode'), jsonb_array_elements(batch.c -> 'features'),
         jsonb_array_elements(batch.q), jsonb_array_elements(batch.c -> 'output'),
         jsonb_array_elements_text(batch.c -> 'latency_ms'), jsonb_array_elements_text(batch.c -> 'ts_ms'),
         jsonb_array_elements(batch.c -> 'feature_presence')
       ) AS r (request_id, model, version, variant, mode, features, request, output, latency_ms, ts_ms, feature_presence)
     ON CONFLICT DO NOTHING`,
    [columns, requestTexts, gatewayId],
  );
  return result.rowCount ?? 0;
}

/**
 * A batch as column arrays (one JSON.stringify of flat arrays, not an object per row), and the
 * request texts as their own JSON array. A record's features come from its request's own text when
 * Postgres reads it safely: the text is spliced into that array as it is (it parsed as JSON and
 * holds no backslash, so it needs no escaping and no NUL replacement), where formatting the numbers
 * again and escaping the text as a string were most of a record's serialisation, on the gateway's
 * core. Otherwise the parsed features go in the `features` column and the text slot is `null`.
 */
function batchDocument(records: readonly PredictionRecord[]): { columns: string; requestTexts: string } {
  const n = records.length;
  const columns = {
    request_id: new Array<string>(n),
    model: new Array<string>(n),
    version: new Array<number>(n),
    variant: new Array<string>(n),
    mode: new Array<string>(n),
    features: new Array<PredictionRecord['features'] | null>(n),
    output: new Array<Record<string, unknown>>(n),
    latency_ms: new Array<number>(n),
    // Epoch milliseconds: a number costs nothing to write, where toISOString is per row.
    ts_ms: new Array<number>(n),
    feature_presence: new Array<PredictionRecord['presence'] | null>(n),
  };
  const texts = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const record = records[i]!;
    columns.request_id[i] = record.requestId;
    columns.model[i] = record.model;
    columns.version[i] = record.version;
    columns.variant[i] = record.variant;
    columns.mode[i] = record.mode;
    columns.output[i] = record.output;
    columns.latency_ms[i] = record.latencyMs;
    columns.ts_ms[i] = record.ts.getTime();
    columns.feature_presence[i] = record.presence ?? null;
    const text = record.requestJson;
    const fromText = text !== undefined && parsesAsJsonb(text);
    columns.features[i] = fromText ? null : record.features;
    texts[i] = fromText ? text : 'null';
  }
  return { columns: jsonbSafe(JSON.stringify(columns)), requestTexts: `[${texts.join(',')}]` };
}

/**
 * JSON text Postgres' jsonb accepts: U+0000 and lone UTF-16 surrogates (which JSON.stringify
 * writes as `\u0000`, `\ud800`…; a request's text may hold them) become U+FFFD. Either would make
 * the whole batch fail, again on every replay. Only real escapes are replaced: an escape is a
 * backslash preceded by an even number of backslashes (`\\u0000` is the text "\u0000").
 */
export function jsonbSafe(json: string): string {
  return json.includes('\\u') ? json.replace(UNSTORABLE_ESCAPE, '$1\\ufffd') : json;
}

const UNSTORABLE_ESCAPE = /(?<!\\)((?:\\\\)*)\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})/g;

/**
 * Whether Postgres parses this JSON text (already parsed by JSON.parse) as jsonb: no escapes (jsonb
 * refuses \u0000, and the batch's NUL replacement must not touch the inner text), and numbers
 * within numeric's range (at most 16 383 digits after the point: exponents below 4 digits and a
 * text under 8 000 characters keep every number far inside it). A text that fails this is logged
 * from the parsed features instead, so one odd request can never make a batch fail.
 */
export function parsesAsJsonb(text: string): boolean {
  return text.length <= 8_000 && !text.includes('\\') && !LONG_EXPONENT.test(text);
}

const LONG_EXPONENT = /[eE][-+]?\d{4}/;

export interface StoredPrediction extends PredictionRecord {
  gatewayId: string | null;
}

interface PredictionRow {
  request_id: string;
  model: string;
  version: number;
  variant: string;
  mode: 'live' | 'shadow';
  features: PredictionRecord['features'];
  output: Record<string, unknown>;
  latency_ms: number;
  ts: Date;
  gateway_id: string | null;
  feature_presence: PredictionRecord['presence'] | null;
}

/** Every logged row of a request id (live first, then shadows), oldest first; empty when unknown. */
export async function findPredictions(db: Db, requestId: string): Promise<StoredPrediction[]> {
  const { rows } = await db.query<PredictionRow>(
    `SELECT request_id, model, version, variant, mode, features, output, latency_ms, ts, gateway_id, feature_presence
       FROM predictions WHERE request_id = $1 ORDER BY mode, ts, model, version`,
    [requestId],
  );
  return rows.map((row) => ({
    requestId: row.request_id,
    model: row.model,
    version: row.version,
    variant: row.variant,
    mode: row.mode,
    features: row.features,
    output: row.output,
    latencyMs: row.latency_ms,
    ts: row.ts,
    gatewayId: row.gateway_id,
    ...(row.feature_presence ? { presence: row.feature_presence } : {}),
  }));
}

/** The live row of a request id (or its first row when it only has shadows); undefined when unknown. */
export async function findPrediction(db: Db, requestId: string): Promise<StoredPrediction | undefined> {
  return (await findPredictions(db, requestId))[0];
}

/** Whether any prediction was logged under `requestId` (uses the request_id index). */
export async function predictionExists(db: Db, requestId: string): Promise<boolean> {
  const { rowCount } = await db.query('SELECT 1 FROM predictions WHERE request_id = $1 LIMIT 1', [requestId]);
  return (rowCount ?? 0) > 0;
}

/** Rows in `predictions`, optionally of one model. */
export async function countPredictions(db: Db, filter: { model?: string } = {}): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    'SELECT count(*) AS n FROM predictions WHERE $1::text IS NULL OR model = $1',
    [filter.model ?? null],
  );
  return Number(rows[0]!.n);
}
