/** MLflow's text/csv bodies: cells typed by the model's features as pandas would read them, refusals without values. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bodyFormat } from '../../api/routes/mlflow.js';
import { csvCell, csvRows } from '../../api/serving/mlflow-csv.js';
import { InvalidInput } from '../../lib/errors.js';

describe('MLflow text/csv bodies', () => {
  it('types cells by the feature: a category stays text, numbers and booleans are parsed, NA texts are null', () => {
    assert.equal(csvCell('1', 'category'), '1');
    assert.equal(csvCell(' 2.5e3 ', 'number'), 2500);
    assert.equal(csvCell('True', 'boolean'), true);
    assert.equal(csvCell('0', 'boolean'), 0);
    assert.equal(csvCell('2024-01-31T10:00:00Z', 'timestamp'), '2024-01-31T10:00:00Z');
    assert.equal(csvCell('1706695200000', 'timestamp'), 1706695200000);
    for (const missing of ['', ' ', 'NA', 'NaN', 'null', 'None', '<NA>']) assert.equal(csvCell(missing, 'number'), null, missing);
    assert.equal(csvCell('false', undefined), false);
    assert.equal(csvCell('abc', undefined), 'abc');
  });

  it('reads a header and rows, dropping the index column pandas writes first', () => {
    const types = new Map([['plan', 'category'], ['x', 'number']]);
    assert.deepEqual(csvRows(',x,plan\r\n0,1.5,7\r\n1,,basic\r\n', types), [{ x: 1.5, plan: '7' }, { x: null, plan: 'basic' }]);
    assert.deepEqual(csvRows('\uFEFFx,"plan"\n2,"a,b"\n\n', types), [{ x: 2, plan: 'a,b' }]);
    const proto = csvRows('__proto__\n1\n', types)[0]!;
    assert.deepEqual(Object.keys(proto), ['__proto__']);
    assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  });

  it('refuses malformed CSV naming rows and columns, never values', () => {
    const refuses = (text: string, message: RegExp) =>
      assert.throws(() => csvRows(text, new Map()), (e: unknown) => e instanceof InvalidInput && message.test(e.message) && !e.message.includes('secret'));
    refuses('', /empty/);
    refuses('x,y\n1,secret,3\n', /CSV row 1: 3 fields, the header has 2/);
    refuses('x,,y\n1,2,3\n', /column 2 has no name/);
    refuses('x,x\n1,2\n', /column x is given twice/);
    refuses('x,"secret\n1\n', /malformed/);
  });

  it('takes application/json and text/csv (UTF-8 only), else 415', () => {
    assert.equal(bodyFormat('application/json'), 'json');
    assert.equal(bodyFormat('Application/JSON; charset="UTF-8"'), 'json');
    assert.equal(bodyFormat('application/json;'), 'json');
    assert.equal(bodyFormat('text/csv; charset=utf-8'), 'csv');
    for (const type of [undefined, '', 'text/plain', 'application/json; charset=latin-1', 'application/json; format=pandas-split']) {
      assert.throws(() => bodyFormat(type), (e: unknown) => (e as { status?: number }).status === 415, String(type));
    }
  });
});
