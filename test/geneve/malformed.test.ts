import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GENEVE_REASONS, decodeGeneve, encodeGeneve, malformedDatagram } from '../../src/geneve';
import { GOOD_V4, GOOD_V6, GWLB_OPTIONS, IPV4_20, OPT_ATTACHMENT, OPT_COOKIE, OPT_ENI, fixed, hex, validDatagram } from './fixtures';

const reasonOf = (b: Uint8Array): string => {
  const r = decodeGeneve(b);
  return r.ok ? 'ok' : r.reason;
};

for (const [name, good] of [
  ['IPv4', GOOD_V4],
  ['IPv6', GOOD_V6],
] as const) {
  test(`malformedDatagram makes every reason from a GWLB ${name} datagram`, () => {
    const before = Buffer.from(good).toString('hex');
    for (const reason of GENEVE_REASONS) {
      const bad = malformedDatagram(reason, good);
      assert.equal(reasonOf(bad), reason);
      assert.notDeepEqual(bad, good);
    }
    assert.equal(Buffer.from(good).toString('hex'), before, 'the input must not be modified');
  });
}

test('malformedDatagram keeps unknown options, and the inner packet where it can', () => {
  const good = hex(fixed(10), 'abcd 07 01 11223344', GWLB_OPTIONS, IPV4_20);
  assert.equal(
    Buffer.from(malformedDatagram('cookie_missing', good)).toString('hex'),
    Buffer.from(hex(fixed(8), 'abcd 07 01 11223344', OPT_ENI, OPT_ATTACHMENT, IPV4_20)).toString('hex'),
  );
  assert.equal(
    Buffer.from(malformedDatagram('eni_bad_length', good)).toString('hex'),
    Buffer.from(hex(fixed(9), 'abcd 07 01 11223344', '0108 01 01 01234567', OPT_ATTACHMENT, OPT_COOKIE, IPV4_20)).toString('hex'),
  );
});

test('option_past_area also works when the last option already holds 124 bytes', () => {
  const big = { optClass: 0xabcd, type: 1, data: new Uint8Array(124) };
  const good = decodeGeneve(GOOD_V4);
  assert.ok(good.ok);
  const bytes = encodeGeneve({ ...good.value, options: [...good.value.options, big] });
  assert.equal(reasonOf(bytes), 'ok');
  assert.equal(reasonOf(malformedDatagram('option_past_area', bytes)), 'option_past_area');
});

test('malformedDatagram refuses a datagram that is not valid to begin with', () => {
  assert.throws(() => malformedDatagram('bad_version', GOOD_V4.subarray(0, 50)), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected a valid GWLB GENEVE datagram for good but received one rejected as inner_truncated',
  });
});

test('property: malformedDatagram(reason, any valid datagram) decodes to exactly that reason', () => {
  fc.assert(
    fc.property(fc.constantFrom(...GENEVE_REASONS), validDatagram, (reason, good) => {
      assert.equal(reasonOf(malformedDatagram(reason, good)), reason);
    }),
    { numRuns: 2000 },
  );
});
