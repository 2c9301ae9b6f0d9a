import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactCorrupt, InvalidInput } from '../../lib/errors.js';
import { isSha256 } from '../../lib/hash.js';
import type { ArtifactBody } from './types.js';

export function assertSha256(sha256: string): void {
  if (!isSha256(sha256)) throw new InvalidInput(`not a sha256 hex digest: ${JSON.stringify(sha256)}`, 'sha256');
}

/** Passes bytes through while hashing them; fails at the end when they are not what the key promises. */
export function verifyingStream(uri: string, expectedSha256: string, expectedSize?: number): Transform {
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      const actual = hash.digest('hex');
      if (expectedSize !== undefined && size !== expectedSize) {
        callback(new ArtifactCorrupt(uri, `artifact ${uri} is truncated or padded: ${size} bytes read, ${expectedSize} stored`));
      } else if (actual !== expectedSha256) {
        callback(new ArtifactCorrupt(uri, `artifact ${uri} is corrupt: content hashes to ${actual}`));
      } else {
        callback();
      }
    },
  });
}

/** Counts and hashes bytes as they pass, for writers that learn the key only at the end. */
export function hashingStream(): { stream: Transform; result: () => { sha256: string; size: number } } {
  const hash = createHash('sha256');
  let size = 0;
  let digest: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  return {
    stream,
    result: () => {
      digest ??= hash.digest('hex');
      return { sha256: digest, size };
    },
  };
}

export function toReadable(body: ArtifactBody): Readable {
  if (body instanceof Readable) return body;
  if (body instanceof Uint8Array) return Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)]);
  return Readable.from(body);
}

/** Streams `source` through verification into a temp file, renamed into place only when it checks out. */
export async function downloadVerified(source: Readable, verifier: Transform, destPath: string): Promise<void> {
  await mkdir(path.dirname(destPath), { recursive: true });
  const temp = `${destPath}.partial-${process.pid}-${Date.now()}`;
  try {
    await pipeline(source, verifier, createWriteStream(temp));
    await rename(temp, destPath);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** `source` through `verifier`, with a read error on the source surfacing on the returned stream. */
export function pipeVerified(source: Readable, verifier: Transform): Readable {
  source.on('error', (error) => verifier.destroy(error));
  return source.pipe(verifier);
}

/** The whole stream in memory; a verifying stream's error rejects before any bytes are returned. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
