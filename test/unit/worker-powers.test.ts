import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../lib/config.js';
import { InvalidInput } from '../../lib/errors.js';
import { mkdirOwnerOnly } from '../../lib/owner-only.js';
import { checkTrainerCommand } from '../../lib/trainer-commands.js';
import { resolveUnderRoots } from '../../stores/data-files.js';
import { tempDir } from '../helpers/temp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLES = path.join(ROOT, 'examples');
const EXAMPLE_SCRIPT = path.join(EXAMPLES, 'python-trainer', 'train.py');

const refusedCommand = (error: unknown) => {
  assert.ok(error instanceof InvalidInput, String(error));
  assert.equal(error.message.split(' (')[0], 'trainer.command: program not allowed by KEEL_TRAINER_COMMANDS');
  assert.equal(error.field, 'trainer.command');
  return true;
};

describe('KEEL_TRAINER_COMMANDS: which commands a worker runs', () => {
  const outside = tempDir('keel-commands-outside-');
  writeFileSync(path.join(outside, 'evil.py'), 'print(1)\n');
  const allowedDir = tempDir('keel-commands-allowed-');
  writeFileSync(path.join(allowedDir, 'train.sh'), '#!/bin/sh\n');
  chmodSync(path.join(allowedDir, 'train.sh'), 0o755);
  symlinkSync(path.join(outside, 'evil.py'), path.join(allowedDir, 'link.py'));

  it('allows a script of an allowed folder run by an interpreter, named bare or by a path on PATH', async () => {
    await checkTrainerCommand(['python3', EXAMPLE_SCRIPT], [EXAMPLES]);
    await checkTrainerCommand(['/usr/bin/python3', EXAMPLE_SCRIPT, '--anything', 'after'], [EXAMPLES]);
    await checkTrainerCommand([path.join(allowedDir, 'train.sh'), '-x', 'y'], [allowedDir]);
  });

  it('refuses inline code, interpreter options, scripts elsewhere and symlinks out of the folder', async () => {
    for (const command of [
      ['sh', '-c', 'id'],
      ['python3', '-c', 'print(1)'],
      ['python3', '-u', EXAMPLE_SCRIPT],
      ['python3', path.join(outside, 'evil.py')],
      ['python3', path.join(EXAMPLES, '..', 'bin', 'keel.js')],
      ['python3', path.join(allowedDir, 'link.py')],
      ['python3'],
      ['cp', EXAMPLE_SCRIPT, path.join(outside, 'copy')],
      [path.join(outside, 'no-such-program')],
    ]) {
      await assert.rejects(checkTrainerCommand(command, [EXAMPLES, allowedDir]), refusedCommand, command.join(' '));
    }
  });

  it('refuses an interpreter outside PATH even with an allowed script', async () => {
    const fake = path.join(outside, 'python3');
    symlinkSync('/usr/bin/python3', fake);
    await assert.rejects(checkTrainerCommand([fake, EXAMPLE_SCRIPT], [EXAMPLES]), refusedCommand);
  });

  it('an allowed program or bare name runs with any arguments; a missing one in an allowed folder is left to "not found"', async () => {
    await checkTrainerCommand(['/usr/bin/python3', '-c', 'print(1)'], ['/usr/bin/python3']);
    await checkTrainerCommand(['sh', '-c', 'id'], ['sh']);
    await checkTrainerCommand([path.join(allowedDir, 'missing.sh')], [allowedDir]);
    await checkTrainerCommand(['keel-no-such-program-on-path'], []);
  });
});

describe('KEEL_DATA_ROOTS: where file:// data is read', () => {
  const root = tempDir('keel-roots-');
  const outside = tempDir('keel-roots-outside-');
  writeFileSync(path.join(root, 'in.csv'), 'a\n1\n');
  writeFileSync(path.join(outside, 'out.csv'), 'a\n1\n');
  mkdirSync(path.join(root, 'sub'));
  symlinkSync(path.join(outside, 'out.csv'), path.join(root, 'link.csv'));
  const refused = (error: unknown) => {
    assert.ok(error instanceof InvalidInput, String(error));
    assert.equal(error.message, 'data.uri: file not under a folder allowed by KEEL_DATA_ROOTS');
    return true;
  };

  it('gives the real path of a file under a root', async () => {
    assert.equal(await resolveUnderRoots(path.join(root, 'sub', '..', 'in.csv'), [root], 'data.uri'), path.join(root, 'in.csv'));
  });

  it('refuses .. and symlinks out of the roots, and any path outside whether or not it exists', async () => {
    for (const file of [
      path.join(outside, 'out.csv'),
      `${root}/sub/../../${path.basename(outside)}/out.csv`,
      path.join(root, 'link.csv'),
      '/etc/passwd',
      '/etc/keel-no-such.csv',
      root,
    ]) {
      await assert.rejects(resolveUnderRoots(file, [root], 'data.uri'), refused, file);
    }
  });

  it('leaves a missing file under a root to be reported as missing', async () => {
    await assert.rejects(resolveUnderRoots(path.join(root, 'missing.csv'), [root], 'data.uri'), { code: 'ENOENT' });
  });
});

describe('owner-only folders', () => {
  it('are 0700 from the first one made down, whatever the umask', async () => {
    const base = tempDir('keel-owner-only-');
    const previous = process.umask(0);
    try {
      await mkdirOwnerOnly(path.join(base, 'a', 'b', 'c'));
    } finally {
      process.umask(previous);
    }
    for (const dir of ['a', 'a/b', 'a/b/c']) assert.equal(statSync(path.join(base, dir)).mode & 0o777, 0o700, dir);
  });
});

describe('worker configuration', () => {
  it('defaults to the bundled examples, data/ and KEEL_HOME, schemas public and churn', () => {
    const { worker } = loadConfig({ env: {}, cwd: '/srv/app' });
    assert.deepEqual(worker, {
      trainerCommands: [EXAMPLES],
      dataRoots: [path.join(ROOT, 'data'), '/srv/app/.keel'],
      dataSchemas: ['public', 'churn'],
    });
  });

  it('reads comma-separated lists, relative paths against the working folder, bare names as names', () => {
    const { worker } = loadConfig({
      env: { KEEL_TRAINER_COMMANDS: 'python3, ./trainers ,/opt/train.sh', KEEL_DATA_ROOTS: 'data,/mnt/lake', KEEL_DATA_SCHEMAS: 'public, ml' },
      cwd: '/srv/app',
    });
    assert.deepEqual(worker, {
      trainerCommands: ['python3', '/srv/app/trainers', '/opt/train.sh'],
      dataRoots: ['/srv/app/data', '/mnt/lake'],
      dataSchemas: ['public', 'ml'],
    });
  });

  it('refuses a schema list that is not identifiers, naming the variable', () => {
    assert.throws(() => loadConfig({ env: { KEEL_DATA_SCHEMAS: 'public; drop' }, cwd: '/srv/app' }), /KEEL_DATA_SCHEMAS/);
  });
});
