import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { parseCidr, parseIPv4, parseIPv6Into } from '../../../src/inspect/policy/addresses';
import { ipv6ToBytes } from '../../../src/packet/address';

function words(addr: string): number[] | null {
  const out = new Uint32Array(4);
  return parseIPv6Into(addr, out) ? [...out] : null;
}

function wordsFromBytes(b: Uint8Array): number[] {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return [0, 4, 8, 12].map((i) => view.getUint32(i));
}

test('parseIPv4: dotted quads only', () => {
  assert.equal(parseIPv4('0.0.0.0'), 0);
  assert.equal(parseIPv4('255.255.255.255'), 0xffffffff);
  assert.equal(parseIPv4('192.0.2.1'), 0xc0000201);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.4 ', '1..2.3', '1.2.3.-4', '1.2.3.4/32', '1234.1.1.1']) {
    assert.equal(parseIPv4(bad), -1, bad);
  }
});

test('parseIPv6Into: the forms RFC 4291 allows, nothing else', () => {
  assert.deepEqual(words('::'), [0, 0, 0, 0]);
  assert.deepEqual(words('::1'), [0, 0, 0, 1]);
  assert.deepEqual(words('1::'), [0x10000, 0, 0, 0]);
  assert.deepEqual(words('2001:db8::ff00:42:8329'), [0x20010db8, 0, 0xff00, 0x428329]);
  assert.deepEqual(words('::ffff:192.0.2.1'), [0, 0, 0xffff, 0xc0000201]);
  assert.deepEqual(words('1:2:3:4:5:6:7:8'), [0x10002, 0x30004, 0x50006, 0x70008]);
  assert.deepEqual(words('1:2:3:4:5:6:7::'), [0x10002, 0x30004, 0x50006, 0x70000]);
  for (const bad of [':', ':1', '1:', '1:::2', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', 'fe80::1%eth0', 'g::', '::1.2.3', '1.2.3.4', '::1.2.3.4:5', '']) {
    assert.equal(words(bad), null, bad);
  }
});

test('parseIPv6Into agrees with net.isIPv6 and packet/address on random input', () => {
  fc.assert(
    fc.property(fc.ipV6(), (addr) => {
      assert.deepEqual(words(addr), wordsFromBytes(ipv6ToBytes(addr)));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-f:.]{0,45}$/)), (s) => {
      assert.equal(words(s) !== null, isIPv6(s) && !s.includes('%'), s);
    }),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV4Extended(), fc.stringMatching(/^[0-9.]{0,16}$/)), (s) => {
      assert.equal(parseIPv4(s) >= 0, isIPv4(s), s);
    }),
    { numRuns: 5000 },
  );
});

test('parseCidr: ranges, normalised text, and why a text is not a CIDR', () => {
  const ok = (text: string): [string, bigint, bigint] => {
    const r = parseCidr(text);
    assert.ok(r.ok, text);
    return [r.range.text, r.range.lo, r.range.hi];
  };
  assert.deepEqual(ok('192.0.2.0/24'), ['192.0.2.0/24', 0xc0000200n, 0xc00002ffn]);
  assert.deepEqual(ok('198.51.100.7'), ['198.51.100.7/32', 0xc6336407n, 0xc6336407n]);
  assert.deepEqual(ok('0.0.0.0/0'), ['0.0.0.0/0', 0n, 0xffffffffn]);
  assert.deepEqual(ok('2001:DB8:0::/32'), ['2001:db8::/32', 0x20010db8n << 96n, (0x20010db8n << 96n) | ((1n << 96n) - 1n)]);
  assert.deepEqual(ok('::/0'), ['::/0', 0n, (1n << 128n) - 1n]);
  const problem = (text: string): string => {
    const r = parseCidr(text);
    assert.ok(!r.ok, text);
    return r.problem;
  };
  assert.equal(problem('192.0.2.0/33'), 'a prefix length outside 0-32');
  assert.equal(problem('192.0.2.0/'), 'a prefix length outside 0-32');
  assert.equal(problem('192.0.2.0/-1'), 'a prefix length outside 0-32');
  assert.equal(problem('2001:db8::1/64'), 'host bits set (did you mean 2001:db8::/64?)');
  assert.equal(problem('example.com'), 'not an address');
  assert.equal(problem('fe80::1%eth0/128'), 'not an address');
});
