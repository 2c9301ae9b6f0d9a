import { serve, type ServerType } from '@hono/node-server';
import type { Client } from '@temporalio/client';
import { pino } from 'pino';
import type { KeelConfig } from '../lib/config.js';
import { openArtifactStore } from '../stores/artifacts/index.js';
import { createDb } from '../stores/db.js';
import { connectTemporalClient } from '../stores/temporal.js';
import { createGatewayApp } from './app.js';

export interface RunningGateway {
  url: string;
  /** Stops taking connections, lets requests in flight finish, then releases the pool. */
  close(): Promise<void>;
}

export async function startGateway(config: KeelConfig): Promise<RunningGateway> {
  const db = createDb({ url: config.database.url, applicationName: 'keel-gateway' });
  const artifacts = openArtifactStore(config.artifacts);
  const logger = pino({ name: 'keel-gateway' });
  let temporal: Promise<Client> | undefined;
  const app = createGatewayApp({
    registry: {
      db,
      temporal: () => (temporal ??= connectTemporalClient(config.temporal).catch((error: unknown) => {
        temporal = undefined;
        throw error;
      })),
      s3: { endpoint: config.artifacts.s3Endpoint, region: config.artifacts.region },
    },
    logError: (error) => logger.error({ err: error }, 'unhandled error'),
    readiness: [
      { name: 'postgres', probe: async () => void (await db.query('SELECT 1')) },
      { name: 'artifacts', probe: async () => void (await artifacts.stat('0'.repeat(64))) },
    ],
  });
  const { host, port } = config.gateway;
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s));
    s.once('error', reject);
  });
  logger.info({ host, port }, 'gateway listening');
  return {
    url: `http://${host}:${port}`,
    close: async () => {
      logger.info('draining: no new connections, finishing requests in flight');
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await db.end();
      if (temporal) await (await temporal.catch(() => undefined))?.connection.close();
    },
  };
}
