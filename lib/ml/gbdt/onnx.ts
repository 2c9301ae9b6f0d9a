/**
 * Export of a gbdt ensemble as one ai.onnx.ml TreeEnsembleClassifier (opset 3) node.
 *
 * ONNX Runtime's binary convention, checked against onnxruntime-node 1.30: with classlabels
 * [0, 1], every leaf weight on class id 0, base_values = [baseline] and post_transform
 * LOGISTIC, its probabilities are [1 − p, p] with p = σ(baseline + Σ leaves), computed in
 * float32. Its own label output is not p > 0.5 when all leaf weights are positive (it then
 * thresholds the raw score at 0.5), so `label` and `probabilities` come from the shared tail
 * over column 1 instead.
 */
import { attr, encodeClassifierModel, int64Tensor, node, probabilityTail } from '../../onnx/builder.js';
import type { Tree } from './tree.js';

export interface GbdtOnnxSpec {
  featureNames: readonly string[];
  baseline: number;
  trees: readonly Tree[];
  metadata?: Record<string, string>;
}

export function gbdtToOnnx(spec: GbdtOnnxSpec): Uint8Array {
  const treeIds: number[] = [];
  const nodeIds: number[] = [];
  const featureIds: number[] = [];
  const modes: string[] = [];
  const values: number[] = [];
  const trueIds: number[] = [];
  const falseIds: number[] = [];
  const missingTracksTrue: number[] = [];
  const leafTreeIds: number[] = [];
  const leafNodeIds: number[] = [];
  const leafWeights: number[] = [];
  spec.trees.forEach((tree, t) => {
    for (let i = 0; i < tree.feature.length; i++) {
      const leaf = tree.feature[i] === -1;
      treeIds.push(t);
      nodeIds.push(i);
      featureIds.push(leaf ? 0 : tree.feature[i]!);
      modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      values.push(leaf ? 0 : tree.threshold[i]!);
      trueIds.push(leaf ? 0 : tree.left[i]!);
      falseIds.push(leaf ? 0 : tree.right[i]!);
      // BRANCH_LEQ's true branch is the left child
      missingTracksTrue.push(leaf ? 0 : tree.missingLeft[i]!);
      if (leaf) {
        leafTreeIds.push(t);
        leafNodeIds.push(i);
        leafWeights.push(tree.value[i]!);
      }
    }
  });
  const ensemble = node(
    'TreeEnsembleClassifier',
    ['input'],
    ['keel_tree_label', 'keel_tree_probabilities'],
    [
      attr.ints('classlabels_int64s', [0, 1]),
      attr.ints('nodes_treeids', treeIds),
      attr.ints('nodes_nodeids', nodeIds),
      attr.ints('nodes_featureids', featureIds),
      attr.strings('nodes_modes', modes),
      attr.floats('nodes_values', values),
      attr.ints('nodes_truenodeids', trueIds),
      attr.ints('nodes_falsenodeids', falseIds),
      attr.ints('nodes_missing_value_tracks_true', missingTracksTrue),
      attr.ints('class_treeids', leafTreeIds),
      attr.ints('class_nodeids', leafNodeIds),
      attr.ints('class_ids', new Array<number>(leafWeights.length).fill(0)),
      attr.floats('class_weights', leafWeights),
      attr.floats('base_values', [spec.baseline]),
      attr.string('post_transform', 'LOGISTIC'),
    ],
    'ai.onnx.ml',
  );
  const p1 = node('Slice', ['keel_tree_probabilities', 'keel_slice_start', 'keel_slice_end', 'keel_slice_axis'], ['keel_p1']);
  const tail = probabilityTail('keel_p1');
  return encodeClassifierModel({
    graphName: 'keel-gbdt',
    featureNames: spec.featureNames,
    nodes: [ensemble, p1, ...tail.nodes],
    initializers: [
      int64Tensor('keel_slice_start', [1], [1]),
      int64Tensor('keel_slice_end', [1], [2]),
      int64Tensor('keel_slice_axis', [1], [1]),
      ...tail.initializers,
    ],
    metadata: { keel_model: 'gbdt', n_trees: String(spec.trees.length), ...spec.metadata },
  });
}
