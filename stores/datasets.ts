/**
 * Table I/O: local files (a path or a file:// URI; the format comes from the extension, .csv or
 * .parquet) and the artifact store (Parquet by default, so types survive; a stored CSV is read
 * back as CSV). CSV is always read and written as a stream.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { asyncBufferFromFile } from 'hyparquet';
import type { CsvReadOptions, CsvWriteOptions } from '../lib/data/csv.js';
import { csvChunks, readCsvStream } from '../lib/data/csv.js';
import type { ParquetWriteOptions } from '../lib/data/parquet.js';
import { readParquet, tableToParquet } from '../lib/data/parquet.js';
import type { Table } from '../lib/data/table.js';
import { InvalidInput } from '../lib/errors.js';
import type { ArtifactRef, ArtifactStore } from './artifacts/types.js';

export type TableFormat = 'csv' | 'parquet';

export interface TableReadOptions {
  /** CSV only: schema override, delimiter, extra null texts. */
  csv?: CsvReadOptions;
  /** Parquet only: read just these columns. */
  columns?: readonly string[];
}

export interface TableWriteOptions {
  csv?: CsvWriteOptions;
  parquet?: ParquetWriteOptions;
}

/** A local path for a path or a `file://` URI (relative ones resolve against the working directory). */
export function localPath(pathOrUri: string): string {
  if (pathOrUri.startsWith('file://')) return path.resolve(decodeURIComponent(pathOrUri.slice('file://'.length)));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(pathOrUri)) {
    throw new InvalidInput(`${pathOrUri}: only local paths and file:// URIs can be read as tables here`);
  }
  return path.resolve(pathOrUri);
}

export function formatOf(pathOrUri: string): TableFormat {
  const extension = path.extname(pathOrUri).toLowerCase();
  if (extension === '.csv') return 'csv';
  if (extension === '.parquet') return 'parquet';
  throw new InvalidInput(`${pathOrUri}: unknown table format ${extension || '(no extension)'}; use .csv or .parquet`);
}

export async function readTable(pathOrUri: string, options: TableReadOptions = {}): Promise<Table> {
  const format = formatOf(pathOrUri);
  const file = localPath(pathOrUri);
  try {
    if (format === 'csv') return await readCsvStream(createReadStream(file), options.csv);
    return await readParquet(await asyncBufferFromFile(file), { columns: options.columns });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new InvalidInput(`no such file: ${file}`);
    throw error;
  }
}

/** Writes next to the target and renames into place, so a reader never sees half a file. */
export async function writeTable(pathOrUri: string, table: Table, options: TableWriteOptions = {}): Promise<void> {
  const format = formatOf(pathOrUri);
  const file = localPath(pathOrUri);
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${randomUUID()}.tmp`;
  try {
    if (format === 'csv') await pipeline(csvBytes(table, options.csv), createWriteStream(temp));
    else await writeFile(temp, tableToParquet(table, options.parquet));
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
}

function csvBytes(table: Table, options?: CsvWriteOptions): Readable {
  return Readable.from((function* () {
    for (const chunk of csvChunks(table, options)) yield Buffer.from(chunk, 'utf8');
  })());
}

/** Stores the table as an artifact (Parquet unless told otherwise) and returns its ref. */
export async function putTable(
  store: ArtifactStore,
  table: Table,
  options: TableWriteOptions & { format?: TableFormat } = {},
): Promise<ArtifactRef> {
  if ((options.format ?? 'parquet') === 'csv') return store.put(csvBytes(table, options.csv));
  return store.put(tableToParquet(table, options.parquet));
}

const PARQUET_MAGIC = Buffer.from('PAR1');

/**
 * Reads a table artifact; Parquet or CSV is told by the content (Parquet starts with PAR1). CSV is
 * parsed as it streams and fails with ArtifactCorrupt if the bytes do not match the ref.
 */
export async function getTable(store: ArtifactStore, ref: ArtifactRef | string, options: TableReadOptions = {}): Promise<Table> {
  const sha256 = typeof ref === 'string' ? ref : ref.sha256;
  const stream = await store.open(sha256);
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await chunks.next();
  const head: Buffer = first.done ? Buffer.alloc(0) : first.value;
  if (head.subarray(0, 4).equals(PARQUET_MAGIC)) {
    stream.destroy();
    return readParquet(await store.getBytes(sha256), { columns: options.columns });
  }
  async function* body(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
  }
  return readCsvStream(body(), options.csv);
}
