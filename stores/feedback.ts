/**
 * Feedback labels by request id (`feedback` table). The first label recorded for a request id is
 * kept, whatever arrives later: the same label again is a `duplicate` (nothing changes), a
 * different one a `conflict` that names the stored label. Concurrent posts of the same id resolve
 * the same way (INSERT … ON CONFLICT DO NOTHING, then read the stored row).
 */
import type { Db } from './db.js';

export interface FeedbackInput {
  requestId: string;
  label: number;
  /** Who sent it (an API key id), for audit. */
  source?: string | null;
}

export interface StoredFeedback {
  requestId: string;
  label: number;
  ts: Date;
  source: string | null;
}

export type FeedbackOutcome =
  | { status: 'recorded'; feedback: StoredFeedback }
  | { status: 'duplicate'; feedback: StoredFeedback }
  | { status: 'conflict'; feedback: StoredFeedback };

interface FeedbackRow {
  request_id: string;
  label: number;
  ts: Date;
  source: string | null;
}

const toFeedback = (row: FeedbackRow): StoredFeedback => ({ requestId: row.request_id, label: row.label, ts: row.ts, source: row.source });

/** Records a label unless the request id already has one; says which of the three happened. */
export async function recordFeedback(db: Db, input: FeedbackInput): Promise<FeedbackOutcome> {
  const inserted = await db.query<FeedbackRow>(
    `INSERT INTO feedback (request_id, label, source) VALUES ($1, $2, $3)
     ON CONFLICT (request_id) DO NOTHING RETURNING request_id, label, ts, source`,
    [input.requestId, input.label, input.source ?? null],
  );
  if (inserted.rows[0]) return { status: 'recorded', feedback: toFeedback(inserted.rows[0]) };
  // Read committed: the row that won (possibly a concurrent insert) is visible to this statement.
  const stored = await findFeedback(db, input.requestId);
  if (!stored) throw new Error(`feedback for ${input.requestId} neither inserted nor found`);
  return { status: stored.label === input.label ? 'duplicate' : 'conflict', feedback: stored };
}

export async function findFeedback(db: Db, requestId: string): Promise<StoredFeedback | undefined> {
  const { rows } = await db.query<FeedbackRow>('SELECT request_id, label, ts, source FROM feedback WHERE request_id = $1', [requestId]);
  return rows[0] ? toFeedback(rows[0]) : undefined;
}
