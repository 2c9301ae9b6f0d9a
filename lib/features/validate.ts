/**
 * Checks a project's feature definitions as a whole (each item against its zod schema, then the
 * references between them) and resolves feature references (`view:feature` or a feature service)
 * into per-view groups. Pure: the registry (stores/features/registry.ts) and historical retrieval
 * call these before touching Postgres. Every failure is an `InvalidInput` whose message names the
 * item and whose `field` is the path into the input (`featureViews[1].source.table`).
 */
import type { z } from 'zod';
import { InvalidInput } from '../errors.js';
import type {
  Entity,
  FeatureDefinition,
  FeatureDefinitions,
  FeatureDefinitionsInput,
  FeatureService,
  FeatureView,
} from './definitions.js';
import { entitySchema, featureRefSchema, featureServiceSchema, featureViewSchema } from './definitions.js';

export type DefinitionKind = 'entity' | 'feature_view' | 'feature_service';

/** `entity/customer`, `feature_view/customer_stats`, `feature_service/churn`: how results and versions name items. */
export function definitionKey(kind: DefinitionKind, name: string): string {
  return `${kind}/${name}`;
}

const LIST_KEYS = [
  ['entities', 'entity', entitySchema],
  ['featureViews', 'feature view', featureViewSchema],
  ['featureServices', 'feature service', featureServiceSchema],
] as const;

function describeItem(what: string, item: unknown): string {
  const name = item && typeof item === 'object' ? (item as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name !== '' ? `${what} ${name}` : what;
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out === '' ? '' : '.'}${String(part)}`;
  return out;
}

function parseItem<S extends z.ZodType>(schema: S, item: unknown, what: string, base: string): z.output<S> {
  const result = schema.safeParse(item);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? (issue as { keys?: string[] }).keys : undefined;
  const field = formatPath([...issue.path, ...(keys?.length ? [keys[0]!] : [])]);
  const where = field === '' ? '' : `${field}: `;
  throw new InvalidInput(`${describeItem(what, item)} (${base}): ${where}${issue.message}`, field === '' ? base : `${base}.${field}`);
}

function findDuplicate(names: readonly string[]): [number, number] | undefined {
  const seen = new Map<string, number>();
  for (let i = 0; i < names.length; i++) {
    const first = seen.get(names[i]!);
    if (first !== undefined) return [first, i];
    seen.set(names[i]!, i);
  }
  return undefined;
}

function listOrNone(names: readonly string[]): string {
  return names.length ? names.join(', ') : 'none';
}

/**
 * Parses every definition with its schema (defaults filled in) and checks what no single schema
 * can: unique names per kind, each view's entity is declared, a view's columns (join keys,
 * timestamps, features) are distinct, and each service names existing views and features of one
 * entity.
 */
export function validateFeatureDefinitions(input: FeatureDefinitionsInput): FeatureDefinitions {
  if (!input || typeof input !== 'object') throw new InvalidInput('feature definitions must be an object');
  const lists: Record<string, unknown[]> = {};
  for (const [key, what] of LIST_KEYS) {
    const value = (input as unknown as Record<string, unknown>)[key];
    if (value === undefined && key === 'featureServices') lists[key] = [];
    else if (!Array.isArray(value)) throw new InvalidInput(`${key} must be an array of ${what} definitions`, key);
    else lists[key] = value;
  }
  const extra = Object.keys(input).filter((k) => !LIST_KEYS.some(([key]) => key === k));
  if (extra.length) {
    throw new InvalidInput(`unknown key ${extra[0]} in feature definitions (expected entities, featureViews, featureServices)`, extra[0]);
  }
  const entities = lists.entities!.map((item, i) => parseItem(entitySchema, item, 'entity', `entities[${i}]`));
  const featureViews = lists.featureViews!.map((item, i) => parseItem(featureViewSchema, item, 'feature view', `featureViews[${i}]`));
  const featureServices = lists.featureServices!.map((item, i) =>
    parseItem(featureServiceSchema, item, 'feature service', `featureServices[${i}]`),
  );

  for (const [key, what, items] of [
    ['entities', 'entity', entities],
    ['featureViews', 'feature view', featureViews],
    ['featureServices', 'feature service', featureServices],
  ] as const) {
    const duplicate = findDuplicate(items.map((item) => item.name));
    if (duplicate) {
      const [first, second] = duplicate;
      throw new InvalidInput(
        `${what} ${items[second]!.name} is declared twice (${key}[${first}] and ${key}[${second}])`,
        `${key}[${second}].name`,
      );
    }
  }

  entities.forEach((entity, i) => {
    const duplicate = findDuplicate(entity.joinKeys.map((k) => k.name));
    if (duplicate) {
      throw new InvalidInput(
        `entity ${entity.name}: join key ${entity.joinKeys[duplicate[1]]!.name} is listed twice`,
        `entities[${i}].joinKeys[${duplicate[1]}].name`,
      );
    }
  });

  const entityByName = new Map(entities.map((e) => [e.name, e]));
  featureViews.forEach((view, i) => {
    const base = `featureViews[${i}]`;
    const entity = entityByName.get(view.entity);
    if (!entity) {
      throw new InvalidInput(
        `feature view ${view.name}: entity ${view.entity} is not declared (entities: ${listOrNone(entities.map((e) => e.name))})`,
        `${base}.entity`,
      );
    }
    const duplicate = findDuplicate(view.features.map((f) => f.name));
    if (duplicate) {
      throw new InvalidInput(
        `feature view ${view.name}: feature ${view.features[duplicate[1]]!.name} is listed twice`,
        `${base}.features[${duplicate[1]}].name`,
      );
    }
    const { eventTimestamp, createdTimestamp } = view.source;
    if (createdTimestamp === eventTimestamp) {
      throw new InvalidInput(
        `feature view ${view.name}: source.createdTimestamp and source.eventTimestamp are both ${eventTimestamp}`,
        `${base}.source.createdTimestamp`,
      );
    }
    const reserved = new Map<string, string>(entity.joinKeys.map((k) => [k.name, `a join key of entity ${entity.name}`]));
    for (const [column, role, field] of [
      [eventTimestamp, 'the event timestamp', 'eventTimestamp'],
      [createdTimestamp, 'the created timestamp', 'createdTimestamp'],
    ] as const) {
      if (column === undefined) continue;
      const clash = reserved.get(column);
      if (clash) {
        throw new InvalidInput(`feature view ${view.name}: source.${field} ${column} is also ${clash}`, `${base}.source.${field}`);
      }
      reserved.set(column, role);
    }
    view.features.forEach((feature, j) => {
      const clash = reserved.get(feature.name);
      if (clash) {
        throw new InvalidInput(
          `feature view ${view.name}: feature ${feature.name} is also ${clash}; name features after their own columns`,
          `${base}.features[${j}].name`,
        );
      }
    });
  });

  const definitions: FeatureDefinitions = { entities, featureViews, featureServices };
  featureServices.forEach((service, i) => {
    try {
      resolveFeatureRefs(definitions, service.features);
    } catch (error) {
      if (!(error instanceof InvalidInput)) throw error;
      const index = typeof error.field === 'string' ? /^features\[(\d+)\]$/.exec(error.field)?.[1] : undefined;
      throw new InvalidInput(
        `feature service ${service.name}: ${error.message}`,
        `featureServices[${i}].features${index === undefined ? '' : `[${index}]`}`,
      );
    }
  });
  return definitions;
}

/** The features one retrieval reads from one view, in the order they were requested. */
export interface FeatureViewGroup {
  view: FeatureView;
  features: FeatureDefinition[];
}

export interface ResolvedFeatures {
  /** The one entity every requested view is keyed by. */
  entity: Entity;
  /** The service the features came from, when they came from one. */
  service?: FeatureService;
  /** `view:feature` references in request order: the order of the output columns. */
  refs: string[];
  /** One group per view, in order of first appearance. */
  groups: FeatureViewGroup[];
}

export type FeatureSelection = readonly string[] | { service: string };

/**
 * Resolves `view:feature` references, or the references of a feature service, against
 * `definitions`. Every view must be keyed by the same entity (`options.entity` when given); a
 * reference may appear once.
 */
export function resolveFeatureRefs(
  definitions: FeatureDefinitions,
  selection: FeatureSelection,
  options: { entity?: string } = {},
): ResolvedFeatures {
  let refs: readonly string[];
  let service: FeatureService | undefined;
  if (Array.isArray(selection)) {
    refs = selection;
  } else {
    const name = (selection as { service?: unknown }).service;
    service = definitions.featureServices.find((s) => s.name === name);
    if (!service) {
      throw new InvalidInput(
        `unknown feature service ${JSON.stringify(name)} (feature services: ${listOrNone(definitions.featureServices.map((s) => s.name))})`,
        'service',
      );
    }
    refs = service.features;
  }
  if (refs.length === 0) throw new InvalidInput('no features requested: give view:feature references or a feature service', 'features');

  const viewByName = new Map(definitions.featureViews.map((v) => [v.name, v]));
  const groups = new Map<string, FeatureViewGroup>();
  const seen = new Set<string>();
  let entityName = options.entity;
  let entityWitness = options.entity === undefined ? undefined : 'the entity table';
  refs.forEach((ref, i) => {
    const field = `features[${i}]`;
    if (typeof ref !== 'string' || !featureRefSchema.safeParse(ref).success) {
      throw new InvalidInput(`feature reference ${JSON.stringify(ref)} is not view:feature (both identifiers)`, field);
    }
    if (seen.has(ref)) throw new InvalidInput(`feature reference ${ref} is requested twice`, field);
    seen.add(ref);
    const [viewName, featureName] = ref.split(':') as [string, string];
    const view = viewByName.get(viewName);
    if (!view) {
      throw new InvalidInput(
        `unknown feature view ${viewName} in reference ${ref} (feature views: ${listOrNone([...viewByName.keys()])})`,
        field,
      );
    }
    const feature = view.features.find((f) => f.name === featureName);
    if (!feature) {
      throw new InvalidInput(
        `feature view ${viewName} has no feature ${featureName} (reference ${ref}; its features: ${view.features.map((f) => f.name).join(', ')})`,
        field,
      );
    }
    if (entityName === undefined) {
      entityName = view.entity;
      entityWitness = `feature view ${view.name}`;
    } else if (view.entity !== entityName) {
      throw new InvalidInput(
        `feature view ${view.name} (reference ${ref}) is keyed by entity ${view.entity}, but ${entityWitness} is keyed by ${entityName}; ` +
          'one retrieval joins the views of one entity',
        field,
      );
    }
    let group = groups.get(view.name);
    if (!group) {
      group = { view, features: [] };
      groups.set(view.name, group);
    }
    group.features.push(feature);
  });
  const entity = definitions.entities.find((e) => e.name === entityName);
  if (!entity) throw new InvalidInput(`entity ${entityName} is not declared`, 'entity');
  return { entity, ...(service ? { service } : {}), refs: [...refs], groups: [...groups.values()] };
}
