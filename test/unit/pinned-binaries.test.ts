import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { StackError } from '../../lib/errors.js';
import { locateBinary, TEMPORAL_CLI } from '../../infra/local/pinned-binaries.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('keel-bin-test-');
function fakeExecutable(name: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, '#!/bin/sh\necho fake\n');
  chmodSync(file, 0o755);
  return file;
}

describe('locateBinary', () => {
  it('prefers the environment variable', async () => {
    const file = fakeExecutable('my-temporal');
    assert.equal(await locateBinary(TEMPORAL_CLI, { binDir: dir, env: { TEMPORAL_CLI_PATH: file, PATH: '' } }), file);
  });

  it('rejects an environment variable that points at nothing runnable', async () => {
    await assert.rejects(
      locateBinary(TEMPORAL_CLI, { binDir: dir, env: { TEMPORAL_CLI_PATH: '/no/such/temporal', PATH: '' } }),
      /TEMPORAL_CLI_PATH=\/no\/such\/temporal is not an executable file/,
    );
  });

  it('finds it on PATH next', async () => {
    const onPath = tempDir('keel-path-');
    const file = path.join(onPath, 'temporal');
    writeFileSync(file, '#!/bin/sh\n');
    chmodSync(file, 0o755);
    assert.equal(await locateBinary(TEMPORAL_CLI, { binDir: dir, env: { PATH: `/nonexistent:${onPath}` } }), file);
  });

  it('uses the cached build only when it was built for the pinned version', async () => {
    const binDir = tempDir('keel-cache-');
    const cached = path.join(binDir, 'temporal');
    writeFileSync(cached, '#!/bin/sh\n');
    chmodSync(cached, 0o755);
    writeFileSync(`${cached}.version`, 'v1.5.1\n');
    assert.equal(await locateBinary(TEMPORAL_CLI, { binDir, env: { PATH: '' } }), cached);
  });

  describe('with no Go and no reachable release archive', () => {
    const server = http.createServer((_req, res) => res.writeHead(404).end());
    after(() => server.close());

    it('fails with one line saying what to do', async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as { port: number };
      process.env.KEEL_TEMPORAL_RELEASE_BASE = `http://127.0.0.1:${port}`;
      try {
        const binDir = tempDir('keel-empty-');
        await assert.rejects(locateBinary(TEMPORAL_CLI, { binDir, env: { PATH: '' } }), (error: unknown) => {
          assert.ok(error instanceof StackError);
          assert.equal(error.message.split('\n').length, 1);
          assert.match(error.message, /cannot obtain temporal v1\.5\.1: Go is not installed; download failed \(HTTP 404\)/);
          assert.match(error.message, /set TEMPORAL_CLI_PATH/);
          return true;
        });
      } finally {
        delete process.env.KEEL_TEMPORAL_RELEASE_BASE;
      }
    });
  });
});
