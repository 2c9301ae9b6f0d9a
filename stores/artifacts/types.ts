import type { Readable } from 'node:stream';

/** What travels in workflow payloads instead of bytes: where the artifact is and what it hashes to. */
export interface ArtifactRef {
  uri: string;
  sha256: string;
  size: number;
}

export type ArtifactBody = Uint8Array | Readable | AsyncIterable<Uint8Array>;

/**
 * Content-addressed, immutable blob storage. An artifact's key is its sha256, so every read can
 * be checked against the key: a corrupted or truncated object is reported, never returned.
 */
export interface ArtifactStore {
  /** `file:///abs/root` or `s3://bucket/prefix`. */
  readonly rootUri: string;
  /** Stores the bytes (streamed) and returns their ref; storing the same bytes again is a no-op. */
  put(body: ArtifactBody): Promise<ArtifactRef>;
  /** The stored object's ref, or null when absent. Does not read the content. */
  stat(sha256: string): Promise<ArtifactRef | null>;
  /**
   * A stream of the content that fails with `ArtifactCorrupt` instead of ending when the bytes
   * do not hash to `sha256`. Use `getBytes` or `download` when nothing may be used before it is checked.
   */
  open(sha256: string): Promise<Readable>;
  /** The whole content, checked before it is returned. */
  getBytes(sha256: string): Promise<Buffer>;
  /** Writes the content to `destPath`, which appears only once the content is checked. */
  download(sha256: string, destPath: string): Promise<ArtifactRef>;
  /** Every stored artifact, in key order. */
  list(): AsyncIterable<ArtifactRef>;
  /** Removes the artifact; true when it existed. */
  delete(sha256: string): Promise<boolean>;
  /** The URI an artifact with this hash has in this store. */
  uriFor(sha256: string): string;
}
