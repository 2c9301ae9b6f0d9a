import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidInput } from '../../lib/errors.js';
import {
  booleanColumn,
  categoryColumn,
  categoryColumnFromCodes,
  columnValues,
  createTable,
  getColumn,
  getTypedColumn,
  isNullAt,
  nullCount,
  numberColumn,
  schemaOf,
  selectColumns,
  sliceRows,
  sortCategories,
  tableFromColumns,
  takeTableRows,
  textAt,
  timestampColumn,
  valueAt,
  withColumn,
} from '../../lib/data/table.js';
import type { Table } from '../../lib/data/table.js';

function sample(): Table {
  return createTable([
    categoryColumn('id', ['c', 'a', 'b', 'a']),
    numberColumn('age', [31, null, 40.5, 22]),
    booleanColumn('active', [true, false, null, true]),
    timestampColumn('seen', [new Date('2024-01-02T00:00:00Z'), null, 1_700_000_000_000, 0]),
  ]);
}

describe('table columns', () => {
  it('stores nulls in band: NaN for numbers and timestamps, -1 for booleans and codes', () => {
    const t = createTable([
      numberColumn('n', [1, null, undefined]),
      booleanColumn('b', [true, null, false]),
      categoryColumn('c', ['x', null, 'x']),
      timestampColumn('t', [null, 5, new Date(7)]),
    ]);
    const [n, b, c, ts] = t.columns;
    assert.ok(n?.type === 'number' && b?.type === 'boolean' && c?.type === 'category' && ts?.type === 'timestamp');
    assert.deepEqual([...n.values], [1, NaN, NaN]);
    assert.deepEqual([...b.values], [1, -1, 0]);
    assert.deepEqual([...c.codes], [0, -1, 0]);
    assert.deepEqual([...ts.values], [NaN, 5, 7]);
    assert.deepEqual(t.columns.map(nullCount), [2, 1, 1, 1]);
    assert.equal(isNullAt(b, 1), true);
    assert.equal(isNullAt(b, 2), false);
  });

  it('dictionary-encodes categories in sorted order, whatever the row order', () => {
    const column = categoryColumn('plan', ['gold', 'basic', null, 'gold', 'silver']);
    assert.deepEqual(column.categories, ['basic', 'gold', 'silver']);
    assert.deepEqual([...column.codes], [1, 0, -1, 1, 2]);
    const reversed = categoryColumn('plan', ['silver', 'gold', null, 'basic', 'gold']);
    assert.deepEqual(reversed.categories, column.categories);
  });

  it('sortCategories remaps codes and keeps unused categories', () => {
    const column = categoryColumnFromCodes('c', Int32Array.from([0, 2, -1, 0]), ['z', 'unused', 'a']);
    const sorted = sortCategories(column);
    assert.deepEqual(sorted.categories, ['a', 'unused', 'z']);
    assert.deepEqual([...sorted.codes], [2, 0, -1, 2]);
    assert.deepEqual(columnValues(sorted), columnValues(column));
  });

  it('refuses codes outside the dictionary', () => {
    assert.throws(() => categoryColumnFromCodes('c', Int32Array.from([0, 3]), ['a', 'b']), (error: unknown) => {
      assert.ok(error instanceof InvalidInput);
      assert.match(error.message, /column c row 1: code 3/);
      return true;
    });
  });

  it('gives cells as JS values and text', () => {
    const t = sample();
    assert.deepEqual(columnValues(getColumn(t, 'id')), ['c', 'a', 'b', 'a']);
    assert.equal(valueAt(getColumn(t, 'age'), 1), null);
    assert.equal(valueAt(getColumn(t, 'active'), 0), true);
    assert.equal(valueAt(getColumn(t, 'seen'), 0), Date.UTC(2024, 0, 2));
    assert.equal(textAt(getColumn(t, 'seen'), 0), '2024-01-02T00:00:00.000Z');
    assert.equal(textAt(getColumn(t, 'seen'), 1), '');
    assert.equal(textAt(getColumn(t, 'active'), 1), 'false');
  });

  it('builds tables from plain arrays and a schema, refusing values of the wrong kind', () => {
    const t = tableFromColumns(
      [
        { name: 'x', type: 'number' },
        { name: 'y', type: 'category' },
      ],
      { x: [1, null], y: ['a', 'b'] },
    );
    assert.deepEqual(schemaOf(t), [
      { name: 'x', type: 'number' },
      { name: 'y', type: 'category' },
    ]);
    assert.throws(() => tableFromColumns([{ name: 'x', type: 'number' }], { x: [1, 'two'] }), /column x row 1: "two" is not a number/);
  });
});

describe('table shape', () => {
  it('refuses columns of different lengths and duplicate names', () => {
    assert.throws(() => createTable([numberColumn('a', [1, 2]), numberColumn('b', [1])]), /column b has 1 rows, expected 2/);
    assert.throws(() => createTable([numberColumn('a', [1]), booleanColumn('a', [true])]), /duplicate column a/);
  });

  it('names a missing column, and a column of the wrong type', () => {
    const t = sample();
    assert.throws(
      () => getColumn(t, 'income'),
      (error: unknown) => error instanceof InvalidInput && error.field === 'income' && /missing column income \(columns: id, age, active, seen\)/.test(error.message),
    );
    assert.throws(() => getTypedColumn(t, 'age', 'category'), /column age has type number, expected category/);
    assert.equal(getTypedColumn(t, 'age', 'number').values[0], 31);
  });

  it('selects columns in the order asked, sharing their arrays', () => {
    const t = sample();
    const picked = selectColumns(t, ['seen', 'id']);
    assert.deepEqual(picked.columns.map((c) => c.name), ['seen', 'id']);
    assert.equal(picked.rowCount, 4);
    assert.equal(picked.columns[0], getColumn(t, 'seen'));
    assert.throws(() => selectColumns(t, ['id', 'nope']), /missing column nope/);
  });

  it('takes rows by index, in any order and with repeats', () => {
    const t = sample();
    const taken = takeTableRows(t, [3, 1, 1]);
    assert.equal(taken.rowCount, 3);
    assert.deepEqual(columnValues(getColumn(taken, 'id')), ['a', 'a', 'a']);
    assert.deepEqual(columnValues(getColumn(taken, 'age')), [22, null, null]);
    assert.deepEqual(columnValues(getColumn(taken, 'active')), [true, false, false]);
    assert.deepEqual(columnValues(getColumn(taken, 'seen')), [0, null, null]);
    assert.throws(() => takeTableRows(t, [0, 4]), /row index 4 is out of range 0..3/);
    assert.equal(takeTableRows(t, []).rowCount, 0);
  });

  it('slices rows into new arrays', () => {
    const t = sample();
    const slice = sliceRows(t, 1, 3);
    assert.deepEqual(columnValues(getColumn(slice, 'age')), [null, 40.5]);
    const ages = getTypedColumn(slice, 'age', 'number').values;
    ages[1] = 0;
    assert.equal(getTypedColumn(t, 'age', 'number').values[2], 40.5);
  });

  it('adds or replaces a column', () => {
    const t = sample();
    const added = withColumn(t, numberColumn('score', [1, 2, 3, 4]));
    assert.deepEqual(added.columns.map((c) => c.name), ['id', 'age', 'active', 'seen', 'score']);
    const replaced = withColumn(t, numberColumn('age', [0, 0, 0, 0]));
    assert.deepEqual(replaced.columns.map((c) => c.name), ['id', 'age', 'active', 'seen']);
    assert.deepEqual(columnValues(getColumn(replaced, 'age')), [0, 0, 0, 0]);
    assert.throws(() => withColumn(t, numberColumn('short', [1])), /column short has 1 rows, expected 4/);
  });
});
