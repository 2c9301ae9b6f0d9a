/**
 * Coalesced online-store reads for `{entity}` requests. Concurrent requests each need one lookup
 * (`getOnlineFeatures`: one query over every view of the model); read one by one, a gateway under
 * load spends its time on per-query work — building and parsing protocol messages, a round trip,
 * planning the read — rather than on rows. Reads of the same feature list that arrive in the same
 * turn of the event loop are sent as ONE query with all their entities (duplicates read once) and
 * the rows handed back to each caller: the DataLoader pattern.
 *
 * Same answers as reading alone: the same TTL rule and the same `now` for every read of a batch
 * (taken when the batch goes out). A batch that fails on one caller's bad entity (`InvalidInput`,
 * e.g. a join key of the wrong type) is read again caller by caller, so each gets its own answer or
 * its own error naming its own entity; any other failure (Postgres down) goes to every caller.
 */
import { InvalidInput } from '../../lib/errors.js';
import type { FeatureDefinitions } from '../../lib/features/definitions.js';
import type { Db } from '../../stores/db.js';
import type { EntityKeyValues, OnlineFeatureRow } from '../../stores/features/online.js';
import { getOnlineFeatures } from '../../stores/features/online.js';

export interface OnlineRead {
  /** `view:feature` references, in the order the caller's model reads them. */
  features: string[];
  entities: EntityKeyValues[];
  /** The registry definitions the references were resolved against (one identity per cache refresh). */
  definitions: FeatureDefinitions;
}

export interface OnlineReader {
  /** One row per entity, in order; rejects with the store's error for this caller's read. */
  read(read: OnlineRead): Promise<OnlineFeatureRow[]>;
}

export interface OnlineReaderOptions {
  /** Entities per query at most; a batch that reaches it goes out at once. Default 1 000. */
  maxEntities?: number;
  now?: () => Date;
}

interface Waiting {
  read: OnlineRead;
  resolve: (rows: OnlineFeatureRow[]) => void;
  reject: (error: unknown) => void;
}

interface Batch {
  features: string[];
  definitions: FeatureDefinitions;
  waiting: Waiting[];
  entities: number;
}

export function createOnlineReader(db: Db, options: OnlineReaderOptions = {}): OnlineReader {
  const maxEntities = options.maxEntities ?? 1_000;
  /** Open batches by definitions identity, then by feature list. */
  let open = new Map<FeatureDefinitions, Map<string, Batch>>();
  let scheduled = false;

  const readAlone = (read: OnlineRead, now: Date | undefined) =>
    getOnlineFeatures(db, { features: read.features, entities: read.entities, definitions: read.definitions, now }).then((r) => r.rows);

  const send = async (batch: Batch) => {
    const now = options.now?.();
    if (batch.waiting.length === 1) {
      const [only] = batch.waiting;
      return readAlone(only!.read, now).then(only!.resolve, only!.reject);
    }
    try {
      const entities = batch.waiting.flatMap((w) => w.read.entities);
      const { rows } = await getOnlineFeatures(db, { features: batch.features, entities, definitions: batch.definitions, now });
      let offset = 0;
      for (const w of batch.waiting) {
        w.resolve(rows.slice(offset, offset + w.read.entities.length));
        offset += w.read.entities.length;
      }
    } catch (error) {
      if (!(error instanceof InvalidInput)) {
        for (const w of batch.waiting) w.reject(error);
        return;
      }
      // Somebody's entity is refused: everyone reads alone and hears only about their own.
      await Promise.all(batch.waiting.map((w) => readAlone(w.read, now).then(w.resolve, w.reject)));
    }
  };

  const flush = () => {
    scheduled = false;
    const batches = open;
    open = new Map();
    for (const byFeatures of batches.values()) for (const batch of byFeatures.values()) void send(batch);
  };

  return {
    read(read) {
      return new Promise<OnlineFeatureRow[]>((resolve, reject) => {
        const key = read.features.join('\n');
        let byFeatures = open.get(read.definitions);
        if (!byFeatures) open.set(read.definitions, (byFeatures = new Map()));
        let batch = byFeatures.get(key);
        if (batch && batch.entities + read.entities.length > maxEntities) {
          // Full: it goes now, and this read starts the next batch.
          byFeatures.delete(key);
          void send(batch);
          batch = undefined;
        }
        if (!batch) byFeatures.set(key, (batch = { features: read.features, definitions: read.definitions, waiting: [], entities: 0 }));
        batch.waiting.push({ read, resolve, reject });
        batch.entities += read.entities.length;
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
  };
}
