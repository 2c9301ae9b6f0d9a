/**
 * On-demand features: pure TypeScript functions of request data and other features, computed at
 * the moment of use instead of being stored. A definition names its inputs (feature names or
 * request fields: columns of the table, keys of the request row), its output type and the
 * function; the same function runs when a training set is built (`applyOnDemandFeatures` on the
 * retrieved table) and in the gateway (`computeOnDemandRow` on one request). Its `codeHash` — the
 * sha256 of the function's source text, its inputs and its type — goes into the model's feature
 * spec (`onDemandSpec`), and `checkOnDemandSpec` refuses to serve a model with a function whose
 * code changed since training.
 *
 * Null-safe: a null input reaches the function as null and the function may return null; a thrown
 * error, a non-finite number or a value of the wrong type is an `InvalidInput` naming the feature
 * and the row. Pure: no I/O here.
 *
 * The hash is of `fn.toString()`, the source text as the running JavaScript engine sees it: with
 * tsx that is the transpiled text, so the same code under another transpiler (or a reformatted
 * function) gets another hash and must be retrained or re-registered on purpose.
 */
import { z } from 'zod';
import { canonicalJson } from '../canonical-json.js';
import type { CellValue, Column, Table } from '../data/table.js';
import { booleanColumn, categoryColumn, createTable, numberColumn, valueAt } from '../data/table.js';
import { InvalidInput } from '../errors.js';
import { sha256Hex } from '../hash.js';
import { identifierSchema } from './identifiers.js';

export const ON_DEMAND_TYPES = ['float64', 'int64', 'bool', 'string'] as const;
export type OnDemandType = (typeof ON_DEMAND_TYPES)[number];

export type OnDemandValue = number | string | boolean | null;
/** What a function sees: its declared inputs only (timestamps as epoch ms, missing values null). */
export type OnDemandRow = Readonly<Record<string, OnDemandValue>>;
export type OnDemandFunction = (row: OnDemandRow) => OnDemandValue;

export interface OnDemandFeatureInput<I extends string = string> {
  name: string;
  /** Feature names or request fields the function reads; an earlier on-demand feature may be one. */
  inputs: readonly I[];
  type: OnDemandType;
  /** Sees exactly its inputs (typed by name when `inputs` is a literal list). */
  fn: (row: Readonly<Record<I, OnDemandValue>>) => OnDemandValue;
  description?: string;
}

export interface OnDemandFeature {
  readonly name: string;
  readonly inputs: readonly string[];
  readonly type: OnDemandType;
  readonly fn: OnDemandFunction;
  readonly description: string;
  /** sha256 (hex) of the canonical JSON of `{fn: fn.toString(), inputs, type}`. */
  readonly codeHash: string;
}

/** One entry of a model's feature spec: everything about the function but the function. */
export interface OnDemandSpecEntry {
  name: string;
  inputs: string[];
  type: OnDemandType;
  codeHash: string;
}

export const onDemandSpecSchema = z.array(
  z
    .object({
      name: identifierSchema,
      inputs: z.array(z.string().min(1)),
      type: z.enum(ON_DEMAND_TYPES),
      codeHash: z.string().regex(/^[0-9a-f]{64}$/, 'codeHash must be 64 hex digits'),
    })
    .strict(),
);

/** The code hash of a function with its inputs and output type. */
export function onDemandCodeHash(fn: OnDemandFunction, inputs: readonly string[], type: OnDemandType): string {
  return sha256Hex(canonicalJson({ fn: fn.toString(), inputs: [...inputs], type }));
}

/** Checks a definition and computes its code hash. */
export function defineOnDemandFeature<const I extends string>(input: OnDemandFeatureInput<I>): OnDemandFeature {
  if (!input || typeof input !== 'object') throw new InvalidInput('an on-demand feature must be an object');
  const label = typeof input.name === 'string' && input.name ? `on-demand feature ${input.name}` : 'on-demand feature';
  const name = identifierSchema.safeParse(input.name);
  if (!name.success) throw new InvalidInput(`${label}: name ${name.error.issues[0]!.message}`, 'name');
  if (!Array.isArray(input.inputs) || input.inputs.length === 0) {
    throw new InvalidInput(`${label}: inputs must list at least one feature or request field`, 'inputs');
  }
  const seen = new Set<string>();
  input.inputs.forEach((field, i) => {
    if (typeof field !== 'string' || field === '') throw new InvalidInput(`${label}: inputs[${i}] must be a non-empty string`, `inputs[${i}]`);
    if (seen.has(field)) throw new InvalidInput(`${label}: input ${field} is listed twice`, `inputs[${i}]`);
    if (field === input.name) throw new InvalidInput(`${label}: a feature cannot be its own input`, `inputs[${i}]`);
    seen.add(field);
  });
  if (!(ON_DEMAND_TYPES as readonly string[]).includes(input.type)) {
    throw new InvalidInput(`${label}: type must be one of ${ON_DEMAND_TYPES.join(', ')}, not ${JSON.stringify(input.type)}`, 'type');
  }
  if (typeof input.fn !== 'function') throw new InvalidInput(`${label}: fn must be a function`, 'fn');
  const inputs: readonly string[] = Object.freeze([...input.inputs]);
  const fn = input.fn as OnDemandFunction;
  return Object.freeze({
    name: input.name,
    inputs,
    type: input.type,
    fn,
    description: input.description ?? '',
    codeHash: onDemandCodeHash(fn, inputs, input.type),
  });
}

/** The definitions by name; a name defined twice is refused. */
export function onDemandRegistry(defs: readonly OnDemandFeature[]): ReadonlyMap<string, OnDemandFeature> {
  const byName = new Map<string, OnDemandFeature>();
  for (const def of defs) {
    if (byName.has(def.name)) throw new InvalidInput(`on-demand feature ${def.name} is defined twice`, def.name);
    byName.set(def.name, def);
  }
  return byName;
}

function rowLabel(row: number | undefined): string {
  return row === undefined ? 'the request' : `row ${row}`;
}

/** Runs one function on one row of inputs and checks its answer against the declared type. */
function evaluate(def: OnDemandFeature, inputs: OnDemandRow, row: number | undefined): OnDemandValue {
  let value: unknown;
  try {
    value = def.fn(inputs);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new InvalidInput(`on-demand feature ${def.name} failed at ${rowLabel(row)}: ${reason}`, def.name);
  }
  if (value === null) return null;
  const bad = (what: string) =>
    new InvalidInput(`on-demand feature ${def.name} returned ${what} at ${rowLabel(row)} (declared type ${def.type})`, def.name);
  switch (def.type) {
    case 'float64':
    case 'int64':
      if (typeof value !== 'number') throw bad(describe(value));
      if (!Number.isFinite(value)) throw bad(`the non-finite number ${String(value)}`);
      if (def.type === 'int64' && !Number.isInteger(value)) throw bad(`the non-integer ${value}`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw bad(describe(value));
      return value;
    case 'string':
      if (typeof value !== 'string') throw bad(describe(value));
      return value;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'undefined (return null for a missing value)';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `the ${typeof value} ${String(value)}`;
  return `a value of type ${value === null ? 'null' : typeof value}`;
}

/**
 * The table with one more column per definition (in order; a later definition may read an earlier
 * one's output), computed row by row from the named input columns. Every input must be a column
 * and no output may overwrite one. float64/int64 become number columns, bool boolean and string
 * category columns.
 */
export function applyOnDemandFeatures(table: Table, defs: readonly OnDemandFeature[]): Table {
  onDemandRegistry(defs);
  const columns: Column[] = [...table.columns];
  const byName = new Map(columns.map((c) => [c.name, c]));
  for (const def of defs) {
    if (byName.has(def.name)) {
      throw new InvalidInput(`on-demand feature ${def.name}: the table already has a column ${def.name}`, def.name);
    }
    const sources = def.inputs.map((input) => {
      const column = byName.get(input);
      if (!column) {
        throw new InvalidInput(
          `on-demand feature ${def.name}: input ${input} is not a column (columns: ${columns.map((c) => c.name).join(', ') || 'none'})`,
          def.name,
        );
      }
      return column;
    });
    const out = new Array<OnDemandValue>(table.rowCount);
    const inputs: Record<string, OnDemandValue> = {};
    for (let row = 0; row < table.rowCount; row++) {
      for (let j = 0; j < sources.length; j++) inputs[def.inputs[j]!] = valueAt(sources[j]!, row);
      out[row] = evaluate(def, Object.freeze({ ...inputs }), row);
    }
    const column = outputColumn(def, out);
    columns.push(column);
    byName.set(def.name, column);
  }
  return createTable(columns, table.rowCount);
}

function outputColumn(def: OnDemandFeature, values: OnDemandValue[]): Column {
  switch (def.type) {
    case 'float64':
    case 'int64':
      return numberColumn(def.name, values as Array<number | null>);
    case 'bool':
      return booleanColumn(def.name, values as Array<boolean | null>);
    case 'string':
      return categoryColumn(def.name, values as Array<string | null>);
  }
}

/**
 * One request (feature and request values by name; a missing key is null) with every on-demand
 * feature added, in order: what the gateway calls before scoring.
 */
export function computeOnDemandRow(
  row: Readonly<Record<string, CellValue | undefined>>,
  defs: readonly OnDemandFeature[],
): Record<string, CellValue> {
  onDemandRegistry(defs);
  const out: Record<string, CellValue> = {};
  for (const [key, value] of Object.entries(row)) out[key] = value ?? null;
  for (const def of defs) {
    if (Object.hasOwn(out, def.name) && out[def.name] !== null) {
      throw new InvalidInput(`on-demand feature ${def.name}: the request already has a value for ${def.name}`, def.name);
    }
    const inputs: Record<string, OnDemandValue> = {};
    for (const input of def.inputs) inputs[input] = out[input] ?? null;
    out[def.name] = evaluate(def, Object.freeze(inputs), undefined);
  }
  return out;
}

/** What a model's feature spec stores about its on-demand features. */
export function onDemandSpec(defs: readonly OnDemandFeature[]): OnDemandSpecEntry[] {
  onDemandRegistry(defs);
  return defs.map((def) => ({ name: def.name, inputs: [...def.inputs], type: def.type, codeHash: def.codeHash }));
}

/**
 * Refuses (InvalidInput) to use `defs` for a model whose feature spec is `spec` unless every
 * on-demand feature the model was trained with is defined with exactly the same code hash.
 * Definitions the spec does not mention are ignored.
 */
export function checkOnDemandSpec(spec: unknown, defs: readonly OnDemandFeature[]): void {
  const parsed = onDemandSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new InvalidInput(`on-demand feature spec: ${issue.path.join('.') || '(root)'}: ${issue.message}`, 'onDemand');
  }
  const byName = onDemandRegistry(defs);
  for (const entry of parsed.data) {
    const def = byName.get(entry.name);
    if (!def) {
      throw new InvalidInput(
        `the model needs on-demand feature ${entry.name}, which is not defined (defined: ${[...byName.keys()].join(', ') || 'none'})`,
        entry.name,
      );
    }
    if (def.codeHash !== entry.codeHash) {
      throw new InvalidInput(
        `on-demand feature ${entry.name}: model was trained with a different transformation ` +
          `(code hash ${entry.codeHash.slice(0, 12)}…, now ${def.codeHash.slice(0, 12)}…); retrain the model or restore the function`,
        entry.name,
      );
    }
  }
}

/** True for a value that looks like a list of `defineOnDemandFeature` results. */
export function isOnDemandFeatureList(value: unknown): value is OnDemandFeature[] {
  return (
    Array.isArray(value) &&
    value.every((d) => d && typeof d === 'object' && typeof (d as OnDemandFeature).fn === 'function' && typeof (d as OnDemandFeature).codeHash === 'string')
  );
}
