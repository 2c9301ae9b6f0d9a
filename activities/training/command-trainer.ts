/**
 * The `command` trainer kind ("bring your own trainer"): runs the team's own program on the
 * training set and takes back the `model.onnx` it writes, which Keel then evaluates, registers
 * and serves like its own exports.
 *
 * What the program gets, in a fresh working directory made under `workDir` (also its cwd):
 *
 * | variable | file |
 * |---|---|
 * | `KEEL_TRAIN` | `train.csv`: the training rows, header first; null = empty cell; the label as 0/1 |
 * | `KEEL_TRAIN_PARQUET` | `train.parquet`: the same rows with their types |
 * | `KEEL_PARAMS` | `params.json`: the trainer's `params` object as given in the pipeline config |
 * | `KEEL_SCHEMA` | `schema.json`: columns and types, the label, the feature order and encoding, and the model signature expected |
 * | `KEEL_OUTPUT` | a directory: the program must write `model.onnx` there |
 * | `KEEL_WORK_DIR` | the working directory itself |
 *
 * The program runs without a shell, in its own process group (so a stop reaches its children
 * too), with the worker's environment minus the credentials of Keel's own stores (see
 * `WITHHELD_ENV`), plus `PYTHONUNBUFFERED=1`, plus `env`. Every line it prints is passed to `log`;
 * `heartbeat` is called every `heartbeatMs` with the elapsed time and the last stderr lines.
 *
 * Relative paths in `command` are taken relative to `cwd` (default: the worker's working
 * directory, `process.cwd()`), not to the fresh working directory the program runs in:
 * - the program (`command[0]`): when it contains a `/` (`./train.sh`, `bin/train`) it is made
 *   absolute; a bare name (`python3`) is looked up on PATH;
 * - every argument that does not start with `-` and names an existing file or directory relative
 *   to `cwd` is made absolute, so `["python3", "examples/python-trainer/train.py"]` works. Other
 *   arguments (`-m`, `pkg.module`, `0.5`) pass unchanged; write paths as separate arguments
 *   (`--config conf.yaml`, not `--config=conf.yaml`).
 *
 * Only what `allowedCommands` (the worker's `KEEL_TRAINER_COMMANDS`) permits runs: anything else
 * is a non-retryable `InvalidInput` naming the rule, before any file is written.
 *
 * The working directory and everything Keel writes in it are owner-only (0700 / 0600).
 *
 * Failures, each with the last stderr lines in the message (stdout's when stderr is empty):
 * - the program cannot be started (not found, not executable), exits non-zero or is killed by a
 *   signal it did not get from Keel, writes no `model.onnx`, or writes one that onnxruntime cannot
 *   load or whose signature does not fit the training set → `InvalidInput` (not retryable: the same
 *   program on the same data would fail the same way);
 * - it runs longer than `timeoutMs` → it is stopped (SIGTERM to its process group, SIGKILL after
 *   `killGraceMs`) and `TrainingTimeout` is thrown;
 * - `signal` aborts (activity cancellation) → it is stopped the same way and the abort reason is
 *   rethrown.
 *
 * When the program exits, anything it left running in its process group is killed. The working
 * directory is removed afterwards whatever the outcome (training sets can be large and a worker
 * runs many jobs; the error message carries the diagnostics); `keepWorkDir: 'on-failure'` or
 * `'always'` keeps it for debugging, and the failure message then names it.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { featureSpecFor, labelsFromColumn } from '../../lib/data/features.js';
import type { FeatureColumnSpec, FeatureSpec } from '../../lib/data/features.js';
import type { Column, Table } from '../../lib/data/table.js';
import { getColumn, schemaOf, withColumn } from '../../lib/data/table.js';
import { InvalidInput, KeelError } from '../../lib/errors.js';
import { INPUT_NAME, LABEL_OUTPUT, PROBABILITIES_OUTPUT } from '../../lib/onnx/builder.js';
import { loadOnnxScorer } from '../../lib/onnx/scorer.js';
import { mkdirOwnerOnly, OWNER_ONLY_DIR } from '../../lib/owner-only.js';
import { checkTrainerCommand } from '../../lib/trainer-commands.js';
import { writeTable } from '../../stores/datasets.js';

/** The training command ran longer than its timeout and was stopped. */
export class TrainingTimeout extends KeelError {
  constructor(
    message: string,
    readonly timeoutMs: number,
  ) {
    super('TrainingTimeout', message);
  }
}

export interface CommandTrainerHeartbeat {
  /** Milliseconds since `runCommandTrainer` started. */
  elapsedMs: number;
  /** The last stderr lines so far, oldest first. */
  stderrTail: string[];
}

export interface CommandTrainerOptions {
  /** Program and arguments, run without a shell. */
  command: readonly string[];
  /** What the worker's operator allows to run (`KEEL_TRAINER_COMMANDS`, see lib/trainer-commands.ts); anything else is refused before it starts. */
  allowedCommands: readonly string[];
  /** Written to params.json as given. */
  params: Record<string, unknown>;
  /** The training rows: the label, the features and any other columns (written as they are). */
  train: Table;
  label: string;
  /** The model's input columns, in order. */
  featureNames: readonly string[];
  /**
   * The encoding the model's input will be fed with at evaluation and serving (category
   * dictionaries above all), written to schema.json; its features must be `featureNames`.
   * Default: `featureSpecFor(train, featureNames)`. Pass the pipeline's spec when its
   * dictionaries come from more rows than `train` has.
   */
  featureSpec?: FeatureSpec;
  /** A fresh directory is made inside this one for each run. */
  workDir: string;
  timeoutMs: number;
  /** Extra environment for the program (applied after the worker's, before the KEEL_* variables). */
  env?: Record<string, string>;
  /** The directory relative paths in `command` resolve against; default `process.cwd()`. */
  cwd?: string;
  signal?: AbortSignal;
  heartbeat: (details: CommandTrainerHeartbeat) => void;
  /** Each line the program prints, prefixed with `trainer[stdout] ` or `trainer[stderr] `; also a few lines of Keel's own. */
  log: (line: string) => void;
  /** Default 2000. */
  heartbeatMs?: number;
  /** Between SIGTERM and SIGKILL when stopping the program; default 10 000. */
  killGraceMs?: number;
  /** Default `never`. */
  keepWorkDir?: 'never' | 'on-failure' | 'always';
  /** Stderr lines kept for heartbeats and error messages; default 20. */
  tailLines?: number;
}

export interface CommandTrainerResult {
  /** The bytes of model.onnx, already checked to load and fit the features. */
  onnx: Uint8Array;
  stderrTail: string[];
  /** Wall time of the whole run: writing the inputs, the program, checking the model. */
  elapsedMs: number;
}

/** Worker variables the program does not inherit: the credentials of Keel's own stores. */
export const WITHHELD_ENV: readonly string[] = [
  'DATABASE_URL',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_CERT',
  'TEMPORAL_TLS_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
];

export const SCHEMA_VERSION = 1;
const MODEL_FILE = 'model.onnx';
const MAX_LINE_CHARS = 4000;

/** `command` with its relative paths resolved against `base`, as described at the top of this file. */
export function resolveCommand(command: readonly string[], base: string): string[] {
  const [program, ...args] = command;
  if (program === undefined || program === '') throw new InvalidInput('training command is empty: give at least the program to run', 'command');
  const resolvedProgram = !path.isAbsolute(program) && program.includes('/') ? path.resolve(base, program) : program;
  return [
    resolvedProgram,
    ...args.map((arg) => (arg !== '' && !arg.startsWith('-') && !path.isAbsolute(arg) && existsSync(path.resolve(base, arg)) ? path.resolve(base, arg) : arg)),
  ];
}

export async function runCommandTrainer(options: CommandTrainerOptions): Promise<CommandTrainerResult> {
  const started = Date.now();
  const elapsed = () => Date.now() - started;
  const { signal } = options;
  signal?.throwIfAborted();
  const command = resolveCommand(options.command, options.cwd ?? process.cwd());
  await checkTrainerCommand(command, options.allowedCommands);
  // For messages: the command as run, long inline scripts shortened.
  const shown = command.map((part) => (part.length > 120 ? `${part.slice(0, 117)}...` : part)).join(' ');
  const train = prepareTable(options.train, options.label, options.featureNames);
  const specNames = options.featureSpec?.features.map((feature) => feature.name);
  if (specNames && (specNames.length !== options.featureNames.length || specNames.some((name, i) => name !== options.featureNames[i]))) {
    throw new InvalidInput(`featureSpec lists ${specNames.join(', ')}; featureNames are ${options.featureNames.join(', ')}`, 'featureSpec');
  }
  const tail = { stderr: new Tail(options.tailLines ?? 20), stdout: new Tail(options.tailLines ?? 20) };

  await mkdir(options.workDir, { recursive: true });
  const dir = await mkdtemp(path.join(path.resolve(options.workDir), 'keel-train-'));
  // Owner-only whatever the umask: the folder holds a copy of the training data.
  await chmod(dir, OWNER_ONLY_DIR);
  const outputDir = path.join(dir, 'output');
  let succeeded = false;
  const heartbeatTimer = setInterval(() => {
    try {
      options.heartbeat({ elapsedMs: elapsed(), stderrTail: tail.stderr.lines() });
    } catch (error) {
      options.log(`keel: heartbeat failed: ${(error as Error).message}`);
    }
  }, options.heartbeatMs ?? 2000);
  try {
    const files = await writeInputs(dir, outputDir, train, options);
    signal?.throwIfAborted();
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of Object.keys(env)) if (WITHHELD_ENV.includes(name) || name.startsWith('KEEL_')) delete env[name];
    Object.assign(env, { PYTHONUNBUFFERED: '1' }, options.env ?? {}, {
      KEEL_TRAIN: files.csv,
      KEEL_TRAIN_PARQUET: files.parquet,
      KEEL_PARAMS: files.params,
      KEEL_SCHEMA: files.schema,
      KEEL_OUTPUT: outputDir,
      KEEL_WORK_DIR: dir,
    });

    options.log(`keel: running ${shown} in ${dir}`);
    const outcome = await runProcess(command, dir, env, options, tail);
    const withTail = (message: string) => message + describeTail(tail);

    if (outcome.kind === 'spawn-error') {
      const code = outcome.error.code;
      const why =
        code === 'ENOENT'
          ? `training command not found: ${command[0]}` + (command[0]!.includes('/') ? '' : ' (looked up on PATH)')
          : code === 'EACCES'
            ? `training command is not executable: ${command[0]}`
            : `training command could not be started (${shown}): ${outcome.error.message}`;
      throw new InvalidInput(why, 'command');
    }
    if (outcome.kind === 'stopped') {
      if (outcome.reason === 'timeout') {
        throw new TrainingTimeout(
          withTail(`training command timed out after ${formatSeconds(options.timeoutMs)} and was stopped (${shown})`),
          options.timeoutMs,
        );
      }
      throw signal?.reason ?? new Error('training command was cancelled');
    }
    if (outcome.signal !== null) {
      throw new InvalidInput(
        withTail(`training command was killed by ${outcome.signal}${outcome.signal === 'SIGKILL' ? ' (out of memory?)' : ''} (${shown})`),
        'command',
      );
    }
    if (outcome.code !== 0) throw new InvalidInput(withTail(`training command exited with code ${outcome.code} (${shown})`), 'command');

    const onnx = await readModel(dir, outputDir, withTail);
    try {
      const scorer = await loadOnnxScorer(onnx, options.featureNames, { label: `${MODEL_FILE} written by the training command` });
      await scorer.release();
    } catch (error) {
      if (error instanceof InvalidInput) throw new InvalidInput(withTail(error.message), 'command');
      throw error;
    }
    succeeded = true;
    options.log(`keel: ${MODEL_FILE} accepted (${onnx.length} bytes, ${formatSeconds(elapsed())})`);
    return { onnx, stderrTail: tail.stderr.lines(), elapsedMs: elapsed() };
  } catch (error) {
    const keep = options.keepWorkDir === 'always' || options.keepWorkDir === 'on-failure';
    if (keep && error instanceof KeelError) error.message += `\n(work dir kept at ${dir})`;
    throw error;
  } finally {
    clearInterval(heartbeatTimer);
    const keep = options.keepWorkDir === 'always' || (options.keepWorkDir === 'on-failure' && !succeeded);
    if (keep) options.log(`keel: work dir kept at ${dir}`);
    else await rm(dir, { recursive: true, force: true });
  }
}

/** The table as the program sees it: label and features checked, the label as 0/1 numbers. */
function prepareTable(train: Table, label: string, featureNames: readonly string[]): Table {
  if (featureNames.length === 0) throw new InvalidInput('the command trainer needs at least one feature', 'features');
  const seen = new Set<string>();
  for (const name of featureNames) {
    if (name === label) throw new InvalidInput(`label column ${label} cannot also be a feature`, label);
    if (seen.has(name)) throw new InvalidInput(`feature column ${name} is listed twice`, name);
    seen.add(name);
    getColumn(train, name);
  }
  const y = labelsFromColumn(train, label);
  const labelColumn: Column = { name: label, type: 'number', values: Float64Array.from(y) };
  return withColumn(train, labelColumn);
}

async function writeInputs(
  dir: string,
  outputDir: string,
  train: Table,
  options: CommandTrainerOptions,
): Promise<{ csv: string; parquet: string; params: string; schema: string }> {
  const files = {
    csv: path.join(dir, 'train.csv'),
    parquet: path.join(dir, 'train.parquet'),
    params: path.join(dir, 'params.json'),
    schema: path.join(dir, 'schema.json'),
  };
  await mkdirOwnerOnly(outputDir);
  await writeTable(files.csv, train);
  options.signal?.throwIfAborted();
  await writeTable(files.parquet, train);
  await writeFile(files.params, `${JSON.stringify(options.params ?? {}, null, 2)}\n`);
  const features = options.featureSpec?.features ?? featureSpecFor(train, options.featureNames).features;
  await writeFile(files.schema, `${JSON.stringify(trainingSchema(train, options.label, features, outputDir), null, 2)}\n`);
  for (const file of Object.values(files)) await chmod(file, 0o600);
  return files;
}

/** schema.json: what the program gets and what Keel expects back. */
export function trainingSchema(train: Table, label: string, features: FeatureColumnSpec[], outputDir: string) {
  const f = features.length;
  return {
    version: SCHEMA_VERSION,
    rows: train.rowCount,
    columns: schemaOf(train),
    label: { name: label, values: [0, 1], description: 'the label column holds 0 or 1 in both files' },
    features: features.map((feature) => ({ ...feature, encoding: ENCODING[feature.type] })),
    featureNames: features.map((feature) => feature.name),
    files: { csv: 'train.csv', parquet: 'train.parquet', params: 'params.json', output: outputDir },
    model: {
      path: path.join(outputDir, MODEL_FILE),
      format: 'onnx',
      inputs: [
        {
          name: INPUT_NAME,
          dtype: 'float32',
          shape: [-1, f],
          features: features.map((feature) => feature.name),
          description: `one float tensor [N, ${f}] (first dimension symbolic) with the features in this order, each encoded as its "encoding" says; NaN = missing. Any input name is accepted, "${INPUT_NAME}" is Keel's own.`,
        },
      ],
      outputs: [
        {
          name: PROBABILITIES_OUTPUT,
          dtype: 'float32',
          shape: [-1, 2],
          description: `[P(y = 0), P(y = 1)]. Keel reads the float output named "${PROBABILITIES_OUTPUT}", else the only float output of shape [N, 2] (column 1), else of shape [N] or [N, 1] (P(y = 1)).`,
        },
        { name: LABEL_OUTPUT, dtype: 'int64', shape: [-1], description: 'optional: the predicted class, 1 when P(y = 1) > 0.5' },
      ],
      metadata: {
        feature_names: 'optional: a JSON array of the feature names in input order; when present it must equal featureNames',
      },
    },
  };
}

const ENCODING: Record<FeatureColumnSpec['type'], string> = {
  number: 'the value as it is',
  boolean: '1 for true, 0 for false (true/false in the CSV)',
  timestamp: 'epoch milliseconds, UTC (ISO 8601 text in the CSV)',
  category: 'the index of the value in "categories" (the text itself in the CSV); a value not listed is NaN',
};

async function readModel(dir: string, outputDir: string, withTail: (message: string) => string): Promise<Uint8Array> {
  const file = path.join(outputDir, MODEL_FILE);
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    const found = await readdir(outputDir).catch(() => [] as string[]);
    const misplaced = existsSync(path.join(dir, MODEL_FILE)) ? `; there is a ${MODEL_FILE} in the working directory, write it to $KEEL_OUTPUT instead` : '';
    throw new InvalidInput(
      withTail(
        `training command exited with code 0 but wrote no ${MODEL_FILE} to $KEEL_OUTPUT (${outputDir}; ` +
          `${found.length === 0 ? 'it is empty' : `it holds ${found.slice(0, 10).join(', ')}`})${misplaced}`,
      ),
      'command',
    );
  }
  const bytes = await readFile(file);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

type ProcessOutcome =
  | { kind: 'spawn-error'; error: NodeJS.ErrnoException }
  | { kind: 'stopped'; reason: 'timeout' | 'abort' }
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null };

/** Process groups still running, killed if the worker process exits first. */
const liveGroups = new Set<number>();
let exitHookInstalled = false;

function trackGroup(pid: number): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const group of liveGroups) killGroup(group, 'SIGKILL');
    });
  }
  liveGroups.add(pid);
}

function killGroup(pid: number, signal: NodeJS.Signals, child?: ChildProcess): void {
  try {
    process.kill(-pid, signal);
  } catch (error) {
    // ESRCH: the whole group is gone already. Anything else: at least the program itself.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') child?.kill(signal);
  }
}

async function runProcess(
  command: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  options: CommandTrainerOptions,
  tail: { stderr: Tail; stdout: Tail },
): Promise<ProcessOutcome> {
  let child: ChildProcess;
  try {
    child = spawn(command[0]!, command.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    return { kind: 'spawn-error', error: error as NodeJS.ErrnoException };
  }
  const streams = [
    { stream: child.stdout!, name: 'stdout' as const },
    { stream: child.stderr!, name: 'stderr' as const },
  ].map(({ stream, name }) => {
    const splitter = new LineSplitter((line) => {
      tail[name].push(line);
      options.log(`trainer[${name}] ${line}`);
    });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => splitter.push(chunk));
    return new Promise<void>((resolve) => {
      stream.once('close', () => {
        splitter.flush();
        resolve();
      });
    });
  });

  let stopReason: 'timeout' | 'abort' | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  const stop = (reason: 'timeout' | 'abort') => {
    if (stopReason !== undefined || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    stopReason = reason;
    options.log(`keel: ${reason === 'timeout' ? `timeout after ${formatSeconds(options.timeoutMs)}` : 'cancelled'}: stopping the training command (SIGTERM)`);
    killGroup(child.pid, 'SIGTERM', child);
    graceTimer = setTimeout(() => {
      options.log(`keel: the training command is still running ${formatSeconds(options.killGraceMs ?? 10_000)} after SIGTERM: SIGKILL`);
      killGroup(child.pid!, 'SIGKILL', child);
    }, options.killGraceMs ?? 10_000);
  };
  const timeoutTimer = setTimeout(() => stop('timeout'), options.timeoutMs);
  const onAbort = () => stop('abort');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (child.pid !== undefined) trackGroup(child.pid);
  if (options.signal?.aborted) stop('abort');

  try {
    const ended = await new Promise<ProcessOutcome>((resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => {
        // After a successful start 'error' only reports a failed kill; 'exit' still follows.
        if (child.pid === undefined) resolve({ kind: 'spawn-error', error });
      });
      child.once('exit', (code, signal) => resolve({ kind: 'exited', code, signal }));
    });
    if (child.pid !== undefined) {
      // Whatever the program left behind in its group goes with it.
      killGroup(child.pid, 'SIGKILL');
      liveGroups.delete(child.pid);
    }
    // Let the last output arrive; a process that left the group may hold the pipes open, so not for long.
    let pipesTimer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(streams), new Promise<void>((resolve) => (pipesTimer = setTimeout(resolve, 2000)))]);
    clearTimeout(pipesTimer);
    child.stdout?.destroy();
    child.stderr?.destroy();
    if (ended.kind === 'exited' && stopReason !== undefined) return { kind: 'stopped', reason: stopReason };
    if (ended.kind === 'exited' && options.signal?.aborted) return { kind: 'stopped', reason: 'abort' };
    return ended;
  } finally {
    clearTimeout(timeoutTimer);
    clearTimeout(graceTimer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/** Splits a text stream into lines (\n, \r\n or a lone \r, as progress bars write); very long lines are cut. */
class LineSplitter {
  private pending = '';

  constructor(private readonly emit: (line: string) => void) {}

  push(chunk: string): void {
    const parts = (this.pending + chunk).split(/\r\n|\n|\r/);
    this.pending = parts.pop()!;
    for (const part of parts) this.emit(cut(part));
    if (this.pending.length > MAX_LINE_CHARS) {
      this.emit(cut(this.pending));
      this.pending = '';
    }
  }

  flush(): void {
    if (this.pending !== '') this.emit(cut(this.pending));
    this.pending = '';
  }
}

function cut(line: string): string {
  return line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}… (${line.length - MAX_LINE_CHARS} more characters)` : line;
}

class Tail {
  private readonly buffer: string[] = [];

  constructor(private readonly size: number) {}

  push(line: string): void {
    this.buffer.push(line);
    if (this.buffer.length > this.size) this.buffer.shift();
  }

  lines(): string[] {
    return [...this.buffer];
  }
}

function describeTail(tail: { stderr: Tail; stdout: Tail }): string {
  const indent = (lines: string[]) => lines.map((line) => `  ${line}`).join('\n');
  const stderr = tail.stderr.lines();
  if (stderr.length > 0) return `\nlast stderr lines:\n${indent(stderr)}`;
  const stdout = tail.stdout.lines();
  if (stdout.length > 0) return `\n(nothing on stderr) last stdout lines:\n${indent(stdout)}`;
  return '\n(the command printed nothing)';
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}
