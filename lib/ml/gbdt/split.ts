/**
 * Best split of a node from its histograms, as scikit-learn's `Splitter.find_node_split`:
 * scan bins left to right (missing values go right) and, for features that had missing values
 * in training, right to left (missing values go left); keep the first strictly best gain.
 */
import { BIN_STRIDE, FEATURE_STRIDE } from './histogram.js';

export interface SplitRules {
  minSamplesLeaf: number;
  minHessianToSplit: number;
  l2Regularization: number;
}

export interface SplitInfo {
  gain: number;
  feature: number;
  /** Rows whose bin is <= this go left (missing values aside). */
  bin: number;
  missingLeft: boolean;
  gradientLeft: number;
  hessianLeft: number;
  countLeft: number;
  gradientRight: number;
  hessianRight: number;
  countRight: number;
}

/** Per-feature facts the scan needs. */
export interface FeatureBins {
  nBinsNonMissing: Int32Array;
  /** 1 when the feature had missing values in the training rows. */
  hasMissing: Uint8Array;
}

/** −G / (H + λ): the Newton step of a leaf (the tiny constant keeps an empty hessian finite, as sklearn). */
export function leafValue(sumGradients: number, sumHessians: number, l2: number): number {
  return -sumGradients / (sumHessians + l2 + 1e-15);
}

/**
 * The best split of a node with `count` rows and sums (sumG, sumH) over `features`, or
 * undefined when no split has a positive gain within the rules.
 */
export function findBestSplit(
  hist: Float64Array,
  features: Int32Array,
  bins: FeatureBins,
  count: number,
  sumG: number,
  sumH: number,
  rules: SplitRules,
): SplitInfo | undefined {
  const { minSamplesLeaf, minHessianToSplit } = rules;
  // the leaf loss is −G² / (H + λ); the tiny constant keeps an empty hessian finite
  const l2 = rules.l2Regularization + 1e-15;
  const lossCurrent = -(sumG * sumG) / (sumH + l2);
  let bestGain = 0;
  let bestFeature = -1;
  let bestBin = 0;
  let bestMissingLeft = false;
  let bestGl = 0;
  let bestHl = 0;
  let bestNl = 0;
  for (let k = 0; k < features.length; k++) {
    const f = features[k]!;
    const base = f * FEATURE_STRIDE;
    const nonMissing = bins.nBinsNonMissing[f]!;
    const hasMissing = bins.hasMissing[f]!;

    // left to right, missing values (if any) go right
    let gl = 0;
    let hl = 0;
    let nl = 0;
    const end = nonMissing - 1 + hasMissing;
    for (let b = 0; b < end; b++) {
      const at = base + b * BIN_STRIDE;
      const n = hist[at + 2]!;
      // an empty bin moves no row: the same split as the bin before
      if (n === 0) continue;
      gl += hist[at]!;
      hl += hist[at + 1]!;
      nl += n;
      const hr = sumH - hl;
      if (nl < minSamplesLeaf) continue;
      if (count - nl < minSamplesLeaf) break;
      if (hl < minHessianToSplit) continue;
      if (hr < minHessianToSplit) break;
      const gr = sumG - gl;
      const gain = (gl * gl) / (hl + l2) + (gr * gr) / (hr + l2) + lossCurrent;
      if (gain > bestGain) {
        bestGain = gain;
        bestFeature = f;
        bestBin = b;
        bestMissingLeft = false;
        bestGl = gl;
        bestHl = hl;
        bestNl = nl;
      }
    }
    if (!hasMissing) continue;

    // right to left over non-missing bins, missing values go left
    let gr = 0;
    let hr = 0;
    let nr = 0;
    for (let b = nonMissing - 1; b > 0; b--) {
      const at = base + b * BIN_STRIDE;
      const n = hist[at + 2]!;
      if (n === 0) continue;
      gr += hist[at]!;
      hr += hist[at + 1]!;
      nr += n;
      const hl2 = sumH - hr;
      if (nr < minSamplesLeaf) continue;
      if (count - nr < minSamplesLeaf) break;
      if (hr < minHessianToSplit) continue;
      if (hl2 < minHessianToSplit) break;
      const gl2 = sumG - gr;
      const gain = (gl2 * gl2) / (hl2 + l2) + (gr * gr) / (hr + l2) + lossCurrent;
      if (gain > bestGain) {
        bestGain = gain;
        bestFeature = f;
        bestBin = b - 1;
        bestMissingLeft = true;
        bestGl = gl2;
        bestHl = hl2;
        bestNl = count - nr;
      }
    }
  }
  if (bestFeature < 0) return undefined;
  return {
    gain: bestGain,
    feature: bestFeature,
    bin: bestBin,
    missingLeft: bestMissingLeft,
    gradientLeft: bestGl,
    hessianLeft: bestHl,
    countLeft: bestNl,
    gradientRight: sumG - bestGl,
    hessianRight: sumH - bestHl,
    countRight: count - bestNl,
  };
}
