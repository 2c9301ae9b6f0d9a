/**
 * CSV ⇄ Table. The first record is the header; every later record is one row. Types are inferred
 * per column by the rules in column-builder.ts (numbers, true/false booleans, ISO timestamps,
 * everything else category; empty = null), or pinned by `schema`. Rows in messages are data rows,
 * 1-based, header excluded. Parsing uses csv-parse (RFC 4180 quoting, BOM stripped, blank lines skipped).
 */
import { Readable } from 'node:stream';
import { CsvError, parse as parseStream } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { InvalidInput } from '../errors.js';
import { ColumnBuilder } from './column-builder.js';
import type { ColumnType, Table, TableSchema } from './table.js';
import { COLUMN_TYPES, createTable, textAt } from './table.js';

/** Column types by name, as a table's schema or a plain record; columns not named are inferred. */
export type SchemaOverride = TableSchema | Readonly<Record<string, ColumnType>>;

export interface CsvReadOptions {
  /** Pins these columns' types; values that do not fit are reported (row, column, value). */
  schema?: SchemaOverride;
  /** Field delimiter, default ','. */
  delimiter?: string;
  /** Texts read as null besides empty/whitespace-only fields, e.g. ['NA', 'NaN', 'null']. */
  nullValues?: readonly string[];
}

export interface CsvBatchOptions extends CsvReadOptions {
  /** Rows per batch, default 65 536. */
  batchRows?: number;
}

export interface CsvWriteOptions {
  delimiter?: string;
  /** Rows per chunk of `csvChunks`, default 10 000. */
  chunkRows?: number;
}

/** At most this many misfit values are quoted in the error; the rest are counted. */
const MAX_REPORTED_MISFITS = 10;

function schemaMap(schema: SchemaOverride | undefined): Map<string, ColumnType> {
  const entries: Array<[string, ColumnType]> = !schema
    ? []
    : Array.isArray(schema)
      ? (schema as TableSchema).map(({ name, type }) => [name, type])
      : Object.entries(schema as Record<string, ColumnType>);
  for (const [name, type] of entries) {
    if (!COLUMN_TYPES.includes(type)) {
      throw new InvalidInput(`schema: column ${name} has unknown type ${String(type)} (one of ${COLUMN_TYPES.join(', ')})`, name);
    }
  }
  return new Map(entries);
}

function checkHeader(header: string[], schema: ReadonlyMap<string, ColumnType>): void {
  const seen = new Set<string>();
  header.forEach((name, index) => {
    if (name.trim() === '') throw new InvalidInput(`CSV header: column ${index + 1} has an empty name`);
    if (seen.has(name)) throw new InvalidInput(`CSV header: duplicate column ${name}`, name);
    seen.add(name);
  });
  for (const name of schema.keys()) {
    if (!seen.has(name)) {
      throw new InvalidInput(`CSV has no column ${name} named in the schema (columns: ${header.join(', ')})`, name);
    }
  }
}

/** Rows of one table under construction; `firstRow` numbers its rows in messages. */
class CsvTableBuilder {
  private readonly builders: ColumnBuilder[];
  private misfits: string[] = [];
  private misfitCount = 0;
  private firstMisfitColumn?: string;

  constructor(
    private readonly header: readonly string[],
    types: ReadonlyMap<string, ColumnType>,
    nullValues: ReadonlySet<string>,
    private readonly firstRow: number,
  ) {
    this.builders = header.map((name) => new ColumnBuilder(name, types.get(name), nullValues));
  }

  get rows(): number {
    return this.builders[0]?.length ?? 0;
  }

  add(record: readonly string[]): void {
    const row = this.firstRow + this.rows;
    if (record.length !== this.header.length) {
      throw new InvalidInput(`CSV row ${row}: ${record.length} fields, the header has ${this.header.length}`);
    }
    for (let c = 0; c < record.length; c++) {
      const builder = this.builders[c]!;
      const text = record[c]!;
      if (!builder.push(text)) {
        this.misfitCount++;
        this.firstMisfitColumn ??= builder.name;
        if (this.misfits.length < MAX_REPORTED_MISFITS) {
          this.misfits.push(`row ${row} column ${builder.name}: ${JSON.stringify(text)} is not a ${builder.fixedType}`);
        }
      }
    }
  }

  /** Columns that have held a non-null value, with their types: what later batches must keep. */
  settledTypes(): Array<[string, ColumnType]> {
    return this.builders.filter((b) => b.hasValues).map((b) => [b.name, b.type]);
  }

  finish(): Table {
    if (this.misfitCount > 0) {
      const more = this.misfitCount > this.misfits.length ? `; and ${this.misfitCount - this.misfits.length} more` : '';
      throw new InvalidInput(
        `${this.misfitCount} CSV value(s) do not fit the schema: ${this.misfits.join('; ')}${more}`,
        this.firstMisfitColumn,
      );
    }
    return createTable(
      this.builders.map((b) => b.finish()),
      this.rows,
    );
  }
}

function parserOptions(options: CsvReadOptions) {
  return { bom: true, skip_empty_lines: true, delimiter: options.delimiter ?? ',' } as const;
}

/** csv-parse's syntax errors (bad quotes, ragged rows) as InvalidInput; anything else as is. */
function asInvalidInput(error: unknown): unknown {
  if (error instanceof CsvError) return new InvalidInput(`CSV: ${error.message}`);
  return error;
}

/** Parses a whole CSV text or byte buffer held in memory. */
export function parseCsv(input: string | Uint8Array, options: CsvReadOptions = {}): Table {
  let records: string[][];
  try {
    records = parseSync(input, parserOptions(options));
  } catch (error) {
    throw asInvalidInput(error);
  }
  const header = records[0];
  if (!header) throw new InvalidInput('CSV is empty: it needs a header row');
  const types = schemaMap(options.schema);
  checkHeader(header, types);
  const builder = new CsvTableBuilder(header, types, new Set(options.nullValues), 1);
  for (let r = 1; r < records.length; r++) builder.add(records[r]!);
  return builder.finish();
}

export type CsvSource = Readable | AsyncIterable<Uint8Array | string>;

/** Parsed records, streamed; the source is destroyed if the consumer stops early. */
async function* csvRecords(source: CsvSource, options: CsvReadOptions): AsyncGenerator<string[]> {
  const input = source instanceof Readable ? source : Readable.from(source);
  const parser = parseStream(parserOptions(options));
  input.on('error', (error) => parser.destroy(error));
  input.pipe(parser);
  try {
    for await (const record of parser) yield record as string[];
  } catch (error) {
    throw asInvalidInput(error);
  } finally {
    if (!input.readableEnded) input.destroy();
    parser.destroy();
  }
}

/**
 * Reads a CSV stream into one Table without holding the text or per-row objects: memory is that of
 * the typed columns, plus, while a column's type is inferred, one byte per row recording how each
 * value was written (and the text of the rare ones no format rebuilds, e.g. "007" or "+02:00"
 * offsets). Same inference and result as `parseCsv` on the same bytes.
 */
export async function readCsvStream(source: CsvSource, options: CsvReadOptions = {}): Promise<Table> {
  const types = schemaMap(options.schema);
  let builder: CsvTableBuilder | undefined;
  for await (const record of csvRecords(source, options)) {
    if (!builder) {
      checkHeader(record, types);
      builder = new CsvTableBuilder(record, types, new Set(options.nullValues), 1);
    } else {
      builder.add(record);
    }
  }
  if (!builder) throw new InvalidInput('CSV is empty: it needs a header row');
  return builder.finish();
}

/**
 * Streams a CSV as Tables of up to `batchRows` rows, for files larger than memory. A column's type
 * is inferred from the first batch where it has a value and then kept: a later value that does not
 * fit is an InvalidInput (pass `schema` to pin types up front). Each batch has its own category
 * dictionary. A header-only CSV yields one empty table.
 */
export async function* readCsvBatches(source: CsvSource, options: CsvBatchOptions = {}): AsyncGenerator<Table> {
  const batchRows = options.batchRows ?? 65_536;
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new InvalidInput(`batchRows must be a positive integer, got ${batchRows}`, 'batchRows');
  const types = schemaMap(options.schema);
  const nullValues = new Set(options.nullValues);
  let header: string[] | undefined;
  let builder: CsvTableBuilder | undefined;
  let nextRow = 1;
  let yielded = false;
  for await (const record of csvRecords(source, options)) {
    if (!header) {
      checkHeader(record, types);
      header = record;
      builder = new CsvTableBuilder(header, types, nullValues, nextRow);
      continue;
    }
    builder!.add(record);
    if (builder!.rows >= batchRows) {
      const table = builder!.finish();
      for (const [name, type] of builder!.settledTypes()) types.set(name, type);
      nextRow += table.rowCount;
      builder = new CsvTableBuilder(header, types, nullValues, nextRow);
      yielded = true;
      yield table;
    }
  }
  if (!header) throw new InvalidInput('CSV is empty: it needs a header row');
  if (builder!.rows > 0 || !yielded) yield builder!.finish();
}

/** The header and rows [start, end) as CSV text records. */
function textRecords(table: Table, start: number, end: number): string[][] {
  const records: string[][] = [];
  for (let row = start; row < end; row++) {
    const record = new Array<string>(table.columns.length);
    for (let c = 0; c < table.columns.length; c++) record[c] = textAt(table.columns[c]!, row);
    records.push(record);
  }
  return records;
}

/**
 * CSV text in chunks of `chunkRows` rows (the first chunk starts with the header), so that big
 * tables can be streamed to a file. Null is an empty field, booleans true/false, timestamps
 * ISO 8601 UTC with milliseconds, numbers in JS shortest round-trip form.
 */
export function* csvChunks(table: Table, options: CsvWriteOptions = {}): Generator<string> {
  const chunkRows = options.chunkRows ?? 10_000;
  // A one-column row holding null would be a blank line, which readers skip: quote it as "".
  const quotedEmpty = table.columns.length === 1;
  const settings = { delimiter: options.delimiter ?? ',', record_delimiter: 'unix', eof: true, quoted_empty: quotedEmpty } as const;
  yield stringify([table.columns.map((column) => column.name)], settings);
  for (let start = 0; start < table.rowCount; start += chunkRows) {
    yield stringify(textRecords(table, start, Math.min(table.rowCount, start + chunkRows)), settings);
  }
}

/** The whole table as CSV text; see `csvChunks` for the format. */
export function tableToCsv(table: Table, options: CsvWriteOptions = {}): string {
  return [...csvChunks(table, options)].join('');
}
