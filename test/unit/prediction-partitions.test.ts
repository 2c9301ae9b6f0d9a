/**
 * ensurePredictionPartitions when its connection dies mid-way (Postgres shutting down): a fake
 * client at the pg boundary whose second query fails with the server's FATAL and which then emits
 * 'error' as its socket closes, as pg's clients do. The failure must reach the caller, the client
 * must be destroyed rather than reused, and the late 'error' event must not be uncaught (it would
 * crash the gateway).
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { Db } from '../../stores/db.js';
import { ensurePredictionPartitions } from '../../stores/predictions.js';

describe('prediction partitions on a dying connection', () => {
  it('reports the failure, destroys the client and swallows its late error event', async () => {
    const fatal = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
    let calls = 0;
    let released: unknown = 'not released';
    const client = Object.assign(new EventEmitter(), {
      query: async () => {
        calls++;
        if (calls === 2) {
          setImmediate(() => client.emit('error', fatal)); // the socket closes after the error message
          throw fatal;
        }
        return { rows: [{ exists: false }] };
      },
      release: (error?: unknown) => {
        released = error;
      },
    });
    const db = { connect: async () => client } as unknown as Db;
    await assert.rejects(ensurePredictionPartitions(db, 1), /administrator command/);
    assert.equal(released, fatal, 'the broken client is destroyed, not returned to the pool');
    // Let the late 'error' event fire: without a listener it would be an uncaught exception here.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(client.listenerCount('error') > 0);
  });
});
