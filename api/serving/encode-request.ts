/**
 * Request rows (feature values by name, as JSON gives them) → the Float64Array rows a model takes,
 * by the model's feature spec, with every refusal an `InvalidInput` (422) naming the feature.
 *
 * - Names: every feature the spec lists must be present as a key (null is "missing", see below);
 *   keys the model does not know are refused, all of them listed (`checkFeatureNames`).
 * - number: a finite JSON number with |x| ≤ float32 max (3.4028e38; the model runs in float32, so
 *   a larger value would become ±Infinity). Booleans are refused: send 0/1.
 * - boolean: true/false, or the numbers 0/1.
 * - timestamp: epoch milliseconds, or ISO 8601 text (UTC unless it has an offset).
 * - category: text; numbers and booleans by their text, as training's encoder matches categories.
 *   A category outside the training dictionary is encoded as the encoder does: NaN, i.e. the
 *   missing value (the built-in models route it as missing: gbdt's missing bin, logreg's imputed
 *   mean). For a model that cannot take missing values it is a 422 naming the feature instead.
 * - null: the missing value (NaN), accepted only when the model handles missing values — both
 *   built-in trainers do (gbdt has a missing bin; logreg imputes the training mean inside its ONNX
 *   graph); a team's own `command` model is not assumed to, so null is a 422 for it.
 * JSON cannot carry NaN or Infinity, but `1e400` parses to Infinity: refused as non-finite.
 */
import type { FeatureColumnSpec, FeatureSpec } from '../../lib/data/features.js';
import { parseTimestampText } from '../../lib/data/column-builder.js';
import { InvalidInput } from '../../lib/errors.js';
import type { ModelSignature } from '../../lib/ml/signature.js';

/** The largest finite float32: the model's input is float32. */
export const FLOAT32_MAX = 3.4028234663852886e38;

export interface EncodeOptions {
  /** Whether null / unseen categories may become NaN (see `modelHandlesMissing`). */
  allowMissing: boolean;
  /** How row `i` is named in messages, e.g. `instances[3]`; nothing for a one-row request. */
  rowLabel?: (row: number) => string | undefined;
}

export interface EncodedRows {
  /** Row-major, `rows × cols`, NaN = missing. */
  data: Float64Array;
  rows: number;
  cols: number;
}

/** Whether a model of this trainer takes NaN inputs (see the module comment). */
export function modelHandlesMissing(kind: ModelSignature['kind']): boolean {
  return kind === 'gbdt' || kind === 'logreg';
}

/** Compiled once per spec: category dictionaries as maps. */
interface CompiledSpec {
  features: readonly FeatureColumnSpec[];
  categories: Array<Map<string, number> | undefined>;
}
const compiled = new WeakMap<FeatureSpec, CompiledSpec>();

function compile(spec: FeatureSpec): CompiledSpec {
  let out = compiled.get(spec);
  if (!out) {
    out = {
      features: spec.features,
      categories: spec.features.map((f) => (f.type === 'category' ? new Map(f.categories.map((v, code) => [v, code])) : undefined)),
    };
    compiled.set(spec, out);
  }
  return out;
}

function prefix(options: EncodeOptions, row: number): string {
  const label = options.rowLabel?.(row);
  return label ? `${label}: ` : '';
}

function fieldOf(options: EncodeOptions, row: number, name: string): string {
  const label = options.rowLabel?.(row);
  return label ? `${label}.${name}` : name;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, 30).join(', ');
  return names.length > 30 ? `${shown}, … ${names.length - 30} more` : shown;
}

/**
 * Refuses a row with keys outside `allowed` (all listed) or without a key of `required` (all
 * listed). `where` prefixes the message and the field (e.g. `instances[2]`).
 */
export function checkFeatureNames(
  row: Readonly<Record<string, unknown>>,
  allowed: ReadonlySet<string>,
  required: Iterable<string>,
  where?: string,
): void {
  const lead = where ? `${where}: ` : '';
  const at = (name: string) => (where ? `${where}.${name}` : name);
  const unknown = Object.keys(row).filter((k) => !allowed.has(k));
  if (unknown.length > 0) {
    throw new InvalidInput(
      `${lead}unknown feature${unknown.length > 1 ? 's' : ''} ${listNames(unknown)} (the model takes: ${listNames([...allowed])})`,
      at(unknown[0]!),
    );
  }
  const missing: string[] = [];
  for (const name of required) if (!Object.hasOwn(row, name)) missing.push(name);
  if (missing.length > 0) {
    throw new InvalidInput(`${lead}missing feature${missing.length > 1 ? 's' : ''} ${listNames(missing)}`, at(missing[0]!));
  }
}

/** Encodes `rows` (every spec feature present as a key) into the model's input order. */
export function encodeFeatureRows(rows: ReadonlyArray<Readonly<Record<string, unknown>>>, spec: FeatureSpec, options: EncodeOptions): EncodedRows {
  const { features, categories } = compile(spec);
  const cols = features.length;
  const data = new Float64Array(rows.length * cols);
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r]!;
    for (let c = 0; c < cols; c++) {
      const feature = features[c]!;
      if (!Object.hasOwn(row, feature.name)) {
        throw new InvalidInput(`${prefix(options, r)}missing feature ${feature.name}`, fieldOf(options, r, feature.name));
      }
      data[r * cols + c] = encodeValue(row[feature.name], feature, categories[c], options, r);
    }
  }
  return { data, rows: rows.length, cols };
}

// Refusals are built by module-level functions, not closures made per value: the gateway runs
// under tsx, whose keepNames wraps every closure created in a call with a defineProperty.
function refusal(options: EncodeOptions, r: number, feature: FeatureColumnSpec, why: string): InvalidInput {
  return new InvalidInput(`${prefix(options, r)}feature ${feature.name}: ${why}`, fieldOf(options, r, feature.name));
}

function encodeValue(value: unknown, feature: FeatureColumnSpec, dictionary: Map<string, number> | undefined, options: EncodeOptions, r: number): number {
  if (value === null || value === undefined) {
    if (options.allowMissing) return NaN;
    throw refusal(options, r, feature, 'null (missing) is not accepted by this model: it does not handle missing values');
  }
  switch (feature.type) {
    case 'number':
      if (typeof value !== 'number') throw refusal(options, r, feature, `${describe(value)} is not a number`);
      return checkNumber(value, options, r, feature);
    case 'boolean':
      if (typeof value === 'boolean') return value ? 1 : 0;
      if (value === 0 || value === 1) return value;
      throw refusal(options, r, feature, `${describe(value)} is not a boolean (true/false or 0/1)`);
    case 'timestamp':
      if (typeof value === 'number') return checkNumber(value, options, r, feature);
      if (typeof value === 'string') {
        const ms = parseTimestampText(value);
        if (ms === undefined) throw refusal(options, r, feature, `${describe(value)} is not an ISO 8601 timestamp or epoch milliseconds`);
        return ms;
      }
      throw refusal(options, r, feature, `${describe(value)} is not a timestamp (epoch milliseconds or ISO 8601 text)`);
    case 'category': {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw refusal(options, r, feature, `${describe(value)} is not a category (text)`);
      const code = dictionary!.get(String(value));
      if (code !== undefined) return code;
      if (options.allowMissing) return NaN;
      throw refusal(options, r, feature, `the value is not one of the training categories (${listNames(feature.categories)})`);
    }
  }
}

function checkNumber(value: number, options: EncodeOptions, r: number, feature: FeatureColumnSpec): number {
  if (!Number.isFinite(value)) throw refusal(options, r, feature, 'the value is not a finite number');
  if (Math.abs(value) > FLOAT32_MAX) throw refusal(options, r, feature, 'the value is beyond the float32 range (|x| ≤ 3.4e38) the model computes in');
  return value;
}

function describe(value: unknown): string {
  // The kind of value only: an answer never echoes the data it was sent.
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
