import { Command } from 'commander';
import { redactUrl } from '../../stores/db.js';
import { migrate } from '../../stores/migrate.js';
import { loadConfig } from '../../lib/config.js';

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('Apply pending SQL migrations to DATABASE_URL (keel up does this itself)')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (options: { json?: boolean }) => {
      const { database } = loadConfig();
      const result = await migrate(database.url);
      const applied = result.applied.map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ applied, alreadyApplied: result.alreadyApplied })}\n`);
      } else {
        process.stdout.write(
          `${redactUrl(database.url)}: ${applied.length} applied${applied.length ? ` (${applied.join(', ')})` : ''}, ${result.alreadyApplied} already in place\n`,
        );
      }
    });
}
