import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { eniIdToEndpointId, eniIdToString, parseEniId } from '../../src/geneve';

test('ENI id as 17-digit zero-padded lowercase hex, as gwlbtun passes it to hooks', () => {
  assert.equal(eniIdToString(0x123456789abcdefn), '00123456789abcdef');
  assert.equal(eniIdToString(0n), '00000000000000000');
  assert.equal(eniIdToString(0xffffffffffffffffn), '0ffffffffffffffff');
  assert.equal(eniIdToString(0xabcdef0123456789n), '0abcdef0123456789');
  assert.equal(eniIdToEndpointId(0x123456789abcdefn), 'vpce-00123456789abcdef');
});

test('parseEniId reads both forms, any case, leading zeros optional', () => {
  assert.equal(parseEniId('00123456789abcdef'), 0x123456789abcdefn);
  assert.equal(parseEniId('vpce-00123456789ABCDEF'), 0x123456789abcdefn);
  assert.equal(parseEniId('ff'), 0xffn);
});

test('parseEniId refuses what is not an ENI id', () => {
  for (const bad of ['', 'vpce-', '0x12', '001234567890abcdef0', 'g', 'eni-0123', ' 12']) {
    assert.throws(() => parseEniId(bad), {
      code: 'ERR_INVALID_ARG',
      message: `Expected 1 to 17 hex digits, optionally after "vpce-", for eni id but received "${bad}" of type string`,
    });
  }
  assert.throws(() => parseEniId('10000000000000000'), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected an ENI id that fits in 64 bits for eni id but received "10000000000000000" of type string',
  });
});

test('eniIdToString refuses what is not a u64', () => {
  assert.throws(() => eniIdToString(-1n), { code: 'ERR_INVALID_ARG' });
  assert.throws(() => eniIdToString(1n << 64n), { code: 'ERR_INVALID_ARG' });
});

test('parseEniId(eniIdToString(x)) is x, always 17 lowercase hex digits', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (eni) => {
      const s = eniIdToString(eni);
      assert.match(s, /^[0-9a-f]{17}$/);
      assert.equal(parseEniId(s), eni);
    }),
    { numRuns: 500 },
  );
});
