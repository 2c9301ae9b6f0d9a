/**
 * Per-model serving options kept on `models` (migration 0008). `serve_without_features`: the
 * gateway answers an `{entity}` row none of whose online features is present (refused by default
 * with 422 EntityNotFound / FeaturesExpired), computing the prediction from missing values.
 */
import { NotFound } from './registry.js';
import type { Db } from './db.js';

/** Sets the option of one model; NotFound when the model is not registered. */
export async function setServeWithoutFeatures(db: Db, model: string, on: boolean): Promise<void> {
  const { rowCount } = await db.query('UPDATE models SET serve_without_features = $2 WHERE name = $1', [model, on]);
  if (!rowCount) throw new NotFound(`model ${model} is not registered`, 'model');
}

interface CacheEntry {
  at: number;
  models: Promise<ReadonlySet<string>>;
}
const cache = new WeakMap<Db, CacheEntry>();

/**
 * The models with the option set, read at most every `maxAgeMs` (the gateway asks only when it is
 * about to refuse a row). When the read fails the last answer is kept, or none is allowed.
 */
export function cachedModelsServedWithoutFeatures(db: Db, maxAgeMs: number): Promise<ReadonlySet<string>> {
  const cached = cache.get(db);
  const now = performance.now();
  if (cached && now - cached.at < maxAgeMs) return cached.models;
  const previous = cached?.models ?? Promise.resolve(new Set<string>());
  const models = db
    .query<{ name: string }>('SELECT name FROM models WHERE serve_without_features')
    .then((r) => new Set(r.rows.map((row) => row.name)) as ReadonlySet<string>, () => previous);
  cache.set(db, { at: now, models });
  return models;
}
