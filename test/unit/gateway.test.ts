import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createGatewayApp } from '../../api/app.js';
import { createGatewayMetrics, createMetricsRegistry } from '../../api/metrics.js';

const failing = async () => {
  throw Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' });
};

describe('gateway health endpoints', () => {
  it('/healthz answers while dependencies are down', async () => {
    const app = createGatewayApp({ readiness: [{ name: 'postgres', probe: failing }] });
    const res = await app.request('/healthz');
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('/readyz is 200 when every check passes', async () => {
    const app = createGatewayApp({ readiness: [{ name: 'postgres', probe: async () => undefined }] });
    const res = await app.request('/readyz');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { status: string }).status, 'ready');
  });

  it('/readyz is 503 JSON naming the failed dependency', async () => {
    const app = createGatewayApp({
      readiness: [
        { name: 'postgres', probe: failing },
        { name: 'artifacts', probe: async () => undefined },
      ],
    });
    const res = await app.request('/readyz');
    assert.equal(res.status, 503);
    const json = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(json.error.code, 'NotReady');
    assert.match(json.error.message, /postgres \(.*connection refused\)/);
    assert.doesNotMatch(json.error.message, /artifacts/);
    // /readyz is public: the kind of cause, never the address behind it.
    assert.doesNotMatch(JSON.stringify(json), /10\.1\.2\.3/);
  });

  it('/metrics serves Prometheus text', async () => {
    const res = await createGatewayApp({ readiness: [] }).request('/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    assert.match(await res.text(), /^# TYPE keel_gateway_process_cpu_user_seconds_total counter$/m);
  });

  it('unknown routes get a JSON 404, not HTML', async () => {
    const res = await createGatewayApp({ readiness: [] }).request('/nope', { method: 'POST' });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: { code: 'NotFound', message: 'no route for POST /nope' } });
  });
});

describe('gateway metrics', () => {
  it('keel_predictions_total shows every counted row once per label set, across scrapes', async () => {
    const registry = createMetricsRegistry();
    const metrics = createGatewayMetrics(registry);
    metrics.countPredictions('churn', 3, 'control', 1);
    metrics.countPredictions('churn', 3, 'control', 2);
    metrics.countPredictions('churn', 4, 'candidate', 5);
    const series = async () =>
      (await registry.metrics())
        .split('\n')
        .filter((line) => line.startsWith('keel_predictions_total{'))
        .sort();
    assert.deepEqual(await series(), [
      'keel_predictions_total{model="churn",version="3",variant="control"} 3',
      'keel_predictions_total{model="churn",version="4",variant="candidate"} 5',
    ]);
    // A second scrape does not count the same rows again; new rows add to the total.
    metrics.countPredictions('churn', 3, 'control', 1);
    assert.deepEqual(await series(), [
      'keel_predictions_total{model="churn",version="3",variant="control"} 4',
      'keel_predictions_total{model="churn",version="4",variant="candidate"} 5',
    ]);
  });
});
