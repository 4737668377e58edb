import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadNative } from '../../src/native/addon';
import { GENEVE_REASONS } from '../../src/geneve/reasons';
import {
  ETH_IPV4,
  ETH_IPV6,
  EXAMPLE_ATTACHMENT,
  EXAMPLE_COOKIE,
  EXAMPLE_ENI,
  be16,
  geneve,
  gwlbOptionList,
  innerPacket,
  malformedDatagrams,
  onesSum,
} from './packets';

const native = loadNative();

test('decodeGeneve returns the GWLB fields of a valid IPv4 datagram', () => {
  const d = geneve(ETH_IPV4, gwlbOptionList(), innerPacket(4, 'udp', 60).bytes);
  assert.deepEqual(native.decodeGeneve(d), {
    ok: true,
    headerLength: 40,
    protocol: ETH_IPV4,
    eni: EXAMPLE_ENI,
    attachment: EXAMPLE_ATTACHMENT,
    cookie: EXAMPLE_COOKIE,
  });
});

test('decodeGeneve accepts IPv6 inner packets and carries unknown options in the header length', () => {
  const extra = { optClass: 0x0101, type: 0x7f, data: new Uint8Array(8).fill(0xaa) };
  const opts = [extra, ...gwlbOptionList(0xffffffffffffffffn, 1n, 0xffffffff)];
  const d = geneve(ETH_IPV6, opts, innerPacket(6, 'tcp', 80).bytes);
  const r = native.decodeGeneve(d);
  assert.deepEqual(r, { ok: true, headerLength: 52, protocol: ETH_IPV6, eni: 0xffffffffffffffffn, attachment: 1n, cookie: 0xffffffff });
});

test('decodeGeneve accepts a Buffer as well as a Uint8Array', () => {
  const d = Buffer.from(geneve(ETH_IPV4, gwlbOptionList(), innerPacket(4, 'icmp', 28).bytes));
  assert.equal(native.decodeGeneve(d).ok, true);
});

test('decodeGeneve names the defect of each malformed datagram', () => {
  const m = malformedDatagrams();
  for (const reason of GENEVE_REASONS) {
    assert.deepEqual(native.decodeGeneve(m[reason]), { ok: false, reason }, reason);
  }
  assert.deepEqual(native.decodeGeneve(new Uint8Array(0)), { ok: false, reason: 'truncated_header' });
});

test('decodeGeneve rejects what is not a Uint8Array', () => {
  assert.throws(() => native.decodeGeneve([1, 2, 3] as unknown as Uint8Array), TypeError);
  assert.throws(() => native.decodeGeneve(new Uint16Array(8) as unknown as Uint8Array), TypeError);
});

/** Checks an IPv4+UDP datagram field by field and both checksums by an independent sum. */
function assertIPv4Udp(b: Buffer, src: number[], dst: number[], sport: number, dport: number, payload: Uint8Array): void {
  assert.equal(b.length, 28 + payload.length);
  assert.equal(b[0], 0x45);
  assert.equal(be16(b, 2), 28 + payload.length, 'IPv4 total length');
  assert.equal(be16(b, 6), 0x4000, 'DF, no fragment offset');
  assert.equal(b[8], 64, 'TTL');
  assert.equal(b[9], 17, 'protocol UDP');
  assert.deepEqual([...b.subarray(12, 16)], src);
  assert.deepEqual([...b.subarray(16, 20)], dst);
  assert.equal(onesSum(b.subarray(0, 20)), 0xffff, 'IPv4 header checksum verifies');
  assert.equal(be16(b, 20), sport);
  assert.equal(be16(b, 22), dport);
  assert.equal(be16(b, 24), 8 + payload.length, 'UDP length');
  assert.notEqual(be16(b, 26), 0, 'UDP checksum present');
  const udpLen = 8 + payload.length;
  const pseudo = onesSum(Uint8Array.of(...src, ...dst, 0, 17, udpLen >> 8, udpLen & 0xff));
  assert.equal(onesSum(b.subarray(20), pseudo), 0xffff, 'UDP checksum verifies over the pseudo-header');
  assert.deepEqual(new Uint8Array(b.subarray(28)), payload);
}

test('buildIPv4Udp writes correct IPv4 and UDP headers and checksums', () => {
  const payloads = [
    geneve(ETH_IPV4, gwlbOptionList(), innerPacket(4, 'udp', 128).bytes),
    Uint8Array.of(1, 2, 3), // odd length: padded in the sum
    new Uint8Array(0),
    new Uint8Array(1400).fill(0xff),
  ];
  for (const p of payloads) {
    const b = native.buildIPv4Udp('127.0.0.1', '192.0.2.200', 51234, 6081, p);
    assertIPv4Udp(b, [127, 0, 0, 1], [192, 0, 2, 200], 51234, 6081, p);
  }
});

test('buildIPv4Udp sends a computed UDP checksum of 0 as 0xffff', () => {
  // Pick a 2-byte payload that makes the one's-complement sum 0xffff, so the
  // checksum computes to 0, which on the wire would mean "no checksum".
  const src = [192, 0, 2, 1];
  const dst = [192, 0, 2, 2];
  const rest = onesSum(Uint8Array.of(...src, ...dst, 0, 17, 0, 10, 0x12, 0x34, 0x56, 0x78, 0, 10, 0, 0));
  const word = 0xffff - rest;
  const payload = Uint8Array.of(word >> 8, word & 0xff);
  const b = native.buildIPv4Udp('192.0.2.1', '192.0.2.2', 0x1234, 0x5678, payload);
  assert.equal(be16(b, 26), 0xffff);
  assertIPv4Udp(b, src, dst, 0x1234, 0x5678, payload);
});

test('buildIPv4Udp rejects bad addresses, ports and payloads', () => {
  assert.throws(() => native.buildIPv4Udp('::1', '127.0.0.1', 1, 2, new Uint8Array(1)), TypeError);
  assert.throws(() => native.buildIPv4Udp('127.0.0.1', '127.0.0.1', 70000, 2, new Uint8Array(1)), TypeError);
  assert.throws(() => native.buildIPv4Udp('127.0.0.1', '127.0.0.1', 1, 2, 'x' as unknown as Uint8Array), TypeError);
  assert.throws(() => native.buildIPv4Udp('127.0.0.1', '127.0.0.1', 1, 2, new Uint8Array(65508)), RangeError);
});
