/**
 * Checkpoints of a gbdt fit: plain JSON with the trees so far, the bin mapper, and what the
 * random streams need to continue. Every random choice of iteration k comes from a stream
 * seeded by (seed, k) alone, so the RNG state to resume is just the next iteration number.
 */
import { createHash } from 'node:crypto';
import { InvalidInput } from '../../errors.js';
import type { Labels, Matrix } from '../types.js';
import type { BinMapperJson } from './binning.js';
import type { GbdtParams } from './params.js';
import type { TreeJson } from './tree.js';

export interface GbdtCheckpoint {
  format: 'keel-gbdt-checkpoint';
  version: 1;
  params: GbdtParams;
  featureNames: string[];
  /** sha256 of the training data (values, labels, weights): a checkpoint resumes only the same fit. */
  dataSha256: string;
  binMapper: BinMapperJson;
  baseline: number;
  trees: TreeJson[];
  rng: { seed: number; nextIteration: number };
  /** True once the fit has ended (early stopping or maxIter): resuming just returns the model. */
  finished: boolean;
}

/** sha256 over the shape, names, values, labels and weights of a training set. */
export function dataFingerprint(x: Matrix, y: Labels, weights: Float64Array | undefined): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ rows: x.rows, cols: x.cols, names: x.names, weighted: weights !== undefined }));
  const values = x.data.subarray(0, x.rows * x.cols);
  hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  hash.update(y);
  if (weights) hash.update(new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength));
  return hash.digest('hex');
}

/** Checks that `checkpoint` belongs to a fit of this data with these parameters. */
export function checkCheckpoint(checkpoint: GbdtCheckpoint, params: GbdtParams, featureNames: readonly string[], dataSha256: string): void {
  const refuse = (why: string) => new InvalidInput(`gbdt checkpoint does not match this fit: ${why}`, 'checkpoint');
  if (!checkpoint || checkpoint.format !== 'keel-gbdt-checkpoint' || checkpoint.version !== 1) {
    throw new InvalidInput('not a keel-gbdt checkpoint (format keel-gbdt-checkpoint, version 1)', 'checkpoint');
  }
  const theirs = (checkpoint.params ?? {}) as unknown as Record<string, unknown>;
  const changed = Object.entries(params).find(([key, value]) => theirs[key] !== value);
  if (changed) throw refuse(`parameter ${changed[0]} differs`);
  if (JSON.stringify(checkpoint.featureNames) !== JSON.stringify(featureNames)) throw refuse('different features');
  if (checkpoint.dataSha256 !== dataSha256) throw refuse('different training data');
  if (!Array.isArray(checkpoint.trees) || checkpoint.rng?.nextIteration !== checkpoint.trees.length) {
    throw refuse('its trees and iteration count disagree');
  }
}
