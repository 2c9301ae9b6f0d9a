/** Keel's version, as package.json states it (answered by `GET /v2` and MLflow's `GET /version`). */
import { readFileSync } from 'node:fs';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export const KEEL_VERSION: string = manifest.version;
