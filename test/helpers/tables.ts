import type { Table } from '../../lib/data/table.js';
import { columnValues } from '../../lib/data/table.js';

/** Every column as [name, type, values], to compare tables including types and nulls. */
export function tableContents(table: Table): Array<[string, string, unknown[]]> {
  return table.columns.map((c) => [c.name, c.type, columnValues(c)]);
}
