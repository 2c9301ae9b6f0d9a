import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FeatureSpec } from '../../lib/data/features.js';
import { applyFeatureSpec, defaultFeatureColumns, encodeRecords, labelsFromColumn, toFeatures } from '../../lib/data/features.js';
import type { Table } from '../../lib/data/table.js';
import { booleanColumn, categoryColumn, createTable, numberColumn, timestampColumn } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';

function training(): Table {
  return createTable([
    categoryColumn('customer_id', ['c1', 'c2', 'c3', 'c4']),
    timestampColumn('event_timestamp', [1, 2, 3, 4]),
    numberColumn('tenure', [12, null, 3.5, 40]),
    booleanColumn('autopay', [true, false, null, true]),
    categoryColumn('plan', ['gold', 'basic', 'gold', null]),
    booleanColumn('churned', [false, true, false, true]),
  ]);
}

/** Matrix rows as arrays, NaN kept. */
function rows(x: { data: Float64Array; rows: number; cols: number }): number[][] {
  return Array.from({ length: x.rows }, (_, r) => [...x.data.subarray(r * x.cols, (r + 1) * x.cols)]);
}

describe('toFeatures', () => {
  it('uses every column but label, entity keys and timestamps by default', () => {
    assert.deepEqual(defaultFeatureColumns(training(), { label: 'churned', entityKeys: ['customer_id'] }), ['tenure', 'autopay', 'plan']);
  });

  it('encodes numbers as is, booleans 0/1, categories as codes, nulls as NaN; labels as 0/1 bytes', () => {
    const { x, y, spec } = toFeatures(training(), { label: 'churned', entityKeys: ['customer_id'] });
    assert.deepEqual(x.names, ['tenure', 'autopay', 'plan']);
    assert.equal(x.rows, 4);
    assert.equal(x.cols, 3);
    // Categories sorted: basic = 0, gold = 1.
    assert.deepEqual(rows(x), [
      [12, 1, 1],
      [NaN, 0, 0],
      [3.5, NaN, 1],
      [40, 1, NaN],
    ]);
    assert.ok(y instanceof Uint8Array);
    assert.deepEqual([...y], [0, 1, 0, 1]);
    assert.deepEqual(spec, {
      version: 1,
      label: 'churned',
      features: [
        { name: 'tenure', type: 'number' },
        { name: 'autopay', type: 'boolean' },
        { name: 'plan', type: 'category', categories: ['basic', 'gold'] },
      ],
    });
    assert.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
  });

  it('takes explicit feature columns in the order given, timestamps as epoch ms', () => {
    const { x } = toFeatures(training(), { label: 'churned', features: ['event_timestamp', 'tenure'] });
    assert.deepEqual(x.names, ['event_timestamp', 'tenure']);
    assert.deepEqual(rows(x)[0], [1, 12]);
  });

  it('refuses the label as a feature, a repeated feature and a missing one', () => {
    assert.throws(() => toFeatures(training(), { label: 'churned', features: ['tenure', 'churned'] }), /label column churned cannot also be a feature/);
    assert.throws(() => toFeatures(training(), { label: 'churned', features: ['tenure', 'tenure'] }), /feature column tenure is listed twice/);
    assert.throws(() => toFeatures(training(), { label: 'churned', features: ['income'] }), (e: unknown) => e instanceof InvalidInput && e.field === 'income');
    assert.throws(() => toFeatures(training(), { label: 'target' }), /missing column target/);
  });
});

describe('labels', () => {
  it('accepts 0/1 numbers, booleans and the texts "0"/"1"/"true"/"false"', () => {
    const t = createTable([
      numberColumn('n', [0, 1, 1]),
      booleanColumn('b', [true, false, true]),
      categoryColumn('c', ['1', '0', 'true']),
    ]);
    assert.deepEqual([...labelsFromColumn(t, 'n')], [0, 1, 1]);
    assert.deepEqual([...labelsFromColumn(t, 'b')], [1, 0, 1]);
    assert.deepEqual([...labelsFromColumn(t, 'c')], [1, 0, 1]);
  });

  it('names the column, row and value of anything else', () => {
    const t = createTable([
      numberColumn('n', [0, 2, 1]),
      categoryColumn('c', ['1', 'yes', '0']),
      booleanColumn('b', [true, null, false]),
      timestampColumn('t', [0, 1, 2]),
    ]);
    const rejects = (column: string, pattern: RegExp) =>
      assert.throws(
        () => labelsFromColumn(t, column),
        (e: unknown) => e instanceof InvalidInput && e.field === column && pattern.test(e.message),
      );
    rejects('n', /label column n row index 1: "2" is not a binary label/);
    rejects('c', /label column c row index 1: "yes" is not a binary label/);
    rejects('b', /label column b row index 1: null is not a binary label/);
    rejects('t', /label column t row index 0: "1970-01-01T00:00:00.000Z"/);
  });
});

describe('applyFeatureSpec at serving time', () => {
  const { spec } = toFeatures(training(), { label: 'churned', entityKeys: ['customer_id'] });

  it('maps categories by text whatever the serving dictionary; unseen ones are NaN', () => {
    const serving = createTable([
      categoryColumn('plan', ['platinum', 'gold', 'basic', null]),
      numberColumn('tenure', [1, 2, 3, 4]),
      booleanColumn('autopay', [false, true, false, null]),
    ]);
    assert.deepEqual(rows(applyFeatureSpec(serving, spec)), [
      [1, 0, NaN],
      [2, 1, 1],
      [3, 0, 0],
      [4, NaN, NaN],
    ]);
  });

  it('matches category features held as numbers by their text', () => {
    const idSpec: FeatureSpec = { version: 1, features: [{ name: 'zip', type: 'category', categories: ['10001', '90210'] }] };
    const serving = createTable([numberColumn('zip', [90210, 12345, null])]);
    assert.deepEqual([...applyFeatureSpec(serving, idSpec).data], [1, NaN, NaN]);
  });

  it('names a missing feature column and a column of the wrong kind', () => {
    const noPlan = createTable([numberColumn('tenure', [1]), booleanColumn('autopay', [true])]);
    assert.throws(() => applyFeatureSpec(noPlan, spec), (e: unknown) => e instanceof InvalidInput && e.field === 'plan' && /missing feature column plan/.test(e.message));
    const wrong = createTable([categoryColumn('tenure', ['long']), booleanColumn('autopay', [true]), categoryColumn('plan', ['gold'])]);
    assert.throws(() => applyFeatureSpec(wrong, spec), /feature column tenure is category, the feature spec expects number/);
  });

  it('encodes JSON records the same way as a table', () => {
    const x = encodeRecords(
      [
        { tenure: 2, autopay: true, plan: 'gold', extra: 'ignored' },
        { tenure: null, autopay: false, plan: 'unknown' },
      ],
      spec,
    );
    assert.deepEqual(rows(x), [
      [2, 1, 1],
      [NaN, 0, NaN],
    ]);
    assert.throws(() => encodeRecords([{ tenure: 2, autopay: true }], spec), /record 0: missing feature plan/);
    assert.throws(() => encodeRecords([{ tenure: '2', autopay: true, plan: 'gold' }], spec), /record 0: feature tenure = "2" is not a number/);
  });
});
