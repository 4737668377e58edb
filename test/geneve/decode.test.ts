import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GENEVE_REASONS,
  decodeGeneve,
  encodeGeneve,
  readGwlbFields,
  type GeneveReason,
} from '../../src/geneve';
import {
  GOOD_V4,
  GOOD_V6,
  GWLB_FIELDS,
  GWLB_OPTIONS,
  IPV4_20,
  IPV6_40,
  OPT_ATTACHMENT,
  OPT_COOKIE,
  OPT_ENI,
  fixed,
  hex,
} from './fixtures';

type Case = { name: string; bytes: Uint8Array; reason: GeneveReason | 'ok' };

// Every case is written out byte by byte; each reason appears at least once,
// and several cases check that an earlier check wins over a later one.
const CASES: Case[] = [
  { name: 'empty datagram', bytes: hex(''), reason: 'truncated_header' },
  { name: '7 bytes', bytes: hex('00 00 0800 000000'), reason: 'truncated_header' },
  { name: 'version 1', bytes: hex(fixed(0, '0800', 1)), reason: 'bad_version' },
  { name: 'version 3', bytes: hex(fixed(0, '0800', 3)), reason: 'bad_version' },
  { name: 'version 2 beats options past datagram', bytes: hex(fixed(8, '0800', 2)), reason: 'bad_version' },
  { name: 'one word of options, none present', bytes: hex(fixed(1)), reason: 'options_past_datagram' },
  { name: 'GWLB header cut one byte short', bytes: hex(fixed(8), GWLB_OPTIONS).subarray(0, 39), reason: 'options_past_datagram' },
  { name: '63 words announced, 8 present', bytes: hex(fixed(63), GWLB_OPTIONS, IPV4_20), reason: 'options_past_datagram' },
  { name: 'option data runs past the area', bytes: hex(fixed(1), '0108 01 02', IPV4_20), reason: 'option_past_area' },
  {
    name: 'last option runs past the area (inner follows)',
    bytes: hex(fixed(9), GWLB_OPTIONS, 'abcd 05 01', IPV4_20),
    reason: 'option_past_area',
  },
  {
    name: 'bad option beats missing ENI',
    bytes: hex(fixed(2), '0001 01 1f 00000000', IPV4_20),
    reason: 'option_past_area',
  },
  { name: 'no options at all', bytes: hex(fixed(0), IPV4_20), reason: 'eni_missing' },
  { name: 'only attachment and cookie', bytes: hex(fixed(5), OPT_ATTACHMENT, OPT_COOKIE, IPV4_20), reason: 'eni_missing' },
  {
    name: 'ENI under another class',
    bytes: hex(fixed(8), '0109 01 02 0123456789abcdef', OPT_ATTACHMENT, OPT_COOKIE, IPV4_20),
    reason: 'eni_missing',
  },
  {
    name: 'ENI type with the critical bit set is another type',
    bytes: hex(fixed(8), '0108 81 02 0123456789abcdef', OPT_ATTACHMENT, OPT_COOKIE, IPV4_20),
    reason: 'eni_missing',
  },
  { name: 'ENI of 4 bytes', bytes: hex(fixed(7), '0108 01 01 01234567', OPT_ATTACHMENT, OPT_COOKIE, IPV4_20), reason: 'eni_bad_length' },
  { name: 'ENI of 0 bytes', bytes: hex(fixed(6), '0108 01 00', OPT_ATTACHMENT, OPT_COOKIE, IPV4_20), reason: 'eni_bad_length' },
  {
    name: 'a later bad ENI overrides a good one',
    bytes: hex(fixed(9), GWLB_OPTIONS, '0108 01 00', IPV4_20),
    reason: 'eni_bad_length',
  },
  {
    name: 'a later good ENI overrides a bad one',
    bytes: hex(fixed(9), '0108 01 00', GWLB_OPTIONS, IPV4_20),
    reason: 'ok',
  },
  {
    name: 'ENI length bits ignore the reserved bits',
    bytes: hex(fixed(8), '0108 01 e2 0123456789abcdef', OPT_ATTACHMENT, OPT_COOKIE, IPV4_20),
    reason: 'ok',
  },
  { name: 'bad ENI beats missing attachment', bytes: hex(fixed(1), '0108 01 00', IPV4_20), reason: 'eni_bad_length' },
  { name: 'no attachment', bytes: hex(fixed(5), OPT_ENI, OPT_COOKIE, IPV4_20), reason: 'attachment_missing' },
  {
    name: 'attachment of 12 bytes',
    bytes: hex(fixed(9), OPT_ENI, '0108 02 03 000000000000000000000000', OPT_COOKIE, IPV4_20),
    reason: 'attachment_bad_length',
  },
  { name: 'no cookie', bytes: hex(fixed(6), OPT_ENI, OPT_ATTACHMENT, IPV4_20), reason: 'cookie_missing' },
  {
    name: 'cookie of 8 bytes',
    bytes: hex(fixed(9), OPT_ENI, OPT_ATTACHMENT, '0108 03 02 deadbeefdeadbeef', IPV4_20),
    reason: 'cookie_bad_length',
  },
  { name: 'cookie of 0 bytes', bytes: hex(fixed(7), OPT_ENI, OPT_ATTACHMENT, '0108 03 00', IPV4_20), reason: 'cookie_bad_length' },
  { name: 'Ethernet payload (0x6558)', bytes: hex(fixed(8, '6558'), GWLB_OPTIONS, IPV4_20), reason: 'bad_protocol' },
  { name: 'protocol 0', bytes: hex(fixed(8, '0000'), GWLB_OPTIONS, IPV4_20), reason: 'bad_protocol' },
  { name: 'bad protocol beats empty inner', bytes: hex(fixed(8, '0806'), GWLB_OPTIONS), reason: 'bad_protocol' },
  { name: 'IPv4 protocol, IPv6 inner', bytes: hex(fixed(8, '0800'), GWLB_OPTIONS, IPV6_40), reason: 'ip_version_mismatch' },
  { name: 'IPv6 protocol, IPv4 inner', bytes: hex(fixed(8, '86dd'), GWLB_OPTIONS, IPV4_20), reason: 'ip_version_mismatch' },
  { name: 'IPv4 protocol, version 0, one byte', bytes: hex(fixed(8), GWLB_OPTIONS, '05'), reason: 'ip_version_mismatch' },
  { name: 'empty IPv4 inner', bytes: hex(fixed(8), GWLB_OPTIONS), reason: 'inner_truncated' },
  { name: 'empty IPv6 inner', bytes: hex(fixed(8, '86dd'), GWLB_OPTIONS), reason: 'inner_truncated' },
  { name: 'IPv4 inner of 19 bytes', bytes: hex(fixed(8), GWLB_OPTIONS, IPV4_20).subarray(0, 59), reason: 'inner_truncated' },
  { name: 'IPv4 IHL 4', bytes: hex(fixed(8), GWLB_OPTIONS, '44', IPV4_20.slice(2)), reason: 'inner_truncated' },
  { name: 'IPv4 IHL 6, 20 bytes', bytes: hex(fixed(8), GWLB_OPTIONS, '46', IPV4_20.slice(2)), reason: 'inner_truncated' },
  { name: 'IPv4 IHL 6, 24 bytes', bytes: hex(fixed(8), GWLB_OPTIONS, '46', IPV4_20.slice(2), '01010000'), reason: 'ok' },
  { name: 'IPv6 inner of 39 bytes', bytes: hex(fixed(8, '86dd'), GWLB_OPTIONS, IPV6_40).subarray(0, 79), reason: 'inner_truncated' },
  { name: 'GWLB IPv4', bytes: GOOD_V4, reason: 'ok' },
  { name: 'GWLB IPv6', bytes: GOOD_V6, reason: 'ok' },
];

test('every reason has at least one hand-built case', () => {
  const covered = new Set(CASES.map((c) => c.reason));
  for (const r of GENEVE_REASONS) assert.ok(covered.has(r), `no case for ${r}`);
});

for (const c of CASES) {
  test(`decodeGeneve: ${c.name} -> ${c.reason}`, () => {
    const r = decodeGeneve(c.bytes);
    assert.equal(r.ok ? 'ok' : r.reason, c.reason);
  });
}

test('decodeGeneve reads every field of a GWLB datagram', () => {
  const r = decodeGeneve(GOOD_V6);
  assert.ok(r.ok);
  assert.deepEqual(r.value, {
    oam: false,
    critical: false,
    protocol: 0x86dd,
    vni: 0,
    options: [
      { optClass: 0x0108, type: 1, data: hex('0123456789abcdef') },
      { optClass: 0x0108, type: 2, data: hex('fedcba9876543210') },
      { optClass: 0x0108, type: 3, data: hex('deadbeef') },
    ],
    inner: hex(IPV6_40),
  });
  assert.deepEqual(readGwlbFields(r.value), GWLB_FIELDS);
});

test('decodeGeneve reads O, C and VNI, and ignores reserved bits', () => {
  // O|C|all reserved bits set, VNI 0xabcdef, reserved byte 0xff.
  const r = decodeGeneve(hex('08 ff 0800 abcdef ff', GWLB_OPTIONS, IPV4_20));
  assert.ok(r.ok);
  assert.equal(r.value.oam, true);
  assert.equal(r.value.critical, true);
  assert.equal(r.value.vni, 0xabcdef);
});

test('decodeGeneve works on a Buffer view with an offset, and returns copies', () => {
  const backing = Buffer.concat([Buffer.from('xxxx'), Buffer.from(GOOD_V4)]);
  const view = backing.subarray(4);
  const r = decodeGeneve(view);
  assert.ok(r.ok);
  assert.equal(Object.getPrototypeOf(r.value.inner), Uint8Array.prototype);
  view[40] = 0; // the inner packet's first byte in the datagram
  assert.equal(r.value.inner[0], 0x45);
});

test('unknown options are kept byte for byte, in wire order, through decode -> encode', () => {
  const bytes = hex(
    fixed(16),
    '0000 00 00', // empty option, class 0, type 0
    OPT_COOKIE,
    'ffff ff 02 0102030405060708', // critical-bit type, experimental class
    OPT_ENI,
    '0108 04 01 cafef00d', // an AWS option type we do not read
    OPT_ATTACHMENT,
    '0103 80 01 11223344',
    IPV4_20,
  );
  const r = decodeGeneve(bytes);
  assert.ok(r.ok);
  assert.deepEqual(
    r.value.options.map((o) => [o.optClass, o.type, Buffer.from(o.data).toString('hex')]),
    [
      [0x0000, 0x00, ''],
      [0x0108, 0x03, 'deadbeef'],
      [0xffff, 0xff, '0102030405060708'],
      [0x0108, 0x01, '0123456789abcdef'],
      [0x0108, 0x04, 'cafef00d'],
      [0x0108, 0x02, 'fedcba9876543210'],
      [0x0103, 0x80, '11223344'],
    ],
  );
  assert.deepEqual(readGwlbFields(r.value), GWLB_FIELDS);
  assert.deepEqual(new Uint8Array(encodeGeneve(r.value)), bytes);
});

test('readGwlbFields: the last occurrence of each AWS option wins, as in the decoder', () => {
  const r = decodeGeneve(hex(fixed(13), GWLB_OPTIONS, '0108 03 01 00000001', '0108 01 02 0000000000000002', IPV4_20));
  assert.ok(r.ok);
  assert.deepEqual(readGwlbFields(r.value), { eni: 2n, attachment: GWLB_FIELDS.attachment, cookie: 1 });
});

test('readGwlbFields refuses a hand-made packet without the GWLB options', () => {
  assert.throws(() => readGwlbFields({ options: [] }), {
    name: 'GatehouseError',
    code: 'ERR_INVALID_ARG',
    message: 'Expected an AWS option (class 0x0108, type 1) with 8 bytes of data for eni but received none',
  });
  const badCookie = [{ optClass: 0x0108, type: 3, data: new Uint8Array(8) }];
  const eniAndAttachment = decodeGeneve(GOOD_V4);
  assert.ok(eniAndAttachment.ok);
  assert.throws(() => readGwlbFields({ options: [...eniAndAttachment.value.options, ...badCookie] }), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected an AWS option (class 0x0108, type 3) with 4 bytes of data for cookie but received 8 bytes of data',
  });
});
