/**
 * Feature store definitions, Feast's model in TypeScript: entities (join keys), feature views
 * (an offline Postgres table with an event timestamp, optional created timestamp, typed features
 * and a TTL) and feature services (the named list of references a model uses). Projects declare
 * them in code; `applyFeatureDefinitions` (stores/features/registry.ts) stores them in the registry with a version that changes when
 * a definition changes. Pure: no I/O here.
 */
import { z } from 'zod';
import { canonicalJson } from '../canonical-json.js';
import { sha256Hex } from '../hash.js';
import { featureRefSchema, identifierSchema, tableNameSchema } from './identifiers.js';

export { IDENTIFIER, identifierSchema, tableNameSchema, featureRefSchema } from './identifiers.js';

export const JOIN_KEY_TYPES = ['int64', 'string'] as const;
export const FEATURE_TYPES = ['float64', 'int64', 'bool', 'string', 'timestamp'] as const;
export type FeatureValueType = (typeof FEATURE_TYPES)[number];

export const entitySchema = z
  .object({
    name: identifierSchema,
    joinKeys: z
      .array(z.object({ name: identifierSchema, type: z.enum(JOIN_KEY_TYPES) }).strict())
      .min(1, 'an entity needs at least one join key'),
    description: z.string().default(''),
  })
  .strict();

export const featureSchema = z
  .object({
    name: identifierSchema,
    type: z.enum(FEATURE_TYPES),
    description: z.string().default(''),
  })
  .strict();

export const featureViewSchema = z
  .object({
    name: identifierSchema,
    entity: identifierSchema,
    source: z
      .object({
        table: tableNameSchema,
        eventTimestamp: identifierSchema.default('event_timestamp'),
        createdTimestamp: identifierSchema.optional(),
      })
      .strict(),
    features: z.array(featureSchema).min(1, 'a feature view needs at least one feature'),
    /** Seconds a value stays valid after its event timestamp; 0 = forever. */
    ttlSeconds: z.number().int().min(0).default(0),
    online: z.boolean().default(true),
    description: z.string().default(''),
    tags: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export const featureServiceSchema = z
  .object({
    name: identifierSchema,
    features: z.array(featureRefSchema).min(1, 'a feature service lists at least one feature'),
    description: z.string().default(''),
  })
  .strict();

export type EntityInput = z.input<typeof entitySchema>;
export type Entity = z.output<typeof entitySchema>;
export type FeatureDefinition = z.output<typeof featureSchema>;
export type FeatureViewInput = z.input<typeof featureViewSchema>;
export type FeatureView = z.output<typeof featureViewSchema>;
export type FeatureServiceInput = z.input<typeof featureServiceSchema>;
export type FeatureService = z.output<typeof featureServiceSchema>;

/** A project's whole set of definitions, as declared in code. */
export interface FeatureDefinitionsInput {
  entities: EntityInput[];
  featureViews: FeatureViewInput[];
  featureServices?: FeatureServiceInput[];
}

export interface FeatureDefinitions {
  entities: Entity[];
  featureViews: FeatureView[];
  featureServices: FeatureService[];
}

export interface FeatureRef {
  view: string;
  feature: string;
}

export function parseFeatureRef(ref: string): FeatureRef {
  const [view, feature] = featureRefSchema.parse(ref).split(':') as [string, string];
  return { view, feature };
}

/** The version of a definition: the first 16 hex digits of the sha256 of its canonical JSON. */
export function definitionVersion(definition: Entity | FeatureView | FeatureService): string {
  return sha256Hex(canonicalJson(definition)).slice(0, 16);
}
