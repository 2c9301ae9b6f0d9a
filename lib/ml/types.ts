/**
 * Shared shapes of the ML core. Feature matrices are dense, row-major float64 with NaN for a
 * missing value; labels are 0/1 bytes. No row objects on hot paths.
 */
export interface Matrix {
  /** rows × cols values, row-major: value (r, c) is data[r * cols + c]. NaN = missing. */
  data: Float64Array;
  rows: number;
  cols: number;
  /** Column (feature) names, `cols` of them. */
  names: string[];
}

export type Labels = Uint8Array;

/** Called by long fits; the pipeline turns it into activity heartbeats. */
export type ProgressCallback = (progress: { done: number; total: number; message?: string }) => void;

/** What every trained binary classifier offers the pipeline, the gateway and the registry. */
export interface BinaryClassifier {
  readonly kind: 'logreg' | 'gbdt';
  readonly featureNames: readonly string[];
  /** P(y = 1) for each row of `x` (x.cols must equal featureNames.length). */
  predictProba(x: Matrix): Float64Array;
  /** Non-negative importance per feature (gain for gbdt, |standardised coefficient| for logreg). */
  featureImportance(): Float64Array;
  /** The model as ONNX bytes: input `input` float [N, F], outputs `label` int64 [N] and `probabilities` float [N, 2]. */
  toOnnx(): Uint8Array;
  /** Plain JSON that `load` functions turn back into the same model (checkpoints, registry). */
  toJSON(): unknown;
}

export function matrix(rows: number, cols: number, names?: string[]): Matrix {
  return {
    data: new Float64Array(rows * cols),
    rows,
    cols,
    names: names ?? Array.from({ length: cols }, (_, i) => `f${i}`),
  };
}

/** The rows `index` of `x`, as a new matrix. */
export function takeRows(x: Matrix, index: ArrayLike<number>): Matrix {
  const out = matrix(index.length, x.cols, x.names);
  for (let i = 0; i < index.length; i++) {
    const from = index[i]! * x.cols;
    out.data.set(x.data.subarray(from, from + x.cols), i * x.cols);
  }
  return out;
}

export function takeLabels(y: Labels, index: ArrayLike<number>): Labels {
  const out = new Uint8Array(index.length);
  for (let i = 0; i < index.length; i++) out[i] = y[index[i]!]!;
  return out;
}
