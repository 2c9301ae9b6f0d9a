import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { access, chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StackError } from '../../lib/errors.js';

/** A Go program Keel runs locally, pinned to one version and obtained once per checkout. */
export interface PinnedBinary {
  name: string;
  /** Environment variable that points at an existing binary and skips every other step. */
  envVar: string;
  goPackage: string;
  version: string;
  /** The official release archive (tar.gz holding `name`), tried when Go is not installed. */
  releaseArchiveUrl?: (platform: NodeJS.Platform, arch: string) => string | undefined;
  /** What the user should do when nothing works. */
  manualHint: string;
}

export const TEMPORAL_CLI: PinnedBinary = {
  name: 'temporal',
  envVar: 'TEMPORAL_CLI_PATH',
  goPackage: 'github.com/temporalio/cli/cmd/temporal',
  version: 'v1.5.1',
  releaseArchiveUrl: (platform, arch) => {
    const goArch = { x64: 'amd64', arm64: 'arm64' }[arch];
    if (!goArch || (platform !== 'linux' && platform !== 'darwin')) return undefined;
    const base = process.env.KEEL_TEMPORAL_RELEASE_BASE ?? 'https://github.com/temporalio/cli/releases/download';
    return `${base}/v1.5.1/temporal_cli_1.5.1_${platform}_${goArch}.tar.gz`;
  },
  manualHint: 'install the Temporal CLI v1.5.1 and set TEMPORAL_CLI_PATH to it, or install Go >= 1.25',
};

export const MINIO: PinnedBinary = {
  name: 'minio',
  envVar: 'MINIO_PATH',
  goPackage: 'github.com/minio/minio',
  version: 'v0.0.0-20260212201848-7aac2a2c5b7c',
  manualHint: 'install Go >= 1.25 (MinIO is built with go install), or set MINIO_PATH to a minio server binary',
};

export interface LocateOptions {
  /** `.keel/bin`: where built binaries are cached for this checkout. */
  binDir: string;
  env?: NodeJS.ProcessEnv;
  /** Progress lines for long builds (stderr in the CLI). */
  progress?: (line: string) => void;
}

/**
 * Finds the binary: `$envVar`, then `PATH`, then the cache in `binDir`, else builds it with
 * `go install` (Go >= 1.25), else downloads the release archive. Throws a one-line StackError
 * saying what to do when every way fails.
 */
export async function locateBinary(spec: PinnedBinary, options: LocateOptions): Promise<string> {
  const env = options.env ?? process.env;
  const progress = options.progress ?? (() => undefined);
  const fromEnv = env[spec.envVar];
  if (fromEnv) {
    if (!(await isExecutable(fromEnv))) throw new StackError(`${spec.envVar}=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const onPath = findOnPath(spec.name, env.PATH ?? '');
  if (onPath) return onPath;
  const cached = path.join(options.binDir, spec.name);
  if ((await isExecutable(cached)) && (await readStamp(cached)) === spec.version) return cached;

  const failures: string[] = [];
  const go = findOnPath('go', env.PATH ?? '');
  if (go) {
    const goVersion = goMinorVersion(go, env);
    if (goVersion !== undefined && goVersion >= 25) {
      try {
        await goInstall(go, spec, options.binDir, env, progress);
        await writeStamp(cached, spec.version);
        return cached;
      } catch (error) {
        failures.push((error as Error).message);
      }
    } else {
      failures.push(`Go 1.${goVersion ?? '?'} is too old (needs >= 1.25)`);
    }
  } else {
    failures.push('Go is not installed');
  }
  const url = spec.releaseArchiveUrl?.(process.platform, process.arch);
  if (url) {
    try {
      progress(`downloading ${spec.name} ${spec.version} from ${url}`);
      await downloadRelease(url, spec.name, cached);
      await writeStamp(cached, spec.version);
      return cached;
    } catch (error) {
      failures.push(`download failed (${(error as Error).message})`);
    }
  }
  throw new StackError(`cannot obtain ${spec.name} ${spec.version}: ${failures.join('; ')}. To fix: ${spec.manualHint}`);
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this folder.
    }
  }
  return undefined;
}

function goMinorVersion(go: string, env: NodeJS.ProcessEnv): number | undefined {
  const result = spawnSync(go, ['env', 'GOVERSION'], { env, encoding: 'utf8' });
  const match = /^go1\.(\d+)/.exec(result.stdout?.trim() ?? '');
  return match ? Number(match[1]) : undefined;
}

const stampFile = (binary: string) => `${binary}.version`;

async function readStamp(binary: string): Promise<string | undefined> {
  return readFile(stampFile(binary), 'utf8').then((s) => s.trim(), () => undefined);
}

async function writeStamp(binary: string, version: string): Promise<void> {
  await writeFile(stampFile(binary), `${version}\n`);
}

/** `go install pkg@version` into a staging folder, renamed into place only when complete. */
async function goInstall(
  go: string,
  spec: PinnedBinary,
  binDir: string,
  env: NodeJS.ProcessEnv,
  progress: (line: string) => void,
): Promise<void> {
  await mkdir(binDir, { recursive: true });
  const staging = await mkdtemp(path.join(binDir, `.${spec.name}-build-`));
  const started = Date.now();
  progress(
    `building ${spec.name} ${spec.version} with go install (about 4 minutes the first time, seconds once Go's caches hold it)`,
  );
  const ticker = setInterval(
    () => progress(`still building ${spec.name}… ${Math.round((Date.now() - started) / 1000)} s`),
    15_000,
  );
  try {
    const output: string[] = [];
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(go, ['install', `${spec.goPackage}@${spec.version}`], {
        env: { ...env, GOBIN: staging, GOFLAGS: `${env.GOFLAGS ?? ''} -buildvcs=false`.trim() },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const onData = (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (!line.trim()) continue;
          output.push(line);
          if (line.startsWith('go: downloading')) progress(line);
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', resolve);
      child.once('error', () => resolve(127));
    });
    if (code !== 0) {
      const last = output.filter((l) => !l.startsWith('go: downloading')).slice(-1)[0] ?? `exit code ${code}`;
      const offline = /dial tcp|lookup .*: |no such host|connection refused|i\/o timeout/.test(output.join('\n'));
      throw new Error(`go install failed${offline ? ' (no network to the Go module proxy?)' : ''}: ${last}`);
    }
    await rename(path.join(staging, spec.name), path.join(binDir, spec.name));
    progress(`built ${spec.name} ${spec.version} in ${Math.round((Date.now() - started) / 1000)} s`);
  } finally {
    clearInterval(ticker);
    await rm(staging, { recursive: true, force: true });
  }
}

async function downloadRelease(url: string, name: string, dest: string): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(120_000) });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  await mkdir(path.dirname(dest), { recursive: true });
  // Unpack beside the destination so the final rename stays on one filesystem.
  const work = await mkdtemp(path.join(path.dirname(dest), `.${name}-download-`));
  try {
    const archive = path.join(work, 'release.tar.gz');
    await writeFile(archive, Buffer.from(await response.arrayBuffer()));
    const untar = spawnSync('tar', ['-xzf', archive, '-C', work, name]);
    if (untar.status !== 0) throw new Error(`cannot unpack ${url}: ${untar.stderr?.toString().trim()}`);
    await chmod(path.join(work, name), 0o755);
    await rename(path.join(work, name), dest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
