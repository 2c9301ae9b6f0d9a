import { mkdir } from 'node:fs/promises';
import { CreateBucketCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { ManagedProcess } from './processes.js';
import { freePort, waitUntil } from './ports.js';

export interface MinioOptions {
  binary: string;
  dataDir: string;
  logFile: string;
  port?: number;
  accessKey?: string;
  secretKey?: string;
}

export interface RunningMinio {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  process: ManagedProcess;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** A MinIO server on loopback (console and browser off), for S3 tests and local S3 setups. */
export async function startMinio(options: MinioOptions): Promise<RunningMinio> {
  const port = options.port ?? (await freePort());
  const accessKey = options.accessKey ?? 'keel-test';
  const secretKey = options.secretKey ?? 'keel-test-secret';
  await mkdir(options.dataDir, { recursive: true });
  const consolePort = await freePort();
  const server = ManagedProcess.start(
    'minio',
    options.binary,
    ['server', options.dataDir, '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'],
    {
      logFile: options.logFile,
      env: {
        ...process.env,
        MINIO_ROOT_USER: accessKey,
        MINIO_ROOT_PASSWORD: secretKey,
        MINIO_BROWSER: 'off',
        MINIO_UPDATE: 'off',
      },
    },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(
      async () => {
        if (!server.running) throw new Error('exited');
        return (await fetch(`${endpoint}/minio/health/ready`)).ok;
      },
      30_000,
      `MinIO (log: ${options.logFile})`,
    );
  } catch (error) {
    await server.stop();
    throw error;
  }
  const region = 'us-east-1';
  return {
    endpoint,
    accessKey,
    secretKey,
    region,
    process: server,
    async createBucket(name: string) {
      const client = new S3Client({
        endpoint,
        region,
        forcePathStyle: true,
        credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
      });
      try {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      } catch (error) {
        if (!(error instanceof S3ServiceException && error.name === 'BucketAlreadyOwnedByYou')) throw error;
      } finally {
        client.destroy();
      }
    },
    stop: () => server.stop('SIGTERM', 10_000),
  };
}
