/**
 * A trained gbdt ensemble: P(y = 1) = σ(baseline + Σ trees), predicted over float32 feature
 * values exactly as the exported ONNX graph does; plain JSON in and out.
 */
import { InvalidInput } from '../../errors.js';
import type { BinaryClassifier, Matrix } from '../types.js';
import { gbdtToOnnx } from './onnx.js';
import type { GbdtParams } from './params.js';
import { resolveGbdtParams } from './params.js';
import type { Tree, TreeJson } from './tree.js';
import { addTreeFloat, treeFromJson, treeToJson } from './tree.js';

/** How the fit went. */
export interface GbdtTrainingInfo {
  /** Trees grown. */
  nIter: number;
  earlyStopped: boolean;
  /** Rows the trees were grown on (the rest, if any, was the validation set). */
  trainRows: number;
  /** Validation log loss before the first tree and after each; empty without early stopping. */
  validationLoss: number[];
}

export interface GbdtJson {
  format: 'keel-gbdt';
  version: 1;
  featureNames: string[];
  params: GbdtParams;
  baseline: number;
  trees: TreeJson[];
  training: GbdtTrainingInfo;
}

export class GbdtModel implements BinaryClassifier {
  readonly kind = 'gbdt' as const;

  constructor(
    readonly featureNames: readonly string[],
    readonly params: Readonly<GbdtParams>,
    /** Log-odds every prediction starts from (float32-representable). */
    readonly baseline: number,
    readonly trees: readonly Tree[],
    readonly training: Readonly<GbdtTrainingInfo>,
  ) {}

  /** Raw scores (log-odds) per row: baseline plus every tree's leaf value, in tree order. */
  predictRaw(x: Matrix): Float64Array {
    if (x.cols !== this.featureNames.length) {
      throw new InvalidInput(`gbdt model expects ${this.featureNames.length} features, got ${x.cols}`, 'x');
    }
    // ONNX Runtime sees float32 inputs; comparing the same values keeps both on the same branch
    const x32 = Float32Array.from(x.data.subarray(0, x.rows * x.cols));
    const raw = new Float64Array(x.rows).fill(this.baseline);
    for (const tree of this.trees) addTreeFloat(tree, x32, x.cols, raw);
    return raw;
  }

  predictProba(x: Matrix): Float64Array {
    const raw = this.predictRaw(x);
    for (let i = 0; i < raw.length; i++) raw[i] = 1 / (1 + Math.exp(-raw[i]!));
    return raw;
  }

  /** Total split gain per feature, normalised to sum 1 when there is any split. */
  featureImportance(): Float64Array {
    const importance = new Float64Array(this.featureNames.length);
    for (const tree of this.trees) {
      for (let i = 0; i < tree.feature.length; i++) {
        const f = tree.feature[i]!;
        if (f !== -1) importance[f] = importance[f]! + tree.gain[i]!;
      }
    }
    let total = 0;
    for (const v of importance) total += v;
    if (total > 0) for (let f = 0; f < importance.length; f++) importance[f] = importance[f]! / total;
    return importance;
  }

  toOnnx(): Uint8Array {
    return gbdtToOnnx({ featureNames: this.featureNames, baseline: this.baseline, trees: this.trees });
  }

  toJSON(): GbdtJson {
    return {
      format: 'keel-gbdt',
      version: 1,
      featureNames: [...this.featureNames],
      params: { ...this.params },
      baseline: this.baseline,
      trees: this.trees.map(treeToJson),
      training: { ...this.training, validationLoss: [...this.training.validationLoss] },
    };
  }
}

/** The model `toJSON()` described (also after a JSON round trip). */
export function loadGbdt(json: unknown): GbdtModel {
  const j = json as GbdtJson;
  if (!j || typeof j !== 'object' || j.format !== 'keel-gbdt' || j.version !== 1) {
    throw new InvalidInput('not a keel-gbdt model (format keel-gbdt, version 1)', 'model');
  }
  if (!Array.isArray(j.featureNames) || !j.featureNames.every((n) => typeof n === 'string')) {
    throw new InvalidInput('gbdt model featureNames must be strings', 'model.featureNames');
  }
  if (typeof j.baseline !== 'number' || !Number.isFinite(j.baseline)) {
    throw new InvalidInput('gbdt model baseline must be a finite number', 'model.baseline');
  }
  if (!Array.isArray(j.trees)) throw new InvalidInput('gbdt model trees must be an array', 'model.trees');
  const params = resolveGbdtParams(j.params);
  const trees = j.trees.map((t, i) => treeFromJson(t, j.featureNames.length, `model.trees[${i}]`));
  const t = j.training;
  const training: GbdtTrainingInfo = {
    nIter: t?.nIter ?? trees.length,
    earlyStopped: t?.earlyStopped ?? false,
    trainRows: t?.trainRows ?? 0,
    validationLoss: Array.isArray(t?.validationLoss) ? [...t.validationLoss] : [],
  };
  return new GbdtModel(j.featureNames, params, j.baseline, trees, training);
}
