import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkFeatureNames, encodeFeatureRows, modelHandlesMissing } from '../../api/serving/encode-request.js';
import type { FeatureSpec } from '../../lib/data/features.js';
import { encodeRecords } from '../../lib/data/features.js';
import { InvalidInput } from '../../lib/errors.js';

const spec: FeatureSpec = {
  version: 1,
  features: [
    { name: 'tenure_months', type: 'number' },
    { name: 'autopay', type: 'boolean' },
    { name: 'signup', type: 'timestamp' },
    { name: 'plan', type: 'category', categories: ['basic', 'plus', 'pro'] },
  ],
};
const good = { tenure_months: 12.5, autopay: true, signup: '2024-01-02T00:00:00Z', plan: 'plus' };
const open = { allowMissing: true };
const strict = { allowMissing: false };

/** Asserts an InvalidInput whose field is `field` and whose message matches `message`. */
function refuses(fn: () => unknown, field: string, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidInput, `expected InvalidInput, got ${String(error)}`);
    assert.equal(error.field, field);
    assert.match(error.message, message);
    return true;
  });
}

describe('encodeFeatureRows', () => {
  it('encodes in the spec order exactly as the training encoder does', () => {
    const rows = [good, { tenure_months: 0, autopay: 0, signup: 1_700_000_000_000, plan: 'pro' }];
    const encoded = encodeFeatureRows(rows, spec, open);
    assert.equal(encoded.rows, 2);
    assert.equal(encoded.cols, 4);
    assert.deepEqual([...encoded.data], [...encodeRecords(rows, spec).data]);
    assert.deepEqual([...encoded.data.subarray(0, 4)], [12.5, 1, Date.UTC(2024, 0, 2), 1]);
  });

  it('null and an unseen category are missing (NaN) for a model that handles missing values', () => {
    const encoded = encodeFeatureRows([{ ...good, tenure_months: null, plan: 'platinum' }], spec, open);
    assert.ok(Number.isNaN(encoded.data[0]));
    assert.ok(Number.isNaN(encoded.data[3]));
  });

  it('refuses null and an unseen category, naming the feature, when the model does not', () => {
    refuses(() => encodeFeatureRows([{ ...good, tenure_months: null }], spec, strict), 'tenure_months', /tenure_months: null .*missing values/);
    refuses(() => encodeFeatureRows([{ ...good, plan: 'platinum' }], spec, strict), 'plan', /: the value is not one of the training categories \(basic, plus, pro\)$/);
  });

  it('names the feature with the wrong type', () => {
    refuses(() => encodeFeatureRows([{ ...good, tenure_months: '12' }], spec, open), 'tenure_months', /: a string is not a number$/);
    refuses(() => encodeFeatureRows([{ ...good, tenure_months: true }], spec, open), 'tenure_months', /: a boolean is not a number$/);
    refuses(() => encodeFeatureRows([{ ...good, autopay: 2 }], spec, open), 'autopay', /: a number is not a boolean/);
    refuses(() => encodeFeatureRows([{ ...good, signup: 'yesterday' }], spec, open), 'signup', /not an ISO 8601 timestamp/);
    refuses(() => encodeFeatureRows([{ ...good, plan: { name: 'plus' } }], spec, open), 'plan', /is not a category/);
    refuses(() => encodeFeatureRows([{ ...good, plan: ['plus'] }], spec, open), 'plan', /an array is not a category/);
  });

  it('never echoes the value it refuses (answers to API callers carry no data values)', () => {
    const marker = 'secret-4242';
    for (const row of [{ plan: marker }, { tenure_months: marker }, { autopay: marker }, { signup: marker }, { plan: [marker] }, { tenure_months: 4242e36 }]) {
      assert.throws(
        () => encodeFeatureRows([{ ...good, ...row }], spec, strict),
        (error: unknown) => error instanceof InvalidInput && !error.message.includes('4242') && !error.message.includes('secret'),
      );
    }
  });

  it('refuses non-finite numbers and numbers beyond float32', () => {
    // JSON.parse('1e400') is Infinity: the only way a non-finite number reaches us from JSON.
    refuses(() => encodeFeatureRows([{ ...good, tenure_months: JSON.parse('1e400') as number }], spec, open), 'tenure_months', /: the value is not a finite number$/);
    refuses(() => encodeFeatureRows([{ ...good, tenure_months: NaN }], spec, open), 'tenure_months', /: the value is not a finite number$/);
    refuses(() => encodeFeatureRows([{ ...good, tenure_months: -3.5e38 }], spec, open), 'tenure_months', /beyond the float32 range/);
    assert.equal(encodeFeatureRows([{ ...good, tenure_months: 3.4e38 }], spec, open).data[0], 3.4e38);
  });

  it('names the row of a batch', () => {
    const label = (i: number) => `instances[${i}]`;
    refuses(() => encodeFeatureRows([good, { ...good, autopay: 'yes' }], spec, { ...open, rowLabel: label }), 'instances[1].autopay', /^instances\[1\]: feature autopay/);
    const { plan: _plan, ...noPlan } = good;
    refuses(() => encodeFeatureRows([good, noPlan], spec, { ...open, rowLabel: label }), 'instances[1].plan', /missing feature plan/);
  });

  it('only the built-in trainers are assumed to handle missing values', () => {
    assert.equal(modelHandlesMissing('gbdt'), true);
    assert.equal(modelHandlesMissing('logreg'), true);
    assert.equal(modelHandlesMissing('command'), false);
  });
});

describe('checkFeatureNames', () => {
  const allowed = new Set(['a', 'b', 'c']);
  it('lists every unknown feature, naming the first as the field', () => {
    refuses(() => checkFeatureNames({ a: 1, b: 2, c: 3, x: 1, y: 2 }, allowed, allowed), 'x', /unknown features x, y \(the model takes: a, b, c\)/);
  });
  it('lists every missing feature', () => {
    refuses(() => checkFeatureNames({ b: 2 }, allowed, allowed, 'instances[4]'), 'instances[4].a', /^instances\[4\]: missing features a, c$/);
  });
  it('accepts a complete row', () => {
    checkFeatureNames({ a: 1, b: null, c: 'x' }, allowed, allowed);
  });
});
