/**
 * A columnar table over typed arrays. Each column holds one type and marks a missing value
 * in-band: NaN for `number` and `timestamp`, -1 for `boolean` and `category`. Tables are plain
 * objects (structured-clone and JSON friendly apart from the typed arrays) and are never mutated
 * by the functions here: every helper returns new columns or shares the old ones.
 */
import { InvalidInput } from '../errors.js';

export type ColumnType = 'number' | 'boolean' | 'category' | 'timestamp';

export const COLUMN_TYPES: readonly ColumnType[] = ['number', 'boolean', 'category', 'timestamp'];

/** Float64 values; NaN = null. */
export interface NumberColumn {
  readonly name: string;
  readonly type: 'number';
  readonly values: Float64Array;
}

/** 1 = true, 0 = false, -1 = null. */
export interface BooleanColumn {
  readonly name: string;
  readonly type: 'boolean';
  readonly values: Int8Array;
}

/** Dictionary codes into `categories`; -1 = null. */
export interface CategoryColumn {
  readonly name: string;
  readonly type: 'category';
  readonly codes: Int32Array;
  readonly categories: readonly string[];
}

/** Epoch milliseconds (UTC); NaN = null. */
export interface TimestampColumn {
  readonly name: string;
  readonly type: 'timestamp';
  readonly values: Float64Array;
}

export type Column = NumberColumn | BooleanColumn | CategoryColumn | TimestampColumn;

export interface ColumnSchema {
  readonly name: string;
  readonly type: ColumnType;
}

export type TableSchema = readonly ColumnSchema[];

export interface Table {
  readonly rowCount: number;
  readonly columns: readonly Column[];
}

/** A scalar as JS sees it: what `valueAt` returns and the column builders accept. */
export type CellValue = number | boolean | string | null;

/** A table from columns of equal length with distinct, non-empty names. */
export function createTable(columns: readonly Column[], rowCount?: number): Table {
  const rows = rowCount ?? (columns[0] ? columnLength(columns[0]) : 0);
  const seen = new Set<string>();
  for (const column of columns) {
    if (column.name === '') throw new InvalidInput('column names must not be empty');
    if (seen.has(column.name)) throw new InvalidInput(`duplicate column ${column.name}`, column.name);
    seen.add(column.name);
    const length = columnLength(column);
    if (length !== rows) {
      throw new InvalidInput(`column ${column.name} has ${length} rows, expected ${rows}`, column.name);
    }
  }
  return { rowCount: rows, columns: [...columns] };
}

export function columnLength(column: Column): number {
  return column.type === 'category' ? column.codes.length : column.values.length;
}

export function schemaOf(table: Table): TableSchema {
  return table.columns.map(({ name, type }) => ({ name, type }));
}

export function columnNames(table: Table): string[] {
  return table.columns.map((column) => column.name);
}

export function findColumn(table: Table, name: string): Column | undefined {
  return table.columns.find((column) => column.name === name);
}

/** The column `name`; a missing one is an `InvalidInput` that names it and lists what exists. */
export function getColumn(table: Table, name: string): Column {
  const column = findColumn(table, name);
  if (!column) {
    throw new InvalidInput(`missing column ${name} (columns: ${columnNames(table).join(', ') || 'none'})`, name);
  }
  return column;
}

/** The column `name`, which must have type `type`. */
export function getTypedColumn<T extends ColumnType>(table: Table, name: string, type: T): Extract<Column, { type: T }> {
  const column = getColumn(table, name);
  if (column.type !== type) {
    throw new InvalidInput(`column ${name} has type ${column.type}, expected ${type}`, name);
  }
  return column as Extract<Column, { type: T }>;
}

/** A table with only `names`, in that order; the columns are shared, not copied. */
export function selectColumns(table: Table, names: readonly string[]): Table {
  return createTable(
    names.map((name) => getColumn(table, name)),
    table.rowCount,
  );
}

/** A table with `column` added, or replacing the column of the same name in place. */
export function withColumn(table: Table, column: Column): Table {
  const index = table.columns.findIndex((c) => c.name === column.name);
  const columns = [...table.columns];
  if (index === -1) columns.push(column);
  else columns[index] = column;
  return createTable(columns, table.rowCount);
}

/** The rows at `index` (any order, repeats allowed), as a new table; categories are kept as they are. */
export function takeTableRows(table: Table, index: ArrayLike<number>): Table {
  for (let i = 0; i < index.length; i++) {
    const row = index[i]!;
    if (!Number.isInteger(row) || row < 0 || row >= table.rowCount) {
      throw new InvalidInput(`row index ${row} is out of range 0..${table.rowCount - 1}`);
    }
  }
  return createTable(
    table.columns.map((column) => takeColumnRows(column, index)),
    index.length,
  );
}

function takeColumnRows(column: Column, index: ArrayLike<number>): Column {
  switch (column.type) {
    case 'category':
      return { ...column, codes: gather(column.codes, new Int32Array(index.length), index) };
    case 'boolean':
      return { ...column, values: gather(column.values, new Int8Array(index.length), index) };
    case 'number':
    case 'timestamp':
      return { ...column, values: gather(column.values, new Float64Array(index.length), index) };
  }
}

function gather<T extends Float64Array | Int32Array | Int8Array>(from: T, to: T, index: ArrayLike<number>): T {
  for (let i = 0; i < index.length; i++) to[i] = from[index[i]!]!;
  return to;
}

/** Rows [start, end) as a new table sharing no memory with the old one. */
export function sliceRows(table: Table, start: number, end: number = table.rowCount): Table {
  const from = Math.max(0, Math.min(start, table.rowCount));
  const to = Math.max(from, Math.min(end, table.rowCount));
  return createTable(
    table.columns.map((column): Column => {
      if (column.type === 'category') return { ...column, codes: column.codes.slice(from, to) };
      if (column.type === 'boolean') return { ...column, values: column.values.slice(from, to) };
      return { ...column, values: column.values.slice(from, to) };
    }),
    to - from,
  );
}

export function isNullAt(column: Column, row: number): boolean {
  switch (column.type) {
    case 'category':
      return column.codes[row]! < 0;
    case 'boolean':
      return column.values[row]! < 0;
    case 'number':
    case 'timestamp':
      return Number.isNaN(column.values[row]!);
  }
}

export function nullCount(column: Column): number {
  let nulls = 0;
  const length = columnLength(column);
  if (column.type === 'category') {
    for (let i = 0; i < length; i++) if (column.codes[i]! < 0) nulls++;
  } else if (column.type === 'boolean') {
    for (let i = 0; i < length; i++) if (column.values[i]! < 0) nulls++;
  } else {
    for (let i = 0; i < length; i++) if (Number.isNaN(column.values[i]!)) nulls++;
  }
  return nulls;
}

/** One cell as a JS value (timestamps as epoch ms). For messages and I/O, not for hot loops. */
export function valueAt(column: Column, row: number): CellValue {
  switch (column.type) {
    case 'category': {
      const code = column.codes[row]!;
      return code < 0 ? null : column.categories[code]!;
    }
    case 'boolean': {
      const value = column.values[row]!;
      return value < 0 ? null : value === 1;
    }
    case 'number':
    case 'timestamp': {
      const value = column.values[row]!;
      return Number.isNaN(value) ? null : value;
    }
  }
}

/** One cell as text: what CSV writes and what error messages quote. Null is ''. */
export function textAt(column: Column, row: number): string {
  const value = valueAt(column, row);
  if (value === null) return '';
  if (column.type === 'timestamp') return formatTimestamp(value as number);
  return String(value);
}

/** ISO 8601 in UTC with milliseconds; out-of-range instants fall back to the number. */
export function formatTimestamp(millis: number): string {
  const date = new Date(millis);
  return Number.isNaN(date.getTime()) ? String(millis) : date.toISOString();
}

/** Every cell of a column as JS values; for tests and small tables. */
export function columnValues(column: Column): CellValue[] {
  const length = columnLength(column);
  const out = new Array<CellValue>(length);
  for (let i = 0; i < length; i++) out[i] = valueAt(column, i);
  return out;
}

export function numberColumn(name: string, values: ArrayLike<number | null | undefined>): NumberColumn {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] ?? NaN;
  return { name, type: 'number', values: out };
}

/** Accepts Date objects or epoch milliseconds. */
export function timestampColumn(name: string, values: ArrayLike<number | Date | null | undefined>): TimestampColumn {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    out[i] = value === null || value === undefined ? NaN : value instanceof Date ? value.getTime() : value;
  }
  return { name, type: 'timestamp', values: out };
}

export function booleanColumn(name: string, values: ArrayLike<boolean | null | undefined>): BooleanColumn {
  const out = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    out[i] = value === null || value === undefined ? -1 : value ? 1 : 0;
  }
  return { name, type: 'boolean', values: out };
}

/** Dictionary-encodes `values`; categories are sorted so equal data gives equal codes whatever the row order. */
export function categoryColumn(name: string, values: ArrayLike<string | null | undefined>): CategoryColumn {
  const codes = new Int32Array(values.length);
  const dictionary = new Map<string, number>();
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null || value === undefined) {
      codes[i] = -1;
      continue;
    }
    let code = dictionary.get(value);
    if (code === undefined) {
      code = dictionary.size;
      dictionary.set(value, code);
    }
    codes[i] = code;
  }
  return sortCategories({ name, type: 'category', codes, categories: [...dictionary.keys()] });
}

/** A category column from existing codes; every code must be -1 or index `categories`. */
export function categoryColumnFromCodes(name: string, codes: Int32Array, categories: readonly string[]): CategoryColumn {
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code < -1 || code >= categories.length) {
      throw new InvalidInput(`column ${name} row ${i}: code ${code} is outside its ${categories.length} categories`, name);
    }
  }
  return { name, type: 'category', codes, categories: [...categories] };
}

/** The same column with its categories in sorted order (codes remapped); unused categories are kept. */
export function sortCategories(column: CategoryColumn): CategoryColumn {
  const order = column.categories.map((_, code) => code).sort((a, b) => compareText(column.categories[a]!, column.categories[b]!));
  if (order.every((code, i) => code === i)) return column;
  const remap = new Int32Array(order.length);
  order.forEach((oldCode, newCode) => (remap[oldCode] = newCode));
  const codes = new Int32Array(column.codes.length);
  for (let i = 0; i < codes.length; i++) {
    const code = column.codes[i]!;
    codes[i] = code < 0 ? -1 : remap[code]!;
  }
  return { ...column, codes, categories: order.map((code) => column.categories[code]!) };
}

/** Code-unit order, the same as Array.prototype.sort's default: stable across locales. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A column of `type` holding `values` (JS values; Date or ms for timestamps). */
export function columnFromValues(name: string, type: ColumnType, values: ArrayLike<unknown>): Column {
  const pick = <T>(check: (v: unknown) => v is T, what: string): Array<T | null> =>
    Array.from(values, (value, row) => {
      if (value === null || value === undefined) return null;
      if (!check(value)) throw new InvalidInput(`column ${name} row ${row}: ${JSON.stringify(value)} is not ${what}`, name);
      return value;
    });
  switch (type) {
    case 'number':
      return numberColumn(name, pick((v): v is number => typeof v === 'number', 'a number'));
    case 'boolean':
      return booleanColumn(name, pick((v): v is boolean => typeof v === 'boolean', 'a boolean'));
    case 'category':
      return categoryColumn(name, pick((v): v is string => typeof v === 'string', 'a string'));
    case 'timestamp':
      return timestampColumn(
        name,
        pick((v): v is number | Date => typeof v === 'number' || v instanceof Date, 'a timestamp (Date or epoch ms)'),
      );
  }
}

/** A table from plain column arrays and a schema; for tests, fixtures and small inputs. */
export function tableFromColumns(schema: TableSchema, data: Readonly<Record<string, ArrayLike<unknown>>>): Table {
  return createTable(
    schema.map(({ name, type }) => {
      const values = data[name];
      if (!values) throw new InvalidInput(`missing data for column ${name}`, name);
      return columnFromValues(name, type, values);
    }),
  );
}
