import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const KEEL = fileURLToPath(new URL('../../bin/keel.js', import.meta.url));

function keel(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [KEEL, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    cwd: path.dirname(KEEL),
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('keel CLI', () => {
  it('--help lists the commands and exits 0', () => {
    const { code, stdout } = keel(['--help']);
    assert.equal(code, 0);
    for (const command of ['up', 'worker', 'gateway', 'migrate', 'doctor']) assert.match(stdout, new RegExp(`^  ${command}\\b`, 'm'));
  });

  for (const command of ['up', 'worker', 'gateway', 'migrate', 'doctor']) {
    it(`${command} --help describes it and exits 0`, () => {
      const { code, stdout } = keel([command, '--help']);
      assert.equal(code, 0);
      assert.match(stdout, new RegExp(`^Usage: keel ${command}`, 'm'));
    });
  }

  it('an unknown command exits 2 with one line naming it', () => {
    const { code, stderr } = keel(['deploy']);
    assert.equal(code, 2);
    assert.match(stderr.split('\n')[0]!, /^keel: unknown command 'deploy'/);
  });

  it('an unknown option exits 2', () => {
    const { code, stderr } = keel(['migrate', '--bogus']);
    assert.equal(code, 2);
    assert.match(stderr, /unknown option '--bogus'/);
  });

  it('a bad option value exits 2 naming the rule', () => {
    const { code, stderr } = keel(['doctor', '--timeout', 'soon']);
    assert.equal(code, 2);
    assert.match(stderr, /--timeout must be a positive whole number, got "soon"/);
  });

  it('a bad environment variable exits 2 naming it', () => {
    const { code, stderr } = keel(['migrate'], { DATABASE_URL: 'mysql://localhost/x' });
    assert.equal(code, 2);
    assert.equal(stderr.trim(), 'keel: DATABASE_URL: DATABASE_URL must start with postgres:// or postgresql://');
  });

  it('an unreachable database exits 1 with one line', () => {
    const { code, stderr } = keel(['migrate'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    assert.equal(code, 1);
    assert.equal(stderr.trim().split('\n').length, 1);
    assert.match(stderr, /ECONNREFUSED/);
  });
});
