/**
 * A `text/csv` body of MLflow's scoring server as rows: a header row naming the columns, then one
 * row per prediction, as `pandas.DataFrame.to_csv()` writes it (MLflow reads it with
 * `pandas.read_csv`). A first column with an empty name is the DataFrame's index and is dropped.
 * Cells are typed by the model's feature types (a category stays text, `"1"` included); a column
 * the model does not know is typed as pandas would, and then refused by name. Empty cells and
 * pandas' missing-value texts (`NA`, `NaN`, `null`, …) are null. Messages name rows and columns,
 * never values.
 */
import { CsvError } from 'csv-parse';
import { parse } from 'csv-parse/sync';
import { InvalidInput } from '../../lib/errors.js';

/** pandas.read_csv's default missing-value texts. */
const PANDAS_NA = new Set(['', '#N/A', '#N/A N/A', '#NA', '-1.#IND', '-1.#QNAN', '-NaN', '-nan', '1.#IND', '1.#QNAN', '<NA>', 'N/A', 'NA', 'NULL', 'NaN', 'None', 'n/a', 'nan', 'null']);
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TRUE = new Set(['True', 'TRUE', 'true']);
const FALSE = new Set(['False', 'FALSE', 'false']);

/** A cell as the feature's type reads it; `type` undefined: inferred (number, boolean, else text). */
export function csvCell(text: string, type: string | undefined): unknown {
  const trimmed = text.trim();
  if (PANDAS_NA.has(trimmed)) return null;
  if (type === 'category') return text;
  if (NUMBER.test(trimmed)) return Number(trimmed);
  if (type !== 'timestamp') {
    if (TRUE.has(trimmed)) return true;
    if (FALSE.has(trimmed)) return false;
  }
  return text;
}

/** The body's rows as `{column: value}` records; `types` are the model's feature types by name. */
export function csvRows(text: string, types: ReadonlyMap<string, string>): Array<Record<string, unknown>> {
  let records: string[][];
  try {
    records = parse(text, { bom: true, skip_empty_lines: true, relax_column_count: true }) as string[][];
  } catch (error) {
    if (error instanceof CsvError) {
      const { lines } = error as unknown as { lines?: unknown };
      const where = typeof lines === 'number' ? ` at line ${lines}` : '';
      throw new InvalidInput(`the CSV body is malformed${where} (${error.code}); send a header row, then one row per prediction`);
    }
    throw error;
  }
  const header = records[0];
  if (!header) throw new InvalidInput('the CSV body is empty: send a header row naming the columns, then one row per prediction');
  // pandas' to_csv() writes the index first, under an empty name.
  const skip = header.length > 1 && header[0] === '' ? 1 : 0;
  const columns = header.slice(skip);
  const seen = new Set<string>();
  columns.forEach((name, i) => {
    if (name.trim() === '') throw new InvalidInput(`CSV header: column ${i + 1 + skip} has no name`);
    if (seen.has(name)) throw new InvalidInput(`CSV header: column ${name} is given twice`, name);
    seen.add(name);
  });
  const rows: Array<Record<string, unknown>> = [];
  for (let r = 1; r < records.length; r++) {
    const record = records[r]!;
    if (record.length !== header.length) throw new InvalidInput(`CSV row ${r}: ${record.length} fields, the header has ${header.length}`, `row ${r}`);
    // fromEntries defines own keys: a column named __proto__ stays a (refused) column.
    rows.push(Object.fromEntries(columns.map((name, c) => [name, csvCell(record[c + skip]!, types.get(name))])));
  }
  return rows;
}
