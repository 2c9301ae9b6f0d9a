/**
 * Feature modules: a project's `.ts` or `.js` file declaring its feature definitions and on-demand
 * features. The contract — a module exports either or both of:
 *   - `definitions` (or a default export, or the one export shaped like it): `{entities,
 *     featureViews, featureServices?}` as `FeatureDefinitionsInput` — what `keel features apply`
 *     writes to the registry;
 *   - `onDemandFeatures`: an array of `{name, inputs, type, fn, description?}` (plain objects or
 *     `defineOnDemandFeature` results) — what workers and the gateway compute by name when the
 *     module is listed in `KEEL_FEATURE_MODULES`.
 * Plain objects and functions are enough: the module needs no import from Keel.
 *
 * Loaded with tsx's `tsImport` (its own loader scope, no tsconfig), so a plain `.ts` file works
 * wherever it is — with no package.json above it or one saying `commonjs` — and every process
 * (CLI, workers, gateway) compiles a function to the same text, hence the same code hash.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import { InvalidInput } from '../errors.js';
import type { FeatureDefinitions, FeatureDefinitionsInput } from './definitions.js';
import type { OnDemandFeature, OnDemandFeatureInput } from './on-demand.js';
import { defineOnDemandFeature, onDemandRegistry } from './on-demand.js';
import { validateFeatureDefinitions } from './validate.js';

export interface LoadedFeatureModule {
  file: string;
  /** The export the definitions came from; null when the module declares none. */
  exportName: string | null;
  definitions: FeatureDefinitions | null;
  onDemand: OnDemandFeature[];
}

const firstLine = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0]!;

/** The module's exports, compiled by tsx whatever the package type around it. */
async function importModule(file: string): Promise<Record<string, unknown>> {
  const resolved = path.resolve(file);
  try {
    if (!(await stat(resolved)).isFile()) throw new InvalidInput(`${file} is not a file`);
  } catch (error) {
    if (error instanceof InvalidInput) throw error;
    throw new InvalidInput(`no such feature module: ${file}`);
  }
  let namespace: Record<string, unknown>;
  try {
    namespace = (await tsImport(pathToFileURL(resolved).href, { parentURL: import.meta.url, tsconfig: false })) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidInput(`cannot load feature module ${file}: ${firstLine(error)}`);
  }
  return withCommonJsExports(namespace);
}

/**
 * A CommonJS module's `module.exports` is its default export, and Node names only the keys its
 * lexer finds (not those of `module.exports = {onDemandFeatures: [...]}`): its keys count as exports.
 */
function withCommonJsExports(namespace: Record<string, unknown>): Record<string, unknown> {
  const exportsObject = namespace.default;
  if (!exportsObject || typeof exportsObject !== 'object' || Array.isArray(exportsObject)) return namespace;
  const named = Object.keys(namespace).filter((k) => k !== 'default' && k !== 'module.exports');
  if (!named.every((k) => k in exportsObject)) return namespace;
  return { ...(exportsObject as Record<string, unknown>), ...namespace };
}

function looksLikeDefinitions(value: unknown): value is FeatureDefinitionsInput {
  return (
    !!value &&
    typeof value === 'object' &&
    Array.isArray((value as { entities?: unknown }).entities) &&
    Array.isArray((value as { featureViews?: unknown }).featureViews)
  );
}

/**
 * The export holding the definitions: `exportName` when given, else `definitions`, else the
 * default export, else the one export that looks like `{entities: [...], featureViews: [...]}`;
 * null when there is none.
 */
function definitionsExport(file: string, module: Record<string, unknown>, exportName: string | undefined): string | null {
  const names = Object.keys(module).filter((k) => k !== 'default' || module.default !== undefined);
  if (exportName !== undefined) {
    if (!(exportName in module)) throw new InvalidInput(`${file} has no export ${exportName} (exports: ${names.join(', ') || 'none'})`);
    return exportName;
  }
  if (module.definitions !== undefined) return 'definitions';
  if (looksLikeDefinitions(module.default)) return 'default';
  const candidates = names.filter((k) => looksLikeDefinitions(module[k]));
  if (candidates.length > 1) {
    throw new InvalidInput(`${file} exports several feature definitions (${candidates.join(', ')}); choose one with --export <name>`);
  }
  return candidates[0] ?? null;
}

function onDemandOf(file: string, value: unknown): OnDemandFeature[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new InvalidInput(`${file}: onDemandFeatures must be an array of on-demand feature definitions`);
  try {
    const defs = value.map((item: unknown) =>
      item && typeof item === 'object' && typeof (item as OnDemandFeature).codeHash === 'string'
        ? (item as OnDemandFeature)
        : defineOnDemandFeature(item as OnDemandFeatureInput),
    );
    onDemandRegistry(defs);
    return defs;
  } catch (error) {
    if (error instanceof InvalidInput) throw new InvalidInput(`${file} (onDemandFeatures): ${error.message}`, error.field);
    throw error;
  }
}

/** Imports a feature module and checks what it declares (see the module comment for the contract). */
export async function loadFeatureModule(file: string, options: { exportName?: string } = {}): Promise<LoadedFeatureModule> {
  const module = await importModule(file);
  const exportName = definitionsExport(file, module, options.exportName);
  let definitions: FeatureDefinitions | null = null;
  if (exportName !== null) {
    try {
      definitions = validateFeatureDefinitions(module[exportName] as FeatureDefinitionsInput);
    } catch (error) {
      if (error instanceof InvalidInput) throw new InvalidInput(`${file} (${exportName}): ${error.message}`, error.field);
      throw error;
    }
  }
  return { file, exportName, definitions, onDemand: onDemandOf(file, module.onDemandFeatures) };
}

/**
 * The on-demand features a worker or gateway registers: `builtIn` (the churn example's), then
 * those of every module of `KEEL_FEATURE_MODULES`, in order. A name defined again with the same
 * code is kept once; with other code it is refused, naming both modules. Every error names the
 * module and the problem, on one line, so the process fails at start.
 */
export async function loadOnDemandModules(
  files: readonly string[],
  builtIn: readonly OnDemandFeature[] = [],
): Promise<OnDemandFeature[]> {
  const byName = new Map<string, { def: OnDemandFeature; from: string }>(builtIn.map((def) => [def.name, { def, from: 'the built-in churn example' }]));
  for (const file of files) {
    let loaded: LoadedFeatureModule;
    try {
      loaded = await loadFeatureModule(file);
      if (loaded.definitions === null && loaded.onDemand.length === 0) {
        throw new InvalidInput(`${file} exports neither \`onDemandFeatures\` nor feature \`definitions\``);
      }
    } catch (error) {
      if (error instanceof InvalidInput) throw new InvalidInput(`KEEL_FEATURE_MODULES: ${error.message}`, 'KEEL_FEATURE_MODULES');
      throw error;
    }
    for (const def of loaded.onDemand) {
      const known = byName.get(def.name);
      if (known && known.def.codeHash !== def.codeHash) {
        throw new InvalidInput(
          `KEEL_FEATURE_MODULES: ${file} defines on-demand feature ${def.name}, already defined with other code by ${known.from}`,
          'KEEL_FEATURE_MODULES',
        );
      }
      if (!known) byName.set(def.name, { def, from: file });
    }
  }
  return [...byName.values()].map((entry) => entry.def);
}
