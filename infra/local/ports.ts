import net from 'node:net';
import { StackError } from '../../lib/errors.js';

/** Resolves when `port` on `host` can be bound, else throws a one-line StackError naming the setting to change. */
export async function assertPortFree(port: number, host: string, what: string, setting: string): Promise<void> {
  const error = await tryListen(port, host);
  if (error?.code === 'EADDRINUSE') {
    throw new StackError(
      `port ${port} (${what}) is already in use on ${host}: stop whatever holds it (is another "keel up" running?) or set ${setting} to a free port`,
    );
  }
  if (error) throw new StackError(`cannot bind ${host}:${port} for ${what}: ${error.message}`);
}

/** Whether `port` on `host` can be bound right now. */
export async function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return (await tryListen(port, host)) === null;
}

function tryListen(port: number, host: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

/** A port the OS says is free right now on loopback. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `probe` until it resolves true or `timeoutMs` passes. */
export async function waitUntil(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new StackError(`${what} did not become ready within ${Math.round(timeoutMs / 1000)} s`);
}
