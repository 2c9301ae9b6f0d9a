/**
 * `npm test`'s runner: starts the real services once (Temporal dev server, Postgres, MinIO),
 * exports their addresses for every test file, runs Node's test runner, then stops them.
 * `node --import tsx test/run.ts unit` runs only the unit tests (no services).
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  REPO_ROOT,
  startTestMinio,
  startTestPostgres,
  startTestTemporal,
  temporalCliPath,
} from './helpers/services.js';

const SUITES = ['unit', 'integration', 'e2e'] as const;

function testFiles(suite: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.test.ts')) found.push(path.relative(REPO_ROOT, full));
    }
  };
  walk(path.join(REPO_ROOT, 'test', suite));
  return found;
}

async function main(): Promise<number> {
  const requested = process.argv.slice(2);
  const unknown = requested.filter((s) => !(SUITES as readonly string[]).includes(s));
  if (unknown.length) {
    process.stderr.write(`test/run.ts: unknown suite ${unknown.join(', ')} (choose from ${SUITES.join(', ')})\n`);
    return 2;
  }
  const suites = requested.length ? requested : [...SUITES];
  const needsServices = suites.some((s) => s !== 'unit');
  const env: NodeJS.ProcessEnv = { ...process.env };
  const stops: Array<() => Promise<void>> = [];
  const started = Date.now();
  try {
    if (needsServices) {
      const log = (line: string) => process.stderr.write(`[test run] ${line}\n`);
      env.KEEL_TEST_TEMPORAL_CLI = await temporalCliPath();
      const [temporal, postgres, minio] = await Promise.all([
        process.env.TEMPORAL_ADDRESS ? undefined : startTestTemporal(),
        process.env.DATABASE_URL ? undefined : startTestPostgres(),
        startTestMinio(),
      ]);
      if (temporal) {
        stops.push(temporal.stop);
        env.TEMPORAL_ADDRESS = temporal.address;
      }
      if (postgres) {
        stops.push(postgres.stop);
        env.DATABASE_URL = postgres.url;
        env.KEEL_TEST_DB_ENGINE = 'embedded';
      }
      stops.push(minio.stop);
      Object.assign(env, {
        KEEL_TEST_S3_ENDPOINT: minio.endpoint,
        KEEL_TEST_S3_ACCESS_KEY: minio.accessKey,
        KEEL_TEST_S3_SECRET_KEY: minio.secretKey,
        KEEL_TEST_S3_BUCKET: minio.bucket,
      });
      log(
        `services up in ${((Date.now() - started) / 1000).toFixed(1)} s: Temporal ${env.TEMPORAL_ADDRESS}, ` +
          `Postgres ${postgres ? 'embedded' : 'DATABASE_URL'}, MinIO ${minio.endpoint}`,
      );
    }
    // One test-runner process per suite, in order: the end-to-end suite starts whole stacks and
    // must not compete for the two cores with integration files running beside it.
    let failed = 0;
    for (const suite of suites) {
      const suiteFiles = testFiles(suite);
      if (suiteFiles.length === 0) continue;
      const code = await new Promise<number>((resolve) => {
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=300000', ...suiteFiles],
          { cwd: REPO_ROOT, env, stdio: 'inherit' },
        );
        child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
      });
      if (code !== 0) failed = code;
    }
    return failed;
  } finally {
    await Promise.all(stops.map((stop) => stop().catch(() => undefined)));
  }
}

process.exitCode = await main();
