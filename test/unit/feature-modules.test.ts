/**
 * Feature modules (lib/features/modules.ts) as files on disk: a plain `.ts` file with no
 * package.json above it, the contract's two exports, and how the on-demand features of
 * KEEL_FEATURE_MODULES are merged with the built-in ones — every refusal one line naming the module.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import { loadFeatureModule, loadOnDemandModules } from '../../lib/features/modules.js';
import { defineOnDemandFeature } from '../../lib/features/on-demand.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir('keel-feature-modules-unit-');

async function moduleFile(name: string, text: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, text);
  return file;
}

const ratio = `{ name: 'ratio', inputs: ['a', 'b'], type: 'float64', fn: ({ a, b }: Record<string, unknown>) => (typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : null) }`;

function refusal(pattern: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof InvalidInput, String(error));
    assert.equal(error.message.split('\n').length, 1, error.message);
    assert.match(error.message, pattern);
    return true;
  };
}

describe('feature modules', () => {
  it('loads a plain .ts module (type annotations, no package.json) with definitions and on-demand features', async () => {
    const file = await moduleFile(
      'both.ts',
      `interface Key { name: string; type: 'int64' }
       const key: Key = { name: 'user_id', type: 'int64' };
       export const definitions = { entities: [{ name: 'user', joinKeys: [key] }], featureViews: [] };
       export const onDemandFeatures = [${ratio}];`,
    );
    const loaded = await loadFeatureModule(file);
    assert.equal(loaded.exportName, 'definitions');
    assert.deepEqual(loaded.definitions?.entities.map((e) => e.name), ['user']);
    assert.deepEqual(loaded.onDemand.map((d) => [d.name, d.fn({ a: 6, b: 3 })]), [['ratio', 2]]);
    const onlyOnDemand = await loadFeatureModule(await moduleFile('only.ts', `export const onDemandFeatures = [${ratio}];`));
    assert.equal(onlyOnDemand.definitions, null);
    assert.equal(onlyOnDemand.onDemand[0]!.codeHash, loaded.onDemand[0]!.codeHash, 'the same function, the same code hash');
  });

  it('loads a CommonJS .js module, `module.exports = {...}` included', async () => {
    const cjs = tempDir('keel-feature-modules-cjs-');
    await writeFile(path.join(cjs, 'package.json'), '{"type": "commonjs"}\n');
    await writeFile(path.join(cjs, 'literal.js'), `module.exports = { onDemandFeatures: [${ratio.replace(': Record<string, unknown>', '')}] };\n`);
    await writeFile(path.join(cjs, 'assigned.js'), `exports.onDemandFeatures = [${ratio.replace(': Record<string, unknown>', '')}];\n`);
    for (const name of ['literal.js', 'assigned.js']) {
      const loaded = await loadFeatureModule(path.join(cjs, name));
      assert.deepEqual(loaded.onDemand.map((d) => [d.name, d.fn({ a: 1, b: 4 })]), [['ratio', 0.25]], name);
    }
  });

  it('registers the built-in features, then each module\'s; the same code twice once; other code under a taken name refused naming both', async () => {
    const builtIn = [defineOnDemandFeature({ name: 'doubled', inputs: ['x'], type: 'float64', fn: ({ x }) => (typeof x === 'number' ? 2 * x : null) })];
    const first = await moduleFile('first.ts', `export const onDemandFeatures = [${ratio}];`);
    const again = await moduleFile('again.ts', `export const onDemandFeatures = [${ratio}];`);
    const defs = await loadOnDemandModules([first, again], builtIn);
    assert.deepEqual(defs.map((d) => d.name), ['doubled', 'ratio']);

    const clash = await moduleFile('clash.ts', `export const onDemandFeatures = [{ name: 'ratio', inputs: ['a', 'b'], type: 'float64', fn: () => 1 }];`);
    await assert.rejects(loadOnDemandModules([first, clash], builtIn), refusal(/^KEEL_FEATURE_MODULES: .*clash\.ts defines on-demand feature ratio, already defined with other code by .*first\.ts$/));
    const shadow = await moduleFile('shadow.ts', `export const onDemandFeatures = [{ name: 'doubled', inputs: ['x'], type: 'float64', fn: () => 0 }];`);
    await assert.rejects(loadOnDemandModules([shadow], builtIn), refusal(/shadow\.ts defines on-demand feature doubled, already defined with other code by the built-in churn example$/));
  });

  it('refuses a missing module, one that does not load, one with a bad feature, and one exporting neither part', async () => {
    await assert.rejects(loadOnDemandModules([path.join(dir, 'missing.ts')]), refusal(/^KEEL_FEATURE_MODULES: no such feature module: .*missing\.ts$/));
    const broken = await moduleFile('broken.ts', 'export const onDemandFeatures = [;\n');
    await assert.rejects(loadOnDemandModules([broken]), refusal(/^KEEL_FEATURE_MODULES: cannot load feature module .*broken\.ts: /));
    const throws = await moduleFile('throws.ts', "throw new Error('no config');\n");
    await assert.rejects(loadOnDemandModules([throws]), refusal(/cannot load feature module .*throws\.ts: no config$/));
    const bad = await moduleFile('bad.ts', "export const onDemandFeatures = [{ name: 'x', inputs: ['x'], type: 'float64', fn: () => 1 }];\n");
    await assert.rejects(loadOnDemandModules([bad]), refusal(/bad\.ts \(onDemandFeatures\): on-demand feature x: a feature cannot be its own input$/));
    const neither = await moduleFile('neither.ts', 'export const answer = 42;\n');
    await assert.rejects(loadOnDemandModules([neither]), refusal(/neither\.ts exports neither `onDemandFeatures` nor feature `definitions`$/));
  });
});
