/**
 * One regression tree of the ensemble, as flat per-node arrays, and its traversals: over float32
 * feature values (prediction, exactly what ONNX Runtime's BRANCH_LEQ does) and over bins
 * (training). The two agree row for row because thresholds sit on bin edges (see binning.ts).
 */
import { InvalidInput } from '../../errors.js';
import { decodeFloat, encodeFloat } from './binning.js';

export interface Tree {
  /** Split feature per node, −1 for a leaf. Node 0 is the root; children come after parents. */
  feature: Int32Array;
  /** float32-representable split threshold: Math.fround(x) <= threshold goes left; +∞ = all non-missing left. */
  threshold: Float64Array;
  /** 1 when a missing value (NaN) goes left. */
  missingLeft: Uint8Array;
  left: Int32Array;
  right: Int32Array;
  /** Leaf value (learning rate applied, float32-representable); 0 on internal nodes. */
  value: Float64Array;
  /** Split gain; 0 on leaves. */
  gain: Float64Array;
  /** Training rows that reached the node. */
  count: Int32Array;
}

export interface TreeJson {
  feature: number[];
  threshold: Array<number | string>;
  missingLeft: number[];
  left: number[];
  right: number[];
  value: number[];
  gain: number[];
  count: number[];
}

export function treeToJson(tree: Tree): TreeJson {
  return {
    feature: Array.from(tree.feature),
    threshold: Array.from(tree.threshold, encodeFloat),
    missingLeft: Array.from(tree.missingLeft),
    left: Array.from(tree.left),
    right: Array.from(tree.right),
    value: Array.from(tree.value),
    gain: Array.from(tree.gain),
    count: Array.from(tree.count),
  };
}

/** Reads a tree back, checking its shape so that traversal can never loop or leave the arrays. */
export function treeFromJson(json: TreeJson, nFeatures: number, field: string): Tree {
  const bad = (why: string) => new InvalidInput(`${field} is not a valid gbdt tree: ${why}`, field);
  if (!json || !Array.isArray(json.feature)) throw bad('no feature array');
  const n = json.feature.length;
  const keys = ['threshold', 'missingLeft', 'left', 'right', 'value', 'gain', 'count'] as const;
  for (const key of keys) if (!Array.isArray(json[key]) || json[key].length !== n) throw bad(`${key} must have ${n} entries`);
  const tree: Tree = {
    feature: Int32Array.from(json.feature),
    threshold: Float64Array.from(json.threshold, (v) => decodeFloat(v, field)),
    missingLeft: Uint8Array.from(json.missingLeft),
    left: Int32Array.from(json.left),
    right: Int32Array.from(json.right),
    value: Float64Array.from(json.value),
    gain: Float64Array.from(json.gain),
    count: Int32Array.from(json.count),
  };
  if (n === 0) throw bad('no nodes');
  for (let i = 0; i < n; i++) {
    const f = tree.feature[i]!;
    if (f === -1) continue;
    if (f < 0 || f >= nFeatures) throw bad(`node ${i} splits on feature ${f}`);
    if (!(tree.left[i]! > i && tree.left[i]! < n && tree.right[i]! > i && tree.right[i]! < n)) throw bad(`node ${i} has bad children`);
  }
  return tree;
}

/**
 * The leaf (node index) of each row of column-major `binned` (nRows rows), using the split bins
 * `bin` the tree was grown with.
 */
export function leavesBinned(tree: Tree, bin: Int32Array, binned: Uint8Array, nRows: number, missingBin: number, leaves: Int32Array): void {
  const { feature, missingLeft, left, right } = tree;
  for (let r = 0; r < nRows; r++) {
    let node = 0;
    for (let f = feature[0]!; f !== -1; f = feature[node]!) {
      const b = binned[f * nRows + r]!;
      const goLeft = b === missingBin ? missingLeft[node] === 1 : b <= bin[node]!;
      node = goLeft ? left[node]! : right[node]!;
    }
    leaves[r] = node;
  }
}

/** Adds the tree's value for each row of row-major float32 `x` (cols features) to `raw`. */
export function addTreeFloat(tree: Tree, x: Float32Array, cols: number, raw: Float64Array): void {
  const { feature, threshold, missingLeft, left, right, value } = tree;
  const nRows = raw.length;
  for (let r = 0; r < nRows; r++) {
    const row = r * cols;
    let node = 0;
    for (let f = feature[0]!; f !== -1; f = feature[node]!) {
      const v = x[row + f]!;
      const goLeft = v !== v ? missingLeft[node] === 1 : v <= threshold[node]!;
      node = goLeft ? left[node]! : right[node]!;
    }
    raw[r] = raw[r]! + value[node]!;
  }
}
