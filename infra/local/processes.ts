import { spawn, type SpawnOptions } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A child process in its own process group, so a terminal's Ctrl-C reaches only the launcher,
 * which then stops children in order. Its pid is recorded under `<runDir>/<name>.pid` so a
 * launcher that was killed outright can clean up after itself on the next start.
 */
export class ManagedProcess {
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  private constructor(
    readonly name: string,
    readonly pid: number,
    private readonly pidFile: string | undefined,
    exited: Promise<number | null>,
  ) {
    this.exited = exited.then((code) => {
      this.exitCode = code;
      if (this.pidFile) rmSync(this.pidFile, { force: true });
      return code;
    });
  }

  static start(
    name: string,
    command: string,
    args: string[],
    options: { logFile: string; runDir?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; cwd?: string },
  ): ManagedProcess {
    mkdirSync(path.dirname(options.logFile), { recursive: true });
    const log = openSync(options.logFile, 'a');
    const spawnOptions: SpawnOptions = {
      detached: true,
      stdio: ['ignore', log, log],
      env: options.env ?? process.env,
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
    };
    const child = spawn(command, args, spawnOptions);
    closeSync(log);
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : null)));
      child.once('error', () => resolve(127));
    });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    let pidFile: string | undefined;
    if (options.runDir) {
      mkdirSync(options.runDir, { recursive: true });
      pidFile = path.join(options.runDir, `${name}.pid`);
      writeFileSync(pidFile, String(child.pid));
    }
    return new ManagedProcess(name, child.pid, pidFile, exited);
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Resolves with the exit code when the process ends by itself. */
  waitForExit(): Promise<number | null> {
    return this.exited;
  }

  /** Sends `signal` to the whole group without waiting (for `exit` handlers, which cannot wait). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) killGroup(this.pid, signal);
  }

  /** Sends `signal` to the whole group, escalating to SIGKILL after `graceMs`. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    killGroup(this.pid, signal);
    const timer = setTimeout(() => killGroup(this.pid, 'SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    // Children of the child (if any) die with the group.
    killGroup(this.pid, 'SIGKILL');
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops process groups left behind by a launcher that was killed outright; returns their names. */
export async function reapLeftovers(runDir: string, names: string[]): Promise<string[]> {
  const reaped: string[] = [];
  for (const name of names) {
    const pidFile = path.join(runDir, `${name}.pid`);
    let pid: number;
    try {
      pid = Number(readFileSync(pidFile, 'utf8'));
    } catch {
      continue;
    }
    if (Number.isInteger(pid) && pid > 1 && isAlive(pid)) {
      killGroup(pid, 'SIGTERM');
      const deadline = Date.now() + 15_000;
      while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      killGroup(pid, 'SIGKILL');
      reaped.push(name);
    }
    rmSync(pidFile, { force: true });
  }
  return reaped;
}
