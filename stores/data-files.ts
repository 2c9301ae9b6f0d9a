/**
 * Training data files named by URI: `file:///abs/x.csv` (or an absolute path) and
 * `s3://bucket/key.parquet` on the configured S3 endpoint. Each is read once into a local file
 * (S3 objects are downloaded to a temp folder) and hashed, so the run knows exactly which bytes
 * it trained on.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, realpath, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { InvalidInput } from '../lib/errors.js';
import { isInside } from '../lib/paths.js';
import type { Table } from '../lib/data/table.js';
import { localPath, readTable } from './datasets.js';

export interface S3Access {
  endpoint?: string;
  region?: string;
}

export interface LocalDataFile {
  uri: string;
  path: string;
  sha256: string;
  size: number;
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

function parseS3DataUri(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) throw new InvalidInput(`${uri}: an s3 URI is s3://bucket/key`, 'data.uri');
  return { bucket: match[1]!, key: match[2]! };
}

/**
 * A local data file's real path (symlinks and `..` resolved) when it lies under one of `roots`
 * (the worker's `KEEL_DATA_ROOTS`); anything else is an InvalidInput naming the rule, the same
 * whether or not the file exists, so the refusal tells nothing about the host's files.
 */
export async function resolveUnderRoots(file: string, roots: readonly string[], field: string): Promise<string> {
  const realRoots = (await Promise.all(roots.map((root) => realpath(root).catch(() => undefined)))).filter((root) => root !== undefined);
  let real: string;
  try {
    real = await realpath(file);
  } catch (error) {
    // A missing file under a root is reported as missing; anywhere else it is refused like any other.
    if (roots.some((root) => isInside(path.resolve(file), path.resolve(root)))) throw error;
    throw new InvalidInput(`${field}: file not under a folder allowed by KEEL_DATA_ROOTS`, field);
  }
  if (!realRoots.some((root) => isInside(real, root))) throw new InvalidInput(`${field}: file not under a folder allowed by KEEL_DATA_ROOTS`, field);
  return real;
}

/**
 * Makes the file local and hashes it. `cleanup` removes any downloaded copy. A missing file or
 * object, or a sha256 other than `expectedSha256`, is an InvalidInput naming the URI. With
 * `roots`, a local file is read only under them (see resolveUnderRoots).
 */
export async function openDataFile(
  uri: string,
  options: { s3?: S3Access; expectedSha256?: string; field?: string; roots?: readonly string[] } = {},
): Promise<LocalDataFile & { cleanup: () => Promise<void> }> {
  const field = options.field ?? 'data.uri';
  let file: string;
  let cleanup = async () => undefined as void;
  if (uri.startsWith('s3://')) {
    const { bucket, key } = parseS3DataUri(uri);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'keel-data-'));
    cleanup = () => rm(dir, { recursive: true, force: true });
    file = path.join(dir, path.basename(key));
    const client = new S3Client({
      region: options.s3?.region ?? 'us-east-1',
      endpoint: options.s3?.endpoint,
      forcePathStyle: Boolean(options.s3?.endpoint),
    });
    try {
      const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      await pipeline(object.Body as Readable, createWriteStream(file, { mode: 0o600 }));
    } catch (error) {
      await cleanup();
      const name = (error as { name?: string }).name;
      if (name === 'NoSuchKey' || name === 'NoSuchBucket' || name === 'NotFound') throw new InvalidInput(`${uri}: no such object (${name})`, field);
      throw error;
    } finally {
      client.destroy();
    }
  } else {
    file = localPath(uri);
  }
  try {
    if (options.roots && !uri.startsWith('s3://')) file = await resolveUnderRoots(file, options.roots, field);
    const info = await stat(file);
    if (!info.isFile()) throw new InvalidInput(`${uri}: not a file`, field);
    const sha256 = await sha256OfFile(file);
    if (options.expectedSha256 && options.expectedSha256 !== sha256) {
      throw new InvalidInput(`${uri}: sha256 is ${sha256}, the input expects ${options.expectedSha256}`, field);
    }
    return { uri, path: file, sha256, size: info.size, cleanup };
  } catch (error) {
    await cleanup();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InvalidInput(`${uri}: no such file`, field);
    if (code === 'EACCES') throw new InvalidInput(`${uri}: permission denied`, field);
    throw error;
  }
}

/** Reads a data file as a table; unreadable content is an InvalidInput naming the URI. */
export async function readDataFile(file: LocalDataFile, field = 'data.uri'): Promise<Table> {
  try {
    return await readTable(file.path);
  } catch (error) {
    if (error instanceof InvalidInput) throw new InvalidInput(`${file.uri}: ${error.message}`, field);
    throw new InvalidInput(`${file.uri}: cannot be read as a table: ${(error as Error).message}`, field);
  }
}
