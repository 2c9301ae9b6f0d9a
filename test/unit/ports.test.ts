import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { StackError } from '../../lib/errors.js';
import { assertPortFree, freePort } from '../../infra/local/ports.js';

describe('assertPortFree', () => {
  it('passes for a free port', async () => {
    await assertPortFree(await freePort(), '127.0.0.1', 'gateway', 'PORT');
  });

  it('names the component and the setting when the port is taken', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const { port } = holder.address() as net.AddressInfo;
    try {
      await assert.rejects(assertPortFree(port, '127.0.0.1', 'Temporal Web UI', 'KEEL_TEMPORAL_UI_PORT'), (error: unknown) => {
        assert.ok(error instanceof StackError);
        assert.match(error.message, new RegExp(`^port ${port} \\(Temporal Web UI\\) is already in use`));
        assert.match(error.message, /set KEEL_TEMPORAL_UI_PORT to a free port$/);
        return true;
      });
    } finally {
      holder.close();
    }
  });
});
