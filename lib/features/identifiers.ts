/**
 * The identifier rules every name that may reach SQL follows (tables, columns, views, features).
 * Kept free of Node built-ins: workflow input schemas use them.
 */
import { z } from 'zod';

/** Every identifier that may reach SQL (tables, columns, view and feature names). */
export const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export const identifierSchema = z
  .string()
  .regex(IDENTIFIER, 'must match ^[a-z_][a-z0-9_]{0,62}$ (lower case letters, digits, underscores)');

/** A Postgres table name, optionally schema-qualified (`schema.table`), each part an identifier. */
export const tableNameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$/, 'must be table or schema.table, each matching ^[a-z_][a-z0-9_]{0,62}$');

/** `view:feature`, Feast's reference syntax. */
export const featureRefSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}:[a-z_][a-z0-9_]{0,62}$/, 'a feature reference is view:feature, both identifiers');
