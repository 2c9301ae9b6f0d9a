/**
 * Request headers and the client socket as the gateway's hot path reads them. Behind
 * @hono/node-server they come from Node's own parsed request (`c.env.incoming`): `c.req.header()`
 * goes through a web-Headers facade that validates the name with a regular expression on every
 * call, and `getConnInfo()` builds an object per call; a prediction reads about eight headers.
 * Under `app.request()` (tests, no socket) they come from the web Request.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Context } from 'hono';

function incomingOf(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
}

/** A header by its lower-case name; repeated headers joined with ", " as Node and fetch do. */
export function requestHeader(c: Context, lowerName: string): string | undefined {
  const incoming = incomingOf(c);
  if (incoming === undefined) return c.req.header(lowerName);
  const value = incoming.headers[lowerName];
  return value === undefined || typeof value === 'string' ? value : value.join(', ');
}

/** The client's TCP socket; undefined when the request did not come through one. */
export function clientSocket(c: Context): Socket | undefined {
  return incomingOf(c)?.socket;
}
