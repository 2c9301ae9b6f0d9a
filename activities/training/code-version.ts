/**
 * The code version recorded in lineage: `KEEL_CODE_VERSION` when the deployment sets it (images
 * have no .git), else the git commit of the checkout the worker runs from, else "unknown".
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
let cached: string | undefined;

export function codeVersion(): string {
  cached ??= process.env.KEEL_CODE_VERSION || gitCommit() || 'unknown';
  return cached;
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}
