/**
 * Rollouts in Postgres (migration 0013): the per-model lease (`rollouts`, one `active` row per
 * model), step analyses, approval decisions, promotion (aliases + routing + alias history in one
 * transaction), rollback, and the prediction windows the analysis reads. Every write is
 * idempotent per (workflow id, run id) and its own key, so a retried activity changes nothing twice.
 */
import { InvalidInput } from '../lib/errors.js';
import type { LiveRow, ShadowPair } from '../lib/rollout/analyse-step.js';
import type { Db, DbClient } from './db.js';
import { withTransaction } from './db.js';
import { clearRoutesWith, setRoutes, type RouteTargetInput } from './routes.js';

export type RolloutStatusValue = 'active' | 'promoted' | 'rolled-back' | 'rejected' | 'aborted' | 'failed' | 'cancelled';

export interface RolloutRun {
  workflowId: string;
  runId: string;
}

/** The model's explicit routing when a lease is taken; null when its champion alias served it. */
export interface PriorRouting {
  salt: string;
  targets: Array<{ version: number; weight: number; mode: 'live' | 'shadow'; variant: string }>;
}

export interface RolloutLease extends RolloutRun {
  model: string;
  version: number;
  championVersion: number | null;
  step: string;
  status: RolloutStatusValue;
  requestedBy: string;
  priorRouting: PriorRouting | null;
  startedAt: string;
}

interface RolloutRow {
  workflow_id: string;
  run_id: string;
  model: string;
  version: number;
  champion_version: number | null;
  step: string;
  status: RolloutStatusValue;
  requested_by: string;
  prior_routing: PriorRouting | null;
  started_at: Date;
}

const leaseFromRow = (row: RolloutRow): RolloutLease => ({
  workflowId: row.workflow_id,
  runId: row.run_id,
  model: row.model,
  version: row.version,
  championVersion: row.champion_version,
  step: row.step,
  status: row.status,
  requestedBy: row.requested_by,
  priorRouting: row.prior_routing,
  startedAt: row.started_at.toISOString(),
});

/**
 * Takes the model's rollout lease for this workflow run and resolves what it rolls out: the
 * version (a number or an alias) and the current champion. Idempotent per run; a model with an
 * active rollout of another run is refused with an `InvalidInput` naming that rollout.
 */
export async function acquireRolloutLease(
  db: Db,
  request: RolloutRun & { model: string; version: number | string; requestedBy: string },
): Promise<RolloutLease> {
  return withTransaction(db, async (client) => {
    // Serialises lease takers per model (the partial unique index is the backstop).
    const model = await client.query('SELECT name FROM models WHERE name = $1 FOR UPDATE', [request.model]);
    if (!model.rows[0]) throw new InvalidInput(`no model named ${request.model}`, 'model');
    const mine = await client.query<RolloutRow>('SELECT * FROM rollouts WHERE workflow_id = $1 AND run_id = $2', [request.workflowId, request.runId]);
    if (mine.rows[0]) return leaseFromRow(mine.rows[0]);
    const active = await client.query<RolloutRow>(`SELECT * FROM rollouts WHERE model = $1 AND status = 'active'`, [request.model]);
    if (active.rows[0]) {
      const other = active.rows[0];
      throw new InvalidInput(
        `model ${request.model} already has a rollout running: workflow ${other.workflow_id} (version ${other.version}, step ${other.step}); abort it or wait for it to end`,
        'model',
      );
    }
    const version = await resolveVersion(client, request.model, request.version);
    const champion = await aliasOf(client, request.model, 'champion');
    if (champion === version) throw new InvalidInput(`version ${version} of ${request.model} is already the champion`, 'version');
    const priorRouting = await readPriorRouting(client, request.model);
    const inserted = await client.query<RolloutRow>(
      `INSERT INTO rollouts (workflow_id, run_id, model, version, champion_version, requested_by, prior_routing)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *`,
      [request.workflowId, request.runId, request.model, version, champion ?? null, request.requestedBy, priorRouting === null ? null : JSON.stringify(priorRouting)],
    );
    return leaseFromRow(inserted.rows[0]!);
  });
}

async function resolveVersion(client: DbClient, model: string, ref: number | string): Promise<number> {
  if (typeof ref === 'number') {
    const { rows } = await client.query('SELECT 1 FROM model_versions WHERE model = $1 AND version = $2', [model, ref]);
    if (!rows[0]) throw new InvalidInput(`model ${model} has no version ${ref}`, 'version');
    return ref;
  }
  const version = await aliasOf(client, model, ref);
  if (version === undefined) throw new InvalidInput(`model ${model} has no alias ${ref}`, 'version');
  return version;
}

async function aliasOf(client: DbClient, model: string, alias: string, forUpdate = false): Promise<number | undefined> {
  const { rows } = await client.query<{ version: number }>(
    `SELECT version FROM model_aliases WHERE model = $1 AND alias = $2${forUpdate ? ' FOR UPDATE' : ''}`,
    [model, alias],
  );
  return rows[0]?.version;
}

async function readPriorRouting(client: DbClient, model: string): Promise<PriorRouting | null> {
  const { rows } = await client.query<{ salt: string; targets: PriorRouting['targets'] }>(
    `SELECT m.salt, json_agg(json_build_object('version', r.version, 'weight', r.weight, 'mode', r.mode, 'variant', r.variant) ORDER BY r.version) AS targets
       FROM model_routing m JOIN routes r USING (model) WHERE m.model = $1 GROUP BY m.salt`,
    [model],
  );
  return rows[0] ? { salt: rows[0].salt, targets: rows[0].targets } : null;
}

export async function getRolloutLease(db: Db, run: RolloutRun): Promise<RolloutLease | undefined> {
  const { rows } = await db.query<RolloutRow>('SELECT * FROM rollouts WHERE workflow_id = $1 AND run_id = $2', [run.workflowId, run.runId]);
  return rows[0] ? leaseFromRow(rows[0]) : undefined;
}

/** The model's active rollout, if any. */
export async function activeRollout(db: Db, model: string): Promise<RolloutLease | undefined> {
  const { rows } = await db.query<RolloutRow>(`SELECT * FROM rollouts WHERE model = $1 AND status = 'active'`, [model]);
  return rows[0] ? leaseFromRow(rows[0]) : undefined;
}

export async function recordRolloutStep(db: Db, run: RolloutRun, step: string): Promise<void> {
  await db.query(`UPDATE rollouts SET step = $3 WHERE workflow_id = $1 AND run_id = $2 AND status = 'active'`, [run.workflowId, run.runId, step]);
}

/**
 * Ends the lease (if this run still holds it) with `status`, and stores the result once. A row
 * already ended by a promotion or rollback keeps its status; ending twice changes nothing.
 */
export async function releaseRolloutLease(db: Db, run: RolloutRun, status: Exclude<RolloutStatusValue, 'active'>, result: unknown): Promise<void> {
  await db.query(
    `UPDATE rollouts SET status = CASE WHEN status = 'active' THEN $3 ELSE status END,
            step = CASE WHEN status = 'active' THEN $3 ELSE step END,
            ended_at = COALESCE(ended_at, now()), result = COALESCE(result, $4::jsonb)
      WHERE workflow_id = $1 AND run_id = $2`,
    [run.workflowId, run.runId, status, JSON.stringify(result ?? null)],
  );
}

export interface AnalysisRecord extends RolloutRun {
  stepIndex: number;
  look: number;
  stage: string;
  verdict: 'pass' | 'fail' | 'inconclusive';
  checks: unknown;
  window: { from: string; to: string };
}

/** Stores one analysis; a retried activity keeps the first. */
export async function recordAnalysis(db: Db, analysis: AnalysisRecord): Promise<void> {
  await db.query(
    `INSERT INTO rollout_analyses (workflow_id, run_id, step_index, look, stage, verdict, checks, window_from, window_to)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
    [analysis.workflowId, analysis.runId, analysis.stepIndex, analysis.look, analysis.stage, analysis.verdict, JSON.stringify(analysis.checks), analysis.window.from, analysis.window.to],
  );
}

export async function listAnalyses(db: Db, run: RolloutRun): Promise<AnalysisRecord[]> {
  const { rows } = await db.query(
    'SELECT * FROM rollout_analyses WHERE workflow_id = $1 AND run_id = $2 ORDER BY step_index, look',
    [run.workflowId, run.runId],
  );
  return rows.map((r) => ({
    workflowId: r.workflow_id,
    runId: r.run_id,
    stepIndex: r.step_index,
    look: r.look,
    stage: r.stage,
    verdict: r.verdict,
    checks: r.checks,
    window: { from: new Date(r.window_from).toISOString(), to: new Date(r.window_to).toISOString() },
  }));
}

export interface ApprovalRecord extends RolloutRun {
  model: string;
  version: number;
  step: string;
  approver: string;
  decision: 'approve' | 'reject';
  reason: string;
  via: 'update' | 'signal' | 'timeout' | 'http';
  messageId: string;
  accepted: boolean;
  refusal?: string | null;
  decidedAt: string;
}

/** Writes one decision; the same (run, message id) again is a no-op. True when this call wrote it. */
export async function recordApproval(db: Db, approval: ApprovalRecord): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO approvals (workflow_id, run_id, model, version, step, approver, decision, reason, via, message_id, accepted, refusal, decided_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (workflow_id, run_id, message_id) DO NOTHING`,
    [
      approval.workflowId,
      approval.runId,
      approval.model,
      approval.version,
      approval.step,
      approval.approver,
      approval.decision,
      approval.reason,
      approval.via,
      approval.messageId,
      approval.accepted,
      approval.refusal ?? null,
      approval.decidedAt,
    ],
  );
  return rowCount === 1;
}

export async function listApprovals(db: Db, run: RolloutRun): Promise<ApprovalRecord[]> {
  const { rows } = await db.query('SELECT * FROM approvals WHERE workflow_id = $1 AND run_id = $2 ORDER BY id', [run.workflowId, run.runId]);
  return rows.map((r) => ({
    workflowId: r.workflow_id,
    runId: r.run_id,
    model: r.model,
    version: r.version,
    step: r.step,
    approver: r.approver,
    decision: r.decision,
    reason: r.reason,
    via: r.via,
    messageId: r.message_id,
    accepted: r.accepted,
    refusal: r.refusal,
    decidedAt: new Date(r.decided_at).toISOString(),
  }));
}

export interface AliasMove {
  model: string;
  alias: string;
  fromVersion: number | null;
  toVersion: number;
  movedBy: string;
  workflowId: string | null;
  runId: string | null;
  movedAt: string;
}

export async function listAliasHistory(db: Db, model: string): Promise<AliasMove[]> {
  const { rows } = await db.query('SELECT * FROM alias_history WHERE model = $1 ORDER BY moved_at, id', [model]);
  return rows.map((r) => ({
    model: r.model,
    alias: r.alias,
    fromVersion: r.from_version,
    toVersion: r.to_version,
    movedBy: r.moved_by,
    workflowId: r.workflow_id,
    runId: r.run_id,
    movedAt: new Date(r.moved_at).toISOString(),
  }));
}

async function moveAlias(client: DbClient, move: Omit<AliasMove, 'fromVersion' | 'movedAt'>): Promise<void> {
  const from = await aliasOf(client, move.model, move.alias, true);
  if (from === move.toVersion) return;
  await client.query(
    `INSERT INTO model_aliases (model, alias, version) VALUES ($1, $2, $3)
     ON CONFLICT (model, alias) DO UPDATE SET version = EXCLUDED.version, updated_at = now()`,
    [move.model, move.alias, move.toVersion],
  );
  await client.query(
    `INSERT INTO alias_history (model, alias, from_version, to_version, moved_by, workflow_id, run_id) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [move.model, move.alias, from ?? null, move.toVersion, move.movedBy, move.workflowId, move.runId],
  );
}

export interface PromotionResult {
  champion: number;
  previous: number | null;
  /** The routing generation that cleared the explicit routes (null when already promoted earlier). */
  generation: number | null;
}

/**
 * Promotes the version under rollout, all or nothing in one transaction: champion → version, the
 * old champion → previous (an alias_history row per move), explicit routing cleared so the
 * champion alias serves, the lease ended as `promoted`. A retry after commit finds it done.
 */
export async function promoteRollout(db: Db, run: RolloutRun, movedBy: string): Promise<PromotionResult> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<RolloutRow>('SELECT * FROM rollouts WHERE workflow_id = $1 AND run_id = $2 FOR UPDATE', [run.workflowId, run.runId]);
    const lease = rows[0];
    if (!lease) throw new InvalidInput(`no rollout ${run.workflowId} (run ${run.runId})`, 'workflowId');
    if (lease.status === 'promoted') return { champion: lease.version, previous: lease.champion_version, generation: null };
    if (lease.status !== 'active') throw new InvalidInput(`rollout ${run.workflowId} already ended as ${lease.status}; it cannot promote`, 'status');
    const previous = await aliasOf(client, lease.model, 'champion', true);
    const move = { model: lease.model, movedBy, workflowId: run.workflowId, runId: run.runId };
    await moveAlias(client, { ...move, alias: 'champion', toVersion: lease.version });
    if (previous !== undefined && previous !== lease.version) await moveAlias(client, { ...move, alias: 'previous', toVersion: previous });
    const { generation } = await clearRoutesWith(client, lease.model);
    await client.query(`UPDATE rollouts SET status = 'promoted', step = 'promoted', ended_at = now() WHERE workflow_id = $1 AND run_id = $2`, [
      run.workflowId,
      run.runId,
    ]);
    return { champion: lease.version, previous: previous ?? null, generation };
  });
}

/**
 * Rolls back: the model's routing as it was when the lease was taken (its champion alias serves
 * when it had no explicit routing), aliases untouched, the version tagged with `rollback_reason`,
 * the lease ended with `status`. A run that no longer holds its lease is left alone (a retry
 * after commit must not touch the routing of a rollout started since).
 */
export async function rollbackRollout(
  db: Db,
  run: RolloutRun,
  outcome: { status: 'rolled-back' | 'rejected' | 'aborted' | 'failed' | 'cancelled'; reason: string; by: string },
): Promise<{ generation: number | null }> {
  const lease = await getRolloutLease(db, run);
  if (!lease || lease.status !== 'active') return { generation: null };
  const prior = lease.priorRouting;
  const { generation } = prior
    ? await setRoutes(db, lease.model, prior.targets as RouteTargetInput[], { salt: prior.salt, updatedBy: `rollback:${run.workflowId}` })
    : await withTransaction(db, (client) => clearRoutesWith(client, lease.model));
  await withTransaction(db, async (client) => {
    await client.query(
      `UPDATE model_versions SET tags = tags || jsonb_build_object('rollback_reason', $3::text, 'rolled_back_by', $4::text, 'rollback_workflow_id', $5::text, 'rolled_back_at', now())
        WHERE model = $1 AND version = $2`,
      [lease.model, lease.version, outcome.reason, outcome.by, run.workflowId],
    );
    await client.query(`UPDATE rollouts SET status = $3, step = $3, ended_at = now() WHERE workflow_id = $1 AND run_id = $2 AND status = 'active'`, [
      run.workflowId,
      run.runId,
      outcome.status,
    ]);
  });
  return { generation };
}

/** A version's tags (`rollback_reason`, …). */
export async function versionTags(db: Db, model: string, version: number): Promise<Record<string, unknown>> {
  const { rows } = await db.query<{ tags: Record<string, unknown> }>('SELECT tags FROM model_versions WHERE model = $1 AND version = $2', [model, version]);
  return rows[0]?.tags ?? {};
}

export interface WindowQuery {
  model: string;
  control: number;
  candidate: number;
  from: string;
  to: string;
}

/** Live predictions of the two variants in [from, to), with their feedback labels where they exist. */
export async function readLiveWindow(db: Db, window: WindowQuery): Promise<LiveRow[]> {
  const { rows } = await db.query<{ variant: 'control' | 'candidate'; score: number; prediction: number; latency_ms: number; label: number | null; ts_ms: string }>(
    `SELECT p.variant, (p.output->>'probability')::float8 AS score, (p.output->>'prediction')::float8 AS prediction, p.latency_ms, f.label,
            (extract(epoch FROM p.ts) * 1000)::bigint AS ts_ms
       FROM predictions p LEFT JOIN feedback f ON f.request_id = p.request_id
      WHERE p.model = $1 AND p.mode = 'live' AND p.ts >= $4 AND p.ts < $5
        AND ((p.variant = 'control' AND p.version = $2) OR (p.variant = 'candidate' AND p.version = $3))
        AND p.output ? 'probability'`,
    [window.model, window.control, window.candidate, window.from, window.to],
  );
  return rows.map((r) => ({ variant: r.variant, score: r.score, prediction: r.prediction, latencyMs: r.latency_ms, label: r.label, tsMs: Number(r.ts_ms) }));
}

/** Shadow mode, paired on the same requests: the control's live answer and the candidate's shadow score. */
export async function readShadowPairs(db: Db, window: WindowQuery): Promise<ShadowPair[]> {
  const { rows } = await db.query<{ control: number; candidate: number; control_latency: number; candidate_latency: number }>(
    `SELECT (c.output->>'probability')::float8 AS control, (s.output->>'probability')::float8 AS candidate,
            c.latency_ms AS control_latency, s.latency_ms AS candidate_latency
       FROM predictions c
       JOIN predictions s ON s.request_id = c.request_id AND s.model = c.model AND s.mode = 'shadow' AND s.version = $3 AND s.ts >= $4
      WHERE c.model = $1 AND c.mode = 'live' AND c.version = $2 AND c.ts >= $4 AND c.ts < $5
        AND c.output ? 'probability' AND s.output ? 'probability'`,
    [window.model, window.control, window.candidate, window.from, window.to],
  );
  return rows.map((r) => ({ control: r.control, candidate: r.candidate, controlLatencyMs: r.control_latency, candidateLatencyMs: r.candidate_latency }));
}
