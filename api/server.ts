import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { serve } from '@hono/node-server';
import type { Client } from '@temporalio/client';
import { pino, type Logger } from 'pino';
import { churnOnDemandFeatures } from '../examples/churn/on-demand.js';
import type { KeelConfig } from '../lib/config.js';
import { loadOnDemandModules } from '../lib/features/modules.js';
import type { OnDemandFeature } from '../lib/features/on-demand.js';
import { knownServices } from '../lib/workflow-failures.js';
import { openArtifactStore, type ArtifactStore } from '../stores/artifacts/index.js';
import { createDb, type Db } from '../stores/db.js';
import { connectTemporalClient } from '../stores/temporal.js';
import { createGatewayApp, logRequests, type GatewayLimits, type ServingDeps } from './app.js';
import { createAuth, hasRole, principalOf } from './auth.js';
import { startPredictionLog } from './serving/prediction-log.js';
import { pickExplicitVariant, pickLiveTarget } from './serving/routing.js';
import { startServingState, type ServingState } from './serving/serving-state.js';

export interface RunningGateway {
  url: string;
  /**
   * Stops taking connections, lets requests in flight finish (up to `drainMs`), waits for shadow
   * scoring, then flushes the prediction log and closes the serving state and the pool.
   */
  close(): Promise<void>;
}

export interface GatewayOptions {
  /** On-demand functions the served models may use; default the churn example's and those of KEEL_FEATURE_MODULES (as workers/main.ts). */
  onDemand?: readonly OnDemandFeature[];
  limits?: Partial<GatewayLimits>;
  /** How long requests in flight may take to finish on close, ms; default 10 000. */
  drainMs?: number;
}

export async function startGateway(config: KeelConfig, options: GatewayOptions = {}): Promise<RunningGateway> {
  const onDemand = options.onDemand ?? (await loadOnDemandModules(config.features.modules, churnOnDemandFeatures));
  const db = createDb({ url: config.database.url, applicationName: 'keel-gateway' });
  const artifacts = openArtifactStore(config.artifacts);
  // Asynchronous destination: a request never waits for stdout (flushed on close).
  const destination = pino.destination({ sync: false });
  const logger = pino({ name: 'keel-gateway', level: config.gateway.logLevel }, destination);
  const auth = createAuth({ db, mode: config.gateway.auth, verifierOptions: { graceMs: config.apiKeys.graceMs } });
  let temporal: Promise<Client> | undefined;

  const serving = await startServing({ config, db, artifacts, logger });
  const app = createGatewayApp({
    registry: {
      db,
      temporal: () => (temporal ??= connectTemporalClient(config.temporal).catch((error: unknown) => {
        temporal = undefined;
        throw error;
      })),
      s3: { endpoint: config.artifacts.s3Endpoint, region: config.artifacts.region },
      dataAccess: config.worker,
      services: knownServices(config),
    },
    logger,
    logError: (error) => logger.error({ err: error }, 'unhandled error'),
    readiness: [
      { name: 'postgres', probe: async () => void (await db.query('SELECT 1')) },
      { name: 'artifacts', probe: async () => void (await artifacts.stat('0'.repeat(64))) },
    ],
    serving: {
      ...serving.deps,
      picker: { pickLiveTarget, pickExplicitVariant },
      auth: {
        canUseVariantHeader: (c) => hasRole(c, 'admin'),
        actor: (c) => principalOf(c)?.name,
      },
      onDemand,
      db,
      limits: { ...config.gateway.limits, ...options.limits },
    },
    auth: { requireRole: (roles) => auth.requireRole(...roles) },
  });
  const { host, port } = config.gateway;
  const server = await new Promise<Server>((resolve, reject) => {
    const s = serve({ fetch: logRequests(app, logger), hostname: host, port }, () => resolve(s as Server)) as Server;
    s.once('error', reject);
  });
  logger.info({ host, port, auth: config.gateway.auth }, 'gateway listening');
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      (closing ??= (async () => {
        logger.info('draining: no new connections, finishing requests in flight');
        const drained = new Promise<void>((resolve) => server.close(() => resolve()));
        // A keep-alive client would otherwise go on sending requests on its open connection until
        // the grace period cut it mid-request: answered and logged, but never received. So every
        // answer from here on closes its connection, and connections that fall idle are closed.
        server.on('request', closeAfterAnswer);
        server.closeIdleConnections();
        const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
        const grace = setTimeout(() => server.closeAllConnections(), options.drainMs ?? 10_000);
        await drained;
        clearInterval(idleSweep);
        clearTimeout(grace);
        await app.predictor?.idle();
        await serving.close();
        await auth.close();
        await db.end();
        if (temporal) await (await temporal.catch(() => undefined))?.connection.close();
        logger.info('gateway stopped');
        logger.flush();
      })()),
  };
}

/** While draining: the answer says `Connection: close` and the socket closes after it. */
function closeAfterAnswer(_request: IncomingMessage, response: ServerResponse): void {
  response.shouldKeepAlive = false;
}

/** The serving state and prediction log, started before the gateway takes traffic. */
interface StartedServing {
  deps: Pick<ServingDeps, 'state' | 'log'>;
  /** Flushes the prediction log, then stops following routing (releasing the models). */
  close(): Promise<void>;
}

/**
 * The routing follower (models loaded from the registry, routing applied, generation reported to
 * `gateway_instances`) and the prediction log (batched to Postgres, spilled under
 * `<KEEL_HOME>/spill` while Postgres is away), sharing one gateway id. The id is stable for a
 * host and port, so a restarted gateway replays the spill file its predecessor left.
 */
async function startServing(deps: { config: KeelConfig; db: Db; artifacts: ArtifactStore; logger: Logger }): Promise<StartedServing> {
  const { config, db, artifacts, logger } = deps;
  const { host, port } = config.gateway;
  const gatewayId = config.gateway.id ?? `${os.hostname()}:${port}`;
  const log = await startPredictionLog({ db, gatewayId, spillDir: path.join(config.home, 'spill'), logger });
  let state: ServingState;
  try {
    state = await startServingState({
      db,
      databaseUrl: config.database.url,
      artifacts,
      cacheDir: path.join(config.home, 'models'),
      gatewayId,
      url: `http://${host}:${port}`,
      logger,
      batching: { maxWaitMs: config.gateway.batchWaitMs, maxBatchRows: config.gateway.microBatchRows },
    });
  } catch (error) {
    await log.close();
    throw error;
  }
  return {
    deps: { state, log },
    close: async () => {
      await log.close();
      await state.close();
    },
  };
}
