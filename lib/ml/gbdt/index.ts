/**
 * Histogram gradient boosting for binary classification (scikit-learn's
 * HistGradientBoostingClassifier, in TypeScript) with ONNX export as a TreeEnsembleClassifier.
 */
export { fitGbdt, DEFAULT_PARALLEL_THRESHOLD } from './booster.js';
export type { FitGbdtOptions } from './booster.js';
export type { GbdtCheckpoint } from './checkpoint.js';
export { GbdtModel, loadGbdt } from './model.js';
export type { GbdtJson, GbdtTrainingInfo } from './model.js';
export { DEFAULT_GBDT_PARAMS, resolveGbdtParams } from './params.js';
export type { GbdtParams } from './params.js';
export type { Tree, TreeJson } from './tree.js';
