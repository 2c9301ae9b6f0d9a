/**
 * Scores any binary classifier given as ONNX bytes with onnxruntime-node: Keel's own exports and
 * models written by a team's own trainer (the `command` trainer kind). The signature is checked
 * when the model is loaded, so that a model that cannot be evaluated or served fails early with a
 * message that says what was found and what Keel expects:
 *
 * - exactly one input, a float32 tensor of shape [N, F] (first dimension symbolic or unknown),
 *   F = the number of features, fed in the training set's feature order; when the model's
 *   metadata holds `feature_names` (a JSON array, as Keel's exports write it; a comma-separated
 *   list is accepted too) it must equal that order;
 * - the probability output: a float tensor named `probabilities`, else the only float output
 *   of shape [N, 2] (column 1 is P(y = 1)), else the only float output of shape [N] or [N, 1]
 *   (P(y = 1) itself). Other outputs (e.g. an int64 `label`) are ignored.
 *
 * Every run also checks the outputs it gets: the row count, and that each probability is a
 * number in [0, 1].
 */
import * as ort from 'onnxruntime-node';
import { InvalidInput } from '../errors.js';
import type { Matrix } from '../ml/types.js';
import { PROBABILITIES_OUTPUT } from './builder.js';

export interface OnnxScorer {
  /** The model's input name (`input` for Keel's exports). */
  readonly inputName: string;
  /** The output read for probabilities. */
  readonly outputName: string;
  /** F: features per row, in `featureNames` order. */
  readonly featureCount: number;
  /** P(y = 1) for each row of `x` (row-major float64, NaN = missing; fed to the model as float32). */
  predictProba(x: Matrix): Promise<Float64Array>;
  release(): Promise<void>;
}

export interface OnnxScorerOptions {
  /** Rows per `session.run`, default 50 000. */
  batchRows?: number;
  /** Passed to `InferenceSession.create` (threads, graph optimisation level, …). */
  sessionOptions?: ort.InferenceSession.SessionOptions;
  /** Names the model in messages, default `model.onnx`. */
  label?: string;
}

export const DEFAULT_SCORER_BATCH_ROWS = 50_000;

type OutputLayout = 'two-columns' | 'one-column' | 'flat';
/** `any`: the output's shape is not declared, the first run tells. */
type DeclaredLayout = OutputLayout | 'any';

const FLOAT_TYPES = new Set(['float32', 'float64']);

export async function loadOnnxScorer(
  bytes: Uint8Array,
  featureNames: readonly string[],
  options: OnnxScorerOptions = {},
): Promise<OnnxScorer> {
  const what = options.label ?? 'model.onnx';
  const f = featureNames.length;
  const batchRows = options.batchRows ?? DEFAULT_SCORER_BATCH_ROWS;
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new InvalidInput(`batchRows must be a positive integer, got ${batchRows}`, 'batchRows');
  if (f === 0) throw new InvalidInput(`${what}: no feature names given`);
  if (bytes.length === 0) throw new InvalidInput(`${what} is empty (0 bytes)`);

  let session: ort.InferenceSession;
  try {
    // A Buffer over the same memory: onnxruntime-node takes Uint8Array too, but Buffer is its documented form.
    session = await ort.InferenceSession.create(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), options.sessionOptions ?? {});
  } catch (error) {
    throw new InvalidInput(`${what} is not a valid ONNX model that onnxruntime can load: ${(error as Error).message}`);
  }
  try {
    const inputName = checkInput(session, what, featureNames);
    checkFeatureNames(bytes, what, featureNames);
    const { name: outputName, layout } = chooseOutput(session, what);
    const scorer = new SessionScorer(session, what, inputName, outputName, layout, f, batchRows);
    // One small run: the graph really executes on [2, F] and gives outputs of the declared kind.
    const probe = { data: new Float64Array(2 * f), rows: 2, cols: f, names: [...featureNames] };
    await scorer.predictProba(probe).catch((error: unknown) => {
      if (error instanceof InvalidInput) throw error;
      throw new InvalidInput(`${what} fails on a [2, ${f}] float input: ${(error as Error).message}`);
    });
    return scorer;
  } catch (error) {
    await session.release();
    throw error;
  }
}

function describeShape(shape: ReadonlyArray<number | string>): string {
  return `[${shape.map((d) => (typeof d === 'string' ? d || '?' : d < 0 ? '?' : String(d))).join(', ')}]`;
}

function describeValue(value: ort.InferenceSession.ValueMetadata): string {
  if (!value.isTensor) return `${value.name} (not a tensor: a sequence or map)`;
  return `${value.name} ${value.type} ${value.shape.length === 0 ? '(shape not declared)' : describeShape(value.shape)}`;
}

/** A fixed dimension's size, or undefined when the dimension is symbolic or unknown. */
function fixedSize(dim: number | string | undefined): number | undefined {
  return typeof dim === 'number' && dim >= 0 ? dim : undefined;
}

function listFeatures(names: readonly string[]): string {
  const shown = names.slice(0, 20).join(', ');
  return names.length > 20 ? `${shown}, … ${names.length - 20} more` : shown;
}

function checkInput(session: ort.InferenceSession, what: string, featureNames: readonly string[]): string {
  const f = featureNames.length;
  const inputs = session.inputMetadata;
  if (inputs.length !== 1) {
    throw new InvalidInput(
      `${what} must have exactly one input, a float tensor [N, ${f}]; it has ${inputs.length}: ${inputs.map(describeValue).join('; ') || 'none'}`,
    );
  }
  const input = inputs[0]!;
  if (!input.isTensor) throw new InvalidInput(`${what} input ${input.name} is not a tensor; Keel feeds one float tensor [N, ${f}]`);
  if (input.type !== 'float32') {
    throw new InvalidInput(`${what} input ${input.name} has element type ${input.type}; Keel feeds float (float32) tensors [N, ${f}]`);
  }
  const shape = input.shape;
  if (shape.length === 0) return input.name; // undeclared shape: the probe run decides
  if (shape.length !== 2) {
    throw new InvalidInput(`${what} input ${input.name} has shape ${describeShape(shape)}; Keel feeds a 2-D float tensor [N, ${f}]`);
  }
  const batch = fixedSize(shape[0]);
  if (batch !== undefined) {
    throw new InvalidInput(
      `${what} input ${input.name} has a fixed batch size of ${batch} (${describeShape(shape)}); declare the first dimension as symbolic (None), [N, ${f}]`,
    );
  }
  const columns = fixedSize(shape[1]);
  if (columns !== undefined && columns !== f) {
    throw new InvalidInput(`${what} takes ${columns} features, the training set has ${f} (${listFeatures(featureNames)})`);
  }
  return input.name;
}

function checkFeatureNames(bytes: Uint8Array, what: string, featureNames: readonly string[]): void {
  const declared = readMetadata(bytes)?.get('feature_names');
  if (declared === undefined) return;
  let names: string[] | undefined;
  try {
    const parsed: unknown = JSON.parse(declared);
    if (Array.isArray(parsed) && parsed.every((n) => typeof n === 'string')) names = parsed as string[];
  } catch {
    // not JSON: a comma-separated list
  }
  names ??= declared.split(',').map((n) => n.trim());
  if (names.length === featureNames.length && names.every((n, i) => n === featureNames[i])) return;
  if (names.length !== featureNames.length) {
    throw new InvalidInput(
      `${what} metadata feature_names lists ${names.length} features (${listFeatures(names)}), the training set has ${featureNames.length} (${listFeatures(featureNames)})`,
    );
  }
  const at = names.findIndex((n, i) => n !== featureNames[i]);
  throw new InvalidInput(
    `${what} metadata feature_names differs from the training set's feature order at position ${at + 1}: ` +
      `${names[at]} where ${featureNames[at]} is expected (model: ${listFeatures(names)}; expected: ${listFeatures(featureNames)})`,
  );
}

function chooseOutput(session: ort.InferenceSession, what: string): { name: string; layout: DeclaredLayout } {
  const outputs = session.outputMetadata;
  const expected = `a float tensor named ${PROBABILITIES_OUTPUT}, or one float output of shape [N, 2] (column 1 = P(y = 1)) or [N] / [N, 1] (P(y = 1))`;
  const found = () => outputs.map(describeValue).join('; ') || 'none';
  const layoutOf = (value: ort.InferenceSession.ValueMetadata): DeclaredLayout | undefined => {
    if (!value.isTensor || !FLOAT_TYPES.has(value.type)) return undefined;
    const shape = value.shape;
    if (shape.length === 0) return 'any';
    if (shape.length === 1) return 'flat';
    if (shape.length === 2) {
      const columns = fixedSize(shape[1]);
      if (columns === 2) return 'two-columns';
      if (columns === 1) return 'one-column';
      if (columns === undefined) return 'any';
    }
    return undefined;
  };

  const named = outputs.find((o) => o.name === PROBABILITIES_OUTPUT);
  if (named) {
    const layout = layoutOf(named);
    if (layout === undefined) throw new InvalidInput(`${what} output ${describeValue(named)} is not usable as probabilities; expected ${expected}`);
    return { name: named.name, layout };
  }
  const candidates = outputs.flatMap((o) => {
    const layout = layoutOf(o);
    return layout === undefined ? [] : [{ o, layout }];
  });
  const pick = (layouts: DeclaredLayout[]) => candidates.filter((c) => layouts.includes(c.layout));
  // Declared shapes first; a float output without a declared shape only when it is the only float output.
  for (const group of [pick(['two-columns']), pick(['flat', 'one-column']), pick(['any'])]) {
    if (group.length === 1) return { name: group[0]!.o.name, layout: group[0]!.layout };
    if (group.length > 1) {
      throw new InvalidInput(
        `${what} has several outputs that could be the probabilities (${group.map((c) => describeValue(c.o)).join('; ')}); name the one to use ${PROBABILITIES_OUTPUT}`,
      );
    }
  }
  const zipMap = outputs.some((o) => !o.isTensor);
  throw new InvalidInput(
    `${what} has no probability output; expected ${expected}; found: ${found()}` +
      (zipMap ? ' (a sequence of maps is what skl2onnx writes by default: convert with options={"zipmap": False})' : ''),
  );
}

class SessionScorer implements OnnxScorer {
  constructor(
    private readonly session: ort.InferenceSession,
    private readonly what: string,
    readonly inputName: string,
    readonly outputName: string,
    private readonly layout: DeclaredLayout,
    readonly featureCount: number,
    private readonly batchRows: number,
  ) {}

  async predictProba(x: Matrix): Promise<Float64Array> {
    const f = this.featureCount;
    if (x.cols !== f) throw new InvalidInput(`${this.what} takes ${f} features, the matrix has ${x.cols} (${listFeatures(x.names)})`);
    const out = new Float64Array(x.rows);
    for (let start = 0; start < x.rows; start += this.batchRows) {
      const rows = Math.min(this.batchRows, x.rows - start);
      const input = new ort.Tensor('float32', Float32Array.from(x.data.subarray(start * f, (start + rows) * f)), [rows, f]);
      const results = await this.session.run({ [this.inputName]: input }, [this.outputName]);
      const tensor = results[this.outputName]!;
      this.readBatch(tensor, rows, start, out);
    }
    return out;
  }

  private readBatch(tensor: ort.OnnxValue, rows: number, start: number, out: Float64Array): void {
    const dims = tensor.dims;
    const layout: OutputLayout | undefined =
      dims.length === 1 && dims[0] === rows
        ? 'flat'
        : dims.length === 2 && dims[0] === rows && dims[1] === 1
          ? 'one-column'
          : dims.length === 2 && dims[0] === rows && dims[1] === 2
            ? 'two-columns'
            : undefined;
    const declaredTwo = this.layout === 'two-columns';
    if (layout === undefined || (this.layout !== 'any' && declaredTwo !== (layout === 'two-columns')) || !FLOAT_TYPES.has(tensor.type)) {
      throw new InvalidInput(
        `${this.what} output ${this.outputName} is ${tensor.type} [${dims.join(', ')}] for ${rows} rows; expected float [${rows}, 2], [${rows}, 1] or [${rows}]`,
      );
    }
    const data = tensor.data as Float32Array | Float64Array;
    const stride = layout === 'two-columns' ? 2 : 1;
    const offset = layout === 'two-columns' ? 1 : 0;
    for (let i = 0; i < rows; i++) {
      const p = Number(data[i * stride + offset]);
      // Float32 rounding may put a probability a hair outside [0, 1].
      if (!(p >= -1e-6 && p <= 1 + 1e-6)) {
        throw new InvalidInput(
          `${this.what} output ${this.outputName} gives ${p} for row ${start + i + 1}; it must be a probability in [0, 1]` +
            (Number.isNaN(p) ? ' (does the model handle missing values, NaN inputs?)' : ''),
        );
      }
      out[start + i] = Math.min(1, Math.max(0, p));
    }
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * The model's metadata_props (ModelProto field 14) read straight from the protobuf wire format,
 * skipping the graph, so that large tree ensembles are not decoded just for a few strings.
 * Undefined when the bytes cannot be walked (onnxruntime has accepted them, so this is only
 * a matter of not finding metadata).
 */
export function readMetadata(bytes: Uint8Array): Map<string, string> | undefined {
  const decoder = new TextDecoder();
  const metadata = new Map<string, string>();
  const fields = walk(bytes, 0, bytes.length);
  if (!fields) return undefined;
  for (const field of fields) {
    if (field.number !== 14 || field.start === undefined) continue;
    const entry = walk(bytes, field.start, field.end!);
    if (!entry) return undefined;
    let key = '';
    let value = '';
    for (const part of entry) {
      if (part.start === undefined) continue;
      const text = decoder.decode(bytes.subarray(part.start, part.end));
      if (part.number === 1) key = text;
      else if (part.number === 2) value = text;
    }
    metadata.set(key, value);
  }
  return metadata;
}

interface WireField {
  number: number;
  /** Payload bounds of a length-delimited field. */
  start?: number;
  end?: number;
}

function walk(bytes: Uint8Array, from: number, to: number): WireField[] | undefined {
  const fields: WireField[] = [];
  let at = from;
  const varint = (): number | undefined => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (at >= to) return undefined;
      const byte = bytes[at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    return undefined;
  };
  while (at < to) {
    const tag = varint();
    if (tag === undefined) return undefined;
    const number = Math.floor(tag / 8);
    switch (tag % 8) {
      case 0:
        if (varint() === undefined) return undefined;
        fields.push({ number });
        break;
      case 1:
        at += 8;
        fields.push({ number });
        break;
      case 5:
        at += 4;
        fields.push({ number });
        break;
      case 2: {
        const length = varint();
        if (length === undefined || at + length > to) return undefined;
        fields.push({ number, start: at, end: at + length });
        at += length;
        break;
      }
      default:
        return undefined; // groups: not used by ONNX
    }
  }
  return at === to ? fields : undefined;
}
