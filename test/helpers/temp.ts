import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Run at exit, newest first: temp folders to remove and processes to kill. */
const cleanups: Array<() => void> = [];
process.once('exit', () => cleanups.reverse().forEach((cleanup) => cleanup()));

export function atExit(cleanup: () => void): void {
  cleanups.push(cleanup);
}

/** A fresh folder under the system temp folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  atExit(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
