import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, link, open as openFile, readdir, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArtifactNotFound } from '../../lib/errors.js';
import { isSha256 } from '../../lib/hash.js';
import { mkdirOwnerOnly } from '../../lib/owner-only.js';
import type { ArtifactBody, ArtifactRef, ArtifactStore } from './types.js';
import { assertSha256, downloadVerified, pipeVerified, readAll, hashingStream, toReadable, verifyingStream } from './verify.js';

/**
 * Artifacts as files under `<root>/sha256/<first two hex>/<hex>`. Writes go to a temp file first and
 * are hard-linked into place, so a reader never sees a partial file and an existing one is never replaced.
 * Files are 0400 and the folders Keel makes 0700 (owner-only, whatever the umask).
 */
export class FsArtifactStore implements ArtifactStore {
  readonly rootUri: string;

  constructor(readonly root: string) {
    this.rootUri = `file://${root}`;
  }

  uriFor(sha256: string): string {
    return `file://${this.pathFor(sha256)}`;
  }

  private pathFor(sha256: string): string {
    assertSha256(sha256);
    return path.join(this.root, 'sha256', sha256.slice(0, 2), sha256);
  }

  async put(body: ArtifactBody): Promise<ArtifactRef> {
    const tempDir = path.join(this.root, 'tmp');
    await mkdirOwnerOnly(tempDir);
    const temp = path.join(tempDir, randomUUID());
    const hashing = hashingStream();
    try {
      await pipeline(toReadable(body), hashing.stream, createWriteStream(temp, { mode: 0o600 }));
      const handle = await openFile(temp, 'r');
      await handle.sync().finally(() => handle.close());
      const { sha256, size } = hashing.result();
      const finalPath = this.pathFor(sha256);
      await mkdirOwnerOnly(path.dirname(finalPath));
      // Owner-only and read-only: artifacts hold training data and models, and are never rewritten.
      await chmod(temp, 0o400);
      try {
        await link(temp, finalPath);
      } catch (error) {
        // Already stored: content addressing makes the existing file the same bytes.
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      return { uri: this.uriFor(sha256), sha256, size };
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  async stat(sha256: string): Promise<ArtifactRef | null> {
    try {
      const info = await stat(this.pathFor(sha256));
      return { uri: this.uriFor(sha256), sha256, size: info.size };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async open(sha256: string): Promise<Readable> {
    const ref = await this.stat(sha256);
    if (!ref) throw new ArtifactNotFound(this.uriFor(sha256));
    return pipeVerified(createReadStream(this.pathFor(sha256)), verifyingStream(ref.uri, sha256));
  }

  async getBytes(sha256: string): Promise<Buffer> {
    return readAll(await this.open(sha256));
  }

  async download(sha256: string, destPath: string): Promise<ArtifactRef> {
    const ref = await this.stat(sha256);
    if (!ref) throw new ArtifactNotFound(this.uriFor(sha256));
    await downloadVerified(createReadStream(this.pathFor(sha256)), verifyingStream(ref.uri, sha256), destPath);
    return ref;
  }

  async *list(): AsyncIterable<ArtifactRef> {
    const base = path.join(this.root, 'sha256');
    const shards = await readdir(base).catch(() => [] as string[]);
    for (const shard of shards.sort()) {
      const names = await readdir(path.join(base, shard));
      for (const name of names.sort()) {
        if (!isSha256(name)) continue;
        const ref = await this.stat(name);
        if (ref) yield ref;
      }
    }
  }

  async delete(sha256: string): Promise<boolean> {
    const existed = (await this.stat(sha256)) !== null;
    await rm(this.pathFor(sha256), { force: true });
    return existed;
  }
}
