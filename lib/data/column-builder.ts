/**
 * Builds one table column from text fields, appended one at a time, inferring its type as it goes.
 *
 * Inference rules (after trimming surrounding whitespace; the first non-null value picks the type):
 * - null: an empty or whitespace-only field, or one of the caller's `nullValues` (exact match);
 * - number: a decimal literal `[+-]digits[.digits][e[+-]digits]` (also `.5`, `5.`); no NaN, Infinity, hex or thousands separators;
 * - boolean: exactly `true`, `True`, `TRUE`, `false`, `False` or `FALSE` (pandas' default); `0`/`1` are numbers;
 * - timestamp: ISO 8601 `YYYY-MM-DD`, optionally `[T ]hh:mm[:ss[.fraction]]` and `Z` or `±hh[:]mm`;
 *   no offset means UTC; fractions are truncated to milliseconds;
 * - anything else: category (the untrimmed text).
 * A later value that does not fit the type so far turns the column into a category; the earlier
 * values keep their exact original text. An all-null column is a `number` column.
 * With an explicit type the column never changes type: a value that does not fit is reported; an
 * explicit boolean also accepts 0/1, an explicit category takes any text as it is.
 */
import type { Column, ColumnType } from './table.js';
import { formatTimestamp, sortCategories } from './table.js';

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const FIXED_DECIMALS = /^-?\d+\.(\d+)$/;
const TRUE_TEXT = ['true', 'True', 'TRUE'];
const FALSE_TEXT = ['false', 'False', 'FALSE'];
const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:([T ])(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** The number a field holds under the inference rules, or undefined when it is not one. */
export function parseNumberText(text: string): number | undefined {
  const trimmed = text.trim();
  return NUMBER.test(trimmed) ? Number(trimmed) : undefined;
}

export function parseBooleanText(text: string): boolean | undefined {
  const trimmed = text.trim();
  if (TRUE_TEXT.includes(trimmed)) return true;
  if (FALSE_TEXT.includes(trimmed)) return false;
  return undefined;
}

/** 0/1 as false/true: accepted only where the schema says boolean (inference keeps 0/1 numbers). */
function parseBitText(text: string): boolean | undefined {
  const trimmed = text.trim();
  return trimmed === '1' ? true : trimmed === '0' ? false : undefined;
}

/** Epoch milliseconds of an ISO 8601 date or date-time (UTC unless it has an offset), or undefined. */
export function parseTimestampText(text: string): number | undefined {
  return matchTimestamp(text)?.value;
}

/**
 * How a typed value was written, so that its exact text can be rebuilt if the column later turns
 * into a category: one byte per row instead of a copy of the text. ORIGINAL means "look it up".
 */
const ORIGINAL = -1;

/** Timestamp format bits: ' ' separator, seconds, 3-digit fraction, trailing Z; or date only. */
const TS_SPACE = 1;
const TS_SECONDS = 2;
const TS_MILLIS = 4;
const TS_ZULU = 8;
const TS_DATE_ONLY = 16;

function matchTimestamp(text: string): { value: number; format: number } | undefined {
  const trimmed = text.trim();
  const match = ISO_TIMESTAMP.exec(trimmed);
  if (!match) return undefined;
  const [, y, mo, d, separator, h = '0', mi = '0', s, fraction = '', zone] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s ?? '0');
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const millis = fraction === '' ? 0 : Number(fraction.padEnd(3, '0').slice(0, 3));
  let offsetMinutes = 0;
  if (zone && zone !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2));
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  const value = daysFromCivil(year, month, day) * 86_400_000 + ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 + millis;
  let format: number;
  if (trimmed !== text || (zone && zone !== 'Z') || (fraction.length !== 0 && fraction.length !== 3)) format = ORIGINAL;
  else if (!separator) format = TS_DATE_ONLY;
  else {
    format = (separator === ' ' ? TS_SPACE : 0) | (s ? TS_SECONDS : 0) | (fraction ? TS_MILLIS : 0) | (zone ? TS_ZULU : 0);
  }
  return { value, format };
}

function timestampText(value: number, format: number): string {
  const iso = formatTimestamp(value);
  if (format === TS_DATE_ONLY) return iso.slice(0, 10);
  return (
    iso.slice(0, 10) +
    (format & TS_SPACE ? ' ' : 'T') +
    iso.slice(11, 16) +
    (format & TS_SECONDS ? iso.slice(16, 19) : '') +
    (format & TS_MILLIS ? iso.slice(19, 23) : '') +
    (format & TS_ZULU ? 'Z' : '')
  );
}

/** 0: String(value) reproduces the text; k + 1: value.toFixed(k) does ("1.50"); else ORIGINAL. */
function numberFormat(value: number, text: string): number {
  if (String(value) === text) return 0;
  const decimals = FIXED_DECIMALS.exec(text)?.[1]?.length;
  if (decimals !== undefined && decimals <= 100 && value.toFixed(decimals) === text) return decimals + 1;
  return ORIGINAL;
}

function numberText(value: number, format: number): string {
  return format === 0 ? String(value) : value.toFixed(format - 1);
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil), without Date objects. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
}

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** The type the inference rules give one non-null field. */
export function inferTextType(text: string): ColumnType {
  if (parseNumberText(text) !== undefined) return 'number';
  if (parseBooleanText(text) !== undefined) return 'boolean';
  if (parseTimestampText(text) !== undefined) return 'timestamp';
  return 'category';
}

type Kind = ColumnType | 'empty';

/** A typed array that doubles when full; `finish` trims it to length. */
class Growable<T extends Float64Array | Int32Array | Int8Array> {
  length = 0;
  private data: T;

  constructor(
    private readonly make: (size: number) => T,
    initial = 16,
  ) {
    this.data = make(Math.max(16, initial));
  }

  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = this.make(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.length++] = value;
  }

  get(index: number): number {
    return this.data[index]!;
  }

  finish(): T {
    return this.data.slice(0, this.length) as T;
  }
}

const float64 = (size: number) => new Float64Array(size);
const int32 = (size: number) => new Int32Array(size);
const int8 = (size: number) => new Int8Array(size);

export class ColumnBuilder {
  private kind: Kind = 'empty';
  private rows = 0;
  private sawValue = false;
  private numbers?: Growable<Float64Array>;
  private flags?: Growable<Int8Array>;
  private codes?: Growable<Int32Array>;
  private readonly dictionary = new Map<string, number>();
  /** Per row, how the typed value was written (see ORIGINAL); only while the type may still widen. */
  private formats?: Growable<Int8Array>;
  /** Text of the rows whose format is ORIGINAL (e.g. "007", "2024-01-01T10:00+02:00"). */
  private readonly originals = new Map<number, string>();

  /** `fixedType` pins the type: values that do not fit are refused instead of widening to category. */
  constructor(
    readonly name: string,
    readonly fixedType?: ColumnType,
    private readonly nullValues: ReadonlySet<string> = new Set(),
  ) {
    if (fixedType) this.start(fixedType);
  }

  get length(): number {
    return this.rows;
  }

  /** True once a non-null value has been seen. */
  get hasValues(): boolean {
    return this.sawValue;
  }

  /** The type the column has now (`number` while it is all null). */
  get type(): ColumnType {
    return this.kind === 'empty' ? 'number' : this.kind;
  }

  isNullText(text: string): boolean {
    return this.nullValues.has(text) || text.trim() === '';
  }

  /** Appends one field; false (and a null appended) when the column's fixed type refuses it. */
  push(text: string): boolean {
    if (this.isNullText(text)) {
      this.pushNull();
      return true;
    }
    this.sawValue = true;
    if (this.kind === 'empty') this.start(inferTextType(text));
    if (this.pushTyped(text)) return true;
    if (this.fixedType) {
      this.pushNull();
      return false;
    }
    this.widenToCategory();
    this.pushTyped(text);
    return true;
  }

  private start(kind: ColumnType): void {
    const nulls = this.rows;
    this.kind = kind;
    if (kind === 'number' || kind === 'timestamp') {
      this.numbers = new Growable(float64, nulls);
      for (let i = 0; i < nulls; i++) this.numbers.push(NaN);
    } else if (kind === 'boolean') {
      this.flags = new Growable(int8, nulls);
      for (let i = 0; i < nulls; i++) this.flags.push(-1);
    } else {
      this.codes = new Growable(int32, nulls);
      for (let i = 0; i < nulls; i++) this.codes.push(-1);
    }
    if (kind !== 'category' && !this.fixedType) {
      this.formats = new Growable(int8, nulls);
      for (let i = 0; i < nulls; i++) this.formats.push(0);
    }
  }

  private pushNull(): void {
    this.rows++;
    if (this.kind === 'number' || this.kind === 'timestamp') this.numbers!.push(NaN);
    else if (this.kind === 'boolean') this.flags!.push(-1);
    else if (this.kind === 'category') this.codes!.push(-1);
    this.formats?.push(0);
  }

  /** Appends `text` as the current type; false when it is not one. */
  private pushTyped(text: string): boolean {
    let format = 0;
    switch (this.kind) {
      case 'number': {
        const value = parseNumberText(text);
        if (value === undefined) return false;
        if (this.formats) format = numberFormat(value, text);
        this.numbers!.push(value);
        break;
      }
      case 'timestamp': {
        const parsed = matchTimestamp(text);
        if (parsed === undefined) return false;
        format = parsed.format;
        this.numbers!.push(parsed.value);
        break;
      }
      case 'boolean': {
        const value = parseBooleanText(text) ?? (this.fixedType ? parseBitText(text) : undefined);
        if (value === undefined) return false;
        format = (value ? TRUE_TEXT : FALSE_TEXT).indexOf(text);
        this.flags!.push(value ? 1 : 0);
        break;
      }
      case 'category':
        this.codes!.push(this.codeFor(text));
        break;
      case 'empty':
        return false;
    }
    if (this.formats) {
      if (format === ORIGINAL) this.originals.set(this.rows, text);
      this.formats.push(format);
    }
    this.rows++;
    return true;
  }

  private codeFor(text: string): number {
    let code = this.dictionary.get(text);
    if (code === undefined) {
      code = this.dictionary.size;
      this.dictionary.set(text, code);
    }
    return code;
  }

  /** Re-encodes the values so far as category codes of their original text. */
  private widenToCategory(): void {
    const codes = new Growable(int32, this.rows);
    for (let row = 0; row < this.rows; row++) {
      const text = this.textOf(row);
      codes.push(text === null ? -1 : this.codeFor(text));
    }
    this.kind = 'category';
    this.codes = codes;
    this.numbers = undefined;
    this.flags = undefined;
    this.formats = undefined;
    this.originals.clear();
  }

  /** The exact text row `row` was read from, or null for a null. */
  private textOf(row: number): string | null {
    const format = this.formats!.get(row);
    if (this.kind === 'boolean') {
      const flag = this.flags!.get(row);
      if (flag < 0) return null;
      return format === ORIGINAL ? this.originals.get(row)! : (flag === 1 ? TRUE_TEXT : FALSE_TEXT)[format]!;
    }
    const value = this.numbers!.get(row);
    if (Number.isNaN(value)) return null;
    if (format === ORIGINAL) return this.originals.get(row)!;
    return this.kind === 'timestamp' ? timestampText(value, format) : numberText(value, format);
  }

  finish(): Column {
    const name = this.name;
    switch (this.kind) {
      case 'empty':
        return { name, type: 'number', values: new Float64Array(this.rows).fill(NaN) };
      case 'number':
      case 'timestamp':
        return { name, type: this.kind, values: this.numbers!.finish() };
      case 'boolean':
        return { name, type: 'boolean', values: this.flags!.finish() };
      case 'category':
        return sortCategories({ name, type: 'category', codes: this.codes!.finish(), categories: [...this.dictionary.keys()] });
    }
  }
}
