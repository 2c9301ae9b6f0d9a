/** Runs the `keel` command as users do (a child process of `bin/keel.js`) and collects its output. */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './services.js';

export const KEEL_BIN = path.join(REPO_ROOT, 'bin', 'keel.js');

export interface KeelRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runKeel(args: string[], env: NodeJS.ProcessEnv): Promise<KeelRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KEEL_BIN, ...args], { env, cwd: REPO_ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
