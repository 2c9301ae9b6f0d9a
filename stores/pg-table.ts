/**
 * Postgres rows → Keel tables. Column types follow the result's type OIDs: integers, floats and
 * numerics are `number`, bool is `boolean`, date / timestamp / timestamptz are `timestamp`, and
 * anything else (text, varchar, enums, uuid…) is a `category`.
 */
import type pg from 'pg';
import { tableNameSchema } from '../lib/features/identifiers.js';
import { quoteTable } from './features/sql.js';
import { InvalidInput } from '../lib/errors.js';
import type { Column, ColumnType, Table } from '../lib/data/table.js';
import { columnFromValues, createTable } from '../lib/data/table.js';
import type { Db } from './db.js';

const NUMBER_OIDS = new Set([20, 21, 23, 26, 700, 701, 1700]);
const TIMESTAMP_OIDS = new Set([1082, 1114, 1184]);
const BOOLEAN_OID = 16;

export function columnTypeOfOid(oid: number): ColumnType {
  if (NUMBER_OIDS.has(oid)) return 'number';
  if (TIMESTAMP_OIDS.has(oid)) return 'timestamp';
  if (oid === BOOLEAN_OID) return 'boolean';
  return 'category';
}

/** `schema.table` or `table` as a quoted SQL identifier, after checking it against the identifier rule. */
export function quoteTableName(name: string): string {
  const parsed = tableNameSchema.safeParse(name);
  if (!parsed.success) throw new InvalidInput(`table ${JSON.stringify(name)} ${parsed.error.issues[0]!.message}`, 'table');
  return quoteTable(name);
}

/** A query result (rowMode 'array') as a table. */
export function tableFromResult(result: pg.QueryArrayResult): Table {
  const columns: Column[] = result.fields.map((field, c) => {
    const type = columnTypeOfOid(field.dataTypeID);
    const values = result.rows.map((row) => toCell(row[c], type));
    return columnFromValues(field.name, type, values);
  });
  return createTable(columns, result.rows.length);
}

function toCell(value: unknown, type: ColumnType): unknown {
  if (value === null || value === undefined) return null;
  switch (type) {
    case 'number':
      return typeof value === 'number' ? value : Number(value);
    case 'timestamp':
      return value instanceof Date ? value.getTime() : new Date(String(value)).getTime();
    case 'boolean':
      return Boolean(value);
    case 'category':
      return value instanceof Date ? value.toISOString() : String(value);
  }
}

/** Reads a whole table (or view); a missing one is an InvalidInput naming it. */
export async function readPostgresTable(db: Db, table: string): Promise<Table> {
  const sql = `SELECT * FROM ${quoteTableName(table)}`;
  try {
    return tableFromResult(await db.query({ text: sql, rowMode: 'array' }));
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') throw new InvalidInput(`table ${table} does not exist`, 'data.table');
    throw error;
  }
}

/**
 * A cheap content fingerprint of a table: row count and an order-independent sum of row hashes,
 * so the same rows give the same fingerprint and a changed row almost surely another.
 */
export async function tableFingerprint(db: Db, table: string): Promise<string> {
  try {
    const { rows } = await db.query<{ n: string; h: string }>(
      `SELECT count(*)::text AS n, COALESCE(sum(hashtextextended(t::text, 0)), 0)::text AS h FROM ${quoteTableName(table)} t`,
    );
    return `${rows[0]!.n}:${rows[0]!.h}`;
  } catch (error) {
    if ((error as { code?: string }).code === '42P01') throw new InvalidInput(`table ${table} does not exist`, 'data.table');
    throw error;
  }
}
