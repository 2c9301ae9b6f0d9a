import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

/** Lints `code` as if it were the file at `file` (an existing file, so type-aware rules have a program). */
async function lint(code: string, file: string) {
  const [result] = await eslint.lintText(code, { filePath: `${ROOT}${file}` });
  return result!.messages.map((m) => ({ rule: m.ruleId, message: m.message }));
}

describe('lint rules that keep workflows deterministic', () => {
  it('forbids Node built-ins in workflows/', async () => {
    const messages = await lint(`import fs from 'node:fs';\nexport const x = fs;\n`, 'workflows/stack-check.ts');
    assert.deepEqual(messages.map((m) => m.rule), ['no-restricted-imports']);
    assert.match(messages[0]!.message, /no Node built-ins/);
  });

  it('forbids importing activity implementations but allows `import type`', async () => {
    const code = [
      `import { createActivities } from '../activities/index.js';`,
      `import type { KeelActivities } from '../activities/index.js';`,
      `export const x = createActivities;`,
      `export type Y = KeelActivities;`,
      '',
    ].join('\n');
    const messages = await lint(code, 'workflows/stack-check.ts');
    assert.equal(messages.length, 1);
    assert.match(messages[0]!.message, /only with `import type`/);
  });

  it('allows the same imports outside workflows/', async () => {
    const messages = await lint(`import fs from 'node:fs';\nexport const x = fs;\n`, 'activities/stack-check.ts');
    assert.deepEqual(messages, []);
  });

  it('reports a floating promise', async () => {
    const code = `export async function f(p: () => Promise<void>) {\n  p();\n}\n`;
    const messages = await lint(code, 'activities/stack-check.ts');
    assert.deepEqual(messages.map((m) => m.rule), ['@typescript-eslint/no-floating-promises']);
  });
});
