import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isAlive, ManagedProcess, processIdentity, reapLeftovers } from '../../infra/local/processes.js';
import { tempDir } from '../helpers/temp.js';

/** A live process that is not Keel's: its own group, so a group kill would reach it. */
function bystander(): ChildProcess {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
}

describe("keel up's pid files (real processes, /proc)", () => {
  const others: ChildProcess[] = [];
  after(() => others.forEach((child) => child.kill('SIGKILL')));

  it('never kills a live process that took over a recorded pid (start time or command line differ)', async () => {
    const runDir = tempDir('keel-pids-');
    const other = bystander();
    others.push(other);
    const pid = other.pid!;
    const identity = processIdentity(pid)!;
    // As a stale pid file would name it: this pid, but the start time of the process that had it before.
    writeFileSync(path.join(runDir, 'workers.pid'), JSON.stringify({ pid, startTime: String(Number(identity.startTime) - 1), command: identity.command }));
    // An older launcher's bare pid, now held by a process whose command line is not a gateway's.
    writeFileSync(path.join(runDir, 'gateway.pid'), String(pid));
    // Same start time, different command line.
    writeFileSync(path.join(runDir, 'temporal.pid'), JSON.stringify({ pid, startTime: identity.startTime, command: 'temporal server start-dev' }));

    const result = await reapLeftovers(runDir, ['gateway', 'workers', 'temporal']);
    assert.deepEqual(result.reaped, []);
    assert.equal(result.foreign.length, 3, JSON.stringify(result.foreign));
    assert.match(result.foreign[0]!, new RegExp(`^gateway \\(pid ${pid} now belongs to another process\\)$`));
    assert.equal(isAlive(pid), true, 'the unrelated process was killed');
    for (const name of ['gateway', 'workers', 'temporal']) assert.equal(existsSync(path.join(runDir, `${name}.pid`)), false, `${name}.pid left behind`);
  });

  it('stops the process group a pid file really names', async () => {
    const runDir = tempDir('keel-pids-');
    const leftover = ManagedProcess.start('workers', process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      logFile: path.join(runDir, 'workers.log'),
      runDir,
    });
    others.push({ kill: () => leftover.signal('SIGKILL') } as unknown as ChildProcess);
    assert.equal(existsSync(path.join(runDir, 'workers.pid')), true);
    const result = await reapLeftovers(runDir, ['workers']);
    assert.deepEqual(result, { reaped: ['workers'], foreign: [] });
    await leftover.waitForExit();
    assert.equal(isAlive(leftover.pid), false);
  });
});
