/**
 * Parquet ⇄ Table with hyparquet / hyparquet-writer. Written types: number → DOUBLE, boolean →
 * BOOLEAN, category → BYTE_ARRAY UTF8, timestamp → INT64 TIMESTAMP_MILLIS; every column OPTIONAL,
 * nulls as parquet nulls, snappy-compressed. Reading also accepts the flat types other writers use
 * (INT32/INT64/FLOAT/DECIMAL → number, TIMESTAMP any unit, INT96 and DATE → timestamp, ENUM/UUID/
 * unannotated BYTE_ARRAY → category); nested, JSON and other columns are refused, naming them.
 */
import type { AsyncBuffer, SchemaElement } from 'hyparquet';
import { parquetMetadataAsync, parquetRead, parquetSchema } from 'hyparquet';
import type { ColumnSource } from 'hyparquet-writer';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { InvalidInput } from '../errors.js';
import type { Column, ColumnType, Table } from './table.js';
import { columnLength, createTable, sortCategories } from './table.js';

export interface ParquetReadOptions {
  /** Read only these columns, in this order. */
  columns?: readonly string[];
}

export interface ParquetWriteOptions {
  /** Rows per row group, default 100 000. */
  rowGroupRows?: number;
}

/** Timestamps come out as epoch milliseconds, not Date objects. */
const MILLIS_PARSERS = {
  timestampFromMilliseconds: (millis: bigint) => Number(millis),
  timestampFromMicroseconds: (micros: bigint) => Math.floor(Number(micros) / 1_000),
  timestampFromNanoseconds: (nanos: bigint) => Math.floor(Number(nanos) / 1_000_000),
  dateFromDays: (days: number) => days * 86_400_000,
};

function asAsyncBuffer(file: Uint8Array | ArrayBuffer | AsyncBuffer): AsyncBuffer {
  if (file instanceof Uint8Array) {
    // hyparquet slices an ArrayBuffer; copy only when the view does not cover its whole buffer.
    // ArrayBuffer.slice copies: Buffer#slice would be a view into Node's shared pool for small files.
    return file.byteOffset === 0 && file.byteLength === file.buffer.byteLength
      ? (file.buffer as ArrayBuffer)
      : (file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength) as ArrayBuffer);
  }
  return file;
}

/** The Table type a flat parquet column reads as, or a reason it cannot. */
function columnTypeOf(element: SchemaElement): ColumnType | string {
  const { type, converted_type: converted, logical_type: logical } = element;
  if (element.num_children || element.repetition_type === 'REPEATED') return 'a nested or repeated column';
  if (type === 'BOOLEAN') return 'boolean';
  if (logical?.type === 'TIMESTAMP' || logical?.type === 'DATE') return 'timestamp';
  if (converted === 'TIMESTAMP_MILLIS' || converted === 'TIMESTAMP_MICROS' || converted === 'DATE') return 'timestamp';
  if (type === 'INT96') return 'timestamp';
  if (converted === 'DECIMAL' || logical?.type === 'DECIMAL' || logical?.type === 'FLOAT16') return 'number';
  if (logical?.type === 'TIME' || converted === 'TIME_MILLIS' || converted === 'TIME_MICROS') return 'a TIME column';
  if (type === 'INT32' || type === 'INT64' || type === 'FLOAT' || type === 'DOUBLE') return 'number';
  if (converted === 'JSON' || converted === 'BSON' || (logical && !['STRING', 'ENUM', 'UUID'].includes(logical.type))) {
    return `a ${logical?.type ?? converted} column`;
  }
  if (type === 'BYTE_ARRAY' || type === 'FIXED_LEN_BYTE_ARRAY') return 'category';
  return `a ${type ?? 'group'} column`;
}

const COLUMN_TYPE_NAMES = new Set<string>(['number', 'boolean', 'category', 'timestamp']);

/** Fills one column as hyparquet hands over its chunks (one per row group). */
class ParquetColumnFiller {
  private readonly numbers?: Float64Array;
  private readonly flags?: Int8Array;
  private readonly codes?: Int32Array;
  private readonly dictionary = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly type: ColumnType,
    private readonly rows: number,
  ) {
    if (type === 'number' || type === 'timestamp') this.numbers = new Float64Array(rows).fill(NaN);
    else if (type === 'boolean') this.flags = new Int8Array(rows).fill(-1);
    else this.codes = new Int32Array(rows).fill(-1);
  }

  fill(data: ArrayLike<unknown>, rowStart: number, rowEnd: number): void {
    const end = Math.min(rowEnd, this.rows, rowStart + data.length);
    for (let row = rowStart; row < end; row++) {
      const value = data[row - rowStart];
      if (value === null || value === undefined) continue;
      if (this.numbers) {
        const number = typeof value === 'bigint' ? Number(value) : value instanceof Date ? value.getTime() : value;
        if (typeof number !== 'number') this.refuse(row, value);
        this.numbers[row] = number as number;
      } else if (this.flags) {
        if (typeof value !== 'boolean') this.refuse(row, value);
        this.flags[row] = value ? 1 : 0;
      } else {
        if (typeof value !== 'string') this.refuse(row, value);
        let code = this.dictionary.get(value as string);
        if (code === undefined) {
          code = this.dictionary.size;
          this.dictionary.set(value as string, code);
        }
        this.codes![row] = code;
      }
    }
  }

  private refuse(row: number, value: unknown): never {
    throw new InvalidInput(`parquet column ${this.name} row ${row}: ${String(value)} is not a ${this.type}`, this.name);
  }

  finish(): Column {
    const { name } = this;
    if (this.flags) return { name, type: 'boolean', values: this.flags };
    if (this.codes) return sortCategories({ name, type: 'category', codes: this.codes, categories: [...this.dictionary.keys()] });
    return { name, type: this.type as 'number' | 'timestamp', values: this.numbers! };
  }
}

/** Reads a whole Parquet file (bytes in memory, or an AsyncBuffer over a file) into a Table. */
export async function readParquet(file: Uint8Array | ArrayBuffer | AsyncBuffer, options: ParquetReadOptions = {}): Promise<Table> {
  const buffer = asAsyncBuffer(file);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (error) {
    throw new InvalidInput(`not a readable Parquet file: ${(error as Error).message}`);
  }
  const rows = Number(metadata.num_rows);
  const elements = parquetSchema(metadata).children.map((child) => child.element);
  const byName = new Map(elements.map((element) => [element.name, element]));
  const names = options.columns ? [...options.columns] : elements.map((element) => element.name);
  const fillers = new Map<string, ParquetColumnFiller>();
  for (const name of names) {
    const element = byName.get(name);
    if (!element) throw new InvalidInput(`missing column ${name} in Parquet file (columns: ${[...byName.keys()].join(', ')})`, name);
    const type = columnTypeOf(element);
    if (!COLUMN_TYPE_NAMES.has(type)) throw new InvalidInput(`parquet column ${name} is ${type}, which a Table cannot hold`, name);
    fillers.set(name, new ParquetColumnFiller(name, type as ColumnType, rows));
  }
  if (rows > 0 && names.length > 0) {
    await parquetRead({
      file: buffer,
      metadata,
      columns: names,
      parsers: MILLIS_PARSERS,
      onChunk: (chunk) => fillers.get(chunk.columnName)?.fill(chunk.columnData, chunk.rowStart, chunk.rowEnd),
    });
  }
  return createTable(
    names.map((name) => fillers.get(name)!.finish()),
    rows,
  );
}

function columnSource(column: Column): ColumnSource {
  const length = columnLength(column);
  switch (column.type) {
    case 'number': {
      // NaN would be stored as a NaN value, not a null: hand hyparquet-writer nulls instead.
      if (!column.values.some(Number.isNaN)) return { name: column.name, type: 'DOUBLE', data: column.values };
      return { name: column.name, type: 'DOUBLE', data: Array.from(column.values, (v) => (Number.isNaN(v) ? null : v)) };
    }
    case 'timestamp':
      // INT64 millis: fractions of a millisecond are rounded away.
      return { name: column.name, type: 'TIMESTAMP', data: Array.from(column.values, (v) => (Number.isNaN(v) ? null : Math.round(v))) };
    case 'boolean':
      return { name: column.name, type: 'BOOLEAN', data: Array.from(column.values, (v) => (v < 0 ? null : v === 1)) };
    case 'category': {
      const data = new Array<string | null>(length);
      for (let i = 0; i < length; i++) {
        const code = column.codes[i]!;
        data[i] = code < 0 ? null : column.categories[code]!;
      }
      return { name: column.name, type: 'STRING', data };
    }
  }
}

/** The table as Parquet bytes. Same table, same bytes (no timestamps in the file), so content hashes are stable. */
export function tableToParquet(table: Table, options: ParquetWriteOptions = {}): Uint8Array {
  if (table.columns.length === 0) throw new InvalidInput('cannot write a Parquet file with no columns');
  const buffer = parquetWriteBuffer({
    columnData: table.columns.map(columnSource),
    rowGroupSize: options.rowGroupRows ?? 100_000,
    createdBy: 'keel',
  });
  return new Uint8Array(buffer);
}
