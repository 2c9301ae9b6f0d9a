/**
 * API keys for the gateway. A token is `keel_<id>_<secret>`: the id finds the row, the secret is
 * shown once at creation and only its sha256 is stored. Roles: `predict`, `feedback`, `admin`,
 * `approver`, `viewer`; they do not imply one another.
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ROLES, type Role } from '../lib/roles.js';
import { InvalidInput } from '../lib/errors.js';
import { withTimeout } from '../lib/timeout.js';
import type { Db } from './db.js';
import { NotFound } from './registry.js';

export interface ApiKey {
  id: string;
  name: string;
  roles: Role[];
  createdAt: Date;
  createdBy: string;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

/** A new key with its token: the only time the secret exists outside the caller's hands. */
export interface CreatedApiKey extends ApiKey {
  token: string;
}

export interface RevokedApiKey extends ApiKey {
  revokedAt: Date;
  /** True when the key had been revoked before this call (revoking is idempotent). */
  alreadyRevoked: boolean;
}

/** Who a verified token belongs to. */
export interface ApiKeyPrincipal {
  keyId: string;
  name: string;
  roles: readonly Role[];
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const ID_LENGTH = 12;
const SECRET_BYTES = 32;
/** `keel_` + id (the table allows 8–32 lowercase alnum) + `_` + 32 bytes base64url (43 chars). */
const TOKEN_PATTERN = /^keel_([a-z0-9]{8,32})_([A-Za-z0-9_-]{43})$/;
export const API_KEY_ID_PATTERN = /^[a-z0-9]{8,32}$/;

export const newApiKeySchema = z.object({
  name: z.string().trim().min(1, 'name must not be empty').max(200, 'name must be at most 200 characters'),
  roles: z
    .array(z.enum(ROLES as [Role, ...Role[]], { error: (issue) => `unknown role ${JSON.stringify(issue.input)} (roles: ${ROLES.join(', ')})` }))
    .min(1, `give at least one role (${ROLES.join(', ')})`),
  createdBy: z.string().trim().min(1, 'createdBy must not be empty'),
});
/** A key to create; roles are checked against ROLES (the CLI passes what the user typed). */
export interface NewApiKey {
  name: string;
  roles: readonly string[];
  createdBy: string;
}

/** Checks a new key's fields; throws InvalidInput naming the field. Roles come back deduplicated. */
export function parseNewApiKey(input: NewApiKey): z.output<typeof newApiKeySchema> {
  const parsed = newApiKeySchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidInput(issue.message, String(issue.path[0] ?? ''));
  }
  return { ...parsed.data, roles: ROLES.filter((r) => parsed.data.roles.includes(r)) };
}

/** Splits a token into id and secret; undefined when it is not shaped like a Keel token. */
export function parseApiKeyToken(token: string): { id: string; secret: string } | undefined {
  const match = TOKEN_PATTERN.exec(token);
  return match ? { id: match[1]!, secret: match[2]! } : undefined;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function randomId(): string {
  let id = '';
  for (let i = 0; i < ID_LENGTH; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
  return id;
}

const KEY_COLUMNS = 'id, name, roles, created_at, created_by, revoked_at, last_used_at';

function keyFromRow(row: Record<string, unknown>): ApiKey {
  return {
    id: row.id as string,
    name: row.name as string,
    roles: row.roles as Role[],
    createdAt: row.created_at as Date,
    createdBy: row.created_by as string,
    revokedAt: (row.revoked_at as Date | null) ?? null,
    lastUsedAt: (row.last_used_at as Date | null) ?? null,
  };
}

/** Creates a key and returns its token, which is never stored and cannot be shown again. */
export async function createApiKey(db: Db, input: NewApiKey): Promise<CreatedApiKey> {
  const { name, roles, createdBy } = parseNewApiKey(input);
  for (let attempt = 0; ; attempt++) {
    const id = randomId();
    const secret = randomBytes(SECRET_BYTES).toString('base64url');
    try {
      const { rows } = await db.query(
        `INSERT INTO api_keys (id, name, secret_sha256, roles, created_by) VALUES ($1, $2, $3, $4, $5)
         RETURNING ${KEY_COLUMNS}`,
        [id, name, sha256Hex(secret), roles, createdBy],
      );
      return { ...keyFromRow(rows[0]), token: `keel_${id}_${secret}` };
    } catch (error) {
      // 36^12 ids make a clash very unlikely; a clash just draws again.
      if ((error as { code?: string }).code === '23505' && attempt < 3) continue;
      throw error;
    }
  }
}

/** Every key, revoked ones included, newest first; never secrets or their hashes. */
export async function listApiKeys(db: Db): Promise<ApiKey[]> {
  const { rows } = await db.query(`SELECT ${KEY_COLUMNS} FROM api_keys ORDER BY created_at DESC, id`);
  return rows.map(keyFromRow);
}

/** Revokes a key. Idempotent: revoking a revoked key keeps its first revocation time. */
export async function revokeApiKey(db: Db, id: string): Promise<RevokedApiKey> {
  if (!API_KEY_ID_PATTERN.test(id)) {
    throw new InvalidInput(`${JSON.stringify(id)} is not an API key id (keel keys list shows them)`, 'id');
  }
  const { rows } = await db.query(
    `WITH prev AS (SELECT id, revoked_at FROM api_keys WHERE id = $1 FOR UPDATE)
     UPDATE api_keys k SET revoked_at = COALESCE(k.revoked_at, now())
       FROM prev WHERE k.id = prev.id
     RETURNING ${KEY_COLUMNS.split(', ').map((c) => `k.${c}`).join(', ')}, prev.revoked_at IS NOT NULL AS already_revoked`,
    [id],
  );
  if (!rows[0]) throw new NotFound(`no API key with id ${id}`, 'id');
  return { ...keyFromRow(rows[0]), revokedAt: rows[0].revoked_at as Date, alreadyRevoked: rows[0].already_revoked as boolean };
}

/**
 * The principal behind a token, or undefined for a malformed, unknown or revoked one. Malformed
 * tokens never reach the database; hashes are compared in constant time.
 */
export async function verifyApiKey(db: Db, token: string): Promise<ApiKeyPrincipal | undefined> {
  const parsed = parseApiKeyToken(token);
  if (!parsed) return undefined;
  const { rows } = await db.query<{ id: string; name: string; roles: Role[]; secret_sha256: string }>(
    `SELECT id, name, roles, secret_sha256 FROM api_keys WHERE id = $1 AND revoked_at IS NULL`,
    [parsed.id],
  );
  const row = rows[0];
  if (!row) return undefined;
  const stored = Buffer.from(row.secret_sha256, 'hex');
  const presented = createHash('sha256').update(parsed.secret).digest();
  if (stored.length !== presented.length || !timingSafeEqual(stored, presented)) return undefined;
  return { keyId: row.id, name: row.name, roles: row.roles };
}

export interface ApiKeyVerifierOptions {
  /**
   * How long an answer (valid or not) is reused. A revocation takes effect on every gateway
   * within this time. Default 5 s.
   */
  cacheTtlMs?: number;
  /**
   * While Postgres cannot answer, a key it last confirmed at most this long ago is still accepted
   * (a revocation applies as soon as Postgres answers again); other keys get an error. Default 5 min.
   */
  graceMs?: number;
  /** A lookup with no answer after this long counts as Postgres being unreachable. Default 2 s. */
  lookupTimeoutMs?: number;
  /** `last_used_at` is written at most this often per key. Default 60 s. */
  touchIntervalMs?: number;
  /** Bound on cached tokens, so a flood of made-up tokens cannot grow memory. Default 10 000. */
  maxCachedTokens?: number;
}

export interface ApiKeyVerifier {
  /** The key's principal, undefined for an invalid or revoked key; rejects when Postgres cannot say (and no grace applies). */
  verify(token: string): Promise<ApiKeyPrincipal | undefined>;
  /** Waits for pending `last_used_at` writes. */
  close(): Promise<void>;
}

/**
 * verifyApiKey with a short cache, so the gateway does not query Postgres on every request,
 * a grace period for keys it confirmed recently while Postgres is unreachable, and
 * `last_used_at` kept up to date off the request path.
 */
export function createApiKeyVerifier(db: Db, options: ApiKeyVerifierOptions = {}): ApiKeyVerifier {
  const ttlMs = options.cacheTtlMs ?? 5_000;
  const graceMs = options.graceMs ?? 5 * 60_000;
  const lookupTimeoutMs = options.lookupTimeoutMs ?? 2_000;
  const touchIntervalMs = options.touchIntervalMs ?? 60_000;
  const maxCached = options.maxCachedTokens ?? 10_000;
  // Keyed by the token's sha256, so neither map holds usable secrets.
  const cache = new Map<string, { expires: number; answer: Promise<ApiKeyPrincipal | undefined> }>();
  const confirmed = new Map<string, { principal: ApiKeyPrincipal; at: number }>();
  const lastTouched = new Map<string, number>();
  const pendingTouches = new Set<Promise<void>>();

  function touch(keyId: string) {
    const now = Date.now();
    if (now - (lastTouched.get(keyId) ?? -Infinity) < touchIntervalMs) return;
    lastTouched.set(keyId, now);
    const write = db
      .query(`UPDATE api_keys SET last_used_at = now() WHERE id = $1`, [keyId])
      .then(() => undefined, () => undefined) // usage bookkeeping must never fail a request
      .finally(() => pendingTouches.delete(write));
    pendingTouches.add(write);
  }

  /** Asks Postgres; when it cannot answer, a recent confirmation stands in (cached like an answer, so Postgres is asked again after the TTL). */
  async function lookup(cacheKey: string, token: string): Promise<ApiKeyPrincipal | undefined> {
    try {
      const principal = await withTimeout(verifyApiKey(db, token), lookupTimeoutMs, `Postgres did not answer within ${lookupTimeoutMs} ms`);
      confirmed.delete(cacheKey);
      if (principal) {
        if (confirmed.size >= maxCached) confirmed.delete(confirmed.keys().next().value!);
        confirmed.set(cacheKey, { principal, at: Date.now() });
      }
      return principal;
    } catch (error) {
      const last = confirmed.get(cacheKey);
      if (last && Date.now() - last.at <= graceMs) return last.principal;
      throw error;
    }
  }

  return {
    async verify(token) {
      if (!parseApiKeyToken(token)) return undefined;
      const cacheKey = sha256Hex(token);
      const now = Date.now();
      let entry = cache.get(cacheKey);
      if (!entry || entry.expires <= now) {
        if (entry) cache.delete(cacheKey);
        if (cache.size >= maxCached) cache.delete(cache.keys().next().value!);
        // Concurrent requests with the same token share one query.
        entry = { expires: now + ttlMs, answer: lookup(cacheKey, token) };
        cache.set(cacheKey, entry);
        const added = entry;
        // A lookup that failed outright (database down, key not confirmed recently) is not remembered.
        added.answer.catch(() => cache.get(cacheKey) === added && cache.delete(cacheKey));
      }
      const principal = await entry.answer;
      if (principal) touch(principal.keyId);
      return principal;
    },
    async close() {
      await Promise.all([...pendingTouches]);
    },
  };
}
