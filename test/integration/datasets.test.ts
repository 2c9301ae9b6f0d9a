import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseCsv } from '../../lib/data/csv.js';
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
import { ArtifactCorrupt, InvalidInput } from '../../lib/errors.js';
import { FsArtifactStore } from '../../stores/artifacts/fs-store.js';
import { getTable, putTable, readTable, writeTable } from '../../stores/datasets.js';
import { tempDir } from '../helpers/temp.js';
import { tableContents } from '../helpers/tables.js';

function sample(rows: number): Table {
  const maybe = <T>(i: number, value: T): T | null => (i % 7 === 2 ? null : value);
  return createTable([
    categoryColumn('customer_id', Array.from({ length: rows }, (_, i) => `cust-${i}`)),
    timestampColumn('event_timestamp', Array.from({ length: rows }, (_, i) => maybe(i + 1, Date.UTC(2024, 0, 1) + i * 60_000))),
    numberColumn('spend', Array.from({ length: rows }, (_, i) => maybe(i, Math.round(i * 13.37) / 100))),
    booleanColumn('autopay', Array.from({ length: rows }, (_, i) => maybe(i + 3, i % 3 === 0))),
    categoryColumn('plan', Array.from({ length: rows }, (_, i) => maybe(i + 4, ['basic', 'gold, plus', 'pro "x"'][i % 3]!))),
  ]);
}

describe('tables in the artifact store', () => {
  it('puts a table as Parquet and gets back the same types and nulls', async () => {
    const store = new FsArtifactStore(tempDir('keel-datasets-'));
    const table = sample(300);
    const ref = await putTable(store, table);
    assert.match(ref.sha256, /^[0-9a-f]{64}$/);
    assert.equal(ref.uri, store.uriFor(ref.sha256));
    assert.equal(readFileSync(fileURLToPath(ref.uri)).subarray(0, 4).toString(), 'PAR1');
    assert.deepEqual(await getTable(store, ref), table);
    assert.deepEqual(tableContents(await getTable(store, ref.sha256)), tableContents(table));
    // Same table, same bytes, same artifact.
    assert.deepEqual(await putTable(store, sample(300)), ref);
  });

  it('puts a table as CSV and streams it back', async () => {
    const store = new FsArtifactStore(tempDir('keel-datasets-'));
    const table = sample(120);
    const ref = await putTable(store, table, { format: 'csv' });
    assert.equal(readFileSync(fileURLToPath(ref.uri), 'utf8').split('\n')[0], 'customer_id,event_timestamp,spend,autopay,plan');
    const back = await getTable(store, ref, { csv: { schema: schemaOf(table) } });
    assert.deepEqual(tableContents(back), tableContents(table));
    // Without a schema the values still say their types.
    assert.deepEqual(tableContents(await getTable(store, ref)), tableContents(table));
  });

  it('refuses a corrupted CSV artifact instead of returning a table', async () => {
    const store = new FsArtifactStore(tempDir('keel-datasets-'));
    const ref = await putTable(store, sample(50), { format: 'csv' });
    const file = fileURLToPath(ref.uri);
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] = bytes[bytes.length - 3] === 0x31 ? 0x32 : 0x31;
    await chmod(file, 0o644);
    await writeFile(file, bytes);
    await assert.rejects(getTable(store, ref), ArtifactCorrupt);
  });

  it('refuses a corrupted Parquet artifact', async () => {
    const store = new FsArtifactStore(tempDir('keel-datasets-'));
    const ref = await putTable(store, sample(50));
    const file = fileURLToPath(ref.uri);
    const bytes = readFileSync(file);
    bytes[40] = bytes[40]! ^ 0xff;
    await chmod(file, 0o644);
    await writeFile(file, bytes);
    await assert.rejects(getTable(store, ref), ArtifactCorrupt);
  });
});

describe('tables in local files', () => {
  it('writes and reads .parquet and .csv by path and by file:// URI', async () => {
    const dir = tempDir('keel-datasets-');
    const table = sample(200);
    const parquetPath = path.join(dir, 'nested', 'train.parquet');
    await writeTable(parquetPath, table);
    assert.deepEqual(await readTable(parquetPath), table);
    const csvUri = pathToFileURL(path.join(dir, 'train.csv')).href;
    await writeTable(csvUri, table);
    assert.deepEqual(tableContents(await readTable(csvUri)), tableContents(table));
    assert.deepEqual(tableContents(await readTable(path.join(dir, 'train.csv'), { csv: { schema: schemaOf(table) } })), tableContents(table));
    assert.deepEqual(
      (await readTable(parquetPath, { columns: ['plan', 'spend'] })).columns.map((c) => c.name),
      ['plan', 'spend'],
    );
    // Written through a temp file and renamed: nothing else is left behind.
    assert.deepEqual(readdirSync(dir).sort(), ['nested', 'train.csv']);
    assert.deepEqual(readdirSync(path.join(dir, 'nested')), ['train.parquet']);
  });

  it('streams a large CSV file into the same table as an in-memory parse', async () => {
    const dir = tempDir('keel-datasets-');
    const lines = ['id,amount,country,ok'];
    for (let i = 0; i < 60_000; i++) lines.push(`${i},${i % 97 === 0 ? '' : (i * 0.37).toFixed(2)},${['DE', 'FR', 'US'][i % 3]},${i % 2 === 0}`);
    const text = lines.join('\n') + '\n';
    const file = path.join(dir, 'big.csv');
    await writeFile(file, text);
    const table = await readTable(file);
    assert.equal(table.rowCount, 60_000);
    assert.deepEqual(tableContents(table).map(([name, type]) => [name, type]), [
      ['id', 'number'],
      ['amount', 'number'],
      ['country', 'category'],
      ['ok', 'boolean'],
    ]);
    assert.deepEqual(tableContents(table), tableContents(parseCsv(text)));
    assert.equal(columnValues(getColumn(table, 'amount'))[97], null);
    assert.equal(columnValues(getColumn(table, 'amount'))[59_999], 22199.63);
  });

  it('names an unknown extension, a remote URI and a missing file', async () => {
    const dir = tempDir('keel-datasets-');
    await assert.rejects(readTable(path.join(dir, 'train.json')), (e: unknown) => e instanceof InvalidInput && /unknown table format \.json/.test(e.message));
    await assert.rejects(readTable('s3://bucket/train.parquet'), /only local paths and file:\/\/ URIs/);
    await assert.rejects(readTable(path.join(dir, 'absent.csv')), (e: unknown) => e instanceof InvalidInput && /no such file/.test(e.message));
    await assert.rejects(readTable(path.join(dir, 'absent.parquet')), /no such file/);
    assert.equal(existsSync(path.join(dir, 'absent.csv')), false);
  });
});
