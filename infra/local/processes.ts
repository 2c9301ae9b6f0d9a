import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/**
 * A child process in its own process group, so a terminal's Ctrl-C reaches only the launcher,
 * which then stops children in order. Its pid is recorded under `<runDir>/<name>.pid` (with its
 * start time and command line, see `PidRecord`) so a launcher that was killed outright can clean
 * up after itself on the next start.
 */
export class ManagedProcess {
  private exited: Promise<number | null>;
  private exitCode: number | null | undefined;
  /** How it ended, for messages: `exit code 1`, `signal SIGKILL`. */
  exitDescription: string | undefined;

  private constructor(
    readonly name: string,
    readonly pid: number,
    readonly logFile: string,
    private readonly pidFile: string | undefined,
    exited: Promise<{ code: number | null; description: string }>,
    private readonly child: ChildProcess,
  ) {
    this.exited = exited.then(({ code, description }) => {
      this.exitCode = code;
      this.exitDescription = description;
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
    const exited = new Promise<{ code: number | null; description: string }>((resolve) => {
      child.once('exit', (code, signal) =>
        resolve({ code: code ?? (signal ? 128 : null), description: signal ? `signal ${signal}` : `exit code ${code}` }),
      );
      child.once('error', (error) => resolve({ code: 127, description: error.message }));
    });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    let pidFile: string | undefined;
    if (options.runDir) {
      mkdirSync(options.runDir, { recursive: true });
      pidFile = path.join(options.runDir, `${name}.pid`);
      writePidRecord(pidFile, child.pid);
    }
    return new ManagedProcess(name, child.pid, options.logFile, pidFile, exited, child);
  }

  /** Lets this process's event loop end while the child runs (a test's shared server, killed at exit). */
  unref(): void {
    this.child.unref();
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
    // A stopped (SIGSTOP, Ctrl-Z) group would hold the signal pending forever.
    if (signal !== 'SIGKILL') process.kill(-pid, 'SIGCONT');
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

/** What a pid file holds: enough to tell our process from an unrelated one that got the same pid later. */
const pidRecordSchema = z.object({
  pid: z.number().int().min(2),
  /** Start time in clock ticks since boot (`/proc/<pid>/stat` field 22); null where there is no /proc. */
  startTime: z.string().nullable(),
  /** The command line, NUL-separated arguments joined with spaces. */
  command: z.string(),
});
export type PidRecord = z.infer<typeof pidRecordSchema>;

/** Start time and command line of a live process, or undefined when it is gone. */
export function processIdentity(pid: number): { startTime: string | null; command: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
    return { startTime, command };
  } catch {
    if (!isAlive(pid)) return undefined;
    // No /proc (macOS): the command line from ps, without a start time.
    const ps = spawnSync('ps', ['-p', String(pid), '-o', 'command='], { encoding: 'utf8' });
    return ps.status === 0 ? { startTime: null, command: ps.stdout.trim() } : undefined;
  }
}

export function writePidRecord(pidFile: string, pid: number): void {
  const identity = processIdentity(pid);
  const record: PidRecord = { pid, startTime: identity?.startTime ?? null, command: identity?.command ?? '' };
  writeFileSync(pidFile, `${JSON.stringify(record)}\n`);
}

/** The pid file's record; a bare number (written by earlier versions) has no identity to check. */
export function readPidRecord(pidFile: string): PidRecord | undefined {
  let text: string;
  try {
    text = readFileSync(pidFile, 'utf8').trim();
  } catch {
    return undefined;
  }
  if (/^\d+$/.test(text)) return { pid: Number(text), startTime: null, command: '' };
  try {
    const parsed = pidRecordSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether the live process with the record's pid is the one the record describes: same start time
 * where both are known, else the same command line. A pid reused by an unrelated process fails.
 */
export function isRecordedProcess(record: PidRecord, legacyMarker: string): boolean {
  const identity = processIdentity(record.pid);
  if (!identity) return false;
  if (record.startTime !== null && identity.startTime !== null) {
    return record.startTime === identity.startTime && record.command === identity.command;
  }
  return record.command ? record.command === identity.command : identity.command.includes(legacyMarker);
}

/** Pid-file names of the launcher's children and a command-line fragment each one's process has. */
export const LEFTOVER_MARKERS: Record<string, string> = {
  gateway: 'keel.js gateway',
  workers: 'keel.js worker',
  temporal: 'server start-dev',
};

/**
 * Stops process groups left behind by a launcher that was killed outright; returns their names.
 * A pid file whose process is gone, or is now someone else's, is removed without killing anything.
 */
export async function reapLeftovers(runDir: string, names: string[]): Promise<{ reaped: string[]; foreign: string[] }> {
  const reaped: string[] = [];
  const foreign: string[] = [];
  for (const name of names) {
    const pidFile = path.join(runDir, `${name}.pid`);
    const record = readPidRecord(pidFile);
    if (record && record.pid > 1 && isAlive(record.pid)) {
      if (isRecordedProcess(record, LEFTOVER_MARKERS[name] ?? name)) {
        const { pid } = record;
        killGroup(pid, 'SIGTERM');
        const deadline = Date.now() + 15_000;
        while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
        killGroup(pid, 'SIGKILL');
        reaped.push(name);
      } else {
        foreign.push(`${name} (pid ${record.pid} now belongs to another process)`);
      }
    }
    rmSync(pidFile, { force: true });
  }
  return { reaped, foreign };
}
