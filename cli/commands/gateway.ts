import { Command } from 'commander';
import { startGateway } from '../../api/server.js';
import { loadConfig } from '../../lib/config.js';

export function gatewayCommand(): Command {
  return new Command('gateway')
    .description(
      'Run the HTTP gateway on KEEL_HOST:PORT until SIGINT/SIGTERM, then drain: stop taking connections, ' +
        'finish requests in flight, flush the prediction log and stop (a second signal exits at once)',
    )
    .action(async () => {
      const gateway = await startGateway(loadConfig());
      await new Promise<void>((resolve) => {
        const stop = () => {
          resolve();
          // A second signal while draining: leave now, without waiting for the drain.
          process.once('SIGINT', () => process.exit(130));
          process.once('SIGTERM', () => process.exit(143));
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await gateway.close();
    });
}
