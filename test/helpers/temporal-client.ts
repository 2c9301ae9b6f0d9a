import { Client, Connection } from '@temporalio/client';
import { testTemporal } from './services.js';

/** A Temporal client (pure JavaScript: no native runtime that would keep the test process alive) on the test server. */
export async function testClient(): Promise<Client> {
  const { address, namespace } = await testTemporal();
  return new Client({ connection: await Connection.connect({ address }), namespace });
}
