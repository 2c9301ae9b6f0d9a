/**
 * Mounts route modules (Hono sub-apps) on the gateway through the route table: each route gets
 * the guard of its declared access and the body limit, run by `refusal` inside the route's one
 * handler (no middleware layer: a prediction keeps Hono's direct dispatch). A route missing from
 * the table stops the gateway from starting.
 */
import type { Context, Handler, Hono, MiddlewareHandler } from 'hono';
import type { Role } from '../lib/roles.js';
import { declaredRoute, PUBLIC, ROUTE_TABLE, type DeclaredRoute } from './route-table.js';
import { refusal } from './serving/http.js';
import { protocolErrorsFor, renderRefusal } from './serving/protocol-errors.js';

export interface RouteChecks {
  /** The check for routes open to `roles`; absent: every route is open (an app built without auth, in tests). */
  guard?: (roles: readonly Role[]) => MiddlewareHandler;
  /** The request body limit, checked on every route after its guard. */
  bodyLimit?: MiddlewareHandler;
  /** Sees each refusal (401, 403, 413, 503) of a declared route, e.g. to count it. */
  onRefusal?: (route: DeclaredRoute, refused: Response) => void;
}

export interface RouteMounter {
  /** Serves every route of `routes` with its declared checks; throws on a route not in the table. */
  mount(routes: Hono): void;
  /** Throws when the app holds a route that did not come through `mount`. */
  assertAllMounted(): void;
}

export function createRouteMounter(app: Hono, checks: RouteChecks, table: readonly DeclaredRoute[] = ROUTE_TABLE): RouteMounter {
  const mounted = new WeakSet<Handler>();
  // One guard per set of roles, shared by the routes that declare it.
  const guards = new Map<string, MiddlewareHandler>();
  const guardFor = (route: DeclaredRoute): MiddlewareHandler | undefined => {
    if (route.access === PUBLIC || !checks.guard) return undefined;
    const key = route.access.join(',');
    let guard = guards.get(key);
    if (!guard) guards.set(key, (guard = checks.guard(route.access)));
    return guard;
  };
  return {
    mount(routes) {
      for (const r of routes.routes) {
        const declared = declaredRoute(r.method, r.path, table);
        if (!declared) {
          throw new Error(`${r.method} ${r.path} is not in the gateway's route table: declare it with its role in api/route-table.ts`);
        }
        // A protocol's routes (OIP v2, MLflow) answer the checks' refusals in its own error shape.
        const render = protocolErrorsFor(declared.path);
        const onRefusal = (c: Context, refused: Response) => {
          checks.onRefusal?.(declared, refused);
          return render ? renderRefusal(c, refused, render) : refused;
        };
        const handler = checked([guardFor(declared), checks.bodyLimit], r.handler, onRefusal);
        mounted.add(handler);
        app.on(r.method, r.path, handler);
      }
    },
    assertAllMounted() {
      const stray = app.routes.find((r) => !mounted.has(r.handler));
      if (stray) throw new Error(`${stray.method} ${stray.path} was added to the gateway outside the route table (api/route-table.ts)`);
    },
  };
}

/** The route's handler behind its checks; a request every check passes at once costs no promise. */
function checked(
  checks: Array<MiddlewareHandler | undefined>,
  handler: Handler,
  refuse: (c: Context, refused: Response) => Response | Promise<Response>,
): Handler {
  return (c: Context, next) => {
    const refused = refusal(c, checks);
    if (refused === undefined) return handler(c, next);
    if (refused instanceof Promise) return refused.then((r) => (r === undefined ? handler(c, next) : refuse(c, r)));
    return refuse(c, refused);
  };
}
