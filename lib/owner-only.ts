import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';

/** Owner-only modes for what Keel writes on disk (artifacts, checkpoints, training copies): set explicitly, whatever the umask. */
export const OWNER_ONLY_DIR = 0o700;

/** `mkdir -p` whose newly made folders are 0700 whatever the umask; folders that already exist keep their mode. */
export async function mkdirOwnerOnly(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: OWNER_ONLY_DIR });
  if (first === undefined) return;
  // mkdir names the topmost folder it made: fix the modes from there down to `dir`.
  const target = path.resolve(dir);
  for (let current = path.resolve(first); ; current = path.join(current, path.relative(current, target).split(path.sep)[0]!)) {
    await chmod(current, OWNER_ONLY_DIR);
    if (current === target) return;
  }
}
