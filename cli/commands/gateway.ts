import { Command } from 'commander';
import { startGateway } from '../../api/server.js';
import { loadConfig } from '../../lib/config.js';

export function gatewayCommand(): Command {
  return new Command('gateway')
    .description('Run the HTTP gateway on KEEL_HOST:PORT until SIGINT/SIGTERM, then drain and stop')
    .action(async () => {
      const gateway = await startGateway(loadConfig());
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await gateway.close();
    });
}
