import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parquetMetadata, parquetSchema } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { readParquet, tableToParquet } from '../../lib/data/parquet.js';
import type { Table } from '../../lib/data/table.js';
import {
  booleanColumn,
  categoryColumn,
  columnValues,
  createTable,
  getColumn,
  numberColumn,
  timestampColumn,
} from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import { tableContents } from '../helpers/tables.js';

function sample(rows: number): Table {
  const pick = <T>(i: number, value: T): T | null => (i % 5 === 3 ? null : value);
  return createTable([
    numberColumn('x', Array.from({ length: rows }, (_, i) => pick(i, i * 0.25 - 3))),
    booleanColumn('ok', Array.from({ length: rows }, (_, i) => pick(i + 1, i % 2 === 0))),
    categoryColumn('plan', Array.from({ length: rows }, (_, i) => pick(i + 2, ['gold', 'basic', 'süßes ✓'][i % 3]!))),
    timestampColumn('at', Array.from({ length: rows }, (_, i) => pick(i + 4, Date.UTC(2024, 0, 1) + i * 3_600_123))),
    numberColumn('nothing', new Array<null>(rows).fill(null)),
  ]);
}

describe('Parquet round trip', () => {
  it('keeps every type and every null, codes included', async () => {
    const table = sample(23);
    const back = await readParquet(tableToParquet(table));
    assert.deepEqual(tableContents(back), tableContents(table));
    assert.deepEqual(back, table);
  });

  it('writes DOUBLE, BOOLEAN, UTF8 and TIMESTAMP_MILLIS columns, all optional', () => {
    const bytes = tableToParquet(sample(3));
    const elements = parquetSchema(parquetMetadata(bytes.buffer as ArrayBuffer)).children.map((c) => c.element);
    assert.deepEqual(
      elements.map((e) => [e.name, e.type, e.converted_type ?? null, e.repetition_type]),
      [
        ['x', 'DOUBLE', null, 'OPTIONAL'],
        ['ok', 'BOOLEAN', null, 'OPTIONAL'],
        ['plan', 'BYTE_ARRAY', 'UTF8', 'OPTIONAL'],
        ['at', 'INT64', 'TIMESTAMP_MILLIS', 'OPTIONAL'],
        ['nothing', 'DOUBLE', null, 'OPTIONAL'],
      ],
    );
  });

  it('reads back across many row groups', async () => {
    const table = sample(1000);
    const back = await readParquet(tableToParquet(table, { rowGroupRows: 64 }));
    assert.equal(parquetMetadata(tableToParquet(table, { rowGroupRows: 64 }).buffer as ArrayBuffer).row_groups.length, 16);
    assert.deepEqual(tableContents(back), tableContents(table));
  });

  it('round-trips an empty table with its column types', async () => {
    const back = await readParquet(tableToParquet(sample(0)));
    assert.equal(back.rowCount, 0);
    assert.deepEqual(
      back.columns.map((c) => [c.name, c.type]),
      [
        ['x', 'number'],
        ['ok', 'boolean'],
        ['plan', 'category'],
        ['at', 'timestamp'],
        ['nothing', 'number'],
      ],
    );
  });

  it('writes the same bytes for the same table', () => {
    assert.deepEqual(tableToParquet(sample(50)), tableToParquet(sample(50)));
  });

  it('reads a subset of columns in the order asked, and names a missing one', async () => {
    const bytes = tableToParquet(sample(10));
    const picked = await readParquet(bytes, { columns: ['at', 'x'] });
    assert.deepEqual(picked.columns.map((c) => c.name), ['at', 'x']);
    assert.deepEqual(columnValues(getColumn(picked, 'x')), columnValues(getColumn(sample(10), 'x')));
    await assert.rejects(readParquet(bytes, { columns: ['x', 'income'] }), (e: unknown) => e instanceof InvalidInput && e.field === 'income');
  });

  it('reads a small file held in a Buffer from Node\'s shared pool (a view at an offset into 8 KiB)', async () => {
    const pooled = Buffer.from(tableToParquet(sample(1)));
    assert.ok(pooled.buffer.byteLength > pooled.length, 'Node pooled the bytes');
    assert.deepEqual(tableContents(await readParquet(pooled)), tableContents(sample(1)));
  });

  it('reads from a Uint8Array view into a larger buffer', async () => {
    const bytes = tableToParquet(sample(5));
    const padded = new Uint8Array(bytes.length + 10);
    padded.set(bytes, 7);
    const back = await readParquet(padded.subarray(7, 7 + bytes.length));
    assert.deepEqual(tableContents(back), tableContents(sample(5)));
  });
});

describe('Parquet from other writers', () => {
  it('reads INT32, INT64, FLOAT, plain BYTE_ARRAY and microsecond timestamps', async () => {
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: 'i32', data: [1, null, -3] },
        { name: 'i64', data: [10n, 20n, null] },
        { name: 'f32', data: [0.5, null, 2.25] },
        { name: 'raw', data: ['a', 'b', null] },
      ],
      schema: [
        { name: 'root', num_children: 4 },
        { name: 'i32', type: 'INT32', repetition_type: 'OPTIONAL' },
        { name: 'i64', type: 'INT64', repetition_type: 'OPTIONAL' },
        { name: 'f32', type: 'FLOAT', repetition_type: 'OPTIONAL' },
        // Unannotated BYTE_ARRAY, as some writers leave strings.
        { name: 'raw', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
      ],
    });
    const back = await readParquet(new Uint8Array(buffer));
    assert.deepEqual(tableContents(back), [
      ['i32', 'number', [1, null, -3]],
      ['i64', 'number', [10, 20, null]],
      ['f32', 'number', [0.5, null, 2.25]],
      ['raw', 'category', ['a', 'b', null]],
    ]);
    const micros = parquetWriteBuffer({
      columnData: [{ name: 'us', data: [1_700_000_000_123_456n, null] }],
      schema: [
        { name: 'root', num_children: 1 },
        { name: 'us', type: 'INT64', repetition_type: 'OPTIONAL', logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' } },
      ],
    });
    assert.deepEqual(tableContents(await readParquet(new Uint8Array(micros))), [['us', 'timestamp', [1_700_000_000_123, null]]]);
  });

  it('refuses a JSON column, naming it', async () => {
    const buffer = parquetWriteBuffer({ columnData: [{ name: 'payload', data: [{ a: 1 }], type: 'JSON' }] });
    await assert.rejects(readParquet(buffer), (e: unknown) => {
      assert.ok(e instanceof InvalidInput);
      assert.equal(e.field, 'payload');
      assert.match(e.message, /parquet column payload is a JSON column/);
      return true;
    });
  });

  it('refuses bytes that are not Parquet', async () => {
    await assert.rejects(readParquet(new TextEncoder().encode('a,b\n1,2\n')), (e: unknown) => e instanceof InvalidInput && /not a readable Parquet file/.test(e.message));
  });

  it('refuses to write a table without columns', () => {
    assert.throws(() => tableToParquet(createTable([])), /no columns/);
  });
});
