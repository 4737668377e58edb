import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeGeneve, geneveHeaderLength, gwlbOptions, type GenevePacket } from '../../src/geneve';
import { GOOD_V4, GWLB_FIELDS, IPV4_20, hex } from './fixtures';

const gwlbPacket = (over: Partial<GenevePacket> = {}): GenevePacket => ({
  oam: false,
  critical: false,
  protocol: 0x0800,
  vni: 0,
  options: gwlbOptions(GWLB_FIELDS),
  inner: hex(IPV4_20),
  ...over,
});

test('encodeGeneve writes what GWLB sends, byte for byte', () => {
  const out = encodeGeneve(gwlbPacket());
  assert.ok(Buffer.isBuffer(out));
  assert.deepEqual(new Uint8Array(out), GOOD_V4);
  assert.equal(geneveHeaderLength(gwlbPacket()), 40);
});

test('encodeGeneve writes O, C and the VNI, and zeroes reserved bits', () => {
  const out = encodeGeneve(gwlbPacket({ oam: true, critical: true, vni: 0x123456, options: [], inner: hex('60') }));
  assert.equal(out.toString('hex'), '00c0080012345600' + '60');
});

test('gwlbOptions gives options 1, 2, 3 of class 0x0108 with big-endian data', () => {
  assert.deepEqual(gwlbOptions({ eni: 0x123456789abcdefn, attachment: 1n, cookie: 0x01020304 }), [
    { optClass: 0x0108, type: 1, data: hex('0123456789abcdef') },
    { optClass: 0x0108, type: 2, data: hex('0000000000000001') },
    { optClass: 0x0108, type: 3, data: hex('01020304') },
  ]);
});

test('the biggest option area (252 bytes) encodes; Opt Len is 63', () => {
  const opts = [124, 120].map((n) => ({ optClass: 1, type: 1, data: new Uint8Array(n) }));
  const out = encodeGeneve(gwlbPacket({ options: opts, inner: new Uint8Array(0) }));
  assert.equal(out.length, 8 + 252);
  assert.equal(out[0], 63);
  assert.equal(out[11], 31);
});

// One table of impossible input; the messages are part of the API.
const INVALID: { name: string; packet: GenevePacket; message: string }[] = [
  {
    name: 'option data not a multiple of 4',
    packet: gwlbPacket({ options: [{ optClass: 1, type: 1, data: new Uint8Array(6) }] }),
    message: 'Expected a Uint8Array of a multiple of 4 bytes, at most 124 for options[0].data but received 6 bytes',
  },
  {
    name: 'option data over 124 bytes',
    packet: gwlbPacket({ options: [...gwlbOptions(GWLB_FIELDS), { optClass: 1, type: 1, data: new Uint8Array(128) }] }),
    message: 'Expected a Uint8Array of a multiple of 4 bytes, at most 124 for options[3].data but received 128 bytes',
  },
  {
    name: 'option area over 252 bytes',
    packet: gwlbPacket({ options: [0, 1, 2].map(() => ({ optClass: 1, type: 1, data: new Uint8Array(84) })) }),
    message: 'Expected at most 252 bytes of options (headers included) for options but received 264 bytes',
  },
  {
    name: 'option class over 16 bits',
    packet: gwlbPacket({ options: [{ optClass: 0x10000, type: 1, data: new Uint8Array(0) }] }),
    message: 'Expected integer between 0 and 65535 for options[0].optClass but received 65536 of type number',
  },
  {
    name: 'option type over 8 bits',
    packet: gwlbPacket({ options: [{ optClass: 1, type: 256, data: new Uint8Array(0) }] }),
    message: 'Expected integer between 0 and 255 for options[0].type but received 256 of type number',
  },
  {
    name: 'VNI over 24 bits',
    packet: gwlbPacket({ vni: 0x1000000 }),
    message: 'Expected integer between 0 and 16777215 for vni but received 16777216 of type number',
  },
  {
    name: 'fractional protocol',
    packet: gwlbPacket({ protocol: 1.5 }),
    message: 'Expected integer between 0 and 65535 for protocol but received 1.5 of type number',
  },
];

for (const c of INVALID) {
  test(`encodeGeneve refuses ${c.name}`, () => {
    assert.throws(() => encodeGeneve(c.packet), { name: 'GatehouseError', code: 'ERR_INVALID_ARG', message: c.message });
  });
}

test('gwlbOptions refuses values that do not fit their fields', () => {
  assert.throws(() => gwlbOptions({ ...GWLB_FIELDS, eni: 1n << 64n }), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected bigint between 0 and 2^64-1 for eni but received 18446744073709551616 of type bigint',
  });
  assert.throws(() => gwlbOptions({ ...GWLB_FIELDS, attachment: -1n }), { code: 'ERR_INVALID_ARG' });
  assert.throws(() => gwlbOptions({ ...GWLB_FIELDS, cookie: 2 ** 32 }), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected integer between 0 and 4294967295 for cookie but received 4294967296 of type number',
  });
});
