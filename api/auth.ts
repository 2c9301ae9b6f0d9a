/**
 * Gateway authentication: API keys (`Authorization: Bearer <token>` or `x-api-key`) with roles.
 * No, unknown or revoked key → 401; a valid key without the role → 403; Postgres unreachable and
 * the key not confirmed within the grace period → 503. In `open-loopback` mode (the embedded
 * default) `predict` and `feedback` need no key from a loopback client; `admin`, `approver` and
 * `viewer` always do, and a key that is presented is always checked. Which route needs which
 * role is declared in api/route-table.ts.
 */
import type { Context, MiddlewareHandler, Next } from 'hono';
import type { AuthMode } from '../lib/config.js';
import type { ApiKeyPrincipal, ApiKeyVerifier, ApiKeyVerifierOptions } from '../stores/api-keys.js';
import { createApiKeyVerifier } from '../stores/api-keys.js';
import type { Db } from '../stores/db.js';
import { errorBody } from './errors.js';
import { clientSocket, requestHeader } from './request-headers.js';
import type { Role } from './serving/types.js';

export type { AuthMode };

/** Roles a loopback client holds without a key in `open-loopback` mode. */
export const OPEN_ON_LOOPBACK: readonly Role[] = ['predict', 'feedback'];

export const VARIANT_HEADER = 'x-keel-variant';

export interface AuthOptions {
  mode: AuthMode;
  /** Needed unless `verifier` is given. */
  db?: Db;
  /** Defaults to a cached verifier over `db` (revocations take effect within 5 s, grace while Postgres is away). */
  verifier?: ApiKeyVerifier;
  verifierOptions?: ApiKeyVerifierOptions;
  /**
   * Whether a request that did not come through a socket (`app.request()` in tests) counts as
   * loopback. Default false.
   */
  requestsWithoutSocketAreLoopback?: boolean;
}

export interface Auth {
  readonly mode: AuthMode;
  /** Lets the request through when its caller holds any of `roles`; else 401 / 403. */
  requireRole(...roles: Role[]): MiddlewareHandler;
  /** Releases the verifier it created (pending `last_used_at` writes). */
  close(): Promise<void>;
}

interface AuthState {
  principal?: ApiKeyPrincipal;
}
const states = new WeakMap<Context, AuthState>();

/** The key behind the request, or undefined for an anonymous loopback caller. */
export function principalOf(c: Context): ApiKeyPrincipal | undefined {
  return states.get(c)?.principal;
}

/** True when the request's key holds `role` (an anonymous caller holds no role explicitly). */
export function hasRole(c: Context, role: Role): boolean {
  return principalOf(c)?.roles.includes(role) ?? false;
}

export function createAuth(options: AuthOptions): Auth {
  if (!options.verifier && !options.db) throw new Error('createAuth needs a db or a verifier');
  const verifier = options.verifier ?? createApiKeyVerifier(options.db!, options.verifierOptions);
  const ownsVerifier = !options.verifier;

  return {
    mode: options.mode,
    requireRole(...roles: Role[]): MiddlewareHandler {
      if (roles.length === 0) throw new Error('requireRole needs at least one role');
      const openOnLoopback = options.mode === 'open-loopback' && roles.some((r) => OPEN_ON_LOOPBACK.includes(r));
      const withKey = async (c: Context, next: Next, token: string) => {
        let principal: ApiKeyPrincipal | undefined;
        try {
          principal = await verifier.verify(token);
        } catch {
          return c.json(errorBody('Unavailable', 'cannot check the API key right now: the database is unreachable'), 503);
        }
        if (!principal) return unauthorized(c, 'the API key is invalid or revoked', 'invalid_token');
        states.set(c, { principal });
        if (!roles.some((r) => principal.roles.includes(r))) return forbidden(c, roles);
        return next();
      };
      // Not async: an anonymous loopback caller passes without a promise (the gateway's hot path).
      return (c, next) => {
        const token = presentedToken(c);
        if (token === null) return Promise.resolve(unauthorized(c, 'the Authorization header must be "Bearer <API key>"', 'invalid_request'));
        if (token === undefined) {
          // An anonymous loopback caller has no principal: nothing is recorded for it.
          if (openOnLoopback && isLoopbackRequest(c, options.requestsWithoutSocketAreLoopback ?? false)) return next();
          return Promise.resolve(unauthorized(c, 'an API key is required: send Authorization: Bearer <key> or x-api-key (create one with keel keys create)'));
        }
        return withKey(c, next, token);
      };
    },
    async close() {
      if (ownsVerifier) await verifier.close();
    },
  };
}

/**
 * The `x-keel-variant` header, which pins a request to one variant for testing. Only an `admin`
 * key may send it, in every mode: without a key → 401, with a key lacking `admin` → 403. Call it
 * after `requireRole('predict')`: `const o = variantOverride(c); if (o.denied) return o.denied;`.
 */
export function variantOverride(c: Context): { variant?: string; denied?: Response } {
  const variant = requestHeader(c, VARIANT_HEADER);
  if (variant === undefined) return {};
  const principal = principalOf(c);
  if (!principal) return { denied: unauthorized(c, `the ${VARIANT_HEADER} header needs an API key with role admin`) };
  if (!principal.roles.includes('admin')) return { denied: forbidden(c, ['admin'], `the ${VARIANT_HEADER} header`) };
  return { variant };
}

/** undefined: none sent; null: an Authorization header that is not a Bearer token. */
function presentedToken(c: Context): string | undefined | null {
  const authorization = requestHeader(c, 'authorization');
  if (authorization !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    return match ? match[1]! : null;
  }
  const apiKey = requestHeader(c, 'x-api-key')?.trim();
  return apiKey ? apiKey : undefined;
}

function unauthorized(c: Context, message: string, error?: 'invalid_token' | 'invalid_request') {
  c.header('WWW-Authenticate', error ? `Bearer realm="keel", error="${error}"` : 'Bearer realm="keel"');
  return c.json(errorBody('Unauthorized', message), 401);
}

function forbidden(c: Context, roles: readonly Role[], what = 'this endpoint') {
  const needed = roles.length === 1 ? `role ${roles[0]}` : `one of the roles ${roles.join(', ')}`;
  return c.json(errorBody('Forbidden', `${what} needs an API key with ${needed}`), 403);
}

/**
 * True when the client connected from a loopback address. A request carrying proxy headers is
 * not trusted as local: a reverse proxy on the same host would otherwise make everyone loopback.
 */
function isLoopbackRequest(c: Context, withoutSocket: boolean): boolean {
  if (requestHeader(c, 'x-forwarded-for') !== undefined || requestHeader(c, 'forwarded') !== undefined) return false;
  const socket = clientSocket(c);
  if (socket === undefined) return withoutSocket; // no Node socket behind this request
  // A keep-alive connection carries many requests from one address: decided once per socket.
  let loopback = loopbackSockets.get(socket);
  if (loopback === undefined) {
    const address = socket.remoteAddress;
    loopback = address === undefined ? withoutSocket : isLoopbackAddress(address);
    loopbackSockets.set(socket, loopback);
  }
  return loopback;
}

const loopbackSockets = new WeakMap<object, boolean>();

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x addresses. */
export function isLoopbackAddress(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1' || address === '0:0:0:0:0:0:0:1';
}
