// Every workflow type the `keel` and `keel-training` workers register.
export { stackCheck, stackCheckQueue } from './stack-check.js';
export { trainingPipeline } from './training-pipeline.js';
export { materializeFeatures } from './materialize-features.js';
export { rollout } from './rollout.js';
