import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { CommandTrainerHeartbeat, CommandTrainerOptions } from '../../activities/training/command-trainer.js';
import { resolveCommand, runCommandTrainer, TrainingTimeout } from '../../activities/training/command-trainer.js';
import { toFeatures } from '../../lib/data/features.js';
import type { Column, Table } from '../../lib/data/table.js';
import { createTable } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import { fitLogisticRegression } from '../../lib/ml/logreg.js';
import { rocAuc } from '../../lib/ml/metrics.js';
import { Random } from '../../lib/ml/random.js';
import { loadOnnxScorer } from '../../lib/onnx/scorer.js';
import { tempDir } from '../helpers/temp.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = '/usr/bin/python3';
const FEATURES = ['tenure', 'spend', 'support_calls', 'is_annual', 'noise'];
const NODE = process.execPath;

/** Why the scikit-learn example cannot run here, or undefined when it can. */
const pythonMissing = (() => {
  if (!existsSync(PYTHON)) return `${PYTHON} does not exist`;
  const check = spawnSync(PYTHON, ['-c', 'import numpy, sklearn, onnx'], { encoding: 'utf8' });
  return check.status === 0 ? undefined : `${PYTHON} lacks numpy / scikit-learn / onnx (apt-get install python3-sklearn python3-onnx): ${check.stderr.trim().split('\n').pop()}`;
})();

/** A churn-like table: numeric features with missing values, a boolean, an id column that is not a feature. */
function churnTable(rows: number, seed: number): Table {
  const random = new Random(seed);
  const values = FEATURES.map(() => new Float64Array(rows));
  const annual = new Int8Array(rows);
  const label = new Float64Array(rows);
  const ids = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    const tenure = random.next() * 60;
    const spend = 50 + 20 * random.normal();
    const calls = Math.floor(random.next() * 6);
    annual[i] = random.next() < 0.4 ? 1 : 0;
    values[0]![i] = random.next() < 0.05 ? NaN : tenure;
    values[1]![i] = random.next() < 0.1 ? NaN : spend;
    values[2]![i] = calls;
    values[4]![i] = random.next() < 0.02 ? NaN : random.normal();
    const logit = 1.5 - 0.06 * tenure + 0.02 * (spend - 50) + 0.5 * calls - 1.2 * annual[i]!;
    label[i] = random.next() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
    ids[i] = i;
  }
  if (rows > 10) annual[3] = -1; // a missing boolean
  const columns: Column[] = [
    { name: 'customer_id', type: 'category', codes: ids, categories: Array.from(ids, (i) => `c${i}`) },
    { name: 'tenure', type: 'number', values: values[0]! },
    { name: 'spend', type: 'number', values: values[1]! },
    { name: 'support_calls', type: 'number', values: values[2]! },
    { name: 'is_annual', type: 'boolean', values: annual },
    { name: 'noise', type: 'number', values: values[4]! },
    { name: 'churned', type: 'number', values: label },
  ];
  return createTable(columns);
}

const small = churnTable(200, 5);

function options(overrides: Partial<CommandTrainerOptions> & Pick<CommandTrainerOptions, 'command'>): CommandTrainerOptions & { lines: string[]; beats: CommandTrainerHeartbeat[] } {
  const lines: string[] = [];
  const beats: CommandTrainerHeartbeat[] = [];
  return {
    params: {},
    train: small,
    label: 'churned',
    featureNames: FEATURES,
    // The checkout (the Python example, the missing ./no/such/train.sh) and node itself (the inline scripts).
    allowedCommands: [ROOT, NODE],
    workDir: tempDir('keel-command-trainer-'),
    timeoutMs: 60_000,
    cwd: ROOT,
    heartbeat: (details) => beats.push(details),
    log: (line) => lines.push(line),
    lines,
    beats,
    ...overrides,
  };
}

/** A node one-liner as a command; the script sees `fs`, `path` and `env` (= process.env). */
function nodeScript(source: string): string[] {
  return [NODE, '-e', `const fs = require('node:fs'); const path = require('node:path'); const env = process.env; ${source}`];
}

/** Alive and not a zombie waiting for a parent that does not reap it. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

/** A Keel logreg export over `names`, saved to a file a command can copy into $KEEL_OUTPUT. */
function keelModelFile(names: string[]): string {
  const table = churnTable(300, 9);
  const { x, y } = toFeatures(table, { label: 'churned', features: names });
  const file = path.join(tempDir('keel-command-model-'), 'model.onnx');
  writeFileSync(file, fitLogisticRegression(x, y, { C: 1 }).toOnnx());
  return file;
}

function copyModel(file: string): string[] {
  return nodeScript(`fs.copyFileSync(${JSON.stringify(file)}, path.join(env.KEEL_OUTPUT, 'model.onnx'));`);
}

function assertInvalid(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof InvalidInput, `InvalidInput, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('command trainer: the scikit-learn example', () => {
  it('trains examples/python-trainer/train.py into a model.onnx that Keel can score', { skip: pythonMissing }, async () => {
    const train = churnTable(5000, 1);
    const holdout = churnTable(2000, 2);
    const run = options({ command: [PYTHON, 'examples/python-trainer/train.py'], params: { C: 1.0 }, train, timeoutMs: 300_000 });
    const result = await runCommandTrainer(run);

    assert.ok(result.onnx.length > 100);
    assert.ok(result.elapsedMs > 0);
    assert.ok(result.stderrTail.some((line) => /training AUC/.test(line)), result.stderrTail.join('\n'));
    assert.ok(run.lines.some((line) => line.startsWith('trainer[stderr] train.py: wrote ')), run.lines.join('\n'));
    assert.deepEqual(readdirSync(run.workDir), [], 'the work dir is removed after success');

    const { x, y } = toFeatures(holdout, { label: 'churned', features: FEATURES });
    const scorer = await loadOnnxScorer(result.onnx, FEATURES);
    try {
      assert.equal(scorer.inputName, 'input');
      assert.equal(scorer.outputName, 'probabilities');
      const p = await scorer.predictProba(x);
      assert.equal(p.length, holdout.rowCount);
      const auc = rocAuc(y, p);
      assert.ok(auc > 0.7, `holdout AUC ${auc}`);

      // Keel's own logreg is scikit-learn's (same C, mean imputation, standardisation): the two agree closely.
      const keel = fitLogisticRegression(toFeatures(train, { label: 'churned', features: FEATURES }).x, toFeatures(train, { label: 'churned', features: FEATURES }).y, { C: 1 });
      const expected = keel.predictProba(x);
      let maxDifference = 0;
      for (let i = 0; i < p.length; i++) maxDifference = Math.max(maxDifference, Math.abs(p[i]! - expected[i]!));
      assert.ok(maxDifference < 1e-4, `max |python − keel logreg| = ${maxDifference}`);
    } finally {
      await scorer.release();
    }
  });

  it('stops with a clear message on a category feature', { skip: pythonMissing }, async () => {
    const run = options({ command: [PYTHON, 'examples/python-trainer/train.py'], featureNames: ['customer_id', 'tenure'] });
    await assert.rejects(runCommandTrainer(run), assertInvalid(/exited with code 2[\s\S]*numeric and boolean features only; not supported: customer_id \(category\)/));
  });

  it('refuses unknown params', { skip: pythonMissing }, async () => {
    const run = options({ command: [PYTHON, 'examples/python-trainer/train.py'], params: { C: 1, penalty: 'l1' } });
    await assert.rejects(runCommandTrainer(run), assertInvalid(/unknown params penalty/));
  });
});

describe('command trainer: what the program gets', () => {
  it('writes the training set, params and schema and points KEEL_* at them, withholding store credentials', async () => {
    const model = keelModelFile(FEATURES);
    const saved = process.env.AWS_SECRET_ACCESS_KEY;
    process.env.AWS_SECRET_ACCESS_KEY = 'do-not-leak';
    try {
      const report = `
        const schema = JSON.parse(fs.readFileSync(env.KEEL_SCHEMA, 'utf8'));
        const csv = fs.readFileSync(env.KEEL_TRAIN, 'utf8').split('\\n');
        console.error('REPORT ' + JSON.stringify({
          cwd: process.cwd(), workDir: env.KEEL_WORK_DIR, output: env.KEEL_OUTPUT, header: csv[0], row: csv[4],
          parquet: fs.readFileSync(env.KEEL_TRAIN_PARQUET).subarray(0, 4).toString(),
          params: JSON.parse(fs.readFileSync(env.KEEL_PARAMS, 'utf8')), schema,
          secret: env.AWS_SECRET_ACCESS_KEY ?? null, extra: env.EXTRA ?? null, unbuffered: env.PYTHONUNBUFFERED,
        }));
        fs.copyFileSync(${JSON.stringify(model)}, path.join(env.KEEL_OUTPUT, 'model.onnx'));`;
      const run = options({ command: nodeScript(report), params: { C: 0.5, nested: { a: [1, 2] } }, env: { EXTRA: 'yes' } });
      const result = await runCommandTrainer(run);
      const line = run.lines.find((l) => l.startsWith('trainer[stderr] REPORT '))!;
      const seen = JSON.parse(line.slice('trainer[stderr] REPORT '.length)) as Record<string, unknown> & { schema: Record<string, unknown> };
      assert.equal(seen.cwd, seen.workDir);
      assert.equal(path.dirname(seen.workDir as string), run.workDir);
      assert.equal(seen.output, path.join(seen.workDir as string, 'output'));
      assert.equal(seen.header, 'customer_id,tenure,spend,support_calls,is_annual,noise,churned');
      assert.match(seen.row as string, /^c3,[^,]*,[^,]*,\d,,[^,]*,[01]$/, 'a missing boolean is an empty cell, the label 0/1');
      assert.equal(seen.parquet, 'PAR1');
      assert.deepEqual(seen.params, { C: 0.5, nested: { a: [1, 2] } });
      assert.equal(seen.secret, null);
      assert.equal(seen.extra, 'yes');
      assert.equal(seen.unbuffered, '1');
      const schema = seen.schema as {
        featureNames: string[];
        label: { name: string };
        rows: number;
        columns: Array<{ name: string; type: string }>;
        features: Array<{ name: string; type: string; encoding: string }>;
        model: { path: string; inputs: Array<{ name: string; shape: number[] }>; outputs: Array<{ name: string }> };
      };
      assert.deepEqual(schema.featureNames, FEATURES);
      assert.equal(schema.label.name, 'churned');
      assert.equal(schema.rows, small.rowCount);
      assert.deepEqual(schema.columns.find((c) => c.name === 'churned'), { name: 'churned', type: 'number' });
      assert.equal(schema.features.find((f) => f.name === 'is_annual')?.type, 'boolean');
      assert.deepEqual(schema.model.inputs[0]!.shape, [-1, FEATURES.length]);
      assert.equal(schema.model.path, path.join(seen.output as string, 'model.onnx'));
      assert.deepEqual(schema.model.outputs.map((o) => o.name), ['probabilities', 'label']);
      assert.ok(result.onnx.length > 0);
      assert.deepEqual(readdirSync(run.workDir), []);
    } finally {
      if (saved === undefined) delete process.env.AWS_SECRET_ACCESS_KEY;
      else process.env.AWS_SECRET_ACCESS_KEY = saved;
    }
  });

  it('writes the category dictionaries of the featureSpec it is given, which must list featureNames', async () => {
    const featureSpec = { version: 1 as const, features: [{ name: 'customer_id', type: 'category' as const, categories: ['c0', 'c1', 'other'] }, { name: 'tenure', type: 'number' as const }] };
    const print = nodeScript(`console.error('FEATURES ' + JSON.stringify(JSON.parse(fs.readFileSync(env.KEEL_SCHEMA, 'utf8')).features)); process.exit(4);`);
    const run = options({ command: print, featureNames: ['customer_id', 'tenure'], featureSpec });
    await assert.rejects(runCommandTrainer(run), /exited with code 4/);
    const line = run.lines.find((l) => l.startsWith('trainer[stderr] FEATURES '))!;
    const features = JSON.parse(line.slice('trainer[stderr] FEATURES '.length)) as Array<{ name: string; categories?: string[]; encoding: string }>;
    assert.deepEqual(features[0]!.categories, ['c0', 'c1', 'other']);
    assert.match(features[0]!.encoding, /index of the value in "categories"/);
    await assert.rejects(runCommandTrainer(options({ command: print, featureSpec })), assertInvalid(/featureSpec lists customer_id, tenure; featureNames are tenure, spend/));
  });

  it('resolves relative paths in the command against cwd, leaving bare names and options alone', () => {
    assert.deepEqual(resolveCommand(['python3', 'examples/python-trainer/train.py', '-m', 'pkg.mod', '0.5', 'no/such/file'], ROOT), [
      'python3',
      path.join(ROOT, 'examples/python-trainer/train.py'),
      '-m',
      'pkg.mod',
      '0.5',
      'no/such/file',
    ]);
    assert.deepEqual(resolveCommand(['./bin/train.sh', '/abs/x'], '/base'), ['/base/bin/train.sh', '/abs/x']);
    assert.throws(() => resolveCommand([], ROOT), /training command is empty/);
  });
});

describe('command trainer: failures', () => {
  it('reports a non-zero exit with the exit code and the last 20 stderr lines', async () => {
    const run = options({ command: nodeScript(`for (let i = 1; i <= 30; i++) console.error('stderr line ' + i); console.error('last words'); process.exit(3);`) });
    await assert.rejects(runCommandTrainer(run), (error: unknown) => {
      assertInvalid(/^training command exited with code 3 \(.*\)\nlast stderr lines:\n/)(error);
      const message = (error as Error).message;
      assert.match(message, /last words$/);
      assert.match(message, /stderr line 30\n/);
      assert.doesNotMatch(message, /stderr line 11\n/, 'only the last 20 lines');
      return true;
    });
    assert.ok(run.lines.includes('trainer[stderr] stderr line 1'));
    assert.deepEqual(readdirSync(run.workDir), [], 'the work dir is removed after a failure too');
  });

  it('falls back to stdout in the message when stderr is empty, and keeps the work dir when asked', async () => {
    const run = options({ command: nodeScript(`console.log('only on stdout'); process.exit(1);`), keepWorkDir: 'on-failure' });
    await assert.rejects(runCommandTrainer(run), assertInvalid(/exited with code 1[\s\S]*last stdout lines:\n {2}only on stdout\n\(work dir kept at /));
    const kept = readdirSync(run.workDir);
    assert.equal(kept.length, 1);
    assert.ok(existsSync(path.join(run.workDir, kept[0]!, 'train.csv')));
  });

  it('reports a program that writes no model.onnx, and one that writes it in the wrong place', async () => {
    await assert.rejects(runCommandTrainer(options({ command: nodeScript(`console.error('done, I think');`) })), assertInvalid(/exited with code 0 but wrote no model\.onnx to \$KEEL_OUTPUT .*it is empty\)\nlast stderr lines:\n {2}done, I think/));
    const misplaced = nodeScript(`fs.writeFileSync('model.onnx', 'x'); fs.writeFileSync(path.join(env.KEEL_OUTPUT, 'model.pkl'), 'x');`);
    await assert.rejects(runCommandTrainer(options({ command: misplaced })), assertInvalid(/it holds model\.pkl\); there is a model\.onnx in the working directory, write it to \$KEEL_OUTPUT instead/));
  });

  it('reports a model.onnx that is not ONNX', async () => {
    const command = nodeScript(`console.error('writing'); fs.writeFileSync(path.join(env.KEEL_OUTPUT, 'model.onnx'), 'pickle bytes');`);
    await assert.rejects(runCommandTrainer(options({ command })), assertInvalid(/model\.onnx written by the training command is not a valid ONNX model[\s\S]*last stderr lines:\n {2}writing/));
  });

  it('reports a model with the wrong feature count', async () => {
    const command = copyModel(keelModelFile(['tenure', 'spend']));
    await assert.rejects(
      runCommandTrainer(options({ command })),
      assertInvalid(/model\.onnx written by the training command takes 2 features, the training set has 5 \(tenure, spend, support_calls, is_annual, noise\)/),
    );
  });

  it('reports a model whose feature names are in another order', async () => {
    const command = copyModel(keelModelFile(['spend', 'tenure', 'support_calls', 'is_annual', 'noise']));
    await assert.rejects(runCommandTrainer(options({ command })), assertInvalid(/feature_names differs .* at position 1: spend where tenure is expected/));
  });

  it('refuses a command the worker does not allow before writing anything', async () => {
    const run = options({ command: ['sh', '-c', 'id'], allowedCommands: [path.join(ROOT, 'examples')] });
    await assert.rejects(runCommandTrainer(run), assertInvalid(/^trainer\.command: program not allowed by KEEL_TRAINER_COMMANDS/));
    assert.deepEqual(readdirSync(run.workDir), []);
    assert.ok(!run.lines.some((line) => line.includes('uid=')));
  });

  it('keeps its working folder owner-only whatever the umask: 0700 folders, 0600 files', async () => {
    const previous = process.umask(0);
    let run: ReturnType<typeof options>;
    try {
      run = options({ command: copyModel(keelModelFile(FEATURES)), keepWorkDir: 'always' });
      await runCommandTrainer(run);
    } finally {
      process.umask(previous);
    }
    const [kept] = readdirSync(run.workDir);
    const dir = path.join(run.workDir, kept!);
    const mode = (file: string) => statSync(path.join(dir, file)).mode & 0o777;
    assert.equal(mode('.'), 0o700);
    assert.equal(mode('output'), 0o700);
    for (const file of ['train.csv', 'train.parquet', 'params.json', 'schema.json']) assert.equal(mode(file), 0o600, file);
  });

  it('reports a command that cannot be found', async () => {
    await assert.rejects(runCommandTrainer(options({ command: ['keel-no-such-trainer', 'x'] })), assertInvalid(/^training command not found: keel-no-such-trainer \(looked up on PATH\)$/));
    await assert.rejects(runCommandTrainer(options({ command: ['./no/such/train.sh'] })), assertInvalid(new RegExp(`^training command not found: ${ROOT}/no/such/train\\.sh$`)));
  });

  it('stops a program and its child at the timeout, with SIGKILL after the grace period when they ignore SIGTERM', async () => {
    const pids = path.join(tempDir('keel-command-pids-'), 'pids.json');
    const stubborn = `process.on('SIGTERM', () => console.error('ignoring SIGTERM')); setInterval(() => {}, 1000);`;
    const parent = `
      const { spawn } = require('node:child_process');
      const child = spawn(process.execPath, ['-e', ${JSON.stringify(stubborn)}], { stdio: 'inherit' });
      ${stubborn}
      fs.writeFileSync(${JSON.stringify(pids)}, JSON.stringify([process.pid, child.pid]));
      console.error('training...');`;
    const run = options({ command: nodeScript(parent), timeoutMs: 1500, killGraceMs: 500, heartbeatMs: 200 });
    const started = Date.now();
    await assert.rejects(runCommandTrainer(run), (error: unknown) => {
      assert.ok(error instanceof TrainingTimeout, `TrainingTimeout, got ${String(error)}`);
      assert.equal(error.code, 'TrainingTimeout');
      assert.match(error.message, /^training command timed out after 1\.5 s and was stopped[\s\S]*training\.\.\./);
      return true;
    });
    const took = Date.now() - started;
    assert.ok(took < 1500 + 500 + 3000, `stopped after ${took} ms`);
    const [parentPid, childPid] = JSON.parse(readFileSync(pids, 'utf8')) as [number, number];
    assert.ok(await waitUntil(() => !isAlive(parentPid) && !isAlive(childPid), 2000), 'the program and its child are gone');
    assert.ok(run.lines.some((l) => /SIGKILL/.test(l)), run.lines.join('\n'));
    assert.ok(run.beats.length >= 3, `${run.beats.length} heartbeats`);
    assert.ok(run.beats.at(-1)!.stderrTail.includes('training...'));
    assert.ok(run.beats.every((b, i) => i === 0 || b.elapsedMs >= run.beats[i - 1]!.elapsedMs));
    assert.deepEqual(readdirSync(run.workDir), []);
  });

  it('stops the program and rethrows the reason when the signal aborts', async () => {
    const pidFile = path.join(tempDir('keel-command-pids-'), 'pid');
    const controller = new AbortController();
    const reason = new Error('activity cancelled');
    const run = options({
      command: nodeScript(`fs.writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); setInterval(() => {}, 1000);`),
      signal: controller.signal,
    });
    const running = runCommandTrainer(run);
    assert.ok(await waitUntil(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '', 10_000), 'the program started');
    const started = Date.now();
    controller.abort(reason);
    await assert.rejects(running, (error: unknown) => error === reason);
    assert.ok(Date.now() - started < 5000);
    assert.equal(isAlive(Number(readFileSync(pidFile, 'utf8'))), false);
    assert.deepEqual(readdirSync(run.workDir), []);

    const already = new AbortController();
    already.abort(reason);
    await assert.rejects(runCommandTrainer(options({ command: nodeScript(''), signal: already.signal })), (error: unknown) => error === reason);
  });
});
