import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { KeelError } from '../lib/errors.js';
import type { OnDemandFeature } from '../lib/features/on-demand.js';
import { onDemandRegistry } from '../lib/features/on-demand.js';
import type { Role } from '../lib/roles.js';
import type { Db } from '../stores/db.js';
import { sendError } from './errors.js';
import { createGatewayMetrics, createMetricsRegistry } from './metrics.js';
import { createRouteMounter } from './mount-routes.js';
import { PUBLIC, type DeclaredRoute } from './route-table.js';
import { feedbackRoutes } from './routes/feedback.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { mlflowRoutes } from './routes/mlflow.js';
import { modelRoutes } from './routes/models.js';
import { oipRoutes } from './routes/oip.js';
import type { PipelineRouteDeps } from './routes/pipelines.js';
import { pipelineRoutes } from './routes/pipelines.js';
import { predictRoutes } from './routes/predict.js';
import { routingRoutes } from './routes/routing.js';
import type { PredictionRouteDeps, ServingLimits } from './serving/http.js';
import { bodySizeLimit, DEFAULT_SERVING_LIMITS, errorResponse } from './serving/http.js';
import type { Predictor, TargetPicker } from './serving/predictor.js';
import { createOnlineReader } from './serving/online-reads.js';
import { keelErrors, protocolErrorsFor } from './serving/protocol-errors.js';
import { createPredictor } from './serving/predictor.js';
import type { PredictionRecord, ServingSnapshot } from './serving/types.js';

export interface GatewayLimits extends ServingLimits {
  /** Request body bytes on every endpoint; more is a 413 `PayloadTooLarge`. Default 1 MiB. */
  maxBodyBytes: number;
}

export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = { ...DEFAULT_SERVING_LIMITS, maxBodyBytes: 1024 * 1024 };

/** What the prediction endpoints need; without it the gateway serves only the registry and health. */
export interface ServingDeps {
  /** The routing helper's serving state (`startServingState`). */
  state: { current(): ServingSnapshot; ready(): boolean; appliedGeneration?(): number; problems?(): string[] };
  /** The routing helper's pickers (`pickLiveTarget`, `pickExplicitVariant` of serving/routing.ts). */
  picker: TargetPicker;
  /** The prediction log (serving/prediction-log.ts): `append` is synchronous and never throws. */
  log: { append(record: PredictionRecord): void; depth?(): number; has?(requestId: string): boolean };
  /** The admin check for `x-keel-variant` (no pinning when absent) and who changes routing. */
  auth?: {
    canUseVariantHeader(c: Context): boolean | Promise<boolean>;
    /** Who changes routing, for model_routing.updated_by. */
    actor?: (c: Context) => string | undefined;
  };
  /** On-demand functions of this deployment (e.g. the churn example's), checked against each model's spec. */
  onDemand?: readonly OnDemandFeature[];
  /**
   * The online store for `{entity}` requests; with it the gateway also serves `POST /v1/feedback`
   * and the routing admin endpoints.
   */
  db?: Db;
  limits?: Partial<GatewayLimits>;
}

/** Who may call what: each route's guard comes from its roles in the route table (api/route-table.ts). */
export interface GatewayAuth {
  /** The check for routes open to `roles` (api/auth.ts `requireRole`). */
  requireRole(roles: readonly Role[]): MiddlewareHandler;
}

export interface GatewayDeps {
  /** Probed by `/readyz`: the gateway is ready only when all pass. */
  readiness: ReadinessCheck[];
  metrics?: Registry;
  logError?: (error: unknown) => void;
  /** Error logs (JSON, with the request id); per-request logs come from `logRequests` around the app's fetch. */
  logger?: Logger;
  /** The registry and pipeline endpoints need Postgres and (to start runs) Temporal. */
  registry?: PipelineRouteDeps;
  serving?: ServingDeps;
  /** Every route is open when absent (apps built in tests); `keel gateway` always passes it. */
  auth?: GatewayAuth;
}

export interface GatewayApp extends Hono {
  /** The prediction core, when serving is configured (tests wait on `predictor.idle()` for shadows). */
  predictor?: Predictor;
}

/** The gateway as a Hono app, with no socket: tests call `app.request()` directly. */
export function createGatewayApp(deps: GatewayDeps): GatewayApp {
  const registry = deps.metrics ?? createMetricsRegistry();
  const logError = deps.logError ?? ((error: unknown) => (deps.logger ? deps.logger.error({ err: error }, 'unhandled error') : console.error(error)));
  const metrics = createGatewayMetrics(registry, { logQueueDepth: deps.serving?.log.depth ? () => deps.serving!.log.depth!() : undefined });
  const app: GatewayApp = new Hono();
  const checks = [...deps.readiness];
  if (deps.serving) {
    const { state } = deps.serving;
    checks.push({
      name: 'serving',
      probe: async () => {
        if (!state.ready()) {
          const problems = state.problems?.() ?? [];
          const summary = 'models not loaded or routing not applied yet';
          throw new KeelError('NotReady', `${summary}${problems.length ? `: ${problems.join('; ')}` : ''}`).withPublicMessage(summary);
        }
      },
    });
  }
  const limits: GatewayLimits = { ...DEFAULT_GATEWAY_LIMITS, ...deps.serving?.limits };
  const routes = createRouteMounter(app, {
    guard: deps.auth && ((roles) => deps.auth!.requireRole(roles)),
    bodyLimit: bodySizeLimit(limits.maxBodyBytes, (c) => sendError(c, 413, 'PayloadTooLarge', `the request body is larger than ${limits.maxBodyBytes} bytes`)),
    onRefusal: (route, refused) => {
      if (servesPredictions(route)) metrics.errors.inc({ code: REFUSAL_CODES[refused.status] ?? String(refused.status) });
    },
  });
  routes.mount(healthRoutes({ checks, metrics: registry, logProblem: (check, error) => deps.logger?.warn({ err: error, check }, 'readiness check failed') }));
  if (deps.serving) {
    const serving = deps.serving;
    // Concurrent {entity} requests share one online-store query per turn of the event loop.
    const enrich = { db: serving.db, onDemand: onDemandRegistry(serving.onDemand ?? []), reader: serving.db && createOnlineReader(serving.db) };
    const predictor = createPredictor({
      serving: serving.state,
      picker: serving.picker,
      log: serving.log,
      metrics,
      enrich,
      logShadowError: (error, context) => deps.logger?.warn({ err: error, ...context }, 'shadow scoring failed'),
    });
    app.predictor = predictor;
    const routeDeps: PredictionRouteDeps = {
      predictor,
      metrics,
      limits,
      canUseVariantHeader: serving.auth?.canUseVariantHeader ?? (() => false),
      logError: (error, requestId) => (deps.logger ? deps.logger.error({ err: error, requestId }, 'prediction failed') : logError(error)),
    };
    routes.mount(predictRoutes(routeDeps));
    routes.mount(oipRoutes({ ...routeDeps, serving: serving.state, enrich }));
    routes.mount(mlflowRoutes({ ...routeDeps, serving: serving.state }));
    if (serving.db) {
      const { log } = serving;
      const has = log.has ? (requestId: string) => log.has!(requestId) : undefined;
      routes.mount(feedbackRoutes({ db: serving.db, log: has && { has }, logError: routeDeps.logError }));
      routes.mount(routingRoutes({ db: serving.db, state: serving.state, actor: serving.auth?.actor }));
    }
  }
  if (deps.registry) {
    routes.mount(modelRoutes(deps.registry));
    routes.mount(pipelineRoutes(deps.registry));
  }
  routes.assertAllMounted();
  app.notFound((c) => {
    // A protocol's paths answer in its shape, unknown ones (/v2/…) included.
    const render = protocolErrorsFor(c.req.path) ?? keelErrors;
    return render(c, 404, { code: 'NotFound', message: `no route for ${c.req.method} ${c.req.path}` });
  });
  app.onError((error, c) => errorResponse(c, error, undefined, logError));
  return app;
}

/** Codes of the refusals a route's checks answer (api/auth.ts, the body limit), for the error counter. */
const REFUSAL_CODES: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 413: 'PayloadTooLarge', 503: 'Unavailable' };

/** Prediction and feedback routes: their refusals count in `keel_prediction_errors_total`. */
function servesPredictions(route: DeclaredRoute): boolean {
  return route.access !== PUBLIC && (route.access.includes('predict') || route.access.includes('feedback'));
}

/**
 * The app's fetch with request logs: one JSON line per request at debug level (method, path,
 * status, ms, request id), and at warn for 5xx answers. A wrapper around `fetch` rather than a
 * `*` middleware: a middleware layer puts every route through Hono's compose step, which cost
 * more than the rest of the logging (see `refusal` in serving/http.ts). At info level nothing is
 * built per request.
 */
export function logRequests(app: Hono, logger: Logger): typeof app.fetch {
  return async (request, env, executionCtx) => {
    const started = performance.now();
    const res = await app.fetch(request, env, executionCtx);
    if (res.status < 500 && !logger.isLevelEnabled('debug')) return res;
    const entry = {
      requestId: res.headers.get('x-request-id') ?? request.headers.get('x-request-id'),
      method: request.method,
      path: new URL(request.url).pathname,
      status: res.status,
      ms: Math.round((performance.now() - started) * 1000) / 1000,
    };
    if (res.status >= 500) logger.warn(entry, 'request failed');
    else logger.debug(entry, 'request');
    return res;
  };
}
