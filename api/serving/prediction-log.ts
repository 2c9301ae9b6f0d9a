/**
 * The prediction log: every served prediction goes to the `predictions` table in batches, off the
 * request path, with bounded memory, and survives a crash of the process.
 *
 * - `append` is synchronous and never throws: the record joins an in-memory queue (at most
 *   `maxQueued` records; beyond that only the journal holds it) and its line is buffered for the
 *   journal. All lines appended in one turn of the event loop are written to the journal with ONE
 *   write, from a microtask queued by the first of them: it runs before any of those answers is
 *   sent (an answer always leaves at least one microtask later), so a SIGKILL never loses an
 *   answered prediction. The journal is fsync'd every `fsyncIntervalMs` (on a timer, off the
 *   request path): a power loss loses at most that much.
 * - The journal is a series of segment files, `<spillDir>/predictions-<gatewayId>.<stamp>.journal`,
 *   owner-only (0600 in a 0700 folder). A segment is closed every `segmentMs` (or when memory is
 *   empty); once every record of it has left memory it is deleted when all went to Postgres from
 *   memory, else (records dropped from memory: Postgres away, or over `maxQueued`) renamed into a
 *   spill file `<spillDir>/predictions-<gatewayId>.<stamp>.jsonl` and replayed from disk.
 * - One background loop writes batches (`batchSize` rows or every `flushIntervalMs`) as one
 *   multi-row INSERT … ON CONFLICT DO NOTHING (stores/predictions.ts).
 * - When a write fails or takes longer than `writeTimeoutMs` (Postgres down or slow), the batch and
 *   everything queued after it leave memory (the journal has them) and the log keeps doing so. It
 *   probes Postgres with exponential backoff; once it answers, the spill files are replayed in
 *   batches and each is deleted only after every row is committed. A replay cut short is simply
 *   replayed again, and a journal replayed after a crash holds rows already written: the unique
 *   key makes duplicates impossible.
 * - At start, journal segments and spill files left by an earlier process with the same gateway id
 *   (a crash, or a shutdown while Postgres was down) are replayed the same way.
 * - `close()` writes everything still in memory to Postgres, else leaves it in a spill file.
 * - A batch Postgres refuses as data (SQLSTATE class 22) is not an outage: it is written record by
 *   record, and a record still refused goes to `<spillDir>/rejected-<gatewayId>.jsonl` with the
 *   reason (logged, counted in `stats().rejected`, never retried), so it cannot stop the log.
 *
 * `has(requestId)` answers for records not yet in Postgres (memory or spill), so feedback that
 * arrives before the flush is accepted. `depth()` is the `keel_prediction_log_queue_depth` gauge.
 * The request ids of records dropped from memory are kept in memory for `has` (a few dozen bytes
 * each).
 */
import { chmodSync, closeSync, createReadStream, fchmodSync, fsync, mkdirSync, openSync, writeSync } from 'node:fs';
import { readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from 'pino';
import { withTimeout } from '../../lib/timeout.js';
import type { Db } from '../../stores/db.js';
import { ensurePredictionPartitions, insertPredictions } from '../../stores/predictions.js';
import type { PredictionRecord } from './types.js';

export interface PredictionLogOptions {
  db: Db;
  /** This gateway's id: stored with each row and names its journal and spill files. */
  gatewayId: string;
  /** Folder for journal and spill files (created owner-only when missing), e.g. `.keel/spill`. */
  spillDir: string;
  /** Rows per INSERT. Default 500. */
  batchSize?: number;
  /** Longest a record waits in memory before a (partial) batch is written. Default 100 ms. */
  flushIntervalMs?: number;
  /** Records held in memory at most; more are kept by the journal only. Default 50 000. */
  maxQueued?: number;
  /** A write (or probe) taking longer counts as failed and the batch is spilled. Default 5 000 ms. */
  writeTimeoutMs?: number;
  /** First and longest wait between probes of a Postgres that failed. Default 250 ms and 10 s. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** How often the journal is fsync'd: what a power loss may lose at most. Default 200 ms. */
  fsyncIntervalMs?: number;
  /** A journal segment is closed after this long (or 16 MiB). Default 1 000 ms. */
  segmentMs?: number;
  /** Days ahead to create daily partitions for (at start and every 6 h); 0 disables. Default 7. */
  partitionDays?: number;
  logger?: Logger;
}

export interface PredictionLogStats {
  /** Records in memory (queued or being written). */
  queued: number;
  /** Records left to disk only (spill files, journal), not yet in Postgres. */
  spilled: number;
  /** Rows inserted into Postgres by this instance (replays included). */
  written: number;
  /** True while Postgres is considered unavailable and new records leave memory for the journal. */
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
  /** Resolves when everything appended so far is in Postgres and its journal gone (tests; rejects after `timeoutMs`). */
  drained(timeoutMs?: number): Promise<void>;
  /** Writes what is in memory to Postgres, else leaves it in a spill file; then stops. Idempotent. */
  close(): Promise<void>;
}

const SPILL_SUFFIX = '.jsonl';
const JOURNAL_SUFFIX = '.journal';
/** Journal, spill and rejected files are the operator's alone: they hold every request's features. */
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const SEGMENT_BYTES = 16 * 1024 * 1024;

/** One journal file. */
interface Segment {
  path: string;
  fd: number;
  records: number;
  /** Characters written (close enough to bytes for the size bound). */
  size: number;
  openedAt: number;
  /** Holds records that left memory without reaching Postgres: it must be replayed from disk. */
  dirty: boolean;
  /** `entered` when the segment was closed: its records have all left memory once `left` reaches it. */
  enteredAtClose: number;
  /** Written to since its last fsync began. */
  unsynced: boolean;
  /** The fsyncs begun on it (never rejects); awaited before the descriptor is closed. */
  syncing: Promise<void>;
}

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
  /** Where appends after close go (and where an older version spilled): replayed at the next start. */
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
  private readonly segmentMs: number;
  private readonly partitionDays: number;
  private readonly logger?: Logger;

  private queue: PredictionRecord[] = [];
  /** Records being written right now (counted in depth). */
  private inflight = 0;
  /** The batch being written right now (`has` looks in it). */
  private writing: readonly PredictionRecord[] = [];
  /**
   * Request id → records on disk only (spill files, journal). Records in memory are found by
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
  private rotation = 0;
  /** Lines of a spill file already committed (a cut-short replay resumes after them). */
  private readonly committedLines = new Map<string, number>();
  private closing = false;
  private closed = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private partitionTimer?: NodeJS.Timeout;
  private fsyncTimer?: NodeJS.Timeout;

  // The journal.
  /** Lines appended in this turn of the event loop, written together by `flushJournal`. */
  private journalLines: string[] = [];
  /** Records over the memory bound whose lines are not written yet (back to memory if the write fails). */
  private overflowed: PredictionRecord[] = [];
  private journalFlushQueued = false;
  private readonly flushJournalTask = () => void this.flushJournal();
  /** The last journal write failed: records stay in memory, none is dropped unjournaled. */
  private journalFailing = false;
  /** Start the next write with a newline: a failed write may have left a torn line. */
  private journalTorn = false;
  private active?: Segment;
  /** Closed segments waiting for their records to leave memory, oldest first. */
  private waiting: Segment[] = [];
  /** Records that entered the in-memory queue, and that left it (committed, rejected or dropped), since start. */
  private entered = 0;
  private left = 0;
  /** Records up to this `entered` count may have no journal line (written while the journal failed). */
  private unjournaledUntil = 0;
  /** Spill files waiting for a replay. */
  private replayable = 0;

  constructor(options: PredictionLogOptions) {
    this.db = options.db;
    this.gatewayId = options.gatewayId;
    this.spillDir = options.spillDir;
    // The gateway id as it may appear in a file name.
    const fileId = options.gatewayId.replace(/[^A-Za-z0-9_-]/g, '_');
    this.prefix = `predictions-${fileId}.`;
    this.rejectedPath = path.join(this.spillDir, `rejected-${fileId}.jsonl`);
    this.activePath = path.join(this.spillDir, `${this.prefix.slice(0, -1)}${SPILL_SUFFIX}`);
    this.batchSize = options.batchSize ?? 500;
    this.flushIntervalMs = options.flushIntervalMs ?? 100;
    this.maxQueued = options.maxQueued ?? 50_000;
    this.writeTimeoutMs = options.writeTimeoutMs ?? 5_000;
    this.retryMinMs = options.retryMinMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 10_000;
    this.fsyncIntervalMs = options.fsyncIntervalMs ?? 200;
    this.segmentMs = options.segmentMs ?? 1_000;
    this.partitionDays = options.partitionDays ?? 7;
    this.logger = options.logger;
    this.retryDelay = this.retryMinMs;
  }

  async start(): Promise<void> {
    ownerOnlyDir(this.spillDir);
    // Files of an earlier process: journal segments and the old active file become spill files;
    // their records are counted (and their ids kept, for `has`) and replayed right away.
    for (const name of await readdir(this.spillDir)) {
      if (name.startsWith(this.prefix) && name.endsWith(JOURNAL_SUFFIX)) {
        await rename(path.join(this.spillDir, name), path.join(this.spillDir, name.slice(0, -JOURNAL_SUFFIX.length) + SPILL_SUFFIX));
      }
    }
    await this.rotateActivePath();
    for (const file of await this.spillFiles()) {
      this.replayable++;
      for await (const record of this.readSpill(file, false)) {
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
    // Group fsync on its own timer: the loop may be waiting on a slow Postgres.
    this.fsyncTimer = setInterval(() => {
      if (this.active) this.syncSegment(this.active);
    }, this.fsyncIntervalMs).unref();
    this.loop = this.run().catch((error: unknown) => {
      // Never expected: the loop catches its own failures. Logged so that it is not silent.
      this.logger?.error({ err: error }, 'prediction log: writer stopped');
    });
  }

  append(record: PredictionRecord): void {
    try {
      if (this.closed) {
        // After close (a straggler): straight to a spill file, replayed by the next process.
        appendOwnerOnly(this.activePath, journalLine(record));
        this.track(record.requestId, 1);
        this.spilledCount++;
        return;
      }
      this.journalLines.push(journalLine(record));
      if (!this.journalFlushQueued) {
        this.journalFlushQueued = true;
        queueMicrotask(this.flushJournalTask);
      }
      if (this.queue.length >= this.maxQueued && !this.journalFailing) {
        // Over the memory bound: the journal alone keeps it, and it is replayed from there.
        this.overflowed.push(record);
        this.track(record.requestId, 1);
        this.spilledCount++;
        this.kick();
        return;
      }
      this.queue.push(record);
      this.entered++;
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
    return this.queue.length + this.inflight + this.spilledCount;
  }

  stats(): PredictionLogStats {
    return {
      queued: this.queue.length + this.inflight,
      spilled: this.spilledCount,
      written: this.written,
      spilling: this.spilling,
      corruptLines: this.corruptLines,
      rejected: this.rejected,
    };
  }

  async drained(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.depth() > 0 || this.active || this.waiting.length > 0) {
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
      this.flushJournal();
      this.rotateIfDue();
      await this.settleSegments();
      if (!this.spilling && this.queue.length > 0 && this.batchDue()) {
        await this.writeBatch();
        continue;
      }
      if (this.spilling && this.queue.length > 0) {
        // Postgres is away: memory stays small, the journal keeps everything until it is back.
        const records = this.queue.splice(0);
        if (!this.dropFromMemory(records)) {
          this.queue.unshift(...records);
          if (this.closing) break;
          await sleep(this.retryMinMs);
          continue;
        }
      }
      if (Date.now() >= this.nextProbeAt && (this.replayable > 0 || (this.spilling && this.spilledCount > 0))) {
        await this.replay();
        continue;
      }
      // With Postgres away, what is left stays in the spill files for the next start.
      if (this.closing && this.queue.length === 0 && (this.spilling || this.replayable === 0)) break;
      await this.idle();
    }
    // From here on, appends go straight to a spill file for the next start.
    this.closed = true;
    if (this.fsyncTimer) clearInterval(this.fsyncTimer);
    this.flushJournal();
    const leftovers = this.queue.splice(0);
    if (leftovers.length > 0 && !this.dropFromMemory(leftovers)) {
      try {
        appendOwnerOnly(this.activePath, leftovers.map(journalLine).join(''));
        for (const record of leftovers) this.track(record.requestId, 1);
        this.spilledCount += leftovers.length;
      } catch (error) {
        this.logger?.error({ err: error, records: leftovers.length }, 'prediction log: records lost at shutdown');
      }
    }
    this.rotate();
    await this.settleSegments();
    if (this.spilledCount > 0) {
      this.logger?.warn({ records: this.spilledCount, dir: this.spillDir }, 'prediction log: records left in spill files; the next start replays them');
    }
  }

  private batchDue(): boolean {
    return this.closing || this.queue.length >= this.batchSize || this.queue.length >= this.maxQueued || Date.now() - this.lastFlushAt >= this.flushIntervalMs;
  }

  private async writeBatch(): Promise<void> {
    const batch = this.queue.splice(0, this.batchSize);
    this.inflight = batch.length;
    this.writing = batch;
    this.lastFlushAt = Date.now();
    try {
      this.written += await this.insert(batch);
      this.left += batch.length;
    } catch (error) {
      this.startSpilling(error);
      if (!this.dropFromMemory(batch)) this.queue.unshift(...batch);
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
      return await withTimeout(insertPredictions(this.db, batch, this.gatewayId), this.writeTimeoutMs, postgresSilent(this.writeTimeoutMs));
    } catch (error) {
      if (!isDataError(error)) throw error;
    }
    let written = 0;
    for (const record of batch) {
      try {
        written += await withTimeout(insertPredictions(this.db, [record], this.gatewayId), this.writeTimeoutMs, postgresSilent(this.writeTimeoutMs));
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
      appendOwnerOnly(this.rejectedPath, `${JSON.stringify({ reason, record: { ...record, requestJson: undefined } })}\n`);
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

  // --- the journal ------------------------------------------------------------------------------

  /**
   * Writes the buffered lines to the active segment with one write (opening one when needed).
   * Runs as a microtask after the appends of a turn, and at the top of the loop. On failure the
   * lines are dropped and every record they stand for stays in memory (none is ever dropped
   * from memory without its line on disk). True when nothing is left unwritten.
   */
  private flushJournal(): boolean {
    this.journalFlushQueued = false;
    const lines = this.journalLines;
    if (lines.length === 0) return true;
    this.journalLines = [];
    const text = (this.journalTorn ? '\n' : '') + (lines.length === 1 ? lines[0]! : lines.join(''));
    try {
      const segment = (this.active ??= this.openSegment());
      writeFully(segment.fd, text);
      segment.records += lines.length;
      segment.size += text.length;
      segment.unsynced = true;
      if (this.overflowed.length > 0) {
        segment.dirty = true;
        this.overflowed = [];
      }
      if (this.journalFailing) this.logger?.info('prediction log: the journal is writable again');
      this.journalFailing = false;
      this.journalTorn = false;
      return true;
    } catch (error) {
      if (!this.journalFailing) this.logger?.error({ err: error, dir: this.spillDir }, 'prediction log: cannot write the journal; records stay in memory until it can');
      this.journalFailing = true;
      this.journalTorn = true;
      // Records over the memory bound back to memory: their lines are not on disk.
      for (const record of this.overflowed) {
        this.track(record.requestId, -1);
        this.spilledCount--;
        this.queue.push(record);
        this.entered++;
      }
      this.overflowed = [];
      this.unjournaledUntil = this.entered;
      return false;
    }
  }

  private openSegment(): Segment {
    const stamp = `${Date.now()}-${process.pid}-${String(this.rotation++).padStart(6, '0')}`;
    const file = path.join(this.spillDir, `${this.prefix}${stamp}${JOURNAL_SUFFIX}`);
    const fd = openOwnerOnly(file, this.spillDir);
    return { path: file, fd, records: 0, size: 0, openedAt: Date.now(), dirty: false, enteredAtClose: 0, unsynced: false, syncing: Promise.resolve() };
  }

  /** Begins an fsync of a segment written to since the last one (never rejects; chained on `syncing`). */
  private syncSegment(segment: Segment): void {
    if (!segment.unsynced) return;
    segment.unsynced = false;
    segment.syncing = segment.syncing.then(
      () =>
        new Promise<void>((resolve) =>
          fsync(segment.fd, (error) => {
            if (error) this.logger?.warn({ err: error, file: segment.path }, 'prediction log: journal fsync failed');
            resolve();
          }),
        ),
    );
  }

  /** Closes the active segment when it is old or large, when memory is empty (nothing to wait for), or at close. */
  private rotateIfDue(): void {
    const segment = this.active;
    if (!segment) return;
    const memoryEmpty = this.left === this.entered && !segment.dirty;
    if (this.closing || memoryEmpty || segment.size >= SEGMENT_BYTES || Date.now() - segment.openedAt >= this.segmentMs) this.rotate();
  }

  /** The active segment joins the waiting ones; the next line opens a new one. */
  private rotate(): void {
    this.flushJournal();
    const segment = this.active;
    if (!segment) return;
    this.active = undefined;
    segment.enteredAtClose = this.entered;
    // A segment whose records are all in Postgres already is deleted next: no fsync for it.
    if (segment.dirty || this.left < this.entered) this.syncSegment(segment);
    this.waiting.push(segment);
  }

  /**
   * Closed segments whose records have all left memory: deleted when every one went to Postgres
   * from memory, else renamed into a spill file for replay (fsync'd first).
   */
  private async settleSegments(): Promise<void> {
    if (this.waiting.length === 0) return;
    const still: Segment[] = [];
    for (const segment of this.waiting) {
      if (this.left < segment.enteredAtClose) {
        still.push(segment);
        continue;
      }
      await segment.syncing;
      try {
        closeSync(segment.fd);
        if (segment.dirty) {
          await rename(segment.path, segment.path.slice(0, -JOURNAL_SUFFIX.length) + SPILL_SUFFIX);
          this.replayable++;
        } else {
          await unlink(segment.path);
        }
      } catch (error) {
        // Left in place: the next start replays it (rows already in are skipped).
        this.logger?.warn({ err: error, file: segment.path }, 'prediction log: could not settle a journal segment');
      }
    }
    this.waiting = still;
  }

  /**
   * Records leave memory without reaching Postgres: the journal has them (records written while it
   * failed are written again first), their ids are kept for `has`, and every segment that may hold
   * them is replayed from disk. False, with nothing changed, when the journal cannot take them.
   */
  private dropFromMemory(records: PredictionRecord[]): boolean {
    if (!this.flushJournal()) return false;
    const unjournaled = Math.min(records.length, Math.max(0, this.unjournaledUntil - this.left));
    if (unjournaled > 0) {
      for (let i = 0; i < unjournaled; i++) this.journalLines.push(journalLine(records[i]!));
      if (!this.flushJournal()) return false;
    }
    for (const record of records) this.track(record.requestId, 1);
    this.spilledCount += records.length;
    this.left += records.length;
    if (this.active) this.active.dirty = true;
    for (const segment of this.waiting) segment.dirty = true;
    return true;
  }

  // --- replay -----------------------------------------------------------------------------------

  /**
   * Probes Postgres and replays every spill file, oldest first (the active journal segment is
   * closed first when it holds dropped records); a file is deleted only once all its rows are
   * committed.
   */
  private async replay(): Promise<void> {
    try {
      await withTimeout(this.db.query('SELECT 1'), this.writeTimeoutMs, postgresSilent(this.writeTimeoutMs));
    } catch (error) {
      this.startSpilling(error);
      return;
    }
    if (this.spilling) this.logger?.info({ records: this.spilledCount }, 'prediction log: Postgres is back, replaying the spill files');
    try {
      if (this.active?.dirty) this.rotate();
      await this.settleSegments();
      for (const file of await this.spillFiles()) await this.replayFile(file);
      this.replayable = 0;
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
      // A journal also holds records written from memory (never counted as spilled): only the
      // spilled ones are counted down.
      for (const record of batch) {
        if (!this.pendingIds.has(record.requestId)) continue;
        this.track(record.requestId, -1);
        this.spilledCount--;
      }
      this.committedLines.set(file, line);
      batch = [];
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

  /** Renames the (old-style) active spill file so that it is replayed like the others. */
  private async rotateActivePath(): Promise<void> {
    const target = path.join(this.spillDir, `${this.prefix}${Date.now()}-${process.pid}-${String(this.rotation++).padStart(6, '0')}${SPILL_SUFFIX}`);
    try {
      await rename(this.activePath, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** This gateway's spill files, oldest first (named by time). */
  private async spillFiles(): Promise<string[]> {
    const active = path.basename(this.activePath);
    const names = await readdir(this.spillDir);
    return names
      .filter((n) => n !== active && n.startsWith(this.prefix) && n.endsWith(SPILL_SUFFIX))
      .sort()
      .map((n) => path.join(this.spillDir, n));
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
    if (this.replayable > 0 || (this.spilling && this.spilledCount > 0)) wait = Math.min(wait, Math.max(1, this.nextProbeAt - Date.now()));
    if (this.active) wait = Math.min(wait, Math.max(1, this.active.openedAt + this.segmentMs - Date.now()));
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

/**
 * One JSON line, built without serialising the features again when the request's own text holds
 * them (`request`, made one line: JSON text has line breaks only as whitespace); `ts` in epoch ms.
 */
function journalLine(record: PredictionRecord): string {
  const head =
    `{"requestId":${JSON.stringify(record.requestId)},"model":${quoted(record.model)},"version":${record.version},` +
    `"variant":${quoted(record.variant)},"mode":"${record.mode}","latencyMs":${JSON.stringify(record.latencyMs)},` +
    `"ts":${record.ts.getTime()},"output":${outputJson(record.output)}` +
    (record.presence ? `,"presence":${JSON.stringify(record.presence)}` : '');
  const text = record.requestJson;
  if (text !== undefined) return `${head},"request":${LINE_BREAK.test(text) ? text.replace(LINE_BREAKS, ' ') : text}}\n`;
  return `${head},"features":${JSON.stringify(record.features)}}\n`;
}

/** Model and variant names as JSON strings: a handful of names, each quoted once (not per record). */
const quotedNames = new Map<string, string>();
function quoted(name: string): string {
  let json = quotedNames.get(name);
  if (json === undefined) {
    json = JSON.stringify(name);
    if (quotedNames.size < 1_000) quotedNames.set(name, json);
  }
  return json;
}

/** The predictor's `{prediction, probability}` written directly (a third of a line's cost through JSON.stringify). */
function outputJson(output: Record<string, unknown>): string {
  const { prediction, probability } = output;
  let keys = 0;
  for (const key in output) if (Object.hasOwn(output, key)) keys++;
  if (keys === 2 && typeof prediction === 'number' && typeof probability === 'number' && Number.isFinite(prediction) && Number.isFinite(probability)) {
    return `{"prediction":${prediction},"probability":${probability}}`;
  }
  return JSON.stringify(output);
}

const LINE_BREAK = /[\r\n]/;
const LINE_BREAKS = /[\r\n]/g;

/** A journal or spill line (also the older format: features and an ISO `ts`). */
function deserialise(line: string): PredictionRecord | undefined {
  try {
    const raw = JSON.parse(line) as Omit<PredictionRecord, 'ts'> & { ts: string | number; request?: { features?: PredictionRecord['features'] } };
    const ts = new Date(raw.ts);
    const features = raw.features ?? raw.request?.features;
    if (typeof raw.requestId !== 'string' || typeof raw.model !== 'string' || Number.isNaN(ts.getTime()) || !features || typeof features !== 'object') return undefined;
    const { request: _request, ...record } = raw;
    return { ...record, features, ts };
  } catch {
    return undefined;
  }
}

/** Creates `dir` (and parents) and makes it 0700 whatever the umask. */
function ownerOnlyDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  chmodSync(dir, DIR_MODE);
}

/** Opens `file` for appending, 0600 whatever the umask (the folder is created when missing). */
function openOwnerOnly(file: string, dir = path.dirname(file)): number {
  let fd: number;
  try {
    fd = openSync(file, 'a', FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    ownerOnlyDir(dir);
    fd = openSync(file, 'a', FILE_MODE);
  }
  try {
    fchmodSync(fd, FILE_MODE);
  } catch (error) {
    closeSync(fd);
    throw error;
  }
  return fd;
}

function appendOwnerOnly(file: string, text: string): void {
  const fd = openOwnerOnly(file);
  try {
    writeFully(fd, text);
  } finally {
    closeSync(fd);
  }
}

function writeFully(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
}

/** A Postgres data exception (SQLSTATE class 22): the row is the problem, not the server. */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('22');
}

const postgresSilent = (ms: number) => `Postgres did not answer within ${ms} ms`;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
