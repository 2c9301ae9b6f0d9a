import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ExpectationFailure, Expectations } from '../../lib/data/expectations.js';
import { assertValid, validateTable, validationError } from '../../lib/data/expectations.js';
import type { Table } from '../../lib/data/table.js';
import { booleanColumn, categoryColumn, createTable, numberColumn, timestampColumn } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';

const DAY = 86_400_000;

function clean(): Table {
  return createTable([
    categoryColumn('customer_id', ['c1', 'c2', 'c3', 'c4', 'c1']),
    timestampColumn('event_timestamp', [0, DAY, 2 * DAY, 3 * DAY, DAY]),
    numberColumn('age', [31, 45, 22, 60, 32]),
    categoryColumn('plan', ['gold', 'basic', 'gold', 'basic', 'basic']),
    booleanColumn('churned', [false, true, false, false, true]),
  ]);
}

const expectations: Expectations = {
  columns: { age: 'number', plan: 'category', event_timestamp: 'timestamp', churned: ['boolean', 'number'] },
  label: 'churned',
  entityKeys: ['customer_id', 'event_timestamp'],
  ranges: { age: { min: 18, max: 100 } },
  categories: { plan: ['basic', 'gold'] },
  minRows: 5,
};

function failure(failures: ExpectationFailure[], expectation: string, column?: string): ExpectationFailure {
  const found = failures.find((f) => f.expectation === expectation && f.column === column);
  assert.ok(found, `no ${expectation} failure for ${column}; got ${failures.map((f) => `${f.expectation}(${f.column})`).join(', ')}`);
  return found;
}

describe('validateTable', () => {
  it('passes a clean table and says how much it checked', () => {
    const result = validateTable(clean(), expectations);
    assert.deepEqual(result.failures, []);
    assert.equal(result.ok, true);
    // rows 1 + types 4 + nulls 4 (age, plan, both keys) + range 1 + categories 1 + label 2 + keys 1.
    assert.equal(result.checked, 14);
    assert.equal(result.summary, 'all 14 expectations passed (5 rows)');
    assert.doesNotThrow(() => assertValid(clean(), expectations));
  });

  it('reports every failure at once, each with column, observed and expected', () => {
    const broken = createTable([
      categoryColumn('customer_id', ['c1', 'c2', 'c1', 'c4']),
      timestampColumn('event_timestamp', [0, DAY, 0, 3 * DAY]),
      numberColumn('age', [31, null, 7, 130]),
      categoryColumn('plan', ['gold', 'platinum', 'gold', 'free']),
      numberColumn('churned', [0, 1, 2, null]),
    ]);
    const result = validateTable(broken, { ...expectations, columns: { ...expectations.columns, income: 'number' } });
    assert.equal(result.ok, false);
    const kinds = result.failures.map((f) => `${f.expectation}(${f.column ?? ''})`);
    assert.deepEqual(kinds, [
      'min_rows()',
      'column_present(income)',
      'no_nulls(age)',
      'value_range(age)',
      'allowed_categories(plan)',
      'label_binary(churned)',
      'unique_keys(customer_id+event_timestamp)',
    ]);
    assert.deepEqual(failure(result.failures, 'min_rows').observed, 4);
    assert.deepEqual(failure(result.failures, 'min_rows').expected, { min: 5 });
    assert.deepEqual(failure(result.failures, 'no_nulls', 'age').observed, { nulls: 1, rows: 4 });
    assert.deepEqual(failure(result.failures, 'no_nulls', 'age').expected, { nulls: 0 });
    const range = failure(result.failures, 'value_range', 'age');
    assert.deepEqual(range.observed, { min: 7, max: 130, outside: 2, examples: [7, 130] });
    assert.deepEqual(range.expected, { min: 18, max: 100 });
    assert.match(range.message, /column age: 2 value\(s\) outside \[18, 100\]/);
    const categories = failure(result.failures, 'allowed_categories', 'plan');
    assert.deepEqual(categories.observed, { outside: 2, values: ['platinum', 'free'] });
    assert.deepEqual(categories.expected, ['basic', 'gold']);
    const label = failure(result.failures, 'label_binary', 'churned');
    assert.deepEqual(label.observed, { nulls: 1, invalid: 1, values: ['2'] });
    const keys = failure(result.failures, 'unique_keys', 'customer_id+event_timestamp');
    assert.deepEqual(keys.observed, { duplicateRows: 1, examples: [{ customer_id: 'c1', event_timestamp: 0 }] });
    assert.deepEqual(keys.expected, { duplicateRows: 0 });
    assert.equal(failure(result.failures, 'column_present', 'income').observed, null);
    assert.equal(
      result.summary,
      `7 of ${result.checked} expectations failed: min_rows, column_present(income), no_nulls(age), value_range(age), ` +
        'allowed_categories(plan), label_binary(churned), unique_keys(customer_id+event_timestamp)',
    );
    // Every failure is JSON (it is stored with the training run).
    assert.deepEqual(JSON.parse(JSON.stringify(result.failures)), result.failures);
  });

  it('reports wrong column types and a label rate outside the default [0.01, 0.99]', () => {
    const t = createTable([
      categoryColumn('age', ['31', '45']),
      numberColumn('churned', [0, 0]),
    ]);
    const result = validateTable(t, { columns: { age: 'number' }, label: 'churned', ranges: { age: { min: 0 } } });
    const type = failure(result.failures, 'column_type', 'age');
    assert.equal(type.observed, 'category');
    assert.equal(type.expected, 'number');
    const range = failure(result.failures, 'value_range', 'age');
    assert.equal(range.observed, 'category');
    const rate = failure(result.failures, 'label_rate', 'churned');
    assert.deepEqual(rate.observed, { rate: 0, positives: 0, rows: 2 });
    assert.deepEqual(rate.expected, { min: 0.01, max: 0.99 });
    const custom = validateTable(t, { label: 'churned', labelRate: { min: 0 } });
    assert.equal(custom.ok, true, custom.summary);
  });

  it('allows nulls in features when the trainer handles them, everywhere or per column', () => {
    const t = createTable([
      numberColumn('a', [1, null, 3]),
      numberColumn('b', [null, 2, 3]),
      numberColumn('y', [0, 1, 1]),
    ]);
    assert.deepEqual(
      validateTable(t, { label: 'y' }).failures.map((f) => f.column),
      ['a', 'b'],
    );
    assert.equal(validateTable(t, { label: 'y', allowMissing: true }).ok, true);
    assert.deepEqual(
      validateTable(t, { label: 'y', allowMissing: ['a'] }).failures.map((f) => `${f.expectation}(${f.column})`),
      ['no_nulls(b)'],
    );
    assert.equal(validateTable(t, { label: 'y', features: ['a'], allowMissing: false }).failures.length, 1);
  });

  it('reports a missing label as label_present and nulls in entity keys even when missing values are allowed', () => {
    const t = createTable([categoryColumn('id', ['a', null]), numberColumn('x', [1, 2])]);
    const result = validateTable(t, { label: 'churned', entityKeys: ['id'], allowMissing: true });
    assert.deepEqual(
      result.failures.map((f) => `${f.expectation}(${f.column})`),
      ['no_nulls(id)', 'label_present(churned)'],
    );
  });

  it('turns the failures into one InvalidInput naming them all', () => {
    const t = createTable([numberColumn('age', [null, 200]), numberColumn('y', [1, 1])]);
    const result = validateTable(t, { label: 'y', ranges: { age: { max: 120 } }, minRows: 3 });
    const error = validationError(result);
    assert.ok(error instanceof InvalidInput);
    assert.equal(error.field, 'age');
    assert.match(error.message, /^dataset failed 4 of \d+ expectations: /);
    assert.match(error.message, /min_rows: 2 rows, expected at least 3/);
    assert.match(error.message, /no_nulls \(age\): column age has 1 null/);
    assert.match(error.message, /value_range \(age\): column age: 1 value\(s\) outside \[-∞, 120\]/);
    assert.match(error.message, /label_rate \(y\): label column y: positive rate 1.0000 \(2 of 2\)/);
    assert.throws(() => assertValid(t, { label: 'y', ranges: { age: { max: 120 } }, minRows: 3 }), InvalidInput);
  });

  it('finds duplicate keys among many rows', () => {
    const n = 50_000;
    const ids = Array.from({ length: n }, (_, i) => `c${i % 25_000}`);
    const t = createTable([categoryColumn('id', ids), timestampColumn('at', Array.from({ length: n }, (_, i) => (i < 25_000 ? 0 : i === n - 1 ? 0 : DAY)))]);
    const result = validateTable(t, { entityKeys: ['id', 'at'], features: [] });
    const keys = failure(result.failures, 'unique_keys', 'id+at');
    assert.deepEqual(keys.observed, { duplicateRows: 1, examples: [{ id: 'c24999', at: 0 }] });
  });
});
