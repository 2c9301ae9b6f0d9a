import { readFile } from 'node:fs/promises';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import type { TemporalConfig } from '../lib/config.js';
import type { StackCheckResult } from '../lib/schemas/stack-check.js';
import { ORCHESTRATION_QUEUE } from '../lib/task-queues.js';

/** Connection settings shared by clients and workers: address, TLS client certificate or API key. */
export interface TemporalConnectionOptions {
  address: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

export async function temporalConnectionOptions(config: TemporalConfig): Promise<TemporalConnectionOptions> {
  const tls = config.tls
    ? { clientCertPair: { crt: await readFile(config.tls.certPath), key: await readFile(config.tls.keyPath) } }
    : config.apiKey
      ? true
      : undefined;
  return { address: config.address, tls, apiKey: config.apiKey };
}

export async function connectTemporalClient(config: TemporalConfig): Promise<Client> {
  const connection = await Connection.connect(await temporalConnectionOptions(config));
  return new Client({ connection, namespace: config.namespace });
}

/**
 * Runs the `stackCheck` workflow on the orchestration queue and waits for its result: the proof
 * `keel up` and `keel doctor` both give that workers on every queue reach Postgres and artifacts.
 */
export async function runStackCheck(config: TemporalConfig, timeoutSeconds: number): Promise<StackCheckResult> {
  const client = await connectTemporalClient(config);
  try {
    return await client.workflow.execute('stackCheck', {
      taskQueue: ORCHESTRATION_QUEUE,
      workflowId: `stack-check-${new Date().toISOString()}`,
      args: [{ timeoutSeconds }],
    });
  } finally {
    await client.connection.close();
  }
}
