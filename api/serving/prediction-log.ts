/**
 * The prediction log: every served prediction goes to the `predictions` table in batches, off the
 * request path, with bounded memory.
 *
 * - `append` is synchronous and never throws: the record joins an in-memory queue (at most
 *   `maxQueued` records; beyond that it goes straight to the spill file).
 * - One background loop writes batches (`batchSize` rows or every `flushIntervalMs`) as one
 *   multi-row INSERT … ON CONFLICT DO NOTHING (stores/predictions.ts).
 * - When a write fails or takes longer than `writeTimeoutMs` (Postgres down or slow), the batch and
 *   everything queued after it go to an append-only spill file (JSON lines,
 *   `<spillDir>/predictions-<gatewayId>.jsonl`, fsync'd every `fsyncIntervalMs`) and the log keeps
 *   spilling. It probes Postgres with exponential backoff; once it answers, the spill file is
 *   rotated (renamed), replayed in batches and deleted only after every row is committed. A replay
 *   cut short is simply replayed again: the unique key makes duplicates impossible.
 * - At start, spill files left by an earlier process with the same gateway id (a crash, or a
 *   shutdown while Postgres was down) are replayed the same way.
 * - `close()` writes everything still in memory to Postgres, else to the spill file.
 * - A batch Postgres refuses as data (SQLSTATE class 22) is not an outage: it is written record by
 *   record, and a record still refused goes to `<spillDir>/rejected-<gatewayId>.jsonl` with the
 *   reason (logged, counted in `stats().rejected`, never retried), so it cannot stop the log.
 *
 * `has(requestId)` answers for records not yet in Postgres (memory or spill), so feedback that
 * arrives before the flush is accepted. `depth()` is the `keel_prediction_log_queue_depth` gauge.
 * The request ids of spilled records are kept in memory for `has` (a few dozen bytes each).
 */
import { appendFileSync, createReadStream, mkdirSync } from 'node:fs';
import { mkdir, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import type { Db } from '../../stores/db.js';
import { ensurePredictionPartitions, insertPredictions } from '../../stores/predictions.js';
import type { PredictionRecord } from './types.js';

export interface PredictionLogOptions {
  db: Db;
  /** This gateway's id: stored with each row and names its spill file. */
  gatewayId: string;
  /** Folder for spill files (created when missing), e.g. `.keel/spill`. */
  spillDir: string;
  /** Rows per INSERT. Default 500. */
  batchSize?: number;
  /** Longest a record waits in memory before a (partial) batch is written. Default 100 ms. */
  flushIntervalMs?: number;
  /** Records held in memory at most; more go straight to the spill file. Default 50 000. */
  maxQueued?: number;
  /** A write (or probe) taking longer counts as failed and the batch is spilled. Default 5 000 ms. */
  writeTimeoutMs?: number;
  /** First and longest wait between probes of a Postgres that failed. Default 250 ms and 10 s. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** How often spilled data is fsync'd while spilling. Default 1 000 ms. */
  fsyncIntervalMs?: number;
  /** Days ahead to create daily partitions for (at start and every 6 h); 0 disables. Default 7. */
  partitionDays?: number;
  logger?: Logger;
}

export interface PredictionLogStats {
  /** Records in memory (queued or being written). */
  queued: number;
  /** Records in spill files, not yet in Postgres. */
  spilled: number;
  /** Rows inserted into Postgres by this instance (replays included). */
  written: number;
  /** True while Postgres is considered unavailable and new records go to the spill file. */
  spilling: boolean;
  /** Spill lines that could not be read back (e.g. a torn last line after a crash), skipped. */
  corruptLines: number;
  /** Records Postgres refused as data (not an outage): kept in `rejected-<gatewayId>.jsonl`, not retried. */
  rejected: number;
}

export interface PredictionLog {
  /** Queues one record; synchronous, never throws, never waits for Postgres or the disk. */
  append(record: PredictionRecord): void;
  /** True when a record of `requestId` is still pending (memory or spill file), not yet in Postgres. */
  has(requestId: string): boolean;
  /** Records not yet in Postgres (memory + spill): the queue-depth gauge. */
  depth(): number;
  stats(): PredictionLogStats;
  /** Resolves when everything appended so far is in Postgres (tests; rejects after `timeoutMs`). */
  drained(timeoutMs?: number): Promise<void>;
  /** Writes what is in memory to Postgres, else to the spill file; then stops. Idempotent. */
  close(): Promise<void>;
}

const ACTIVE_SUFFIX = '.jsonl';

/** Creates the log, reads any spill files left from before and starts the background writer. */
export async function startPredictionLog(options: PredictionLogOptions): Promise<PredictionLog> {
  const log = new SpillingPredictionLog(options);
  await log.start();
  return log;
}

class SpillingPredictionLog implements PredictionLog {
  private readonly db: Db;
  private readonly gatewayId: string;
  private readonly spillDir: string;
  private readonly prefix: string;
  private readonly activePath: string;
  /** Records Postgres refused as data, with the reason (JSON lines; never replayed). */
  private readonly rejectedPath: string;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly maxQueued: number;
  private readonly writeTimeoutMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly fsyncIntervalMs: number;
  private readonly partitionDays: number;
  private readonly logger?: Logger;

  private queue: PredictionRecord[] = [];
  /** Records being written right now (counted in depth). */
  private inflight = 0;
  /** Serialised records over the memory bound, waiting for the loop to write them to the spill. */
  private overflow: string[] = [];
  /** The batch being written right now (`has` looks in it). */
  private writing: readonly PredictionRecord[] = [];
  /**
   * Request id → records in the overflow or the spill files. Records in memory are found by
   * scanning the queue instead: a map entry per served prediction is a visible share of its cost.
   */
  private readonly pendingIds = new Map<string, number>();
  private spilledCount = 0;
  private written = 0;
  private corruptLines = 0;
  private rejected = 0;
  private spilling = false;
  private retryDelay: number;
  private nextProbeAt = 0;
  private lastFlushAt = Date.now();
  private active?: FileHandle;
  private activeDirty = false;
  private lastFsyncAt = 0;
  private rotation = 0;
  /** Lines of a rotated file already committed (a cut-short replay resumes after them). */
  private readonly committedLines = new Map<string, number>();
  private closing = false;
  private closed = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private partitionTimer?: NodeJS.Timeout;

  constructor(options: PredictionLogOptions) {
    this.db = options.db;
    this.gatewayId = options.gatewayId;
    this.spillDir = options.spillDir;
    // The gateway id as it may appear in a file name.
    const fileId = options.gatewayId.replace(/[^A-Za-z0-9_-]/g, '_');
    this.prefix = `predictions-${fileId}.`;
    this.rejectedPath = path.join(this.spillDir, `rejected-${fileId}.jsonl`);
    this.activePath = path.join(this.spillDir, `${this.prefix.slice(0, -1)}${ACTIVE_SUFFIX}`);
    this.batchSize = options.batchSize ?? 500;
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.maxQueued = options.maxQueued ?? 50_000;
    this.writeTimeoutMs = options.writeTimeoutMs ?? 5_000;
    this.retryMinMs = options.retryMinMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 1_000;
    this.partitionDays = options.partitionDays ?? 7;
    this.logger = options.logger;
    this.retryDelay = this.retryMinMs;
  }

  async start(): Promise<void> {
    await mkdir(this.spillDir, { recursive: true });
    // Spill files of an earlier process: count their records (and ids, for `has`), replay later.
    for (const file of await this.spillFiles()) {
      const rotated = file === this.activePath ? await this.rotateActive() : file;
      if (!rotated) continue;
      for await (const record of this.readSpill(rotated, false)) {
        this.track(record.requestId, 1);
        this.spilledCount++;
      }
    }
    if (this.spilledCount > 0) this.logger?.info({ records: this.spilledCount }, 'prediction log: replaying spill files from an earlier run');
    if (this.partitionDays > 0) {
      const ensure = () =>
        void ensurePredictionPartitions(this.db, this.partitionDays)
          .then((r) => {
            for (const s of r.skipped) this.logger?.warn({ partition: s.name }, `prediction log: no partition: ${s.reason}`);
          })
          .catch((error: unknown) => this.logger?.warn({ err: error }, 'prediction log: could not create partitions (rows go to the default partition)'));
      ensure();
      this.partitionTimer = setInterval(ensure, 6 * 3_600_000).unref();
    }
    this.loop = this.run().catch((error: unknown) => {
      // Never expected: the loop catches its own failures. Logged so that it is not silent.
      this.logger?.error({ err: error }, 'prediction log: writer stopped');
    });
  }

  append(record: PredictionRecord): void {
    try {
      if (this.closed) {
        // After close (a straggler): straight to the spill file, replayed by the next process.
        this.track(record.requestId, 1);
        mkdirSync(this.spillDir, { recursive: true });
        appendFileSync(this.activePath, serialise(record));
        this.spilledCount++;
        return;
      }
      if (this.queue.length >= this.maxQueued) {
        this.track(record.requestId, 1);
        this.overflow.push(serialise(record));
        this.kick();
        return;
      }
      this.queue.push(record);
      if (this.queue.length >= this.batchSize) this.kick();
    } catch (error) {
      this.logger?.error({ err: error, requestId: record.requestId }, 'prediction log: record dropped');
    }
  }

  has(requestId: string): boolean {
    if (this.pendingIds.has(requestId)) return true;
    // Feedback asks this first and Postgres second, so a record is never in neither: it leaves the
    // batch being written only after its commit.
    for (const record of this.queue) if (record.requestId === requestId) return true;
    for (const record of this.writing) if (record.requestId === requestId) return true;
    return false;
  }

  depth(): number {
    return this.queue.length + this.inflight + this.overflow.length + this.spilledCount;
  }

  stats(): PredictionLogStats {
    return {
      queued: this.queue.length + this.inflight,
      spilled: this.spilledCount + this.overflow.length,
      written: this.written,
      spilling: this.spilling,
      corruptLines: this.corruptLines,
      rejected: this.rejected,
    };
  }

  async drained(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.depth() > 0) {
      if (Date.now() > deadline) throw new Error(`prediction log not drained after ${timeoutMs} ms (${this.depth()} records pending)`);
      this.kick();
      await sleep(25);
    }
  }

  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      // One last replay attempt right away, whatever the backoff says: Postgres may be back.
      this.nextProbeAt = 0;
      if (this.partitionTimer) clearInterval(this.partitionTimer);
      this.kick();
    }
    await this.loop;
  }

  // The background loop: the only place that touches Postgres and the spill files.
  private async run(): Promise<void> {
    for (;;) {
      if (this.overflow.length > 0) await this.spillLines(this.overflow.splice(0));
      if (!this.spilling && this.queue.length > 0 && this.batchDue()) {
        await this.writeBatch();
        continue;
      }
      if (this.spilling && this.queue.length > 0) {
        // Postgres is away: memory stays small, everything goes to disk until it is back.
        await this.spillRecords(this.queue.splice(0));
      }
      if (this.spilledCount > 0 && Date.now() >= this.nextProbeAt) {
        await this.replay();
        continue;
      }
      if (this.closing && this.queue.length === 0 && this.overflow.length === 0) {
        // With Postgres away, what is left stays in the spill file for the next start.
        if (this.spilledCount === 0 || this.spilling) break;
      }
      await this.syncIfDue(this.closing);
      await this.idle();
    }
    await this.closeActive();
    this.closed = true;
    // Appends that arrived while the file was being closed: to disk, for the next start.
    const left = this.queue.splice(0);
    for (const record of left) this.track(record.requestId, 1);
    const leftovers = [...this.overflow.splice(0), ...left.map(serialise)];
    if (leftovers.length > 0) {
      try {
        appendFileSync(this.activePath, leftovers.join(''));
        this.spilledCount += leftovers.length;
      } catch (error) {
        this.logger?.error({ err: error, records: leftovers.length }, 'prediction log: records lost at shutdown');
      }
    }
    if (this.spilledCount > 0) {
      this.logger?.warn({ records: this.spilledCount, dir: this.spillDir }, 'prediction log: records left in the spill file; the next start replays them');
    }
  }

  private batchDue(): boolean {
    return this.closing || this.queue.length >= this.batchSize || Date.now() - this.lastFlushAt >= this.flushIntervalMs;
  }

  private async writeBatch(): Promise<void> {
    const batch = this.queue.splice(0, this.batchSize);
    this.inflight = batch.length;
    this.writing = batch;
    this.lastFlushAt = Date.now();
    try {
      this.written += await this.insert(batch);
    } catch (error) {
      this.startSpilling(error);
      await this.spillRecords(batch);
    } finally {
      this.inflight = 0;
      this.writing = [];
    }
  }

  /**
   * Inserts a batch. A batch Postgres refuses as data (SQLSTATE class 22, not an outage) is written
   * record by record, and the records it still refuses go to the rejected file with the reason:
   * one such record must not stop the log, nor be retried forever from the spill file. Any other
   * failure is thrown (the caller spills the batch; rows already in are skipped on replay).
   */
  private async insert(batch: readonly PredictionRecord[]): Promise<number> {
    try {
      return await withTimeout(insertPredictions(this.db, batch, this.gatewayId), this.writeTimeoutMs);
    } catch (error) {
      if (!isDataError(error)) throw error;
    }
    let written = 0;
    for (const record of batch) {
      try {
        written += await withTimeout(insertPredictions(this.db, [record], this.gatewayId), this.writeTimeoutMs);
      } catch (error) {
        if (!isDataError(error)) throw error;
        this.reject(record, error);
      }
    }
    return written;
  }

  private reject(record: PredictionRecord, error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    this.rejected++;
    this.logger?.error({ requestId: record.requestId, reason }, 'prediction log: Postgres refused a record; kept in the rejected file');
    try {
      mkdirSync(this.spillDir, { recursive: true });
      appendFileSync(this.rejectedPath, `${JSON.stringify({ reason, record: { ...record, requestJson: undefined } })}\n`);
    } catch (writeError) {
      this.logger?.error({ err: writeError, requestId: record.requestId }, 'prediction log: could not keep a refused record');
    }
  }

  private startSpilling(error: unknown): void {
    if (!this.spilling) {
      this.logger?.warn({ err: error }, 'prediction log: Postgres unavailable, spilling to disk');
    }
    this.spilling = true;
    this.nextProbeAt = Date.now() + this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.retryMaxMs);
  }

  /** Records from memory to the spill file (tracked for `has` from here on). */
  private async spillRecords(records: PredictionRecord[]): Promise<void> {
    for (const record of records) this.track(record.requestId, 1);
    await this.spillLines(records.map(serialise));
  }

  /** Appends lines to the active spill file. If even the disk fails, the lines are kept in memory. */
  private async spillLines(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    try {
      this.active ??= await open(this.activePath, 'a');
      await this.active.appendFile(lines.join(''));
      this.spilledCount += lines.length;
      this.activeDirty = true;
      if (this.nextProbeAt === 0 || !this.spilling) this.nextProbeAt = Date.now();
      await this.syncIfDue(false);
    } catch (error) {
      this.logger?.error({ err: error, file: this.activePath }, 'prediction log: cannot write the spill file');
      const back = lines.map(deserialise).filter((r): r is PredictionRecord => r !== undefined);
      // Back in memory, where `has` finds them by scanning.
      for (const record of back) this.track(record.requestId, -1);
      this.queue.unshift(...back);
      await sleep(this.retryMinMs);
    }
  }

  private async syncIfDue(force: boolean): Promise<void> {
    if (!this.active || !this.activeDirty) return;
    if (!force && Date.now() - this.lastFsyncAt < this.fsyncIntervalMs) return;
    await this.active.sync().catch(() => undefined);
    this.activeDirty = false;
    this.lastFsyncAt = Date.now();
  }

  private async closeActive(): Promise<void> {
    if (!this.active) return;
    await this.syncIfDue(true);
    await this.active.close().catch(() => undefined);
    this.active = undefined;
  }

  /**
   * Probes Postgres and replays every spill file, oldest first. The active file is renamed first,
   * so new spills go to a fresh file; a file is deleted only once all its rows are committed.
   */
  private async replay(): Promise<void> {
    try {
      await withTimeout(this.db.query('SELECT 1'), this.writeTimeoutMs);
    } catch (error) {
      this.startSpilling(error);
      return;
    }
    await this.closeActive();
    if (this.spilling) this.logger?.info({ records: this.spilledCount }, 'prediction log: Postgres is back, replaying the spill file');
    try {
      await this.rotateActive();
      for (const file of await this.spillFiles()) {
        if (file === this.activePath) continue;
        await this.replayFile(file);
      }
      this.spilling = false;
      this.retryDelay = this.retryMinMs;
      this.nextProbeAt = 0;
    } catch (error) {
      this.startSpilling(error);
    }
  }

  private async replayFile(file: string): Promise<void> {
    const done = this.committedLines.get(file) ?? 0;
    let line = 0;
    let batch: PredictionRecord[] = [];
    const flush = async () => {
      this.written += await this.insert(batch);
      for (const record of batch) this.track(record.requestId, -1);
      this.spilledCount -= batch.length;
      this.committedLines.set(file, line);
      batch = [];
      // Records over the memory bound keep going to disk while a long replay runs.
      if (this.overflow.length > 0) await this.spillLines(this.overflow.splice(0));
    };
    for await (const record of this.readSpill(file)) {
      line++;
      if (line <= done) continue;
      batch.push(record);
      if (batch.length >= this.batchSize) await flush();
    }
    if (batch.length > 0) await flush();
    await unlink(file);
    this.committedLines.delete(file);
  }

  /** Renames the active spill file so that it can be replayed while new spills start a new one. */
  private async rotateActive(): Promise<string | undefined> {
    await this.closeActive();
    const target = path.join(this.spillDir, `${this.prefix}${Date.now()}-${process.pid}-${String(this.rotation++).padStart(6, '0')}${ACTIVE_SUFFIX}`);
    try {
      await rename(this.activePath, target);
      return target;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  /** This gateway's spill files, oldest first (rotated files sort by time; the active one last). */
  private async spillFiles(): Promise<string[]> {
    const active = path.basename(this.activePath);
    const names = await readdir(this.spillDir);
    const rotated = names.filter((n) => n !== active && n.startsWith(this.prefix) && n.endsWith(ACTIVE_SUFFIX)).sort();
    const files = rotated.map((n) => path.join(this.spillDir, n));
    if (names.includes(active)) files.push(this.activePath);
    return files;
  }

  /** The records of a spill file; unreadable lines are counted and reported when `report`. */
  private async *readSpill(file: string, report = true): AsyncGenerator<PredictionRecord> {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const text of lines) {
      if (text.trim() === '') continue;
      const record = deserialise(text);
      if (record) yield record;
      else if (report) {
        this.corruptLines++;
        this.logger?.warn({ file }, 'prediction log: skipped an unreadable spill line');
      }
    }
  }

  private track(requestId: string, delta: number): void {
    const next = (this.pendingIds.get(requestId) ?? 0) + delta;
    if (next > 0) this.pendingIds.set(requestId, next);
    else this.pendingIds.delete(requestId);
  }

  private kick(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async idle(): Promise<void> {
    let wait = this.queue.length > 0 ? Math.max(1, this.flushIntervalMs - (Date.now() - this.lastFlushAt)) : this.flushIntervalMs;
    if (this.spilledCount > 0) wait = Math.min(wait, Math.max(1, this.nextProbeAt - Date.now()));
    if (this.closing) wait = 1;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, wait);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** One JSON line; `ts` as an ISO string (millisecond precision, the same value Postgres stores). */
function serialise(record: PredictionRecord): string {
  // The request text stays out of the spill file: the features are there already.
  return `${JSON.stringify({ ...record, requestJson: undefined, ts: record.ts.toISOString() })}\n`;
}

function deserialise(line: string): PredictionRecord | undefined {
  try {
    const raw = JSON.parse(line) as Omit<PredictionRecord, 'ts'> & { ts: string };
    const ts = new Date(raw.ts);
    if (typeof raw.requestId !== 'string' || typeof raw.model !== 'string' || Number.isNaN(ts.getTime())) return undefined;
    return { ...raw, ts };
  } catch {
    return undefined;
  }
}

/** A Postgres data exception (SQLSTATE class 22): the row is the problem, not the server. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('22');
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  work.catch(() => undefined); // a late failure after the timeout has no one to go to
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Postgres did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
