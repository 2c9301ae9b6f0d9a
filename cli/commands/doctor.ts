import { Command, InvalidArgumentError } from 'commander';
import { runStackCheck } from '../../stores/temporal.js';
import { loadConfig } from '../../lib/config.js';

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('Run the stackCheck workflow: a worker on each task queue writes an artifact and a Postgres row')
    .option('--json', 'print the workflow result as JSON on stdout')
    .option('--timeout <seconds>', 'fail a queue with no worker after this long', (v) => parsePositiveInt(v, '--timeout'), 30)
    .action(async (options: { json?: boolean; timeout: number }) => {
      const result = await runStackCheck(loadConfig().temporal, options.timeout);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        for (const check of result.checks) {
          process.stdout.write(`ok  ${check.taskQueue.padEnd(14)} ${check.workerIdentity}  ${check.artifact.uri}\n`);
        }
      }
    });
}

function parsePositiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) {
    throw new InvalidArgumentError(`${flag} must be a positive whole number, got ${JSON.stringify(value)}`);
  }
  return n;
}
