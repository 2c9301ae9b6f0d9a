/**
 * `keel routes`: shows and changes how a model's traffic is split (the same store the rollout
 * workflow writes). `keel routes set churn 3=0.9 4=0.1 --shadow 5` sends 90 % to v3, 10 % to v4
 * and shadows v5; every live gateway follows within about a second.
 */
import { Command } from 'commander';
import { loadConfig } from '../../lib/config.js';
import { InvalidInput } from '../../lib/errors.js';
import { createDb } from '../../stores/db.js';
import { clearRoutes, listGatewayInstances, readRouting, setRoutes, type RouteTargetInput } from '../../stores/routes.js';
import os from 'node:os';

export function routesCommand(): Command {
  const command = new Command('routes')
    .description('Show traffic routing (all models, or one) and the gateways with the generation they applied')
    .argument('[model]', 'one model')
    .option('--json', 'print JSON on stdout')
    .action(async (model: string | undefined, options: { json?: boolean }) => {
      const db = createDb({ url: loadConfig().database.url, applicationName: 'keel-cli' });
      try {
        const routing = await readRouting(db);
        const models = routing.models.filter((m) => !model || m.model === model);
        const gateways = await listGatewayInstances(db);
        if (options.json) return void process.stdout.write(`${JSON.stringify({ generation: routing.generation, models, gateways })}\n`);
        if (models.length === 0) process.stdout.write(model ? `${model} has no routes and no champion alias: it is not served\n` : 'no model is routed yet\n');
        for (const m of models) {
          const targets = [...m.live.map((t) => `v${t.version} ${t.variant} ${(t.weight * 100).toFixed(1)}%`), ...m.shadow.map((t) => `v${t.version} ${t.variant} shadow`)];
          process.stdout.write(`${m.model.padEnd(24)} ${m.implicit ? 'champion alias' : `generation ${m.generation}`}  ${targets.join(', ')}\n`);
        }
        for (const g of gateways.filter((g) => !g.stoppedAt)) process.stdout.write(`gateway ${g.id} applied generation ${g.appliedGeneration}, last seen ${g.lastSeen}\n`);
      } finally {
        await db.end();
      }
    });
  command
    .command('set')
    .description('Replace a model\'s routing: <version>=<weight> for live traffic (weights sum to 1)')
    .argument('<model>', 'model name')
    .argument('<targets...>', 'live targets as version=weight (e.g. 3=0.9 4=0.1), or a bare version for 100 %')
    .option('--shadow <versions...>', 'versions that score the same requests without answering')
    .option('--salt <salt>', 'salt of the sticky split (default: keep the current one)')
    .option('--json', 'print JSON on stdout')
    .action(async (model: string, specs: string[], _options: unknown, cmd: Command) => {
      // optsWithGlobals: `--json` is an option of `keel routes` too, and commander gives it to the parent.
      const options = cmd.optsWithGlobals<{ shadow?: string[]; salt?: string; json?: boolean }>();
      const targets: RouteTargetInput[] = specs.map((spec) => {
        const match = /^v?(\d+)(?:=([\d.]+))?$/.exec(spec);
        if (!match) throw new InvalidInput(`target ${JSON.stringify(spec)} is not version=weight (e.g. 3=0.9)`);
        return { version: Number(match[1]), mode: 'live', ...(match[2] !== undefined ? { weight: Number(match[2]) } : {}) };
      });
      for (const v of options.shadow ?? []) {
        const match = /^v?(\d+)$/.exec(v);
        if (!match) throw new InvalidInput(`--shadow ${JSON.stringify(v)} is not a version number`);
        targets.push({ version: Number(match[1]), mode: 'shadow' });
      }
      const db = createDb({ url: loadConfig().database.url, applicationName: 'keel-cli' });
      try {
        const result = await setRoutes(db, model, targets, { salt: options.salt, updatedBy: `cli:${os.userInfo().username}` });
        if (options.json) return void process.stdout.write(`${JSON.stringify({ model, ...result })}\n`);
        process.stdout.write(`${model}: generation ${result.generation}: ${result.targets.map((t) => `v${t.version} ${t.mode === 'live' ? `${(t.weight * 100).toFixed(1)}%` : 'shadow'}`).join(', ')}\n`);
      } finally {
        await db.end();
      }
    });
  command
    .command('clear')
    .description('Remove a model\'s explicit routing: its champion alias serves all traffic again')
    .argument('<model>', 'model name')
    .option('--json', 'print JSON on stdout')
    .action(async (model: string, _options: unknown, cmd: Command) => {
      const options = cmd.optsWithGlobals<{ json?: boolean }>();
      const db = createDb({ url: loadConfig().database.url, applicationName: 'keel-cli' });
      try {
        const { generation } = await clearRoutes(db, model);
        if (options.json) return void process.stdout.write(`${JSON.stringify({ model, generation })}\n`);
        process.stdout.write(`${model}: routing cleared (generation ${generation}); the champion alias serves it\n`);
      } finally {
        await db.end();
      }
    });
  return command;
}
