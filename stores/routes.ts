/**
 * Traffic routing in Postgres (migration 0005): which versions of a model take its traffic, with
 * what weight, live or shadow, and the generation of each change; and the gateway instances with
 * the generation each has applied, so a rollout can wait until every live gateway follows.
 *
 * Writers (the rollout workflow's activities, `PUT /v1/routes/:model`, `keel routes set`) call
 * `setRoutes`, which takes the next value of the global `routing_generation` sequence in the same
 * transaction as the rows; the trigger on `model_routing` NOTIFYs `keel_routing` on commit.
 * A model without a `model_routing` row is served by its `champion` alias, if it has one
 * (generation 0, `implicit`).
 */
import { z } from 'zod';
import type { ModelRouting, RouteMode, RouteTarget } from '../api/serving/types.js';
import { InvalidInput } from '../lib/errors.js';
import { IDENTIFIER } from '../lib/features/definitions.js';
import type { Db, DbClient } from './db.js';
import { PG_INT_MAX, withTransaction } from './db.js';
import { NotFound } from './registry.js';

export const routeTargetSchema = z.object({
  version: z.number().int().min(1).max(PG_INT_MAX, `version must be at most ${PG_INT_MAX}`),
  weight: z.number().min(0).max(1).optional(),
  mode: z.enum(['live', 'shadow']).default('live'),
  variant: z.string().regex(IDENTIFIER, 'variant must match ^[a-z_][a-z0-9_]{0,62}$').optional(),
});
export type RouteTargetInput = z.input<typeof routeTargetSchema>;

export interface SetRoutesOptions {
  /** Salt of the sticky split; default: the model's current salt, else the model name. */
  salt?: string;
  updatedBy: string;
}

const WEIGHT_TOLERANCE = 1e-9;

/** Checks targets as `setRoutes` stores them: live weights summing to 1, unique versions and variants. */
export function normaliseTargets(model: string, input: readonly RouteTargetInput[]): RouteTarget[] {
  const parsed = z.array(routeTargetSchema).safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidInput(`routes of ${model}: targets.${issue.path.join('.')}: ${issue.message}`, 'targets');
  }
  const targets = parsed.data.map((t): RouteTarget => ({
    version: t.version,
    mode: t.mode,
    weight: t.mode === 'shadow' ? 0 : (t.weight ?? NaN),
    variant: t.variant ?? `v${t.version}`,
  }));
  const live = targets.filter((t) => t.mode === 'live');
  if (live.length === 0) throw new InvalidInput(`routes of ${model}: at least one live target is needed`, 'targets');
  if (live.length === 1 && Number.isNaN(live[0]!.weight)) live[0]!.weight = 1;
  const missing = live.filter((t) => Number.isNaN(t.weight));
  if (missing.length) throw new InvalidInput(`routes of ${model}: live target v${missing[0]!.version} needs a weight`, 'targets');
  const sum = live.reduce((s, t) => s + t.weight, 0);
  if (Math.abs(sum - 1) > WEIGHT_TOLERANCE) throw new InvalidInput(`routes of ${model}: live weights sum to ${sum}, they must sum to 1`, 'targets');
  const duplicate = (key: (t: RouteTarget) => string | number) => targets.find((t, i) => targets.findIndex((u) => key(u) === key(t)) !== i);
  const sameVersion = duplicate((t) => t.version);
  if (sameVersion) throw new InvalidInput(`routes of ${model}: version ${sameVersion.version} is listed twice`, 'targets');
  const sameVariant = duplicate((t) => t.variant);
  if (sameVariant) throw new InvalidInput(`routes of ${model}: variant ${sameVariant.variant} is used twice`, 'targets');
  return targets.sort((a, b) => a.version - b.version);
}

/**
 * Serialises routing writers against readers. A sequence value is taken outside transactional
 * visibility: without this lock a reader could see `routing_generation` = G while the writer of G
 * has not committed, report G as applied, and let a rollout waiting for G go on before any gateway
 * serves it. Writers take it exclusively (per transaction, before `nextval`); `readRouting` takes
 * it shared, so the sequence value it reads is always the generation of a committed change.
 */
const ROUTING_LOCK = 7_351_470_001;

async function lockRoutingWrites(client: DbClient): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [ROUTING_LOCK]);
}

/** Replaces the routing of `model` in one transaction and returns its new generation. */
export async function setRoutes(db: Db, model: string, input: readonly RouteTargetInput[], options: SetRoutesOptions): Promise<{ generation: number; targets: RouteTarget[] }> {
  if (!IDENTIFIER.test(model)) throw new InvalidInput(`model ${JSON.stringify(model)} must match ^[a-z_][a-z0-9_]{0,62}$`, 'model');
  const targets = normaliseTargets(model, input);
  if (options.salt !== undefined && (options.salt.length < 1 || options.salt.length > 200)) throw new InvalidInput('salt must be 1 to 200 characters', 'salt');
  // Postgres text cannot hold NUL.
  if (options.salt?.includes('\0')) throw new InvalidInput('salt must not contain a NUL character', 'salt');
  return withTransaction(db, async (client) => {
    await lockRoutingWrites(client);
    const { rows: versions } = await client.query<{ version: number }>('SELECT version FROM model_versions WHERE model = $1 AND version = ANY($2::int[])', [
      model,
      targets.map((t) => t.version),
    ]);
    const known = new Set(versions.map((v) => v.version));
    const unknown = targets.filter((t) => !known.has(t.version)).map((t) => `v${t.version}`);
    if (unknown.length) throw new InvalidInput(`model ${model} has no version ${unknown.join(', ')}`, 'targets');
    const { rows: current } = await client.query<{ salt: string }>('SELECT salt FROM model_routing WHERE model = $1 FOR UPDATE', [model]);
    const salt = options.salt ?? current[0]?.salt ?? model;
    const { rows: next } = await client.query<{ generation: string }>(`SELECT nextval('routing_generation') AS generation`);
    const generation = Number(next[0]!.generation);
    await client.query(
      `INSERT INTO model_routing (model, generation, salt, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (model) DO UPDATE SET generation = EXCLUDED.generation, salt = EXCLUDED.salt, updated_by = EXCLUDED.updated_by, updated_at = now()`,
      [model, generation, salt, options.updatedBy],
    );
    await client.query('DELETE FROM routes WHERE model = $1', [model]);
    await client.query(
      `INSERT INTO routes (model, version, weight, mode, variant, generation)
       SELECT $1, v, w, m, n, $6 FROM unnest($2::int[], $3::float8[], $4::text[], $5::text[]) AS t(v, w, m, n)`,
      [model, targets.map((t) => t.version), targets.map((t) => t.weight), targets.map((t) => t.mode), targets.map((t) => t.variant), generation],
    );
    return { generation, targets };
  });
}

/** Removes the explicit routing of `model` (its champion alias serves again); returns the generation taken. */
export async function clearRoutes(db: Db, model: string): Promise<{ generation: number }> {
  if (!IDENTIFIER.test(model)) throw new InvalidInput(`model ${JSON.stringify(model)} must match ^[a-z_][a-z0-9_]{0,62}$`, 'model');
  return withTransaction(db, async (client) => {
    await lockRoutingWrites(client);
    const { rowCount } = await client.query('SELECT 1 FROM model_routing WHERE model = $1', [model]);
    // Nothing to clear takes no generation: gateways would otherwise see a change that changed nothing.
    if (!rowCount) throw new NotFound(`model ${model} has no routes to clear (keel routes list shows them)`, 'model');
    return clearRoutesWith(client, model);
  });
}

/**
 * `clearRoutes` inside the caller's transaction (a promotion moves the aliases in the same one).
 * Always takes a generation, routed or not: the rollout waits for the gateways to acknowledge it.
 */
export async function clearRoutesWith(client: DbClient, model: string): Promise<{ generation: number }> {
  await lockRoutingWrites(client);
  const { rows } = await client.query<{ generation: string }>(`SELECT nextval('routing_generation') AS generation`);
  await client.query('DELETE FROM model_routing WHERE model = $1', [model]);
  return { generation: Number(rows[0]!.generation) };
}

/**
 * Every model's routing as one consistent read: explicit routes, plus the champion alias for
 * models without any. `generation` is the highest generation committed so far (the sequence's
 * last value, read while no writer holds an uncommitted one), so a gateway that applied this read
 * has applied every change up to it. One statement, so one snapshot.
 */
export async function readRouting(db: Db): Promise<{ generation: number; models: ModelRouting[] }> {
  const { rows } = await withTransaction(db, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock_shared($1)', [ROUTING_LOCK]);
    return client.query<{
      generation: string;
      explicit: Array<{ model: string; generation: number; salt: string; version: number; weight: number; mode: RouteMode; variant: string }>;
      champions: Array<{ model: string; version: number }>;
    }>(
      `SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM routing_generation) AS generation,
              (SELECT COALESCE(json_agg(json_build_object('model', r.model, 'generation', m.generation, 'salt', m.salt, 'version', r.version,
                        'weight', r.weight, 'mode', r.mode, 'variant', r.variant) ORDER BY r.model, r.version), '[]'::json)
                 FROM routes r JOIN model_routing m USING (model)) AS explicit,
              (SELECT COALESCE(json_agg(json_build_object('model', a.model, 'version', a.version) ORDER BY a.model), '[]'::json)
                 FROM model_aliases a
                WHERE a.alias = 'champion' AND NOT EXISTS (SELECT 1 FROM model_routing m WHERE m.model = a.model)) AS champions`,
    );
  });
  const { generation, explicit, champions } = rows[0]!;
  const byModel = new Map<string, ModelRouting>();
  for (const row of explicit) {
    let routing = byModel.get(row.model);
    if (!routing) byModel.set(row.model, (routing = { model: row.model, generation: Number(row.generation), salt: row.salt, live: [], shadow: [], implicit: false }));
    const target: RouteTarget = { version: row.version, weight: row.weight, mode: row.mode, variant: row.variant };
    (row.mode === 'live' ? routing.live : routing.shadow).push(target);
  }
  for (const row of champions) {
    byModel.set(row.model, {
      model: row.model,
      generation: 0,
      salt: row.model,
      live: [{ version: row.version, weight: 1, mode: 'live', variant: `v${row.version}` }],
      shadow: [],
      implicit: true,
    });
  }
  return { generation: Number(generation), models: [...byModel.values()] };
}

export interface GatewayInstance {
  id: string;
  host: string;
  pid: number;
  url: string | null;
  appliedGeneration: number;
  startedAt: string;
  lastSeen: string;
  stoppedAt: string | null;
}

export async function registerGatewayInstance(db: Db, instance: { id: string; host: string; pid: number; url?: string }): Promise<void> {
  await db.query(
    `INSERT INTO gateway_instances (id, host, pid, url) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, url = EXCLUDED.url, started_at = now(), last_seen = now(), stopped_at = NULL`,
    [instance.id, instance.host, instance.pid, instance.url ?? null],
  );
}

/** The heartbeat: last_seen = now and the generation fully applied (never moves backwards). */
export async function reportGatewayGeneration(db: Db, id: string, generation: number): Promise<void> {
  await db.query(
    `UPDATE gateway_instances SET applied_generation = GREATEST(applied_generation, $2), last_seen = now(), stopped_at = NULL WHERE id = $1`,
    [id, generation],
  );
}

export async function markGatewayStopped(db: Db, id: string): Promise<void> {
  await db.query('UPDATE gateway_instances SET stopped_at = now() WHERE id = $1', [id]);
}

export async function listGatewayInstances(db: Db): Promise<GatewayInstance[]> {
  const { rows } = await db.query<{
    id: string;
    host: string;
    pid: number;
    url: string | null;
    applied_generation: string;
    started_at: Date;
    last_seen: Date;
    stopped_at: Date | null;
  }>('SELECT * FROM gateway_instances ORDER BY started_at, id');
  return rows.map((r) => ({
    id: r.id,
    host: r.host,
    pid: r.pid,
    url: r.url,
    appliedGeneration: Number(r.applied_generation),
    startedAt: r.started_at.toISOString(),
    lastSeen: r.last_seen.toISOString(),
    stoppedAt: r.stopped_at?.toISOString() ?? null,
  }));
}

/**
 * Waits until every live gateway (not stopped, seen within `staleAfterMs`) reports at least
 * `generation`. `ok` false with the laggards when `timeoutMs` passes first. A gateway that stops
 * heartbeating drops out of the set once it is stale, so a crashed replica never blocks a rollout.
 */
export async function waitForGateways(
  db: Db,
  generation: number,
  { staleAfterMs = 10_000, timeoutMs = 30_000, pollMs = 200 }: { staleAfterMs?: number; timeoutMs?: number; pollMs?: number } = {},
): Promise<{ ok: boolean; lagging: string[]; live: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await db.query<{ id: string; applied: string }>(
      `SELECT id, applied_generation AS applied FROM gateway_instances
        WHERE stopped_at IS NULL AND last_seen > now() - make_interval(secs => $1::float8 / 1000)`,
      [staleAfterMs],
    );
    const lagging = rows.filter((r) => Number(r.applied) < generation).map((r) => r.id);
    if (lagging.length === 0) return { ok: true, lagging, live: rows.length };
    if (Date.now() >= deadline) return { ok: false, lagging, live: rows.length };
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
