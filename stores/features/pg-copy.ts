/**
 * `COPY … TO STDOUT` from a pg client straight into a local file, without pg-copy-streams: a
 * small "submittable" (the extension point node-postgres offers for custom queries) that takes
 * the CopyData messages of a COPY and writes their bytes to the file in large blocks. Used by
 * the Parquet exports of feature views (stores/features/parquet-export.ts): COPY formats rows
 * in the server far faster than a SELECT read row by row through the driver.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { DbClient } from '../db.js';

const BLOCK = 4 * 1024 * 1024;

interface PgConnection {
  query(text: string): void;
  sendCopyFail(message: string): void;
}

class CopyToFile {
  private readonly fd: number;
  /** The bytes not written yet (a message's chunk is a view of the driver's receive buffer, reused later: copied here at once). */
  private readonly block = Buffer.allocUnsafe(BLOCK);
  private used = 0;
  private failure: Error | undefined;
  bytes = 0;
  readonly done: Promise<number>;
  private resolve!: (bytes: number) => void;
  private reject!: (error: Error) => void;

  constructor(
    private readonly text: string,
    file: string,
  ) {
    this.fd = openSync(file, 'w');
    this.done = new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: PgConnection): void {
    connection.query(this.text);
  }

  private write(data: Buffer, length: number): void {
    let offset = 0;
    while (offset < length) offset += writeSync(this.fd, data, offset, length - offset);
    this.bytes += length;
  }

  private flush(): void {
    if (this.used === 0) return;
    this.write(this.block, this.used);
    this.used = 0;
  }

  handleCopyData(message: { chunk: Buffer }): void {
    if (this.failure) return;
    const { chunk } = message;
    try {
      if (this.used + chunk.length > BLOCK) this.flush();
      if (chunk.length > BLOCK) this.write(chunk, chunk.length);
      else this.used += chunk.copy(this.block, this.used);
    } catch (error) {
      this.failure = error as Error;
    }
  }

  handleCopyInResponse(connection: PgConnection): void {
    connection.sendCopyFail('not a COPY FROM');
  }

  handleError(error: Error): void {
    this.failure ??= error;
  }

  handleReadyForQuery(): void {
    try {
      if (!this.failure) this.flush();
    } catch (error) {
      this.failure = error as Error;
    }
    try {
      closeSync(this.fd);
    } catch (error) {
      this.failure ??= error as Error;
    }
    if (this.failure) this.reject(this.failure);
    else this.resolve(this.bytes);
  }

  // Messages a COPY does not send, or that need no action.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
}

/**
 * Runs `sql` (a `COPY … TO STDOUT …` statement, no parameters) on `client` and writes what it
 * sends to `file`; returns the byte count. Runs in the client's current transaction.
 */
export async function copyToFile(client: DbClient, sql: string, file: string): Promise<number> {
  const copy = new CopyToFile(sql, file);
  (client as unknown as { query(submittable: unknown): unknown }).query(copy);
  return copy.done;
}
