import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { WorkflowFailedError } from '@temporalio/client';
import { z } from 'zod';
import { loadConfig } from '../../lib/config.js';
import { InvalidInput, KeelError } from '../../lib/errors.js';
import type { TrainingPipelineProgress, TrainingPipelineResult } from '../../lib/schemas/training-pipeline-result.js';
import { trainingPipelineInputSchema, withRequester } from '../../lib/schemas/training-pipeline.js';
import { describeZodError } from '../../lib/validation.js';
import { knownServices, summarizeWorkflowFailure, type KnownService } from '../../lib/workflow-failures.js';
import { createDb } from '../../stores/db.js';
import { parseModelRef, resolveModelVersion } from '../../stores/registry.js';
import { connectTemporalClient } from '../../stores/temporal.js';
import { followTraining, startTrainingPipeline } from '../../stores/training-runs.js';

interface TrainOptions {
  json?: boolean;
  schema?: boolean;
  wait: boolean;
  reproduce?: string;
  taskQueue?: string;
  workflowId?: string;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('Run the trainingPipeline workflow on a JSON config (default {}: the churn example) and wait for its result')
    .argument('[config]', 'pipeline config JSON file (- for stdin); every field has a default')
    .option('--json', 'print the workflow result as JSON on stdout (progress stays on stderr)')
    .option('--schema', 'print the JSON Schema of the config and exit')
    .option('--no-wait', 'start (or join) the run, print its workflow id and return')
    .option('--reproduce <model@version>', "re-run a registered version's training from its lineage (same training set, trainer, seed)")
    .option('--task-queue <name>', 'task queue of the orchestration worker', 'keel')
    .option('--workflow-id <id>', 'override the train-<model>-<dataHash> workflow id')
    .action(async (file: string | undefined, options: TrainOptions) => {
      if (options.schema) {
        process.stdout.write(`${JSON.stringify(z.toJSONSchema(trainingPipelineInputSchema, { io: 'input', unrepresentable: 'any' }), null, 2)}\n`);
        return;
      }
      const keel = loadConfig();
      const db = createDb({ url: keel.database.url, applicationName: 'keel-cli' });
      try {
        const raw = options.reproduce ? await reproduceConfig(db, options.reproduce) : await readConfig(file);
        const parsed = trainingPipelineInputSchema.safeParse(withRequester(raw, `cli:${process.env.USER ?? 'unknown'}`));
        if (!parsed.success) {
          const problem = describeZodError(parsed.error);
          throw new InvalidInput(`config ${problem.message}`, problem.field);
        }
        const client = await connectTemporalClient(keel.temporal);
        try {
          const run = await startTrainingPipeline(client, db, parsed.data, {
            taskQueue: options.taskQueue,
            workflowId: options.workflowId,
            s3: { endpoint: keel.artifacts.s3Endpoint, region: keel.artifacts.region },
            access: keel.worker,
          });
          process.stderr.write(`trainingPipeline ${run.workflowId} (run ${run.runId})\n`);
          if (!options.wait) {
            if (options.json) process.stdout.write(`${JSON.stringify({ workflowId: run.workflowId, runId: run.runId })}\n`);
            return;
          }
          const result = await followTraining(run.handle, progressPrinter()).catch((error: unknown) => unwrapFailure(error, run.workflowId, knownServices(keel)));
          if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
          else process.stdout.write(summary(result));
        } finally {
          await client.connection.close();
        }
      } finally {
        await db.end();
      }
    });
}

async function readConfig(file: string | undefined): Promise<unknown> {
  if (!file) return {};
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (error) {
    throw new InvalidInput(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidInput(`${file} is not JSON: ${(error as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The config a version was trained with, pinned to the exact training set it used. */
async function reproduceConfig(db: ReturnType<typeof createDb>, ref: string): Promise<unknown> {
  const { model, version } = parseModelRef(ref);
  const found = await resolveModelVersion(db, model, version);
  const lineage = found.lineage as { config: Record<string, unknown>; dataset: { sha256: string }; holdout: { sha256: string } | null };
  const { requestedBy: _original, ...config } = lineage.config;
  return {
    ...config,
    data: { kind: 'dataset', sha256: lineage.dataset.sha256, ...(lineage.holdout ? { holdoutSha256: lineage.holdout.sha256 } : {}) },
  };
}

/** Prints each step once as it finishes (polling may see several at once), then trainer progress. */
function progressPrinter() {
  const shown = new Set<string>();
  let lastTrainer = '';
  return (progress: TrainingPipelineProgress): void => {
    for (const step of progress.steps) {
      if (step.status === 'pending' || step.status === 'running' || shown.has(step.name)) continue;
      shown.add(step.name);
      process.stderr.write(`  ${step.status === 'done' ? 'done   ' : step.status.padEnd(7)} ${step.name}\n`);
    }
    const t = progress.trainer;
    const trainer = t ? `  ...     ${t.step} ${t.done}/${t.total}${t.message ? ` ${t.message}` : ''}` : '';
    if (trainer && trainer !== lastTrainer) process.stderr.write(`${trainer}\n`);
    lastTrainer = trainer;
  };
}

/**
 * A run that refused its input is bad usage (exit 2); anything else a failure naming the step,
 * the kind of cause and the full message (the CLI's user is an operator).
 */
function unwrapFailure(error: unknown, workflowId: string, services: KnownService[]): never {
  if (!(error instanceof WorkflowFailedError)) throw error;
  const failure = summarizeWorkflowFailure(error.cause, services);
  if (failure.kind === 'badInput') throw failure.type === 'InvalidInput' ? new InvalidInput(failure.detail, failure.field) : new KeelError(failure.type, failure.detail, failure.field);
  const where = failure.step ? ` at step ${failure.step}` : '';
  const cause = failure.cause ? `${failure.cause}: ` : '';
  throw new KeelError(failure.type, `training ${failure.kind === 'canceled' ? failure.type.toLowerCase() : 'failed'}${where}: ${cause}${failure.detail} (workflow ${workflowId})`);
}

function summary(result: TrainingPipelineResult): string {
  const lines = [
    result.registered ? `registered ${result.model} v${result.version} (${result.aliases.join(', ')})` : `not registered: gates failed (${result.failedGates.join(', ')})`,
    `workflow ${result.workflowId}  data ${result.dataHash.slice(0, 12)}  rows ${result.dataset.rows} (train ${result.split.trainRows}, test ${result.split.testRows})`,
    `test AUC ${result.metrics.test.auc.toFixed(4)}  log loss ${result.metrics.test.logLoss.toFixed(4)}  ${result.metrics.cv ? `CV AUC ${result.metrics.cv.mean.toFixed(4)} ± ${result.metrics.cv.std.toFixed(4)}` : 'no CV'}`,
    'gates:',
    ...result.gates.map((g) => `  ${g.passed ? 'pass' : 'FAIL'}  ${g.gate.padEnd(26)} ${g.detail}`),
  ];
  return `${lines.join('\n')}\n`;
}
