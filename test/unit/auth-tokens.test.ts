import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isLoopbackAddress } from '../../api/auth.js';
import { parseApiKeyToken } from '../../stores/api-keys.js';

describe('API key tokens', () => {
  const secret = 'Ab3_-'.repeat(8) + 'xyz'; // 43 base64url characters

  it('splits keel_<id>_<secret>, even when the secret holds underscores', () => {
    assert.deepEqual(parseApiKeyToken(`keel_abc123def456_${secret}`), { id: 'abc123def456', secret });
  });

  for (const bad of ['', 'keel', `abc123def456_${secret}`, `keel_ABC123DEF456_${secret}`, `keel_short_${secret}`, `keel_abc123def456_${secret}=`, `keel_abc123def456_${secret.slice(1)}`, ` keel_abc123def456_${secret}`]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 24))}… without a lookup`, () => {
      assert.equal(parseApiKeyToken(bad), undefined);
    });
  }
});

describe('isLoopbackAddress', () => {
  for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
    it(`treats ${address} as loopback`, () => assert.equal(isLoopbackAddress(address), true));
  }
  for (const address of ['10.0.0.1', '192.168.1.127', '::ffff:10.0.0.1', '::', '0.0.0.0', '1127.0.0.1', 'fe80::1']) {
    it(`does not treat ${address} as loopback`, () => assert.equal(isLoopbackAddress(address), false));
  }
});
