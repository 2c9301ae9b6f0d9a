/**
 * SQL pieces every feature-store query shares: quoting of identifiers that the definitions have
 * already checked against the identifier rule, and the one mapping from a feature's type to the
 * value its rows carry back to Node (float8, bool, text or epoch ms).
 */
import type { ColumnType } from '../../lib/data/table.js';
import type { FeatureValueType } from '../../lib/features/definitions.js';

/** A checked identifier as a quoted SQL identifier. */
export const quote = (identifier: string) => `"${identifier}"`;
/** `table` or `schema.table`, each part quoted. */
export const quoteTable = (name: string) => name.split('.').map(quote).join('.');

export function featureColumnType(type: FeatureValueType): ColumnType {
  switch (type) {
    case 'float64':
    case 'int64':
      return 'number';
    case 'bool':
      return 'boolean';
    case 'string':
      return 'category';
    case 'timestamp':
      return 'timestamp';
  }
}

/** SQL turning `expr` into what the result readers expect for `type`: float8, bool, text or epoch ms. */
export function outputExpression(expr: string, type: ColumnType): string {
  switch (type) {
    case 'number':
      return `(${expr})::float8`;
    case 'boolean':
      return `(${expr})::boolean`;
    case 'category':
      return `(${expr})::text`;
    case 'timestamp':
      // Queries run with TimeZone UTC, so timestamp without time zone and date read as UTC.
      return `floor(extract(epoch from (${expr})::timestamptz) * 1000)::float8`;
  }
}
