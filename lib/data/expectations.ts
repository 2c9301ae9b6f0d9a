/**
 * Declarative dataset expectations. `validateTable` checks every expectation and returns every
 * failure (never just the first), each with the column, what was observed and what was expected,
 * so one failed training run says everything that is wrong with its data.
 *
 * Defaults: at least 1 row; no nulls in the feature columns (default features: every column but
 * the label, entity keys and timestamps) nor in entity keys unless `allowMissing`; when a label is
 * named it must be present, non-null and binary (0/1, true/false, "0"/"1") with a positive rate in
 * [0.01, 0.99].
 */
import { InvalidInput } from '../errors.js';
import { binaryLabelAt, defaultFeatureColumns } from './features.js';
import type { Column, ColumnType, Table } from './table.js';
import { findColumn, isNullAt, nullCount, textAt, valueAt } from './table.js';

export const DEFAULT_LABEL_RATE = { min: 0.01, max: 0.99 } as const;
export const DEFAULT_MIN_ROWS = 1;

/** How many offending values or keys a failure quotes. */
const EXAMPLES = 5;

export interface Expectations {
  /** Columns that must exist, with their allowed type(s). */
  columns?: Readonly<Record<string, ColumnType | readonly ColumnType[]>>;
  /** The binary label column. */
  label?: string;
  /** Allowed share of positive labels; each bound defaults to DEFAULT_LABEL_RATE. */
  labelRate?: { min?: number; max?: number };
  /** Columns that must have no nulls; default `defaultFeatureColumns(table, {label, entityKeys})`. */
  features?: readonly string[];
  /** True when the trainer handles missing values (nulls allowed in every feature), or the columns that may have nulls. */
  allowMissing?: boolean | readonly string[];
  /** Inclusive bounds of number columns, and of timestamp columns in epoch ms. Nulls are not checked. */
  ranges?: Readonly<Record<string, { min?: number; max?: number }>>;
  /** The only values a column may hold (by text; booleans are "true"/"false"). */
  categories?: Readonly<Record<string, readonly string[]>>;
  /** Default DEFAULT_MIN_ROWS. */
  minRows?: number;
  /** Columns that together identify a row (e.g. customer_id + event_timestamp): no two rows may repeat them. */
  entityKeys?: readonly string[];
}

export type ExpectationName =
  | 'min_rows'
  | 'column_present'
  | 'column_type'
  | 'no_nulls'
  | 'value_range'
  | 'allowed_categories'
  | 'label_present'
  | 'label_binary'
  | 'label_rate'
  | 'unique_keys';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface ExpectationFailure {
  expectation: ExpectationName;
  column?: string;
  observed: JsonValue;
  expected: JsonValue;
  message: string;
}

export interface ValidationResult {
  ok: boolean;
  /** Expectations evaluated (one per column per kind). */
  checked: number;
  failures: ExpectationFailure[];
  /** One line: "all N expectations passed" or "k of N expectations failed: name(column), …". */
  summary: string;
}

/** Checks every expectation against `table`; never throws for data problems. */
export function validateTable(table: Table, expectations: Expectations = {}): ValidationResult {
  const check = new Checker(table);
  const { label, entityKeys = [] } = expectations;

  const minRows = expectations.minRows ?? DEFAULT_MIN_ROWS;
  check.expect(table.rowCount >= minRows, () => ({
    expectation: 'min_rows',
    observed: table.rowCount,
    expected: { min: minRows },
    message: `${table.rowCount} rows, expected at least ${minRows}`,
  }));

  for (const [name, types] of Object.entries(expectations.columns ?? {})) {
    const column = check.column(name);
    if (!column) continue;
    const allowed: readonly ColumnType[] = typeof types === 'string' ? [types] : types;
    check.expect(allowed.includes(column.type), () => ({
      expectation: 'column_type',
      column: name,
      observed: column.type,
      expected: allowed.length === 1 ? allowed[0]! : [...allowed],
      message: `column ${name} has type ${column.type}, expected ${allowed.join(' or ')}`,
    }));
  }

  const features = expectations.features ?? defaultFeatureColumns(table, { label, entityKeys });
  const allowMissing = expectations.allowMissing ?? false;
  const mayHaveNulls = (name: string) => allowMissing === true || (Array.isArray(allowMissing) && allowMissing.includes(name));
  const nullChecked = new Set([...features.filter((name) => !mayHaveNulls(name)), ...entityKeys]);
  if (label !== undefined) nullChecked.delete(label);
  for (const name of nullChecked) {
    const column = check.column(name);
    if (!column) continue;
    const nulls = nullCount(column);
    check.expect(nulls === 0, () => ({
      expectation: 'no_nulls',
      column: name,
      observed: { nulls, rows: table.rowCount },
      expected: { nulls: 0 },
      message: `column ${name} has ${nulls} null(s) in ${table.rowCount} rows; set allowMissing if the trainer handles missing values`,
    }));
  }

  for (const [name, range] of Object.entries(expectations.ranges ?? {})) {
    const column = check.column(name);
    if (column) checkRange(check, column, range);
  }

  for (const [name, allowed] of Object.entries(expectations.categories ?? {})) {
    const column = check.column(name);
    if (column) checkCategories(check, column, allowed);
  }

  if (label !== undefined) checkLabel(check, label, expectations.labelRate);

  if (entityKeys.length > 0) {
    const keys = entityKeys.map((name) => check.column(name));
    if (keys.every((key): key is Column => key !== undefined)) checkUniqueKeys(check, keys);
  }

  return check.result();
}

/** Collects failures and counts the checks made. */
class Checker {
  checked = 0;
  readonly failures: ExpectationFailure[] = [];
  private readonly missing = new Set<string>();

  constructor(readonly table: Table) {}

  expect(passed: boolean, failure: () => ExpectationFailure): void {
    this.checked++;
    if (!passed) this.failures.push(failure());
  }

  /** The column, or undefined after recording (once per name) that it is missing. */
  column(name: string, expectation: ExpectationName = 'column_present'): Column | undefined {
    const column = findColumn(this.table, name);
    if (column) return column;
    if (!this.missing.has(name)) {
      this.missing.add(name);
      this.expect(false, () => ({
        expectation,
        column: name,
        observed: null,
        expected: 'present',
        message: `missing column ${name} (columns: ${this.table.columns.map((c) => c.name).join(', ') || 'none'})`,
      }));
    }
    return undefined;
  }

  result(): ValidationResult {
    const { failures, checked } = this;
    const summary =
      failures.length === 0
        ? `all ${checked} expectations passed (${this.table.rowCount} rows)`
        : `${failures.length} of ${checked} expectations failed: ${failures
            .map((f) => (f.column === undefined ? f.expectation : `${f.expectation}(${f.column})`))
            .join(', ')}`;
    return { ok: failures.length === 0, checked, failures, summary };
  }
}

function checkRange(check: Checker, column: Column, range: { min?: number; max?: number }): void {
  const expected = { min: range.min ?? null, max: range.max ?? null };
  if (column.type !== 'number' && column.type !== 'timestamp') {
    check.expect(false, () => ({
      expectation: 'value_range',
      column: column.name,
      observed: column.type,
      expected,
      message: `column ${column.name} is ${column.type}; value ranges apply to number and timestamp columns`,
    }));
    return;
  }
  const min = range.min ?? -Infinity;
  const max = range.max ?? Infinity;
  let outside = 0;
  let low = Infinity;
  let high = -Infinity;
  const examples: number[] = [];
  for (const value of column.values) {
    if (Number.isNaN(value)) continue;
    if (value < low) low = value;
    if (value > high) high = value;
    if (value < min || value > max) {
      outside++;
      if (examples.length < EXAMPLES) examples.push(value);
    }
  }
  check.expect(outside === 0, () => ({
    expectation: 'value_range',
    column: column.name,
    observed: { min: low, max: high, outside, examples },
    expected,
    message: `column ${column.name}: ${outside} value(s) outside [${range.min ?? '-∞'}, ${range.max ?? '∞'}] (observed min ${low}, max ${high}; e.g. ${examples.join(', ')})`,
  }));
}

function checkCategories(check: Checker, column: Column, allowed: readonly string[]): void {
  const allowedSet = new Set(allowed);
  let outside = 0;
  const unexpected = new Set<string>();
  for (let row = 0; row < check.table.rowCount; row++) {
    if (isNullAt(column, row)) continue;
    const text = textAt(column, row);
    if (allowedSet.has(text)) continue;
    outside++;
    if (unexpected.size < EXAMPLES) unexpected.add(text);
  }
  check.expect(outside === 0, () => ({
    expectation: 'allowed_categories',
    column: column.name,
    observed: { outside, values: [...unexpected] },
    expected: [...allowed],
    message: `column ${column.name}: ${outside} value(s) not in [${allowed.join(', ')}], e.g. ${[...unexpected].map((v) => JSON.stringify(v)).join(', ')}`,
  }));
}

function checkLabel(check: Checker, label: string, rate: Expectations['labelRate']): void {
  const column = check.column(label, 'label_present');
  if (!column) return;
  let nulls = 0;
  let invalid = 0;
  let positives = 0;
  let valid = 0;
  const examples = new Set<string>();
  for (let row = 0; row < check.table.rowCount; row++) {
    const value = binaryLabelAt(column, row);
    if (value === null) nulls++;
    else if (value === undefined) {
      invalid++;
      if (examples.size < EXAMPLES) examples.add(textAt(column, row));
    } else {
      valid++;
      positives += value;
    }
  }
  check.expect(nulls === 0 && invalid === 0, () => ({
    expectation: 'label_binary',
    column: label,
    observed: { nulls, invalid, values: [...examples] },
    expected: '0/1, true/false or "0"/"1", no nulls',
    message: `label column ${label}: ${nulls} null(s) and ${invalid} non-binary value(s)${examples.size ? `, e.g. ${[...examples].map((v) => JSON.stringify(v)).join(', ')}` : ''}`,
  }));
  if (valid === 0) return;
  const min = rate?.min ?? DEFAULT_LABEL_RATE.min;
  const max = rate?.max ?? DEFAULT_LABEL_RATE.max;
  const observed = positives / valid;
  check.expect(observed >= min && observed <= max, () => ({
    expectation: 'label_rate',
    column: label,
    observed: { rate: observed, positives, rows: valid },
    expected: { min, max },
    message: `label column ${label}: positive rate ${observed.toFixed(4)} (${positives} of ${valid}) is outside [${min}, ${max}]`,
  }));
}

function checkUniqueKeys(check: Checker, keys: readonly Column[]): void {
  const seen = new Set<string>();
  let duplicates = 0;
  const examples: JsonValue[] = [];
  const tokens = keys.map(keyToken);
  for (let row = 0; row < check.table.rowCount; row++) {
    let key = tokens[0]!(row);
    for (let k = 1; k < tokens.length; k++) key += `|${tokens[k]!(row)}`;
    if (!seen.has(key)) {
      seen.add(key);
      continue;
    }
    duplicates++;
    if (examples.length < EXAMPLES) {
      examples.push(Object.fromEntries(keys.map((column) => [column.name, valueAt(column, row)])));
    }
  }
  const names = keys.map((column) => column.name).join('+');
  check.expect(duplicates === 0, () => ({
    expectation: 'unique_keys',
    column: names,
    observed: { duplicateRows: duplicates, examples },
    expected: { duplicateRows: 0 },
    message: `${duplicates} row(s) repeat an earlier entity key (${names}), e.g. ${JSON.stringify(examples[0])}`,
  }));
}

/** A per-row token for key hashing; numbers and codes cannot contain the '|' separator. */
function keyToken(column: Column): (row: number) => string {
  if (column.type === 'category') return (row) => String(column.codes[row]);
  return (row) => String(column.values[row]);
}

/** One InvalidInput whose message names every failure; its field is the first failing column. */
export function validationError(result: ValidationResult): InvalidInput {
  const names = result.failures.map((f) => `${f.expectation}${f.column === undefined ? '' : ` (${f.column})`}`);
  const lines = result.failures.map((f, i) => `${names[i]}: ${f.message}`);
  const failed = `dataset failed ${result.failures.length} of ${result.checked} expectations`;
  // The messages quote values from the data; the expectation and column names do not.
  return new InvalidInput(`${failed}: ${lines.join('; ')}`, result.failures.find((f) => f.column !== undefined)?.column).withPublicMessage(`${failed}: ${names.join(', ')}`);
}

/** `validateTable`, throwing `validationError` when anything failed. */
export function assertValid(table: Table, expectations: Expectations = {}): ValidationResult {
  const result = validateTable(table, expectations);
  if (!result.ok) throw validationError(result);
  return result;
}
