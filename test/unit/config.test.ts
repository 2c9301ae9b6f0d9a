import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../../lib/config.js';
import { InvalidInput } from '../../lib/errors.js';

const load = (env: Record<string, string>) => loadConfig({ env, cwd: '/srv/app' });

describe('loadConfig', () => {
  it('defaults to the embedded stack under ./.keel', () => {
    const config = load({});
    assert.equal(config.home, '/srv/app/.keel');
    assert.deepEqual(
      { address: config.temporal.address, embedded: config.temporal.embedded, ui: config.temporal.uiPort },
      { address: '127.0.0.1:7233', embedded: true, ui: 8233 },
    );
    assert.equal(config.database.embedded, true);
    assert.equal(config.database.url, 'postgres://keel:keel@127.0.0.1:54329/keel');
    assert.equal(config.artifacts.uri, 'file:///srv/app/.keel/artifacts');
    assert.deepEqual(config.gateway, {
      host: '127.0.0.1',
      port: 8080,
      auth: 'open-loopback',
      id: undefined,
      limits: { maxBodyBytes: 1048576, maxBatchRows: 1000, timeoutMs: 5000 },
      batchWaitMs: 0,
      microBatchRows: 256,
      logLevel: 'info',
    });
  });

  it('uses the servers the environment names', () => {
    const config = load({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_NAMESPACE: 'ml',
      DATABASE_URL: 'postgres://u:p@db:5432/keel',
      KEEL_ARTIFACTS: 's3://models/keel',
      S3_ENDPOINT: 'http://minio:9000',
      KEEL_PG_PORT: '6000',
      PORT: '9090',
    });
    assert.equal(config.temporal.embedded, false);
    assert.equal(config.temporal.namespace, 'ml');
    assert.equal(config.database.embedded, false);
    assert.equal(config.database.url, 'postgres://u:p@db:5432/keel');
    assert.equal(config.artifacts.uri, 's3://models/keel');
    assert.equal(config.artifacts.s3Endpoint, 'http://minio:9000');
    assert.equal(config.gateway.port, 9090);
    assert.equal(config.gateway.auth, 'keys');
  });

  it('takes the gateway auth mode from KEEL_AUTH, whatever the database', () => {
    assert.equal(load({ KEEL_AUTH: 'keys' }).gateway.auth, 'keys');
    assert.equal(load({ KEEL_AUTH: 'open-loopback', DATABASE_URL: 'postgres://u:p@db:5432/keel' }).gateway.auth, 'open-loopback');
  });

  it('reads the gateway limits, batching, id and log level', () => {
    const gateway = load({
      KEEL_MAX_BODY_BYTES: '2048',
      KEEL_MAX_BATCH_ROWS: '10',
      KEEL_PREDICT_TIMEOUT_MS: '250',
      KEEL_BATCH_WAIT_MS: '1',
      KEEL_MICRO_BATCH_ROWS: '16',
      KEEL_GATEWAY_ID: 'gw-a',
      KEEL_LOG_LEVEL: 'debug',
    }).gateway;
    assert.deepEqual(
      [gateway.limits, gateway.batchWaitMs, gateway.microBatchRows, gateway.id, gateway.logLevel],
      [{ maxBodyBytes: 2048, maxBatchRows: 10, timeoutMs: 250 }, 1, 16, 'gw-a', 'debug'],
    );
  });

  it('refuses a micro-batch size that is not a positive whole number, naming it', () => {
    assert.throws(() => load({ KEEL_MICRO_BATCH_ROWS: '0' }), /KEEL_MICRO_BATCH_ROWS/);
    assert.throws(() => load({ KEEL_MICRO_BATCH_ROWS: 'many' }), /KEEL_MICRO_BATCH_ROWS/);
  });

  it('reads the API-key grace period for Postgres outages (default 5 minutes)', () => {
    assert.equal(load({}).apiKeys.graceMs, 300_000);
    assert.equal(load({ KEEL_API_KEY_GRACE_SECONDS: '30' }).apiKeys.graceMs, 30_000);
    assert.equal(load({ KEEL_API_KEY_GRACE_SECONDS: '0' }).apiKeys.graceMs, 0);
  });

  it('resolves a relative file:// artifact root against the working folder', () => {
    assert.equal(load({ KEEL_ARTIFACTS: 'file://data/artifacts' }).artifacts.uri, 'file:///srv/app/data/artifacts');
  });

  for (const [name, value, expected] of [
    ['PORT', 'eighty', /PORT/],
    ['PORT', '70000', /PORT must be between 1 and 65535/],
    ['KEEL_PG_PORT', '1.5', /KEEL_PG_PORT must be a whole number/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL must start with postgres/],
    ['KEEL_AUTH', 'none', /KEEL_AUTH must be keys or open-loopback/],
    ['KEEL_MAX_BATCH_ROWS', '0', /KEEL_MAX_BATCH_ROWS must be at least 1/],
    ['KEEL_BATCH_WAIT_MS', '-1', /KEEL_BATCH_WAIT_MS must be 0 or more/],
    ['KEEL_GATEWAY_ID', 'a b', /KEEL_GATEWAY_ID must be/],
    ['KEEL_LOG_LEVEL', 'loud', /KEEL_LOG_LEVEL must be/],
    ['KEEL_ARTIFACTS', 'gs://bucket', /KEEL_ARTIFACTS must be a file:\/\/ or s3:\/\/ URI/],
    ['KEEL_API_KEY_GRACE_SECONDS', '-5', /KEEL_API_KEY_GRACE_SECONDS must be 0 or more/],
    ['KEEL_API_KEY_GRACE_SECONDS', 'long', /KEEL_API_KEY_GRACE_SECONDS must be a number/],
    ['TEMPORAL_TLS_CERT', '/cert.pem', /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together/],
  ] as const) {
    it(`rejects ${name}=${value} with an error naming it`, () => {
      assert.throws(
        () => load({ [name]: value }),
        (error: unknown) => error instanceof InvalidInput && expected.test(error.message) && error.field === name,
      );
    });
  }

  it('reads the feature modules (comma-separated, relative to the working folder) and the DuckDB auto threshold', () => {
    assert.deepEqual(load({}).features, { modules: [], duckdbAutoMinRows: 50_000 });
    const config = load({ KEEL_FEATURE_MODULES: ' features.ts, /opt/team/on-demand.js,,features.ts ', KEEL_DUCKDB_AUTO_MIN_ROWS: '1000' });
    assert.deepEqual(config.features, { modules: ['/srv/app/features.ts', '/opt/team/on-demand.js'], duckdbAutoMinRows: 1000 });
    assert.throws(() => load({ KEEL_DUCKDB_AUTO_MIN_ROWS: 'many' }), (error: unknown) => error instanceof InvalidInput && error.field === 'KEEL_DUCKDB_AUTO_MIN_ROWS');
  });
});
