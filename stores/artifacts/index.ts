import { fileURLToPath } from 'node:url';
import type { ArtifactsConfig } from '../../lib/config.js';
import { InvalidInput } from '../../lib/errors.js';
import { FsArtifactStore } from './fs-store.js';
import { S3ArtifactStore } from './s3-store.js';
import type { ArtifactStore } from './types.js';

export type { ArtifactBody, ArtifactRef, ArtifactStore } from './types.js';
export { FsArtifactStore } from './fs-store.js';
export { S3ArtifactStore, parseS3Uri } from './s3-store.js';

/** The store named by `KEEL_ARTIFACTS`: `file:///abs/path` or `s3://bucket/prefix`. */
export function openArtifactStore(config: ArtifactsConfig): ArtifactStore {
  if (config.uri.startsWith('file://')) return new FsArtifactStore(fileURLToPath(config.uri));
  if (config.uri.startsWith('s3://')) {
    return new S3ArtifactStore({ uri: config.uri, endpoint: config.s3Endpoint, region: config.region });
  }
  throw new InvalidInput(`KEEL_ARTIFACTS must be file:// or s3://, got ${config.uri}`, 'KEEL_ARTIFACTS');
}
