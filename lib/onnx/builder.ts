/**
 * Small helpers over the ONNX protobuf schema (`onnx-proto`) for building the graphs Keel
 * exports. Every Keel model has the same interface: input `input` float [N, F] and outputs
 * `label` int64 [N] and `probabilities` float [N, 2]; feature names go into the model's metadata.
 * Encoding is deterministic: the same graph gives the same bytes.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;

const A = onnx.AttributeProto.AttributeType;
const T = onnx.TensorProto.DataType;

export const INPUT_NAME = 'input';
export const LABEL_OUTPUT = 'label';
export const PROBABILITIES_OUTPUT = 'probabilities';

export const attr = {
  float: (name: string, f: number): AttributeProto => ({ name, type: A.FLOAT, f }),
  int: (name: string, i: number): AttributeProto => ({ name, type: A.INT, i }),
  string: (name: string, s: string): AttributeProto => ({ name, type: A.STRING, s: new TextEncoder().encode(s) }),
  floats: (name: string, floats: ArrayLike<number>): AttributeProto => ({ name, type: A.FLOATS, floats: Array.from(floats) }),
  ints: (name: string, ints: ArrayLike<number>): AttributeProto => ({ name, type: A.INTS, ints: Array.from(ints) }),
  strings: (name: string, values: string[]): AttributeProto => ({
    name,
    type: A.STRINGS,
    strings: values.map((v) => new TextEncoder().encode(v)),
  }),
};

export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  attributes: AttributeProto[] = [],
  domain = '',
): NodeProto {
  return { opType, input: inputs, output: outputs, attribute: attributes, domain, name: `${opType}_${outputs[0]}` };
}

/** A float32 initializer (constant) of the given shape. */
export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  return { name, dataType: T.FLOAT, dims, floatData: Array.from(values, (v) => Math.fround(v)) };
}

/** An int64 initializer (constant) of the given shape. */
export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): TensorProto {
  return { name, dataType: T.INT64, dims, int64Data: Array.from(values) };
}

function valueInfo(name: string, elemType: number, dims: Array<number | string>) {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export interface ClassifierModelSpec {
  /** Nodes reading `input` and writing `label` (int64 [N]) and `probabilities` (float [N, 2]). */
  nodes: NodeProto[];
  initializers?: TensorProto[];
  featureNames: readonly string[];
  /** Goes into the graph name and doc string, e.g. `keel-logreg`. */
  graphName: string;
  /** Extra key/values for the model metadata (strings). */
  metadata?: Record<string, string>;
}

/** Opsets used by Keel's graphs: ONNX 17 for standard ops, ai.onnx.ml 3 for tree ensembles. */
export const OPSETS = [
  { domain: '', version: 17 },
  { domain: 'ai.onnx.ml', version: 3 },
];

export function encodeClassifierModel(spec: ClassifierModelSpec): Uint8Array {
  const f = spec.featureNames.length;
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'keel',
    producerVersion: '1',
    domain: 'dev.keel',
    modelVersion: 1,
    docString: `${spec.graphName}: binary classifier over ${f} features`,
    opsetImport: OPSETS,
    metadataProps: [
      { key: 'feature_names', value: JSON.stringify(spec.featureNames) },
      ...Object.entries(spec.metadata ?? {})
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, value]) => ({ key, value })),
    ],
    graph: {
      name: spec.graphName,
      node: spec.nodes,
      initializer: spec.initializers ?? [],
      input: [valueInfo(INPUT_NAME, T.FLOAT, ['N', f])],
      output: [valueInfo(LABEL_OUTPUT, T.INT64, ['N']), valueInfo(PROBABILITIES_OUTPUT, T.FLOAT, ['N', 2])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The tail every classifier graph shares: from `p1` (float [N, 1], P(y = 1)) make
 * `probabilities` = [1 − p1, p1] and `label` = p1 > 0.5.
 */
export function probabilityTail(p1: string): { nodes: NodeProto[]; initializers: TensorProto[] } {
  return {
    nodes: [
      node('Sub', ['keel_one', p1], ['keel_p0']),
      node('Concat', ['keel_p0', p1], [PROBABILITIES_OUTPUT], [attr.int('axis', 1)]),
      node('Greater', [p1, 'keel_half'], ['keel_is_positive_2d']),
      node('Reshape', ['keel_is_positive_2d', 'keel_flat_shape'], ['keel_is_positive']),
      node('Cast', ['keel_is_positive'], [LABEL_OUTPUT], [attr.int('to', T.INT64)]),
    ],
    initializers: [
      floatTensor('keel_one', [1], [1]),
      floatTensor('keel_half', [1], [0.5]),
      int64Tensor('keel_flat_shape', [1], [-1]),
    ],
  };
}
