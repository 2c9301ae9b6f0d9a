import { userInfo } from 'node:os';
import { Command } from 'commander';
import { ROLES } from '../../lib/roles.js';
import { loadConfig } from '../../lib/config.js';
import { InvalidInput } from '../../lib/errors.js';
import type { ApiKey } from '../../stores/api-keys.js';
import { createApiKey, listApiKeys, parseNewApiKey, revokeApiKey } from '../../stores/api-keys.js';
import { createDb, type Db } from '../../stores/db.js';

/** `keel keys create|list|revoke`: gateway API keys. The token is printed once, at creation. */
export function keysCommand(): Command {
  const keys = new Command('keys')
    .description(`Manage gateway API keys (roles: ${ROLES.join(', ')})`)
    .action(() => {
      throw new InvalidInput('keys needs a subcommand: create, list or revoke (see keel keys --help)');
    });
  keys.addCommand(
    new Command('create')
      .description('Create an API key and print its token once (stdout); it cannot be shown again')
      .requiredOption('--name <name>', 'what the key is for, e.g. the calling service')
      .option('--role <role>', `a role to grant, repeatable or comma-separated (${ROLES.join(', ')})`, collect)
      .option('--json', 'print JSON (with the token) on stdout')
      .action(async (options: { name: string; role?: string[]; json?: boolean }) => {
        const input = parseNewApiKey({ name: options.name, roles: options.role ?? [], createdBy: currentUser() });
        const key = await withDb((db) => createApiKey(db, input));
        const warning = 'store this token now: it cannot be shown again';
        if (options.json) process.stdout.write(`${JSON.stringify(keyJson(key, { token: key.token }))}\n`);
        else process.stdout.write(`${key.token}\n`);
        process.stderr.write(`created API key ${key.id} (${key.name}; roles ${key.roles.join(', ')}): ${warning}\n`);
      }),
  );
  keys.addCommand(
    new Command('list')
      .description('List API keys (never their secrets), revoked ones included')
      .option('--json', 'print JSON on stdout')
      .action(async (options: { json?: boolean }) => {
        const all = await withDb((db) => listApiKeys(db));
        if (options.json) return void process.stdout.write(`${JSON.stringify(all.map((k) => keyJson(k)))}\n`);
        if (all.length === 0) return void process.stdout.write('no API keys yet (create one with keel keys create --name <name> --role <role>)\n');
        process.stdout.write(`${'ID'.padEnd(14)}${'NAME'.padEnd(24)}${'ROLES'.padEnd(30)}${'STATUS'.padEnd(9)}${'CREATED'.padEnd(22)}LAST USED\n`);
        for (const k of all) {
          const status = k.revokedAt ? 'revoked' : 'active';
          process.stdout.write(`${k.id.padEnd(14)}${k.name.padEnd(24)}${k.roles.join(',').padEnd(30)}${status.padEnd(9)}${shortTime(k.createdAt).padEnd(22)}${k.lastUsedAt ? shortTime(k.lastUsedAt) : '-'}\n`);
        }
      }),
  );
  keys.addCommand(
    new Command('revoke')
      .description('Revoke an API key; every gateway rejects it within 5 s. Revoking twice is harmless')
      .argument('<id>', 'the key id (keel keys list shows it)')
      .option('--json', 'print JSON on stdout')
      .action(async (id: string, options: { json?: boolean }) => {
        const key = await withDb((db) => revokeApiKey(db, id));
        if (options.json) return void process.stdout.write(`${JSON.stringify(keyJson(key, { alreadyRevoked: key.alreadyRevoked }))}\n`);
        process.stdout.write(
          key.alreadyRevoked
            ? `API key ${key.id} (${key.name}) was already revoked at ${key.revokedAt.toISOString()}\n`
            : `revoked API key ${key.id} (${key.name}); gateways reject it within 5 s\n`,
        );
      }),
  );
  for (const command of keys.commands) command.exitOverride().configureOutput({ outputError: () => undefined });
  return keys;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), ...value.split(',').map((r) => r.trim()).filter(Boolean)];
}

async function withDb<T>(work: (db: Db) => Promise<T>): Promise<T> {
  const db = createDb({ url: loadConfig().database.url, applicationName: 'keel-cli', max: 1 });
  try {
    return await work(db);
  } finally {
    await db.end();
  }
}

function currentUser(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

function keyJson(k: ApiKey, extra: Record<string, unknown> = {}) {
  return {
    id: k.id,
    name: k.name,
    roles: k.roles,
    createdAt: k.createdAt.toISOString(),
    createdBy: k.createdBy,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
    ...extra,
  };
}

function shortTime(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ') + 'Z';
}
