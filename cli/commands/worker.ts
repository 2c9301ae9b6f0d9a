import { Command, Option } from 'commander';
import { TASK_QUEUES } from '../../lib/task-queues.js';
import { runWorkers } from '../../workers/main.js';
import { loadConfig } from '../../lib/config.js';

export function workerCommand(): Command {
  return new Command('worker')
    .description('Run Temporal workers (both task queues by default) against TEMPORAL_ADDRESS, DATABASE_URL and KEEL_ARTIFACTS')
    .addOption(new Option('--queue <name...>', `task queues to poll (default: ${TASK_QUEUES.join(' ')})`).default([...TASK_QUEUES]))
    .action(async (options: { queue: string[] }) => {
      await runWorkers({ config: loadConfig(), queues: options.queue });
    });
}
