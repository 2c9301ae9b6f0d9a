/**
 * Grows one tree leaf-wise, best first, as scikit-learn's `TreeGrower`: always split the leaf
 * with the largest gain until `maxLeafNodes` leaves, `maxDepth` or no positive gain; build the
 * smaller child's histograms and derive the sibling's by subtraction from the parent.
 */
import type { BinMapper } from './binning.js';
import { FEATURE_STRIDE, subtractHistograms } from './histogram.js';
import type { HistogramBuilder } from './histogram-builder.js';
import { kernelsFor } from './histogram-wasm.js';
import type { FeatureBins, SplitInfo, SplitRules } from './split.js';
import { findBestSplit, leafValue } from './split.js';
import type { Tree } from './tree.js';

export interface GrowthRules extends SplitRules {
  maxLeafNodes: number;
  maxDepth: number | null;
  learningRate: number;
}

/** A tree fresh from the grower: also the split bins and each leaf's range of the partition. */
export interface GrownTree extends Tree {
  bin: Int32Array;
  /** Per node, its rows are partition[start … start + count). */
  start: Int32Array;
}

/** Grows the trees of one fit, reusing histogram buffers from tree to tree. */
export class Grower {
  private readonly free: Float64Array[] = [];
  readonly bins: FeatureBins;

  constructor(
    private readonly builder: HistogramBuilder,
    private readonly mapper: BinMapper,
    private readonly nFeatures: number,
    hasMissing: Uint8Array,
    private readonly rules: GrowthRules,
  ) {
    const nBinsNonMissing = Int32Array.from(mapper.thresholds, (t) => t.length + 1);
    this.bins = { nBinsNonMissing, hasMissing };
  }

  /**
   * Grows a tree over the first `count` entries of the partition (`contiguous` when they are
   * rows 0 … count − 1 in order) using only `features` (ascending).
   */
  grow(count: number, contiguous: boolean, features: Int32Array): GrownTree {
    const { rules, builder } = this;
    const src = builder.source;
    const maxNodes = 2 * rules.maxLeafNodes - 1;
    const t = {
      feature: new Int32Array(maxNodes).fill(-1),
      bin: new Int32Array(maxNodes),
      threshold: new Float64Array(maxNodes),
      missingLeft: new Uint8Array(maxNodes),
      left: new Int32Array(maxNodes),
      right: new Int32Array(maxNodes),
      value: new Float64Array(maxNodes),
      gain: new Float64Array(maxNodes),
      count: new Int32Array(maxNodes),
      start: new Int32Array(maxNodes),
    };
    const depth = new Int32Array(maxNodes);
    const sumG = new Float64Array(maxNodes);
    const sumH = new Float64Array(maxNodes);
    const hists: Array<Float64Array | undefined> = [];
    const splits: Array<SplitInfo | undefined> = [];
    const splittable: number[] = [];
    let nNodes = 1;
    let nFinalized = 0;

    const finalize = (node: number) => {
      t.value[node] = Math.fround(leafValue(sumG[node]!, sumH[node]!, rules.l2Regularization) * rules.learningRate);
      nFinalized++;
    };
    const release = (node: number) => {
      const h = hists[node];
      if (h) this.free.push(h);
      hists[node] = undefined;
    };
    /** Finds the node's best split: splittable if there is one, else a leaf. */
    const consider = (node: number) => {
      const split = findBestSplit(hists[node]!, features, this.bins, t.count[node]!, sumG[node]!, sumH[node]!, rules);
      if (split) {
        splits[node] = split;
        splittable.push(node);
      } else {
        finalize(node);
        release(node);
      }
    };

    // root
    let g = 0;
    let h = 0;
    for (let i = 0; i < count; i++) {
      const r = contiguous ? i : src.rows[i]!;
      g += src.gradHess[2 * r]!;
      h += src.gradHess[2 * r + 1]!;
    }
    sumG[0] = g;
    sumH[0] = h;
    t.count[0] = count;
    if (count < 2 * rules.minSamplesLeaf || h < rules.minHessianToSplit || features.length === 0) {
      finalize(0);
    } else {
      hists[0] = this.acquire();
      builder.build(0, count, contiguous, features, hists[0]);
      consider(0);
    }

    while (splittable.length > 0) {
      // the splittable leaf with the largest gain; ties go to the oldest node
      let pick = 0;
      for (let k = 1; k < splittable.length; k++) {
        if (splits[splittable[k]!]!.gain > splits[splittable[pick]!]!.gain) pick = k;
      }
      const node = splittable[pick]!;
      splittable.splice(pick, 1);
      const split = splits[node]!;
      const f = split.feature;
      const leftChild = nNodes;
      const rightChild = nNodes + 1;
      nNodes += 2;
      if (this.partition(t.start[node]!, t.count[node]!, f, split) !== split.countLeft) {
        throw new Error(`gbdt: partition of node ${node} disagrees with its histogram`);
      }
      t.feature[node] = f;
      t.bin[node] = split.bin;
      t.threshold[node] = split.bin < this.bins.nBinsNonMissing[f]! - 1 ? this.mapper.thresholds[f]![split.bin]! : Infinity;
      // no missing values seen for this feature: at prediction they follow the majority
      const missingLeft = this.bins.hasMissing[f] ? split.missingLeft : split.countLeft > split.countRight;
      t.missingLeft[node] = missingLeft ? 1 : 0;
      t.gain[node] = split.gain;
      t.left[node] = leftChild;
      t.right[node] = rightChild;
      const childDepth = depth[node]! + 1;
      depth[leftChild] = childDepth;
      depth[rightChild] = childDepth;
      t.start[leftChild] = t.start[node]!;
      t.count[leftChild] = split.countLeft;
      t.start[rightChild] = t.start[node]! + split.countLeft;
      t.count[rightChild] = split.countRight;
      sumG[leftChild] = split.gradientLeft;
      sumH[leftChild] = split.hessianLeft;
      sumG[rightChild] = split.gradientRight;
      sumH[rightChild] = split.hessianRight;

      if (nFinalized + splittable.length + 2 === rules.maxLeafNodes) {
        finalize(leftChild);
        finalize(rightChild);
        for (const n of splittable) {
          finalize(n);
          release(n);
        }
        splittable.length = 0;
        release(node);
        break;
      }
      if (rules.maxDepth !== null && childDepth === rules.maxDepth) {
        finalize(leftChild);
        finalize(rightChild);
        release(node);
        continue;
      }
      const leftIsLeaf = split.countLeft < 2 * rules.minSamplesLeaf;
      const rightIsLeaf = split.countRight < 2 * rules.minSamplesLeaf;
      if (leftIsLeaf) finalize(leftChild);
      if (rightIsLeaf) finalize(rightChild);
      if (!leftIsLeaf || !rightIsLeaf) {
        const [small, large] = split.countLeft < split.countRight ? [leftChild, rightChild] : [rightChild, leftChild];
        hists[small] = this.acquire();
        builder.build(t.start[small]!, t.count[small]!, false, features, hists[small]);
        hists[large] = this.acquire();
        subtractHistograms(hists[node]!, hists[small], features, hists[large]);
        if (!leftIsLeaf) consider(leftChild);
        else release(leftChild);
        if (!rightIsLeaf) consider(rightChild);
        else release(rightChild);
      }
      release(node);
    }

    return {
      feature: t.feature.slice(0, nNodes),
      bin: t.bin.slice(0, nNodes),
      threshold: t.threshold.slice(0, nNodes),
      missingLeft: t.missingLeft.slice(0, nNodes),
      left: t.left.slice(0, nNodes),
      right: t.right.slice(0, nNodes),
      value: t.value.slice(0, nNodes),
      gain: t.gain.slice(0, nNodes),
      count: t.count.slice(0, nNodes),
      start: t.start.slice(0, nNodes),
    };
  }

  /** Stable partition of the node's rows: left rows first, both sides in their original order; returns the left count. */
  private partition(start: number, count: number, f: number, split: SplitInfo): number {
    const { binned, nRows, rows, scratch, memory } = this.builder.source;
    const col = f * nRows;
    const bin = split.bin;
    const missingBin = this.mapper.maxBins;
    const missingLeft = split.missingLeft;
    let nLeft = 0;
    if (memory) {
      const at = rows.byteOffset + start * 4;
      nLeft = kernelsFor(memory).partition(binned.byteOffset + col, at, count, bin, missingBin, missingLeft ? 1 : 0, scratch.byteOffset);
    } else {
      let r = 0;
      for (let i = start; i < start + count; i++) {
        const row = rows[i]!;
        const b = binned[col + row]!;
        if (b === missingBin ? missingLeft : b <= bin) rows[start + nLeft++] = row;
        else scratch[r++] = row;
      }
    }
    rows.set(scratch.subarray(0, count - nLeft), start + nLeft);
    return nLeft;
  }

  private acquire(): Float64Array {
    return this.free.pop() ?? new Float64Array(this.nFeatures * FEATURE_STRIDE);
  }
}
