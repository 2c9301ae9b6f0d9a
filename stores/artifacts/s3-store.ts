import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ArtifactNotFound, InvalidInput } from '../../lib/errors.js';
import { isSha256 } from '../../lib/hash.js';
import type { ArtifactBody, ArtifactRef, ArtifactStore } from './types.js';
import { assertSha256, downloadVerified, pipeVerified, readAll, hashingStream, toReadable, verifyingStream } from './verify.js';

/** Objects larger than this go up as multipart uploads. */
const MULTIPART_THRESHOLD = 64 * 1024 * 1024;

export interface S3StoreOptions {
  /** `s3://bucket/optional/prefix` */
  uri: string;
  /** For S3-compatible servers such as MinIO; path-style addressing is used then. */
  endpoint?: string;
  region: string;
  client?: S3Client;
}

export function parseS3Uri(uri: string): { bucket: string; prefix: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(uri);
  if (!match) throw new InvalidInput(`not an s3://bucket/prefix URI: ${uri}`, 'KEEL_ARTIFACTS');
  return { bucket: match[1]!, prefix: (match[2] ?? '').replace(/\/+$/, '') };
}

function isNotFound(error: unknown): boolean {
  return (
    error instanceof S3ServiceException &&
    (error.name === 'NotFound' || error.name === 'NoSuchKey' || error.$metadata.httpStatusCode === 404)
  );
}

/**
 * Artifacts as objects `<prefix>/sha256/<first two hex>/<hex>`. A streamed body is spooled to a
 * local temp file while hashing (the key is its hash), then uploaded with a SHA-256 checksum the
 * server verifies and `If-None-Match: *`, so an existing object is never overwritten.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly rootUri: string;
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;

  constructor(options: S3StoreOptions) {
    const { bucket, prefix } = parseS3Uri(options.uri);
    this.bucket = bucket;
    this.prefix = prefix;
    this.rootUri = `s3://${bucket}${prefix ? `/${prefix}` : ''}`;
    this.client =
      options.client ??
      new S3Client({ region: options.region, endpoint: options.endpoint, forcePathStyle: Boolean(options.endpoint) });
  }

  private keyFor(sha256: string): string {
    assertSha256(sha256);
    return `${this.prefix ? `${this.prefix}/` : ''}sha256/${sha256.slice(0, 2)}/${sha256}`;
  }

  uriFor(sha256: string): string {
    return `s3://${this.bucket}/${this.keyFor(sha256)}`;
  }

  async put(body: ArtifactBody): Promise<ArtifactRef> {
    if (body instanceof Uint8Array) {
      const hashing = hashingStream();
      hashing.stream.end(body);
      const { sha256, size } = hashing.result();
      return this.upload(sha256, size, () => Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    }
    const spoolDir = await mkdtemp(path.join(os.tmpdir(), 'keel-s3-put-'));
    const spool = path.join(spoolDir, randomUUID());
    try {
      const hashing = hashingStream();
      await pipeline(toReadable(body), hashing.stream, createWriteStream(spool));
      const { sha256, size } = hashing.result();
      return await this.upload(sha256, size, () => createReadStream(spool));
    } finally {
      await rm(spoolDir, { recursive: true, force: true });
    }
  }

  private async upload(sha256: string, size: number, body: () => Buffer | Readable): Promise<ArtifactRef> {
    const ref = { uri: this.uriFor(sha256), sha256, size };
    if (await this.stat(sha256)) return ref;
    const Key = this.keyFor(sha256);
    const Metadata = { sha256 };
    try {
      if (size <= MULTIPART_THRESHOLD) {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key,
            Body: body(),
            ContentLength: size,
            ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
            IfNoneMatch: '*',
            Metadata,
          }),
        );
      } else {
        await new Upload({
          client: this.client,
          params: { Bucket: this.bucket, Key, Body: body(), Metadata, ChecksumAlgorithm: 'SHA256' },
        }).done();
      }
    } catch (error) {
      // Someone stored the same content first: same key, same bytes.
      const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
      if (status !== 412 && status !== 409) throw error;
    }
    return ref;
  }

  async stat(sha256: string): Promise<ArtifactRef | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.keyFor(sha256) }));
      return { uri: this.uriFor(sha256), sha256, size: head.ContentLength ?? 0 };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  private async getObject(sha256: string): Promise<{ body: Readable; size: number | undefined }> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.keyFor(sha256) }));
      return { body: object.Body as Readable, size: object.ContentLength };
    } catch (error) {
      if (isNotFound(error)) throw new ArtifactNotFound(this.uriFor(sha256));
      throw error;
    }
  }

  async open(sha256: string): Promise<Readable> {
    const { body, size } = await this.getObject(sha256);
    return pipeVerified(body, verifyingStream(this.uriFor(sha256), sha256, size));
  }

  async getBytes(sha256: string): Promise<Buffer> {
    return readAll(await this.open(sha256));
  }

  async download(sha256: string, destPath: string): Promise<ArtifactRef> {
    const { body, size } = await this.getObject(sha256);
    const uri = this.uriFor(sha256);
    await downloadVerified(body, verifyingStream(uri, sha256, size), destPath);
    return { uri, sha256, size: size ?? 0 };
  }

  async *list(): AsyncIterable<ArtifactRef> {
    const Prefix = `${this.prefix ? `${this.prefix}/` : ''}sha256/`;
    let ContinuationToken: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken }),
      );
      for (const object of page.Contents ?? []) {
        const sha256 = object.Key?.slice(object.Key.lastIndexOf('/') + 1) ?? '';
        if (isSha256(sha256)) yield { uri: this.uriFor(sha256), sha256, size: object.Size ?? 0 };
      }
      ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (ContinuationToken);
  }

  async delete(sha256: string): Promise<boolean> {
    const existed = (await this.stat(sha256)) !== null;
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyFor(sha256) }));
    return existed;
  }
}

