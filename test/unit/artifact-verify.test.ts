import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { ArtifactCorrupt, InvalidInput } from '../../lib/errors.js';
import { sha256Hex } from '../../lib/hash.js';
import { parseS3Uri } from '../../stores/artifacts/index.js';
import { verifyingStream } from '../../stores/artifacts/verify.js';

const sink = () => new Writable({ write: (_chunk, _enc, done) => done() });
const body = Buffer.from('the quick brown fox');

describe('verifyingStream', () => {
  it('passes content that hashes to its key', async () => {
    await pipeline(Readable.from([body]), verifyingStream('x', sha256Hex(body), body.length), sink());
  });

  it('fails on altered bytes', async () => {
    const altered = Buffer.from(body);
    altered[0] = 0x54;
    await assert.rejects(
      pipeline(Readable.from([altered]), verifyingStream('s3://b/k', sha256Hex(body)), sink()),
      (error: unknown) => error instanceof ArtifactCorrupt && /s3:\/\/b\/k is corrupt/.test(error.message),
    );
  });

  it('fails on truncated bytes, naming both sizes', async () => {
    await assert.rejects(
      pipeline(Readable.from([body.subarray(0, 5)]), verifyingStream('f', sha256Hex(body), body.length), sink()),
      (error: unknown) => error instanceof ArtifactCorrupt && /5 bytes read, 19 stored/.test(error.message),
    );
  });
});

describe('parseS3Uri', () => {
  it('splits bucket and prefix', () => {
    assert.deepEqual(parseS3Uri('s3://models/keel/prod/'), { bucket: 'models', prefix: 'keel/prod' });
    assert.deepEqual(parseS3Uri('s3://models'), { bucket: 'models', prefix: '' });
  });
  it('rejects what is not a bucket URI', () => {
    assert.throws(() => parseS3Uri('s3://'), InvalidInput);
    assert.throws(() => parseS3Uri('s3://Bad_Bucket/x'), InvalidInput);
  });
});
