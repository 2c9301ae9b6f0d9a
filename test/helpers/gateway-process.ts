/**
 * Runs the real gateway (`keel gateway`) as a child process for tests that need what only a
 * process shows: a crash, SIGTERM handling, a socket with body limits. Ready when `/readyz` is 200.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../../infra/local/ports.js';
import { collectOutput } from './child-output.js';
import { atExit, tempDir } from './temp.js';
import { REPO_ROOT } from './services.js';

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote, for failure messages. */
  output(): string;
  /** Sends SIGTERM and resolves with the exit code once the process is gone. */
  stop(): Promise<number | null>;
}

export async function startGatewayProcess(options: { databaseUrl: string; artifactsDir: string; env?: Record<string, string> }): Promise<GatewayProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'keel.js'), 'gateway'], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: options.databaseUrl,
      KEEL_ARTIFACTS: `file://${options.artifactsDir}`,
      KEEL_HOME: tempDir('keel-test-gateway-home-'),
      KEEL_HOST: '127.0.0.1',
      PORT: String(port),
      KEEL_AUTH: 'open-loopback',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  atExit(() => child.kill('SIGKILL'));
  const output = collectOutput(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}:\n${output()}`);
    const ready = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway not ready within 60 s:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    url,
    child,
    output,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}
