import { Command } from 'commander';
import { StackError } from '../../lib/errors.js';
import { LocalStack, type LocalStackInfo } from '../../infra/local/stack.js';
import { loadConfig } from '../../lib/config.js';

export function upCommand(): Command {
  return new Command('up')
    .description('Start the whole local stack (Postgres, Temporal + Web UI, workers, gateway) and keep it running until Ctrl-C; a dead Postgres or Temporal is restarted')
    .action(async () => {
      const config = loadConfig();
      const progress = (line: string) => process.stderr.write(`keel up: ${line}\n`);
      const stack = new LocalStack(config, progress);
      let signalled: NodeJS.Signals | undefined;
      const stopOn = (signal: NodeJS.Signals) => {
        if (signalled) return;
        signalled = signal;
        progress(`${signal} received, stopping the gateway, workers, Temporal and Postgres`);
        void stack.stop();
      };
      // A closed terminal or pipe must not kill the launcher before it has stopped what it started.
      process.stdout.on('error', () => undefined);
      process.stderr.on('error', () => undefined);
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stopOn);
      process.on('exit', () => stack.stopNow());
      try {
        let info: LocalStackInfo;
        try {
          info = await stack.start();
        } catch (error) {
          // Interrupted while starting: what had started is stopped by now.
          if (signalled) throw new StackError(`start interrupted by ${signalled}; everything it had started is stopped`);
          throw error;
        }
        process.stdout.write(describeStack(info));
        const failure = await stack.supervise();
        await stack.stop();
        if (failure !== undefined && !signalled) throw new StackError(failure);
        progress('stopped; data is kept for the next start');
      } finally {
        // Everything is stopped: work an aborted start left behind (a readiness poll, a Temporal
        // long poll) must not keep the launcher alive. The CLI sets the exit code before this fires.
        setTimeout(() => process.exit(), 2_000).unref();
      }
    });
}

function describeStack(info: LocalStackInfo): string {
  const lines = [
    '',
    'Keel is running:',
    `  Temporal        ${info.temporalAddress}`,
    ...(info.temporalUi ? [`  Temporal Web UI ${info.temporalUi}`] : []),
    `  Postgres        ${info.databaseUrl}${info.postgresData ? `  (data: ${info.postgresData})` : ''}`,
    `  Artifacts       ${info.artifacts}`,
    `  Gateway         ${info.gateway}  (/healthz, /readyz, /metrics)`,
    `  Workers         task queues keel, keel-training (stack check ${info.stackCheck.workflowId} passed)`,
    `  Logs            ${info.logs}`,
    '',
    'Press Ctrl-C to stop everything; data is kept for the next start.',
    '',
  ];
  return `${lines.join('\n')}\n`;
}
