import { Command, CommanderError } from 'commander';
import { InvalidInput, KeelError } from '../lib/errors.js';
import { upCommand } from './commands/up.js';
import { workerCommand } from './commands/worker.js';
import { gatewayCommand } from './commands/gateway.js';
import { migrateCommand } from './commands/migrate.js';
import { doctorCommand } from './commands/doctor.js';
import { lineageCommand, modelsCommand } from './commands/models.js';
import { trainCommand } from './commands/train.js';
import { featuresCommand } from './commands/features.js';
import { keysCommand } from './commands/keys.js';
import { predictCommand } from './commands/predict.js';
import { routesCommand } from './commands/routes.js';
import { EXIT } from './exit-codes.js';

export function buildProgram(): Command {
  const program = new Command('keel')
    .description('Workflow-as-code MLOps on Temporal: training pipelines, gated rollouts, drift-triggered retraining.')
    .version('0.1.0')
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  program.addCommand(upCommand());
  program.addCommand(workerCommand());
  program.addCommand(gatewayCommand());
  program.addCommand(migrateCommand());
  program.addCommand(doctorCommand());
  program.addCommand(trainCommand());
  program.addCommand(modelsCommand());
  program.addCommand(lineageCommand());
  program.addCommand(featuresCommand());
  program.addCommand(keysCommand());
  program.addCommand(predictCommand());
  program.addCommand(routesCommand());
  for (const command of program.commands) command.exitOverride().configureOutput({ outputError: () => undefined });
  return program;
}

/** Runs the CLI and returns the exit code: 0 ok, 1 failure, 2 bad usage. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return EXIT.ok; // --help, --version
      process.stderr.write(`keel: ${error.message.replace(/^error: /, '')} (see keel --help)\n`);
      return EXIT.usage;
    }
    if (error instanceof InvalidInput || (error instanceof KeelError && error.code === 'NotFound')) {
      process.stderr.write(`keel: ${error.message}\n`);
      return EXIT.usage;
    }
    const message = error instanceof KeelError || error instanceof Error ? error.message : String(error);
    process.stderr.write(`keel: ${message}\n`);
    return EXIT.failure;
  }
}
