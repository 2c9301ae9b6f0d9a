/**
 * Table → feature Matrix + labels, and the FeatureSpec that replays the same encoding at serving
 * time. Numbers as they are, booleans 0/1, timestamps epoch ms, categories as their index in the
 * spec's dictionary; a null (or a category the spec has never seen) is NaN.
 */
import { InvalidInput } from '../errors.js';
import type { Labels, Matrix } from '../ml/types.js';
import { matrix } from '../ml/types.js';
import { parseTimestampText } from './column-builder.js';
import type { Column, Table } from './table.js';
import { columnNames, findColumn, getColumn, textAt } from './table.js';

export const FEATURE_SPEC_VERSION = 1;

export type FeatureColumnSpec =
  | { name: string; type: 'number' | 'boolean' | 'timestamp' }
  | { name: string; type: 'category'; categories: string[] };

/** Plain JSON, stored with the model: which columns, in which order, and each category dictionary. */
export interface FeatureSpec {
  version: typeof FEATURE_SPEC_VERSION;
  features: FeatureColumnSpec[];
  label?: string;
}

export interface FeatureOptions {
  label: string;
  /** Feature columns in matrix order; default `defaultFeatureColumns`. */
  features?: readonly string[];
  /** Entity key columns (e.g. customer_id), never features by default. */
  entityKeys?: readonly string[];
}

export interface Features {
  x: Matrix;
  y: Labels;
  spec: FeatureSpec;
}

/** Every column except the label, the entity keys and timestamp columns, in table order. */
export function defaultFeatureColumns(table: Table, options: { label?: string; entityKeys?: readonly string[] }): string[] {
  const excluded = new Set([...(options.entityKeys ?? []), ...(options.label === undefined ? [] : [options.label])]);
  return table.columns.filter((c) => !excluded.has(c.name) && c.type !== 'timestamp').map((c) => c.name);
}

/** A label cell as 0/1, null for a null, undefined for a value that is not a binary label. */
export function binaryLabelAt(column: Column, row: number): 0 | 1 | null | undefined {
  switch (column.type) {
    case 'boolean': {
      const flag = column.values[row]!;
      return flag < 0 ? null : (flag as 0 | 1);
    }
    case 'number': {
      const value = column.values[row]!;
      if (Number.isNaN(value)) return null;
      return value === 0 || value === 1 ? value : undefined;
    }
    case 'category': {
      const code = column.codes[row]!;
      if (code < 0) return null;
      return LABEL_TEXT.get(column.categories[code]!.trim().toLowerCase());
    }
    case 'timestamp':
      return undefined;
  }
}

const LABEL_TEXT = new Map<string, 0 | 1>([
  ['0', 0],
  ['1', 1],
  ['false', 0],
  ['true', 1],
]);

/** The label column as 0/1 bytes: 0/1 numbers, booleans, or the texts "0"/"1"/"true"/"false". */
export function labelsFromColumn(table: Table, label: string): Labels {
  const column = getColumn(table, label);
  const y = new Uint8Array(table.rowCount);
  for (let row = 0; row < table.rowCount; row++) {
    const value = binaryLabelAt(column, row);
    if (value === null || value === undefined) {
      const shown = value === null ? 'null' : JSON.stringify(textAt(column, row));
      throw new InvalidInput(
        `label column ${label} row index ${row}: ${shown} is not a binary label (0/1, true/false or "0"/"1")`,
        label,
      );
    }
    y[row] = value;
  }
  return y;
}

/** The spec that encodes `names` of `table` as they are now (category dictionaries copied). */
export function featureSpecFor(table: Table, names: readonly string[], label?: string): FeatureSpec {
  const features = names.map((name): FeatureColumnSpec => {
    const column = getColumn(table, name);
    return column.type === 'category' ? { name, type: 'category', categories: [...column.categories] } : { name, type: column.type };
  });
  return { version: FEATURE_SPEC_VERSION, features, ...(label === undefined ? {} : { label }) };
}

export function toFeatures(table: Table, options: FeatureOptions): Features {
  const { label } = options;
  getColumn(table, label);
  const names = options.features ? [...options.features] : defaultFeatureColumns(table, options);
  if (names.length === 0) throw new InvalidInput(`no feature columns besides label ${label} (columns: ${columnNames(table).join(', ')})`, 'features');
  const seen = new Set<string>();
  for (const name of names) {
    if (name === label) throw new InvalidInput(`label column ${label} cannot also be a feature`, label);
    if (seen.has(name)) throw new InvalidInput(`feature column ${name} is listed twice`, name);
    seen.add(name);
  }
  const spec = featureSpecFor(table, names, label);
  return { x: applyFeatureSpec(table, spec), y: labelsFromColumn(table, label), spec };
}

/**
 * Encodes `table` the way `spec` says, whatever dictionaries the table's own category columns
 * have: categories are matched by text, and one the spec never saw is NaN.
 */
export function applyFeatureSpec(table: Table, spec: FeatureSpec): Matrix {
  const names = spec.features.map((f) => f.name);
  const x = matrix(table.rowCount, names.length, names);
  spec.features.forEach((feature, c) => {
    const column = findColumn(table, feature.name);
    if (!column) throw new InvalidInput(`missing feature column ${feature.name} (columns: ${columnNames(table).join(', ')})`, feature.name);
    writeFeature(x, c, column, feature);
  });
  return x;
}

function writeFeature(x: Matrix, c: number, column: Column, feature: FeatureColumnSpec): void {
  const { data, cols, rows } = x;
  if (feature.type === 'category') {
    const lookup = categoryLookup(column, feature.categories);
    for (let r = 0; r < rows; r++) data[r * cols + c] = lookup(r);
    return;
  }
  switch (column.type) {
    case 'number':
    case 'timestamp':
      for (let r = 0; r < rows; r++) data[r * cols + c] = column.values[r]!;
      return;
    case 'boolean':
      for (let r = 0; r < rows; r++) {
        const flag = column.values[r]!;
        data[r * cols + c] = flag < 0 ? NaN : flag;
      }
      return;
    case 'category':
      throw new InvalidInput(`feature column ${column.name} is category, the feature spec expects ${feature.type}`, column.name);
  }
}

/** Row → spec code (NaN for null or unseen), via a code-to-code table when the column is a category. */
function categoryLookup(column: Column, categories: readonly string[]): (row: number) => number {
  const index = new Map(categories.map((category, code) => [category, code]));
  if (column.type === 'category') {
    const remap = Float64Array.from(column.categories, (category) => index.get(category) ?? NaN);
    return (row) => {
      const code = column.codes[row]!;
      return code < 0 ? NaN : remap[code]!;
    };
  }
  // Non-category columns (e.g. ids inferred as numbers) are matched by their text.
  return (row) => {
    const text = textAt(column, row);
    return text === '' ? NaN : (index.get(text) ?? NaN);
  };
}

/**
 * Encodes JSON records (a serving request) with `spec`. Every feature must be present as a key;
 * null means missing. Numbers take numbers or booleans, timestamps epoch ms or ISO text, categories
 * text (numbers and booleans by their text).
 */
export function encodeRecords(records: ReadonlyArray<Readonly<Record<string, unknown>>>, spec: FeatureSpec): Matrix {
  const names = spec.features.map((f) => f.name);
  const x = matrix(records.length, names.length, names);
  const indexes = spec.features.map((f) => (f.type === 'category' ? new Map(f.categories.map((v, code) => [v, code])) : undefined));
  records.forEach((record, r) => {
    spec.features.forEach((feature, c) => {
      if (!(feature.name in record)) throw new InvalidInput(`record ${r}: missing feature ${feature.name}`, feature.name);
      const value = record[feature.name];
      const encoded = encodeValue(value, feature, indexes[c]);
      if (encoded === undefined) {
        throw new InvalidInput(`record ${r}: feature ${feature.name} = ${JSON.stringify(value)} is not a ${feature.type}`, feature.name);
      }
      x.data[r * x.cols + c] = encoded;
    });
  });
  return x;
}

function encodeValue(value: unknown, feature: FeatureColumnSpec, index: Map<string, number> | undefined): number | undefined {
  if (value === null) return NaN;
  if (feature.type === 'category') {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') return undefined;
    return index!.get(String(value)) ?? NaN;
  }
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'number') return value;
  if (feature.type === 'timestamp' && typeof value === 'string') return parseTimestampText(value);
  return undefined;
}
