/**
 * Every gateway route with who may call it: the one place a route's access is decided. The app
 * mounts route modules through `createRouteMounter`, which refuses (at start) any route missing
 * here, so a route cannot be served without a declared role. Adding a route is one line below.
 *
 * `public`: anyone, no key (health, metrics and the protocols' server metadata only). Otherwise the roles of which the caller's
 * key must hold one; in `open-loopback` mode routes open to `predict` or `feedback` also serve an
 * anonymous loopback client (api/auth.ts).
 */
import type { Role } from '../lib/roles.js';

export const PUBLIC = 'public';
export type Access = typeof PUBLIC | readonly [Role, ...Role[]];
export type RouteMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface DeclaredRoute {
  readonly method: RouteMethod;
  /** As registered with Hono (`:param` placeholders). */
  readonly path: string;
  readonly access: Access;
}

const PREDICT: Access = ['predict', 'admin'];
const FEEDBACK: Access = ['feedback', 'admin'];
const READ_REGISTRY: Access = ['viewer', 'admin'];
const ADMIN: Access = ['admin'];

const route = (method: RouteMethod, path: string, access: Access): DeclaredRoute => ({ method, path, access });

export const ROUTE_TABLE: readonly DeclaredRoute[] = [
  // health and metrics
  route('GET', '/healthz', PUBLIC),
  route('GET', '/readyz', PUBLIC),
  route('GET', '/metrics', PUBLIC),
  route('GET', '/v2/health/live', PUBLIC),
  route('GET', '/v2/health/ready', PUBLIC),
  // server metadata (name and version only), as the protocols' health endpoints
  route('GET', '/v2', PUBLIC),
  route('GET', '/v2/', PUBLIC),
  route('GET', '/ping', PUBLIC),
  route('GET', '/health', PUBLIC),
  route('GET', '/version', PUBLIC),
  // predictions: Keel's v1, the Open Inference Protocol v2, MLflow's scoring format
  route('POST', '/v1/models/:name/predict', PREDICT),
  route('GET', '/v2/models/:name', PREDICT),
  route('GET', '/v2/models/:name/ready', PREDICT),
  route('POST', '/v2/models/:name/infer', PREDICT),
  route('GET', '/v2/models/:name/versions/:version', PREDICT),
  route('GET', '/v2/models/:name/versions/:version/ready', PREDICT),
  // Pinning a version, like x-keel-variant, bypasses the traffic split: admin only.
  route('POST', '/v2/models/:name/versions/:version/infer', ADMIN),
  route('POST', '/invocations', PREDICT),
  route('POST', '/v1/feedback', FEEDBACK),
  // the model registry, read-only
  route('GET', '/v1/models', READ_REGISTRY),
  route('GET', '/v1/models/:name', READ_REGISTRY),
  route('GET', '/v1/models/:name/versions/:version', READ_REGISTRY),
  // training and routing
  route('POST', '/v1/pipelines/train', ADMIN),
  route('GET', '/v1/routes', ADMIN),
  route('PUT', '/v1/routes/:model', ADMIN),
  route('DELETE', '/v1/routes/:model', ADMIN),
  route('GET', '/v1/gateways', ADMIN),
];

/** The declared route for a method and Hono path, if any. */
export function declaredRoute(method: string, path: string, table: readonly DeclaredRoute[] = ROUTE_TABLE): DeclaredRoute | undefined {
  return table.find((r) => r.method === method && r.path === path);
}
