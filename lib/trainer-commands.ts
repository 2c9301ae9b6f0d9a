/**
 * Which programs the `command` trainer may run on a worker: its operator's choice
 * (`KEEL_TRAINER_COMMANDS`), never the pipeline's. Each allowed entry is a file (that program or
 * script) or a folder (every file under it); a bare name (`python3`) is looked up on PATH.
 * A command is allowed when, every path taken with symlinks and `..` resolved:
 * - its program is an allowed file or lies in an allowed folder (its arguments are then free), or
 * - its program is a script interpreter (python, python3, python3.12, node, Rscript, ruby,
 *   perl, bash, sh, julia) named bare or by a path into a folder on PATH, and its first argument
 *   (no interpreter options before it) is an allowed script: `["python3",
 *   "examples/python-trainer/train.py"]` runs because `examples/` is allowed; `["python3", "-c", …]`
 *   and `["sh", "-c", …]` never do unless the operator allows the interpreter itself.
 */
import { constants } from 'node:fs';
import { access, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidInput } from './errors.js';
import { isInside } from './paths.js';

export const TRAINER_COMMAND_FIELD = 'trainer.command';
const NOT_ALLOWED = `${TRAINER_COMMAND_FIELD}: program not allowed by KEEL_TRAINER_COMMANDS (the worker runs only the programs and scripts its operator allows)`;
const INTERPRETER = /^(python[0-9.]*|node|Rscript|ruby|perl|bash|sh|julia)$/;

interface AllowedEntries {
  /** Real paths of allowed files and folders; a folder allows everything under it. */
  real: Array<{ path: string; folder: boolean }>;
  /** The entries as written (absolute), for paths that do not exist yet. */
  lexical: string[];
}

/**
 * Refuses `command` (already resolved: relative paths made absolute against the worker's
 * working directory) with a non-retryable `InvalidInput` naming the rule unless `allowed`
 * permits it. A missing program inside an allowed folder, or a bare name not on PATH, passes:
 * starting it then fails with "not found", which tells nothing about files outside the allowed ones.
 */
export async function checkTrainerCommand(command: readonly string[], allowed: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const [program, script] = command;
  if (program === undefined) return;
  const searchPath = env.PATH ?? '';
  const entries = await resolveEntries(allowed, searchPath);
  const programPath = program.includes('/') ? program : await findOnPath(program, searchPath);
  if (programPath === undefined) return;
  const realProgram = await realpathOrUndefined(programPath);
  if (realProgram === undefined) {
    if (lexicallyAllowed(programPath, entries)) return;
    throw new InvalidInput(NOT_ALLOWED, TRAINER_COMMAND_FIELD);
  }
  if (isAllowed(realProgram, entries)) return;
  if (INTERPRETER.test(path.basename(program)) && (await onSearchPath(programPath, searchPath)) && script !== undefined && !script.startsWith('-')) {
    const scriptPath = path.resolve(script);
    const realScript = await realpathOrUndefined(scriptPath);
    if (realScript === undefined ? lexicallyAllowed(scriptPath, entries) : isAllowed(realScript, entries) && (await stat(realScript)).isFile()) return;
  }
  throw new InvalidInput(NOT_ALLOWED, TRAINER_COMMAND_FIELD);
}

async function resolveEntries(allowed: readonly string[], searchPath: string): Promise<AllowedEntries> {
  const real: AllowedEntries['real'] = [];
  const lexical: string[] = [];
  for (const entry of allowed) {
    const located = entry.includes('/') ? path.resolve(entry) : await findOnPath(entry, searchPath);
    if (located === undefined) continue;
    lexical.push(located);
    const resolved = await realpathOrUndefined(located);
    if (resolved !== undefined) real.push({ path: resolved, folder: (await stat(resolved)).isDirectory() });
  }
  return { real, lexical };
}

function isAllowed(realPath: string, entries: AllowedEntries): boolean {
  return entries.real.some((entry) => realPath === entry.path || (entry.folder && isInside(realPath, entry.path)));
}

function lexicallyAllowed(file: string, entries: AllowedEntries): boolean {
  return entries.lexical.some((entry) => isInside(path.resolve(file), entry));
}

async function realpathOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await realpath(file);
  } catch {
    return undefined;
  }
}

async function findOnPath(name: string, searchPath: string): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Whether an interpreter named by path sits in a folder on PATH (where the operator's programs are). */
async function onSearchPath(programPath: string, searchPath: string): Promise<boolean> {
  if (!path.isAbsolute(programPath)) return false;
  const folder = await realpathOrUndefined(path.dirname(programPath));
  if (folder === undefined) return false;
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir !== '' && (await realpathOrUndefined(dir)) === folder) return true;
  }
  return false;
}
