import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { booleanColumn, categoryColumn, columnValues, createTable, getColumn, numberColumn } from '../../lib/data/table.js';
import { InvalidInput } from '../../lib/errors.js';
import type { OnDemandFeatureInput } from '../../lib/features/on-demand.js';
import {
  applyOnDemandFeatures,
  checkOnDemandSpec,
  computeOnDemandRow,
  defineOnDemandFeature,
  onDemandSpec,
} from '../../lib/features/on-demand.js';

// What examples/churn/on-demand.ts could hold: functions of retrieved features and request fields.
const spendPerOrder = defineOnDemandFeature({
  name: 'spend_per_order_30d',
  inputs: ['spend_30d', 'orders_30d'],
  type: 'float64',
  fn: ({ spend_30d, orders_30d }) =>
    typeof spend_30d === 'number' && typeof orders_30d === 'number' && orders_30d > 0 ? spend_30d / orders_30d : null,
});
const feeShare = defineOnDemandFeature({
  name: 'fee_share_of_spend',
  inputs: ['monthly_fee', 'spend_30d'],
  type: 'float64',
  fn: ({ monthly_fee, spend_30d }) =>
    typeof monthly_fee === 'number' && typeof spend_30d === 'number' ? monthly_fee / (monthly_fee + spend_30d) : null,
});
const isNew = defineOnDemandFeature({
  name: 'is_new_customer',
  inputs: ['tenure_days'],
  type: 'bool',
  fn: ({ tenure_days }) => (tenure_days === null ? null : (tenure_days as number) < 90),
});

const table = createTable([
  numberColumn('spend_30d', [100, 0, null, 30]),
  numberColumn('orders_30d', [4, 0, 2, 3]),
  numberColumn('monthly_fee', [20, 10, 15, null]),
  numberColumn('tenure_days', [30, 400, null, 89]),
  categoryColumn('plan', ['basic', 'premium', null, 'basic']),
]);

function rejects(work: () => unknown, pattern: RegExp): void {
  assert.throws(work, (error: unknown) => {
    assert.ok(error instanceof InvalidInput, `expected InvalidInput, got ${String(error)}`);
    assert.match(error.message, pattern);
    return true;
  });
}

describe('on-demand features', () => {
  it('adds one column per definition, computed row by row, nulls in and out', () => {
    const out = applyOnDemandFeatures(table, [spendPerOrder, feeShare, isNew]);
    assert.deepEqual(out.columns.map((c) => c.name), ['spend_30d', 'orders_30d', 'monthly_fee', 'tenure_days', 'plan', 'spend_per_order_30d', 'fee_share_of_spend', 'is_new_customer']);
    assert.deepEqual(columnValues(getColumn(out, 'spend_per_order_30d')), [25, null, null, 10]);
    assert.deepEqual(columnValues(getColumn(out, 'fee_share_of_spend')), [20 / 120, 1, null, null]);
    assert.equal(getColumn(out, 'is_new_customer').type, 'boolean');
    assert.deepEqual(columnValues(getColumn(out, 'is_new_customer')), [true, false, null, true]);
    assert.equal(out.rowCount, 4);
    assert.equal(table.columns.length, 5, 'the input table is not changed');
  });

  it('a later feature may read an earlier one; string outputs become categories', () => {
    const bucket = defineOnDemandFeature({
      name: 'spend_bucket',
      inputs: ['spend_per_order_30d', 'plan'],
      type: 'string',
      fn: ({ spend_per_order_30d, plan }) => (spend_per_order_30d === null ? 'none' : `${plan ?? '?'}:${(spend_per_order_30d as number) > 20 ? 'high' : 'low'}`),
    });
    const out = applyOnDemandFeatures(table, [spendPerOrder, bucket]);
    assert.equal(getColumn(out, 'spend_bucket').type, 'category');
    assert.deepEqual(columnValues(getColumn(out, 'spend_bucket')), ['basic:high', 'none', 'none', 'basic:low']);
  });

  it('the same function scores one request in the gateway', () => {
    const row = computeOnDemandRow({ spend_30d: 100, orders_30d: 4, monthly_fee: 20, tenure_days: undefined }, [spendPerOrder, feeShare, isNew]);
    assert.deepEqual(row, { spend_30d: 100, orders_30d: 4, monthly_fee: 20, tenure_days: null, spend_per_order_30d: 25, fee_share_of_spend: 20 / 120, is_new_customer: null });
  });

  it('the code hash changes with the function body, the inputs or the type, not with the name of the variable holding it', () => {
    const base: OnDemandFeatureInput = { name: 'ratio', inputs: ['a', 'b'], type: 'float64', fn: ({ a, b }) => (a as number) / (b as number) };
    const same = defineOnDemandFeature({ ...base });
    const again = defineOnDemandFeature({ ...base, description: 'documented' });
    assert.match(same.codeHash, /^[0-9a-f]{64}$/);
    assert.equal(same.codeHash, again.codeHash);
    const body = defineOnDemandFeature({ ...base, fn: ({ a, b }) => (a as number) / ((b as number) + 1) });
    const inputs = defineOnDemandFeature({ ...base, inputs: ['b', 'a'] });
    const type = defineOnDemandFeature({ ...base, type: 'int64' });
    const hashes = new Set([same.codeHash, body.codeHash, inputs.codeHash, type.codeHash]);
    assert.equal(hashes.size, 4);
  });

  it('a thrown error, a non-finite number or a wrong type is an InvalidInput naming the feature and the row', () => {
    const throws = defineOnDemandFeature({
      name: 'explodes',
      inputs: ['orders_30d'],
      type: 'float64',
      fn: ({ orders_30d }) => {
        if (orders_30d === 3) throw new Error('three orders');
        return 1;
      },
    });
    rejects(() => applyOnDemandFeatures(table, [throws]), /^on-demand feature explodes failed at row 3: three orders$/);
    const divides = defineOnDemandFeature({ name: 'per_order', inputs: ['spend_30d', 'orders_30d'], type: 'float64', fn: ({ spend_30d, orders_30d }) => (spend_30d as number) / (orders_30d as number) });
    // row 1: 0 / 0 = NaN
    rejects(() => applyOnDemandFeatures(table, [divides]), /on-demand feature per_order returned the non-finite number NaN at row 1/);
    const wrong = defineOnDemandFeature({ name: 'as_text', inputs: ['plan'], type: 'float64', fn: ({ plan }) => plan });
    rejects(() => applyOnDemandFeatures(table, [wrong]), /on-demand feature as_text returned the string "basic" at row 0 \(declared type float64\)/);
    const fraction = defineOnDemandFeature({ name: 'half', inputs: ['orders_30d'], type: 'int64', fn: ({ orders_30d }) => (orders_30d as number) / 2 });
    rejects(() => applyOnDemandFeatures(table, [fraction]), /half returned the non-integer 1.5 at row 3/);
    const missing = defineOnDemandFeature({ name: 'forgot', inputs: ['orders_30d'], type: 'float64', fn: () => undefined as unknown as null });
    rejects(() => applyOnDemandFeatures(table, [missing]), /forgot returned undefined .*at row 0/);
    rejects(() => computeOnDemandRow({ orders_30d: 3 }, [throws]), /explodes failed at the request: three orders/);
  });

  it('refuses bad definitions, unknown inputs, overwriting a column and duplicate names', () => {
    rejects(() => defineOnDemandFeature({ name: 'Bad-Name', inputs: ['a'], type: 'float64', fn: () => 1 }), /name/);
    rejects(() => defineOnDemandFeature({ name: 'x', inputs: [], type: 'float64', fn: () => 1 }), /at least one/);
    rejects(() => defineOnDemandFeature({ name: 'x', inputs: ['a'], type: 'timestamp' as 'float64', fn: () => 1 }), /type must be one of/);
    rejects(() => defineOnDemandFeature({ name: 'x', inputs: ['a'], type: 'float64', fn: 1 as unknown as () => 1 }), /fn must be a function/);
    const unknown = defineOnDemandFeature({ name: 'x', inputs: ['nope'], type: 'float64', fn: () => 1 });
    rejects(() => applyOnDemandFeatures(table, [unknown]), /on-demand feature x: input nope is not a column/);
    const clash = defineOnDemandFeature({ name: 'plan', inputs: ['spend_30d'], type: 'float64', fn: () => 1 });
    rejects(() => applyOnDemandFeatures(table, [clash]), /already has a column plan/);
    rejects(() => onDemandSpec([spendPerOrder, spendPerOrder]), /defined twice/);
  });

  it('the spec goes into the model; a changed function is refused with "model was trained with a different transformation"', () => {
    const spec = JSON.parse(JSON.stringify(onDemandSpec([spendPerOrder, isNew]))) as unknown;
    assert.deepEqual(spec, [
      { name: 'spend_per_order_30d', inputs: ['spend_30d', 'orders_30d'], type: 'float64', codeHash: spendPerOrder.codeHash },
      { name: 'is_new_customer', inputs: ['tenure_days'], type: 'bool', codeHash: isNew.codeHash },
    ]);
    checkOnDemandSpec(spec, [isNew, feeShare, spendPerOrder]); // order and extra definitions do not matter
    const changed = defineOnDemandFeature({ name: 'is_new_customer', inputs: ['tenure_days'], type: 'bool', fn: ({ tenure_days }) => (tenure_days === null ? null : (tenure_days as number) < 60) });
    rejects(() => checkOnDemandSpec(spec, [spendPerOrder, changed]), /on-demand feature is_new_customer: model was trained with a different transformation/);
    rejects(() => checkOnDemandSpec(spec, [spendPerOrder]), /needs on-demand feature is_new_customer, which is not defined/);
    rejects(() => checkOnDemandSpec([{ name: 'x' }], [spendPerOrder]), /on-demand feature spec/);
    // booleans in tables too
    assert.deepEqual(columnValues(booleanColumn('b', [true, null])), [true, null]);
  });
});
