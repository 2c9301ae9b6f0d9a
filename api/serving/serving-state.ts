/**
 * What a gateway serves, kept in step with Postgres: the routing table (stores/routes.ts) and the
 * loaded models it names, as one immutable snapshot swapped atomically, so a request sees either
 * the old routing with the old models or the new with the new, never a mix.
 *
 * Following changes: a dedicated connection LISTENs on `keel_routing` (the trigger of migration
 * 0005 notifies on commit) and triggers a refresh at once; a poll every `pollMs` covers lost
 * notifications and a dropped connection (which is re-established with backoff). Refreshes run
 * one at a time; a burst of notifications coalesces into one.
 *
 * A refresh loads the versions it does not hold yet (reusing loaded ones) before swapping. When a
 * model's new targets cannot all be loaded, that model keeps its previous routing and models (or
 * stays unserved if it had none), the error is logged, and the refresh is retried on the next poll
 * (a version that failed is tried again at most every `retryFailedMs`).
 *
 * The generation reported in `gateway_instances` means "every routing change up to here is
 * served": the generation read, or, when a model's change failed to load, one below the oldest
 * failed change. So a rollout that wrote generation G waits (and times out) while any gateway
 * cannot load G's versions, yet a broken version of one model does not hold back a rollout of
 * another model whose change came earlier. A failing champion-alias route (no generation) holds
 * back nothing; it shows in `problems()` and the logs. The reported value never moves backwards.
 * Models dropped from routing are released after `releaseGraceMs` (requests in flight may hold them).
 */
import os from 'node:os';
import pg from 'pg';
import type { Logger } from 'pino';
import type { ArtifactStore } from '../../stores/artifacts/index.js';
import type { Db } from '../../stores/db.js';
import { markGatewayStopped, readRouting, registerGatewayInstance, reportGatewayGeneration } from '../../stores/routes.js';
import type { BatchingOptions, LoadedModel } from './model-loader.js';
import { loadServedModel } from './model-loader.js';
import type { ModelRouting, ServingSnapshot } from './types.js';
import { modelKey } from './types.js';

export interface ServingStateOptions {
  db: Db;
  /** For the LISTEN connection; omit to follow by polling only. */
  databaseUrl?: string;
  artifacts: ArtifactStore;
  cacheDir?: string;
  gatewayId: string;
  url?: string;
  logger?: Logger;
  pollMs?: number;
  heartbeatMs?: number;
  retryFailedMs?: number;
  releaseGraceMs?: number;
  batching?: BatchingOptions;
  /** Loads a model version; default loadServedModel (a test may count calls). */
  load?: (model: string, version: number) => Promise<LoadedModel>;
}

export interface ServingState {
  current(): ServingSnapshot;
  /**
   * True once routing has been read and applied: every model in the snapshot is loaded. A later
   * change that fails to load keeps the gateway ready (it serves the previous routing), and shows
   * in `problems()`.
   */
  ready(): boolean;
  /** Routing changes not applied and why, for /readyz and logs. */
  problems(): string[];
  appliedGeneration(): number;
  /** Reads routing now and applies it (waits for a refresh under way first). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

const EMPTY: ServingSnapshot = { generation: 0, routing: new Map(), models: new Map() };

export async function startServingState(options: ServingStateOptions): Promise<ServingState> {
  const { db, logger } = options;
  const pollMs = options.pollMs ?? 1_000;
  const heartbeatMs = options.heartbeatMs ?? 2_000;
  const retryFailedMs = options.retryFailedMs ?? 5_000;
  const releaseGraceMs = options.releaseGraceMs ?? 15_000;
  const load =
    options.load ?? ((model: string, version: number) => loadServedModel({ db, artifacts: options.artifacts, cacheDir: options.cacheDir, batching: options.batching }, model, version));

  let snapshot: ServingSnapshot = EMPTY;
  let applied = 0;
  let routingRead = false;
  let problems: string[] = ['routing not read yet'];
  let closed = false;
  const failedAt = new Map<string, { at: number; message: string }>();
  const releaseTimers = new Set<NodeJS.Timeout>();

  const loadTarget = async (key: string, model: string, version: number, pending: Map<string, LoadedModel>): Promise<LoadedModel> => {
    const held = (snapshot.models.get(key) as LoadedModel | undefined) ?? pending.get(key);
    if (held) return held;
    const failed = failedAt.get(key);
    if (failed && Date.now() - failed.at < retryFailedMs) throw new Error(failed.message);
    try {
      const loaded = await load(model, version);
      failedAt.delete(key);
      pending.set(key, loaded);
      logger?.info({ model, version, bundle: loaded.bundleSha256 }, 'model loaded');
      return loaded;
    } catch (error) {
      const message = (error as Error).message;
      failedAt.set(key, { at: Date.now(), message });
      throw error;
    }
  };

  const apply = async () => {
    const { generation, models: routings } = await readRouting(db);
    const pending = new Map<string, LoadedModel>();
    const nextRouting = new Map<string, ModelRouting>();
    const nextModels = new Map<string, LoadedModel>();
    const failures: string[] = [];
    let oldestFailed = Infinity;
    for (const routing of routings) {
      const previous = snapshot.routing.get(routing.model);
      const targets = [...routing.live, ...routing.shadow];
      // allSettled, not all: a sibling still loading when one fails must land in `pending` (and be released).
      const settled = await Promise.allSettled(targets.map((t) => loadTarget(modelKey(routing.model, t.version), routing.model, t.version, pending)));
      const rejected = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (!rejected) {
        nextRouting.set(routing.model, routing);
        for (const r of settled) if (r.status === 'fulfilled') nextModels.set(modelKey(r.value.model, r.value.version), r.value);
      } else {
        const error = rejected.reason as Error;
        failures.push(`${routing.model}: ${error.message}`);
        // An implicit (champion) route has no generation: its failure holds back no routing change.
        if (!routing.implicit) oldestFailed = Math.min(oldestFailed, routing.generation);
        logger?.error({ model: routing.model, generation: routing.generation, err: error }, 'routing change not applied: a model failed to load; the previous routing stays');
        if (previous) {
          nextRouting.set(routing.model, previous);
          for (const t of [...previous.live, ...previous.shadow]) {
            const key = modelKey(routing.model, t.version);
            const held = snapshot.models.get(key) as LoadedModel | undefined;
            if (held) nextModels.set(key, held);
          }
        }
      }
    }
    // Loaded during this refresh but not used (a sibling target of the same model failed): release.
    for (const [key, model] of pending) if (nextModels.get(key) !== model) void model.release();
    const dropped = [...snapshot.models.entries()].filter(([key, model]) => nextModels.get(key) !== model).map(([, model]) => model as LoadedModel);
    // Every change below the oldest routing change not applied is applied: report that, never less
    // than before (a model that fails keeps its previous, older routing, which was applied already).
    applied = Math.max(applied, Math.min(generation, oldestFailed - 1));
    snapshot = { generation: applied, routing: nextRouting, models: nextModels };
    routingRead = true;
    problems = failures;
    if (dropped.length) {
      const timer = setTimeout(() => {
        releaseTimers.delete(timer);
        for (const model of dropped) void model.release();
      }, releaseGraceMs);
      releaseTimers.add(timer);
    }
    await reportGatewayGeneration(db, options.gatewayId, applied).catch((error: unknown) => logger?.debug({ err: error }, 'reporting the applied generation failed'));
  };

  // Serialised refreshes; calls during a refresh coalesce into one more.
  let running: Promise<void> | undefined;
  let again = false;
  const refresh = (): Promise<void> => {
    if (closed) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await apply();
        } catch (error) {
          problems = [`routing could not be read: ${(error as Error).message}`];
          logger?.warn({ err: error }, 'routing refresh failed; serving the last applied routing');
        }
      } while (again && !closed);
    })().finally(() => {
      running = undefined;
    });
    return running;
  };

  await registerGatewayInstance(db, { id: options.gatewayId, host: os.hostname(), pid: process.pid, url: options.url });
  await refresh();

  const poll = setInterval(() => void refresh(), pollMs);
  const heartbeat = setInterval(() => {
    void reportGatewayGeneration(db, options.gatewayId, applied).catch((error: unknown) => logger?.debug({ err: error }, 'heartbeat failed'));
  }, heartbeatMs);
  poll.unref();
  heartbeat.unref();

  // LISTEN on its own connection, re-established with backoff when it drops.
  let listener: pg.Client | undefined;
  let listenRetry: NodeJS.Timeout | undefined;
  const listen = async (attempt: number): Promise<void> => {
    if (closed || !options.databaseUrl) return;
    const client = new pg.Client({ connectionString: options.databaseUrl, application_name: 'keel-gateway-listen' });
    const retry = () => {
      if (closed || listener !== client) return;
      listener = undefined;
      void client.end().catch(() => undefined);
      const delay = Math.min(5_000, 200 * 2 ** Math.min(attempt, 5));
      listenRetry = setTimeout(() => void listen(attempt + 1), delay);
      listenRetry.unref();
    };
    listener = client;
    client.on('error', retry);
    client.on('end', retry);
    client.on('notification', () => void refresh());
    try {
      await client.connect();
      await client.query('LISTEN keel_routing');
      attempt = 0;
      // Changes made while we were not listening.
      void refresh();
    } catch (error) {
      logger?.debug({ err: error }, 'LISTEN keel_routing failed; polling until it works');
      retry();
    }
  };
  await listen(0);

  return {
    current: () => snapshot,
    ready: () => routingRead,
    problems: () => problems,
    appliedGeneration: () => applied,
    refresh,
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(poll);
      clearInterval(heartbeat);
      if (listenRetry) clearTimeout(listenRetry);
      const client = listener;
      listener = undefined;
      await client?.end().catch(() => undefined);
      await running?.catch(() => undefined);
      await markGatewayStopped(db, options.gatewayId).catch(() => undefined);
      for (const timer of releaseTimers) clearTimeout(timer);
      await Promise.all([...snapshot.models.values()].map((m) => (m as LoadedModel).release().catch(() => undefined)));
      snapshot = EMPTY;
    },
  };
}
