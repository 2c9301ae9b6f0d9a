import { Command } from 'commander';
import { startGateway } from '../../api/server.js';
import { configFromEnv } from '../main.js';

export function gatewayCommand(): Command {
  return new Command('gateway')
    .description('Run the HTTP gateway on KEEL_HOST:PORT until SIGINT/SIGTERM, then drain and stop')
    .action(async () => {
      const gateway = await startGateway(configFromEnv());
      process.stderr.write(`keel gateway: listening on ${gateway.url}\n`);
      const signal = await new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      process.stderr.write(`keel gateway: ${signal} received, draining\n`);
      await gateway.close();
    });
}
