import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ArtifactCorrupt, ArtifactNotFound, InvalidInput } from '../../lib/errors.js';
import { booleanColumn, categoryColumn, createTable, numberColumn } from '../../lib/data/table.js';
import { sha256Hex } from '../../lib/hash.js';
import { FsArtifactStore, S3ArtifactStore, type ArtifactStore } from '../../stores/artifacts/index.js';
import { getTable, putTable } from '../../stores/datasets.js';
import { testS3 } from '../helpers/services.js';
import { tableContents } from '../helpers/tables.js';
import { tempDir } from '../helpers/temp.js';

interface Backend {
  name: string;
  create: () => Promise<ArtifactStore>;
  /** Replaces a stored object's bytes behind the store's back, as disk rot or a bad copy would. */
  overwrite: (store: ArtifactStore, sha256: string, bytes: Buffer) => Promise<void>;
}

const backends: Backend[] = [
  {
    name: 'filesystem',
    create: async () => new FsArtifactStore(tempDir('keel-artifacts-')),
    overwrite: async (store, sha256, bytes) => {
      const file = fileURLToPath(store.uriFor(sha256));
      await chmod(file, 0o644);
      await writeFile(file, bytes);
    },
  },
  {
    name: 'S3 (MinIO)',
    create: async () => {
      const s3 = await testS3();
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
      });
      const prefix = `contract-${randomBytes(4).toString('hex')}`;
      return new S3ArtifactStore({ uri: `s3://${s3.bucket}/${prefix}`, region: s3.region, client });
    },
    overwrite: async (store, sha256, bytes) => {
      const { hostname, pathname } = new URL(store.uriFor(sha256));
      await (store as S3ArtifactStore).client.send(
        new PutObjectCommand({ Bucket: hostname, Key: pathname.slice(1), Body: bytes }),
      );
    },
  },
];

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

for (const backend of backends) {
  describe(`artifact store contract: ${backend.name}`, () => {
    let store: ArtifactStore;
    before(async () => {
      store = await backend.create();
    });

    it('stores bytes under their sha256 and reads them back', async () => {
      const bytes = Buffer.from('model bytes v1');
      const ref = await store.put(bytes);
      assert.equal(ref.sha256, sha256Hex(bytes));
      assert.equal(ref.size, bytes.length);
      assert.equal(ref.uri, store.uriFor(ref.sha256));
      assert.ok(ref.uri.startsWith(store.rootUri));
      assert.deepEqual(await store.getBytes(ref.sha256), bytes);
      assert.deepEqual(await store.stat(ref.sha256), ref);
    });

    it('streams a large body in and out without holding it whole', async () => {
      const chunk = randomBytes(1024 * 1024);
      const chunks = 24;
      const source = Readable.from((function* () {
        for (let i = 0; i < chunks; i++) yield chunk;
      })());
      const ref = await store.put(source);
      assert.equal(ref.size, chunk.length * chunks);
      const expected = sha256Hex(Buffer.concat(Array.from({ length: chunks }, () => chunk)));
      assert.equal(ref.sha256, expected);
      let read = 0;
      for await (const part of await store.open(ref.sha256)) read += (part as Buffer).length;
      assert.equal(read, ref.size);
    });

    it('storing the same content twice yields the same ref and one object', async () => {
      const bytes = Buffer.from(`same ${backend.name}`);
      const [a, b] = await Promise.all([store.put(bytes), store.put(Readable.from([bytes]))]);
      assert.deepEqual(a, b);
      const listed = (await collect(store.list())).filter((r) => r.sha256 === a.sha256);
      assert.equal(listed.length, 1);
    });

    it('lists what it holds and deletes on request', async () => {
      const ref = await store.put(Buffer.from('to be deleted'));
      assert.ok((await collect(store.list())).some((r) => r.sha256 === ref.sha256));
      assert.equal(await store.delete(ref.sha256), true);
      assert.equal(await store.stat(ref.sha256), null);
      assert.equal(await store.delete(ref.sha256), false);
      await assert.rejects(store.getBytes(ref.sha256), ArtifactNotFound);
    });

    it('downloads to a path only once the content checks out', async () => {
      const bytes = Buffer.from('bundle for the gateway');
      const ref = await store.put(bytes);
      const dest = path.join(tempDir('keel-dl-'), 'nested', 'model.onnx');
      assert.deepEqual(await store.download(ref.sha256, dest), ref);
      assert.deepEqual(readFileSync(dest), bytes);
    });

    it('detects a corrupted object and never returns its bytes', async () => {
      const bytes = Buffer.from('precious weights 0123456789');
      const ref = await store.put(bytes);
      const corrupted = Buffer.from(bytes);
      corrupted[3] = (corrupted[3] ?? 0) ^ 0xff;
      await backend.overwrite(store, ref.sha256, corrupted);
      await assert.rejects(store.getBytes(ref.sha256), (error: unknown) => error instanceof ArtifactCorrupt && error.message.includes(ref.uri));
      const dest = path.join(tempDir('keel-dl-'), 'model.onnx');
      await assert.rejects(store.download(ref.sha256, dest), ArtifactCorrupt);
      assert.equal(existsSync(dest), false, 'a corrupt download must leave nothing behind');
      const stream = await store.open(ref.sha256);
      await assert.rejects(collect(stream), ArtifactCorrupt);
    });

    it('detects a truncated object', async () => {
      const bytes = randomBytes(4096);
      const ref = await store.put(bytes);
      await backend.overwrite(store, ref.sha256, bytes.subarray(0, 1000));
      await assert.rejects(store.getBytes(ref.sha256), ArtifactCorrupt);
    });

    it('reads back a Parquet table of one row (a file far under 4 KiB, which Node pools)', async () => {
      const table = createTable([numberColumn('x', [1.5]), categoryColumn('plan', ['pro']), booleanColumn('churned', [true])]);
      const ref = await putTable(store, table);
      assert.ok(ref.size < 4096, `size ${ref.size}`);
      assert.deepEqual(tableContents(await getTable(store, ref)), tableContents(table));
    });

    it('rejects keys that are not sha256 digests', async () => {
      for (const bad of ['', 'abc', '../../etc/passwd', 'G'.repeat(64)]) {
        await assert.rejects(store.getBytes(bad), InvalidInput);
        await assert.rejects(store.stat(bad), InvalidInput);
      }
    });
  });
}

describe('filesystem store specifics', () => {
  it('makes stored files read-only and leaves no temp files behind', async () => {
    const root = tempDir('keel-artifacts-');
    const store = new FsArtifactStore(root);
    const ref = await store.put(Buffer.from('immutable'));
    const { statSync, readdirSync } = await import('node:fs');
    assert.equal(statSync(fileURLToPath(ref.uri)).mode & 0o222, 0);
    assert.deepEqual(readdirSync(path.join(root, 'tmp')), []);
  });
});
