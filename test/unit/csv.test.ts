import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { parseTimestampText } from '../../lib/data/column-builder.js';
import { csvChunks, parseCsv, readCsvBatches, readCsvStream, tableToCsv } from '../../lib/data/csv.js';
import type { Table } from '../../lib/data/table.js';
import {
  booleanColumn,
  categoryColumn,
  columnValues,
  createTable,
  getColumn,
  numberColumn,
  schemaOf,
  timestampColumn,
} from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import { tableContents } from '../helpers/tables.js';

function types(table: Table): Record<string, string> {
  return Object.fromEntries(table.columns.map((c) => [c.name, c.type]));
}

async function collect(batches: AsyncIterable<Table>): Promise<Table[]> {
  const out: Table[] = [];
  for await (const batch of batches) out.push(batch);
  return out;
}

/** Splits bytes at every `size` bytes, also through multi-byte characters. */
function chunked(text: string, size: number): Readable {
  const bytes = Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts);
}

describe('CSV type inference', () => {
  const text = [
    'id,age,score,active,flag,joined,at,plan,zip,mixed,empty',
    'a1,31,0,true,True,2024-01-02,2024-01-02T03:04:05.678Z,gold,02134,1.50,',
    'a2,,1,FALSE,false,2024-02-29,2024-01-02 03:04+02:00,, 2139,x,',
    'a3,40.5,1,false,,,2024-01-02T03:04:05,silver,90210,2,  ',
  ].join('\n');

  it('infers numbers, true/false booleans, ISO timestamps and categories; 0/1 stay numbers', () => {
    const t = parseCsv(text);
    assert.deepEqual(types(t), {
      id: 'category',
      age: 'number',
      score: 'number',
      active: 'boolean',
      flag: 'boolean',
      joined: 'timestamp',
      at: 'timestamp',
      plan: 'category',
      zip: 'number',
      mixed: 'category',
      empty: 'number',
    });
    assert.deepEqual(columnValues(getColumn(t, 'age')), [31, null, 40.5]);
    assert.deepEqual(columnValues(getColumn(t, 'score')), [0, 1, 1]);
    assert.deepEqual(columnValues(getColumn(t, 'active')), [true, false, false]);
    assert.deepEqual(columnValues(getColumn(t, 'flag')), [true, false, null]);
    assert.deepEqual(columnValues(getColumn(t, 'joined')), [Date.UTC(2024, 0, 2), Date.UTC(2024, 1, 29), null]);
    // No offset means UTC; +02:00 is two hours ahead of UTC.
    assert.deepEqual(columnValues(getColumn(t, 'at')), [
      Date.UTC(2024, 0, 2, 3, 4, 5, 678),
      Date.UTC(2024, 0, 2, 1, 4),
      Date.UTC(2024, 0, 2, 3, 4, 5),
    ]);
    assert.deepEqual(columnValues(getColumn(t, 'plan')), ['gold', null, 'silver']);
    assert.deepEqual(columnValues(getColumn(t, 'zip')), [2134, 2139, 90210]);
    // Whitespace-only and empty fields are null; an all-null column is a number column.
    assert.deepEqual(columnValues(getColumn(t, 'empty')), [null, null, null]);
  });

  it('keeps the exact original text when a column turns out to be a category', () => {
    const t = parseCsv('code,when\n007,2024-01-01\n1.50,2024-01-01T00:00:00Z\n1e3,\nABC,soon\n');
    assert.deepEqual(types(t), { code: 'category', when: 'category' });
    assert.deepEqual(columnValues(getColumn(t, 'code')), ['007', '1.50', '1e3', 'ABC']);
    assert.deepEqual(columnValues(getColumn(t, 'when')), ['2024-01-01', '2024-01-01T00:00:00Z', null, 'soon']);
  });

  it('rebuilds every written form exactly when a typed column widens late', () => {
    const numbers = ['1.50', '3', '-0.25', '1e3', '007', '+4', '2.000', '0.1', '-7.10'];
    const stamps = [
      '2024-01-01 10:00',
      '2024-01-01T10:00:00.5Z',
      '2024-01-01T10:00:00+02:00',
      '2024-01-01T10:00:00.000Z',
      '2024-01-01',
      '2024-01-01 10:00:59',
      '2024-01-01T23:59:59.999',
    ];
    const flags = ['True', 'FALSE', 'false', 'TRUE', 'true', 'False'];
    const column = (values: string[], last: string) => ['v', ...values, '""', last].join('\n');
    for (const values of [numbers, stamps, flags]) {
      const t = parseCsv(column(values, 'other') + '\n');
      assert.deepEqual(tableContents(t), [['v', 'category', [...values, null, 'other']]]);
      const typed = parseCsv(column(values, '') + '\n');
      assert.notEqual(typed.columns[0]?.type, 'category');
    }
  });

  it('turns booleans mixed with 0/1 into a category, and keeps unusual casings as text', () => {
    const t = parseCsv('b\ntrue\n1\nTrue\n');
    assert.deepEqual(tableContents(t), [['b', 'category', ['true', '1', 'True']]]);
    assert.equal(parseCsv('b\ntRuE\n').columns[0]?.type, 'category');
  });

  it('reads extra null texts when asked', () => {
    const t = parseCsv('x,y\nNA,a\n2,null\n', { nullValues: ['NA', 'null'] });
    assert.deepEqual(tableContents(t), [
      ['x', 'number', [null, 2]],
      ['y', 'category', ['a', null]],
    ]);
    // Without nullValues, NA is just text.
    assert.deepEqual(tableContents(parseCsv('x\nNA\n2\n')), [['x', 'category', ['NA', '2']]]);
  });

  it('rejects impossible dates as timestamps', () => {
    assert.equal(parseTimestampText('2023-02-29'), undefined);
    assert.equal(parseTimestampText('2024-13-01'), undefined);
    assert.equal(parseTimestampText('2024-01-01T24:00'), undefined);
    assert.equal(parseTimestampText('0099-01-01'), new Date('0099-01-01T00:00:00Z').getTime());
    assert.equal(parseTimestampText('2024-01-01T00:00:00.123456-0130'), Date.UTC(2024, 0, 1, 1, 30, 0, 123));
    assert.equal(parseCsv('d\n2023-02-29\n').columns[0]?.type, 'category');
  });
});

describe('CSV explicit schema', () => {
  it('overrides inference: numeric-looking ids stay text', () => {
    const t = parseCsv('id,score\n007,1\n010,0\n', { schema: { id: 'category', score: 'boolean' } });
    assert.deepEqual(tableContents(t), [
      ['id', 'category', ['007', '010']],
      ['score', 'boolean', [true, false]],
    ]);
  });

  it('reports every value that does not fit, naming row and column', () => {
    const text = 'age,joined,ok\n31,2024-01-01,true\nold,2024-01-02,yes\n40,someday,false\n';
    assert.throws(
      () => parseCsv(text, { schema: { age: 'number', joined: 'timestamp', ok: 'boolean' } }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidInput);
        assert.match(error.message, /^3 CSV value\(s\) do not fit the schema/);
        assert.match(error.message, /row 2 column age: "old" is not a number/);
        assert.match(error.message, /row 2 column ok: "yes" is not a boolean/);
        assert.match(error.message, /row 3 column joined: "someday" is not a timestamp/);
        assert.equal(error.field, 'age');
        return true;
      },
    );
  });

  it('names a schema column that the CSV does not have, and an unknown type', () => {
    assert.throws(() => parseCsv('a\n1\n', { schema: { b: 'number' } }), /CSV has no column b named in the schema \(columns: a\)/);
    assert.throws(() => parseCsv('a\n1\n', { schema: { a: 'text' as never } }), /column a has unknown type text/);
  });
});

describe('CSV structure errors', () => {
  it('needs a header with distinct, non-empty names', () => {
    assert.throws(() => parseCsv(''), (e: unknown) => e instanceof InvalidInput && /CSV is empty/.test(e.message));
    assert.throws(() => parseCsv('a,a\n1,2\n'), /duplicate column a/);
    assert.throws(() => parseCsv('a,,c\n1,2,3\n'), /column 2 has an empty name/);
  });

  it('reports ragged rows and broken quotes as InvalidInput', () => {
    assert.throws(() => parseCsv('a,b\n1,2\n3\n'), (e: unknown) => e instanceof InvalidInput && /Invalid Record Length/.test(e.message));
    assert.throws(() => parseCsv('a\n"unclosed\n'), (e: unknown) => e instanceof InvalidInput && /^CSV: /.test(e.message));
  });

  it('reads a header-only CSV as an empty table', () => {
    const t = parseCsv('a,b\n');
    assert.equal(t.rowCount, 0);
    assert.deepEqual(t.columns.map((c) => c.name), ['a', 'b']);
  });

  it('strips a byte-order mark and accepts another delimiter', () => {
    const t = parseCsv('\ufeffa;b\n1;x\n', { delimiter: ';' });
    assert.deepEqual(tableContents(t), [
      ['a', 'number', [1]],
      ['b', 'category', ['x']],
    ]);
  });
});

describe('CSV writing and round trips', () => {
  const table = createTable([
    categoryColumn('id', ['007', 'b,c', 'say "hi"', 'multi\nline', null]),
    numberColumn('x', [1.5, null, -0.1, 1e21, 3]),
    booleanColumn('ok', [true, false, null, true, false]),
    timestampColumn('at', [0, null, Date.UTC(2024, 5, 30, 12, 0, 0, 1), 1, -1000]),
  ]);

  it('writes nulls as empty fields, ISO timestamps, and quotes what needs quoting', () => {
    const csv = tableToCsv(table);
    assert.equal(
      csv,
      'id,x,ok,at\n' +
        '007,1.5,true,1970-01-01T00:00:00.000Z\n' +
        '"b,c",,false,\n' +
        '"say ""hi""",-0.1,,2024-06-30T12:00:00.001Z\n' +
        '"multi\nline",1e+21,true,1970-01-01T00:00:00.001Z\n' +
        ',3,false,1969-12-31T23:59:59.000Z\n',
    );
  });

  it('round-trips types and nulls with the schema', () => {
    const back = parseCsv(tableToCsv(table), { schema: schemaOf(table) });
    assert.deepEqual(tableContents(back), tableContents(table));
  });

  it('round-trips by inference when the values say their type', () => {
    const plain = createTable([
      categoryColumn('plan', ['gold', null, 'basic']),
      numberColumn('x', [0.1, 2, null]),
      booleanColumn('ok', [null, true, false]),
      timestampColumn('at', [null, 1_700_000_000_123, 0]),
    ]);
    assert.deepEqual(tableContents(parseCsv(tableToCsv(plain))), tableContents(plain));
  });

  it('keeps null rows of a one-column table (no blank lines)', () => {
    const one = createTable([numberColumn('x', [null, 1, null])]);
    const csv = tableToCsv(one);
    assert.equal(csv, 'x\n""\n1\n""\n');
    assert.deepEqual(tableContents(parseCsv(csv)), tableContents(one));
  });

  it('writes in chunks of rows, header first', () => {
    const chunks = [...csvChunks(table, { chunkRows: 2 })];
    assert.equal(chunks.length, 4);
    assert.equal(chunks[0], 'id,x,ok,at\n');
    assert.equal(chunks.join(''), tableToCsv(table));
  });
});

describe('CSV streaming', () => {
  const rows = ['name,value,seen,ok'];
  for (let i = 0; i < 500; i++) {
    rows.push(`"größe ${i % 7}",${i % 11 === 0 ? '' : i / 4},2024-01-${String((i % 28) + 1).padStart(2, '0')},${i % 3 === 0}`);
  }
  const text = rows.join('\n') + '\n';

  it('reads a stream into the same table as parseCsv, whatever the chunking', async () => {
    const expected = tableContents(parseCsv(text));
    assert.deepEqual(types(parseCsv(text)), { name: 'category', value: 'number', seen: 'timestamp', ok: 'boolean' });
    for (const size of [1, 7, 4096]) {
      assert.deepEqual(tableContents(await readCsvStream(chunked(text, size))), expected, `chunks of ${size} bytes`);
    }
    assert.deepEqual(tableContents(await readCsvStream((async function* () { yield text; })())), expected);
  });

  it('streams row batches with types kept from batch to batch', async () => {
    const batches = await collect(readCsvBatches(chunked(text, 1000), { batchRows: 200 }));
    assert.deepEqual(batches.map((b) => b.rowCount), [200, 200, 100]);
    for (const batch of batches) assert.deepEqual(types(batch), { name: 'category', value: 'number', seen: 'timestamp', ok: 'boolean' });
    const all = tableContents(parseCsv(text));
    const joined = batches.flatMap((b) => columnValues(getColumn(b, 'value')));
    assert.deepEqual(joined, all[1]![2]);
  });

  it('reports a later batch value that does not fit with its row number in the file', async () => {
    const bad = 'n,c\n1,a\n2,b\n3,c\nx,d\n';
    await assert.rejects(collect(readCsvBatches(Readable.from([bad]), { batchRows: 2 })), /row 4 column n: "x" is not a number/);
  });

  it('infers a column that was all null in the first batch from a later one', async () => {
    const late = 'n,c\n1,\n2,\n3,hello\n4,\n';
    const batches = await collect(readCsvBatches(Readable.from([late]), { batchRows: 2 }));
    assert.deepEqual(batches.map(types), [
      { n: 'number', c: 'number' },
      { n: 'number', c: 'category' },
    ]);
    assert.deepEqual(columnValues(getColumn(batches[1]!, 'c')), ['hello', null]);
  });

  it('yields one empty table for a header-only stream', async () => {
    const batches = await collect(readCsvBatches(Readable.from(['a,b\n'])));
    assert.equal(batches.length, 1);
    assert.equal(batches[0]!.rowCount, 0);
  });

  it('passes on the source stream error as it is', async () => {
    const failing = new Readable({
      read() {
        this.push('a\n1\n');
        this.destroy(new Error('disk on fire'));
      },
    });
    await assert.rejects(readCsvStream(failing), /disk on fire/);
  });

  it('reports CSV syntax errors in a stream as InvalidInput', async () => {
    await assert.rejects(readCsvStream(Readable.from(['a,b\n1,2\n3\n'])), (e: unknown) => e instanceof InvalidInput);
  });
});
