import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildInnerPacket, minimumInnerSize, STAMP_LENGTH, type InnerProtocol } from '../../src/packet/inner';
import { bytesToIp, ipv4ToBytes, ipv6ToBytes } from '../../src/packet/address';

/** Verification the way a receiver does it: the sum over header (+ pseudo-header) folds to 0xffff. */
function onesSum(parts: Uint8Array[]): number {
  let s = 0;
  for (const p of parts) {
    for (let i = 0; i + 1 < p.length; i += 2) s += (p[i] << 8) | p[i + 1];
    if (p.length & 1) s += p[p.length - 1] << 8;
  }
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function pseudo(src: Uint8Array, dst: Uint8Array, proto: number, len: number): Buffer {
  const b = Buffer.alloc(src.length * 2 + 4);
  b.set(src, 0);
  b.set(dst, src.length);
  b.writeUInt16BE(proto, src.length * 2);
  b.writeUInt16BE(len, src.length * 2 + 2);
  return b;
}

const cases: Array<{ family: 4 | 6; protocol: InnerProtocol; proto: number }> = [
  { family: 4, protocol: 'udp', proto: 17 },
  { family: 4, protocol: 'tcp', proto: 6 },
  { family: 4, protocol: 'icmp', proto: 1 },
  { family: 6, protocol: 'udp', proto: 17 },
  { family: 6, protocol: 'tcp', proto: 6 },
  { family: 6, protocol: 'icmp', proto: 58 },
];

for (const c of cases) {
  for (const size of [minimumInnerSize(c.family, c.protocol), 128, 1401, 8500]) {
    test(`inner IPv${c.family}/${c.protocol} of ${size} bytes has valid checksums and lengths`, () => {
      const src = c.family === 4 ? ipv4ToBytes('198.51.100.7') : ipv6ToBytes('2001:db8:100::7');
      const dst = c.family === 4 ? ipv4ToBytes('203.0.113.9') : ipv6ToBytes('2001:db8:200::9');
      const p = buildInnerPacket({ src, dst, protocol: c.protocol, srcPort: 40000, dstPort: 443, size });
      assert.equal(p.bytes.length, size);
      const ipLen = c.family === 4 ? 20 : 40;
      const l4 = p.bytes.subarray(ipLen);
      if (c.family === 4) {
        assert.equal(p.bytes[0], 0x45);
        assert.equal(p.bytes.readUInt16BE(2), size);
        assert.equal(p.bytes[9], c.proto);
        assert.equal(onesSum([p.bytes.subarray(0, 20)]), 0xffff, 'IPv4 header checksum');
      } else {
        assert.equal(p.bytes[0] >> 4, 6);
        assert.equal(p.bytes.readUInt16BE(4), size - 40);
        assert.equal(p.bytes[6], c.proto);
      }
      const parts = c.family === 4 && c.protocol === 'icmp' ? [l4] : [pseudo(src, dst, c.proto, l4.length), l4];
      assert.equal(onesSum(parts), 0xffff, 'L4 checksum verifies');
      assert.deepEqual([...p.bytes.subarray(p.stampOffset, p.stampOffset + STAMP_LENGTH)], new Array(STAMP_LENGTH).fill(0));
      assert.equal(p.bytes[p.ttlOffset], 64);
    });
  }
}

test('inner size below the minimum is refused with the minimum named', () => {
  assert.throws(
    () => buildInnerPacket({ src: ipv4ToBytes('198.51.100.1'), dst: ipv4ToBytes('203.0.113.1'), protocol: 'tcp', srcPort: 1, dstPort: 2, size: 40 }),
    /Expected inner size between 64 and 65535 for tcp\/IPv4 but received 40/,
  );
});

test('address conversions round-trip, IPv6 compressed per RFC 5952', () => {
  for (const a of ['2001:db8::1', '::', '::1', '2001:db8:100::10', 'fe80::1:2:3:4', '2001:db8:0:1:1:1:1:1']) {
    assert.equal(bytesToIp(ipv6ToBytes(a)), a);
  }
  assert.equal(bytesToIp(ipv6ToBytes('2001:0db8:0000:0000:0000:0000:0000:0001')), '2001:db8::1');
  assert.equal(bytesToIp(ipv6ToBytes('::ffff:192.0.2.1')), '::ffff:c000:201');
  assert.equal(bytesToIp(ipv4ToBytes('192.0.2.33')), '192.0.2.33');
  assert.throws(() => ipv4ToBytes('192.0.2.256'), /Expected an IPv4 address/);
  assert.throws(() => ipv6ToBytes('2001:db8:::1'), /Expected an IPv6 address/);
});
