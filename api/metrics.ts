import { collectDefaultMetrics, Registry } from 'prom-client';

/** A registry per gateway app, with Node process metrics under `keel_gateway_`. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keel_gateway_' });
  return registry;
}
