/**
 * The native inner flow key parser, on packets built byte by byte here (no
 * packet code of ours involved): a table of good and bad packets, fragment
 * tracking, and properties (never throws, symmetric, prefixes never parse).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FLOW_KEY_REASONS, FragmentTracker, parseFlowKey, type FlowKey, type FlowKeyResult } from '../../src/native/flow-key';

// ---- hand-built packets (checksums left zero: the parser never reads them) ----

const v4 = (s: string): number[] => s.split('.').map(Number);
function v6(s: string): number[] {
  const [head, tail = ''] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = s.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}
const be16 = (n: number): number[] => [(n >> 8) & 0xff, n & 0xff];
const be32 = (n: number): number[] => [...be16(Math.floor(n / 65536)), ...be16(n & 0xffff)];

interface V4Opts {
  src: string;
  dst: string;
  proto: number;
  payload: number[];
  options?: number[]; // multiple of 4 bytes
  id?: number;
  flagsFragment?: number; // raw 16-bit flags + offset field
  totalLength?: number; // override
  ihl?: number; // override
}
function ipv4(o: V4Opts): Uint8Array {
  const opts = o.options ?? [];
  const ihl = o.ihl ?? 5 + opts.length / 4;
  const total = o.totalLength ?? 20 + opts.length + o.payload.length;
  return Uint8Array.from([
    0x40 | ihl, 0, ...be16(total), ...be16(o.id ?? 0x1234), ...be16(o.flagsFragment ?? 0x4000), 64, o.proto, 0, 0,
    ...v4(o.src), ...v4(o.dst), ...opts, ...o.payload,
  ]);
}

function ipv6(src: string, dst: string, next: number, payload: number[], payloadLength?: number): Uint8Array {
  return Uint8Array.from([
    0x60, 0, 0, 0, ...be16(payloadLength ?? payload.length), next, 64, ...v6(src), ...v6(dst), ...payload,
  ]);
}

// Extension headers: next header, length, then padding to the declared size.
const optionsHeader = (next: number, units8: number): number[] => [next, units8, ...Array<number>(6 + units8 * 8).fill(0)];
const routingHeader = (next: number): number[] => [next, 0, 0, 0, 0, 0, 0, 0]; // type 0, segments left 0
const fragmentHeader = (next: number, offset: number, more: boolean, id: number): number[] => [
  next, 0, ...be16(offset | (more ? 1 : 0)), ...be32(id),
];
// AH: payload length in 4-byte words minus 2; 12 fixed bytes + ICV.
const ahHeader = (next: number, icvBytes: number): number[] => [
  next, (12 + icvBytes) / 4 - 2, 0, 0, ...be32(0x1001), ...be32(1), ...Array<number>(icvBytes).fill(0xaa),
];

const tcp = (sport: number, dport: number): number[] => [...be16(sport), ...be16(dport), ...Array<number>(16).fill(0)];
const udp = (sport: number, dport: number, data: number[] = []): number[] => [
  ...be16(sport), ...be16(dport), ...be16(8 + data.length), 0, 0, ...data,
];
const icmp = (type: number, id: number, seq: number): number[] => [type, 0, 0, 0, ...be16(id), ...be16(seq), 1, 2, 3, 4];

const C4 = '198.51.100.10';
const S4 = '203.0.113.10';
const C6 = '2001:db8:100::10';
const S6 = '2001:db8:200::10';

function ok(r: FlowKeyResult): FlowKey {
  assert.ok(r.ok, r.ok ? '' : `expected a key, got ${r.reason}`);
  return r;
}

// ---- the table ----

interface Case {
  name: string;
  packet: Uint8Array;
  expect: Partial<FlowKey> | { reason: string };
}

const cases: Case[] = [
  {
    name: 'IPv4 TCP, client side lower: not reversed',
    packet: ipv4({ src: C4, dst: S4, proto: 6, payload: tcp(40000, 443) }),
    expect: {
      version: 4, protocol: 6, src: C4, dst: S4, srcPort: 40000, dstPort: 443, reversed: false, fragment: 'none',
      key: { a: C4, aPort: 40000, b: S4, bPort: 443 } as FlowKey['key'],
    },
  },
  {
    name: 'IPv4 TCP from the higher address: reversed, same key as the other way',
    packet: ipv4({ src: S4, dst: C4, proto: 6, payload: tcp(443, 40000) }),
    expect: { src: S4, dst: C4, srcPort: 443, dstPort: 40000, reversed: true, key: { a: C4, aPort: 40000, b: S4, bPort: 443 } as FlowKey['key'] },
  },
  {
    name: 'IPv4 with 12 bytes of options (IHL 8): ports read after them',
    packet: ipv4({ src: C4, dst: S4, proto: 17, options: [0x94, 4, 0, 0, 0x01, 0x01, 0x01, 0x01, 0x07, 3, 4, 0], payload: udp(5353, 53) }),
    expect: { protocol: 17, srcPort: 5353, dstPort: 53 },
  },
  {
    name: 'IPv4 with link padding after the total length',
    packet: Uint8Array.from([...ipv4({ src: C4, dst: S4, proto: 17, payload: udp(1, 2) }), 0, 0, 0, 0, 0, 0]),
    expect: { protocol: 17, srcPort: 1, dstPort: 2 },
  },
  {
    name: 'IPv4 AH then UDP: the key names UDP',
    packet: ipv4({ src: C4, dst: S4, proto: 51, payload: [...ahHeader(17, 12), ...udp(500, 4500)] }),
    expect: { protocol: 17, srcPort: 500, dstPort: 4500 },
  },
  {
    name: 'IPv4 GRE: no ports',
    packet: ipv4({ src: C4, dst: S4, proto: 47, payload: [0, 0, 0x08, 0x00] }),
    expect: { protocol: 47, srcPort: 0, dstPort: 0, icmpType: null },
  },
  {
    name: 'IPv4 TCP with exactly the 4 port bytes',
    packet: ipv4({ src: C4, dst: S4, proto: 6, payload: be16(1).concat(be16(2)) }),
    expect: { srcPort: 1, dstPort: 2 },
  },
  {
    name: 'ICMP echo request: id as srcPort, dstPort 0',
    packet: ipv4({ src: C4, dst: S4, proto: 1, payload: icmp(8, 0x4242, 1) }),
    expect: { protocol: 1, srcPort: 0x4242, dstPort: 0, icmpType: 8, reversed: false, key: { a: C4, aPort: 0x4242, b: S4, bPort: 0 } as FlowKey['key'] },
  },
  {
    name: 'ICMP echo reply: same key as the request',
    packet: ipv4({ src: S4, dst: C4, proto: 1, payload: icmp(0, 0x4242, 1) }),
    expect: { srcPort: 0x4242, dstPort: 0, icmpType: 0, reversed: true, key: { a: C4, aPort: 0x4242, b: S4, bPort: 0 } as FlowKey['key'] },
  },
  {
    name: 'ICMP destination unreachable: id 0',
    packet: ipv4({ src: S4, dst: C4, proto: 1, payload: [3, 3, 0, 0, 0, 0, 0, 0, 0x45] }),
    expect: { srcPort: 0, dstPort: 0, icmpType: 3 },
  },
  {
    name: 'ICMPv6 echo request and reply share a key (request)',
    packet: ipv6(C6, S6, 58, icmp(128, 7, 1)),
    expect: { version: 6, protocol: 58, srcPort: 7, dstPort: 0, icmpType: 128, key: { a: C6, aPort: 7, b: S6, bPort: 0 } as FlowKey['key'] },
  },
  {
    name: 'ICMPv6 echo reply',
    packet: ipv6(S6, C6, 58, icmp(129, 7, 1)),
    expect: { srcPort: 7, dstPort: 0, icmpType: 129, reversed: true, key: { a: C6, aPort: 7, b: S6, bPort: 0 } as FlowKey['key'] },
  },
  {
    name: 'protocol 1 inside IPv6 is not ICMPv6: no echo id',
    packet: ipv6(C6, S6, 1, icmp(8, 7, 1)),
    expect: { protocol: 1, srcPort: 0, icmpType: null },
  },
  {
    name: 'IPv6 hop-by-hop (16 bytes) + routing + destination options + AH + TCP',
    packet: ipv6(C6, S6, 0, [...optionsHeader(43, 1), ...routingHeader(60), ...optionsHeader(51, 0), ...ahHeader(6, 12), ...tcp(5000, 22)]),
    expect: { protocol: 6, srcPort: 5000, dstPort: 22, fragment: 'none' },
  },
  {
    name: 'IPv6 hop-by-hop + first fragment + UDP',
    packet: ipv6(C6, S6, 0, [...optionsHeader(44, 0), ...fragmentHeader(17, 0, true, 0xabcdef01), ...udp(4000, 53, [1, 2, 3, 4, 5, 6, 7, 8])]),
    expect: { protocol: 17, srcPort: 4000, dstPort: 53, fragment: 'first', fragmentId: 0xabcdef01, fragmentOffset: 0, moreFragments: true, portsFrom: 'header' },
  },
  {
    name: 'IPv6 atomic fragment (offset 0, no M): a whole packet',
    packet: ipv6(C6, S6, 44, [...fragmentHeader(6, 0, false, 9), ...tcp(1, 2)]),
    expect: { protocol: 6, srcPort: 1, dstPort: 2, fragment: 'none', fragmentId: 0 },
  },
  {
    name: 'IPv6 later fragment without a tracker: ports unknown (0)',
    packet: ipv6(C6, S6, 44, [...fragmentHeader(17, 1232, false, 5), 9, 9, 9, 9, 9, 9, 9, 9]),
    expect: { protocol: 17, srcPort: 0, dstPort: 0, fragment: 'later', fragmentOffset: 1232, portsFrom: 'unknown' },
  },
  {
    name: 'same address both sides: ports decide the order',
    packet: ipv4({ src: C4, dst: C4, proto: 17, payload: udp(9000, 53) }),
    expect: { reversed: true, key: { a: C4, aPort: 53, b: C4, bPort: 9000 } as FlowKey['key'] },
  },
  // ---- not parsable ----
  { name: 'empty', packet: new Uint8Array(0), expect: { reason: 'empty' } },
  { name: 'version 5', packet: Uint8Array.from([0x55, ...Array<number>(39).fill(0)]), expect: { reason: 'bad_version' } },
  { name: 'IPv4 shorter than 20 bytes', packet: ipv4({ src: C4, dst: S4, proto: 6, payload: [] }).subarray(0, 19), expect: { reason: 'ipv4_truncated' } },
  {
    name: 'IPv4 shorter than its total length',
    packet: ipv4({ src: C4, dst: S4, proto: 6, payload: tcp(1, 2), totalLength: 41 }),
    expect: { reason: 'ipv4_truncated' },
  },
  { name: 'IPv4 IHL 4', packet: ipv4({ src: C4, dst: S4, proto: 6, payload: tcp(1, 2), ihl: 4 }), expect: { reason: 'ipv4_bad_header_length' } },
  {
    name: 'IPv4 total length below IHL',
    packet: ipv4({ src: C4, dst: S4, proto: 6, payload: tcp(1, 2), options: [1, 1, 1, 0], totalLength: 20 }),
    expect: { reason: 'ipv4_bad_header_length' },
  },
  {
    name: 'IPv4 options run past the total length',
    packet: ipv4({ src: C4, dst: S4, proto: 6, payload: [], ihl: 15, totalLength: 40 }),
    expect: { reason: 'ipv4_bad_header_length' },
  },
  { name: 'IPv4 TCP with 3 port bytes', packet: ipv4({ src: C4, dst: S4, proto: 6, payload: [0, 1, 0] }), expect: { reason: 'l4_truncated' } },
  { name: 'IPv4 ICMP with 7 bytes', packet: ipv4({ src: C4, dst: S4, proto: 1, payload: icmp(8, 1, 1).slice(0, 7) }), expect: { reason: 'l4_truncated' } },
  { name: 'IPv6 shorter than 40 bytes', packet: ipv6(C6, S6, 59, []).subarray(0, 39), expect: { reason: 'ipv6_truncated' } },
  { name: 'IPv6 shorter than its payload length', packet: ipv6(C6, S6, 6, tcp(1, 2), 21), expect: { reason: 'ipv6_truncated' } },
  {
    name: 'IPv6 hop-by-hop longer than the packet',
    packet: ipv6(C6, S6, 0, optionsHeader(6, 1).slice(0, 12)),
    expect: { reason: 'extension_truncated' },
  },
  { name: 'IPv6 fragment header cut short', packet: ipv6(C6, S6, 44, fragmentHeader(6, 0, true, 1).slice(0, 6)), expect: { reason: 'extension_truncated' } },
  { name: 'IPv6 AH longer than the packet', packet: ipv6(C6, S6, 51, ahHeader(6, 12).slice(0, 20)), expect: { reason: 'extension_truncated' } },
  { name: 'IPv6 UDP with 2 bytes', packet: ipv6(C6, S6, 17, [0, 53]), expect: { reason: 'l4_truncated' } },
  { name: 'IPv6 ICMPv6 echo with 4 bytes', packet: ipv6(C6, S6, 58, [128, 0, 0, 0]), expect: { reason: 'l4_truncated' } },
];

for (const c of cases) {
  test(`flow key: ${c.name}`, () => {
    const r = parseFlowKey(c.packet);
    if ('reason' in c.expect) {
      assert.deepEqual(r, { ok: false, reason: c.expect.reason });
      return;
    }
    const k = ok(r);
    for (const [field, want] of Object.entries(c.expect)) {
      if (field === 'key') {
        const { a, aPort, b, bPort } = k.key;
        assert.deepEqual({ a, aPort, b, bPort }, want, 'key');
      } else {
        assert.deepEqual(k[field as keyof FlowKey], want, field);
      }
    }
  });
}

function sameKey(x: FlowKey, y: FlowKey): void {
  assert.equal(x.protocol, y.protocol);
  assert.deepEqual(x.key, y.key); // hash included
}

test('flow key: TCP both directions give the same key and opposite directions', () => {
  const out = ok(parseFlowKey(ipv4({ src: C4, dst: S4, proto: 6, payload: tcp(40000, 443) })));
  const back = ok(parseFlowKey(ipv4({ src: S4, dst: C4, proto: 6, payload: tcp(443, 40000) })));
  sameKey(out, back);
  assert.notEqual(out.reversed, back.reversed);
});

test('flow key: ICMP echo request and reply (IPv4 and IPv6) share a key; another id does not', () => {
  const req = ok(parseFlowKey(ipv4({ src: C4, dst: S4, proto: 1, payload: icmp(8, 99, 1) })));
  const rep = ok(parseFlowKey(ipv4({ src: S4, dst: C4, proto: 1, payload: icmp(0, 99, 1) })));
  sameKey(req, rep);
  const other = ok(parseFlowKey(ipv4({ src: C4, dst: S4, proto: 1, payload: icmp(8, 100, 1) })));
  assert.notDeepEqual(other.key, req.key);
  const req6 = ok(parseFlowKey(ipv6(C6, S6, 58, icmp(128, 99, 1))));
  const rep6 = ok(parseFlowKey(ipv6(S6, C6, 58, icmp(129, 99, 1))));
  sameKey(req6, rep6);
});

test('flow key: IPv4 fragments follow their first fragment through a tracker', () => {
  const tracker = new FragmentTracker();
  const first = ipv4({ src: C4, dst: S4, proto: 17, id: 0x7777, flagsFragment: 0x2000, payload: udp(6000, 7000, Array<number>(16).fill(1)) });
  const later = ipv4({ src: C4, dst: S4, proto: 17, id: 0x7777, flagsFragment: 3, payload: Array<number>(8).fill(2) }); // offset 24
  const f = ok(parseFlowKey(first, tracker));
  assert.equal(f.fragment, 'first');
  assert.equal(f.fragmentId, 0x7777);
  const l = ok(parseFlowKey(later, tracker));
  assert.deepEqual([l.fragment, l.fragmentOffset, l.moreFragments, l.portsFrom], ['later', 24, false, 'tracker']);
  assert.deepEqual([l.srcPort, l.dstPort], [6000, 7000]);
  sameKey(f, l);
  // Another IP id, or the same id from another source, was never seen.
  const otherId = ok(parseFlowKey(ipv4({ src: C4, dst: S4, proto: 17, id: 0x7778, flagsFragment: 3, payload: [0, 0, 0, 0, 0, 0, 0, 0] }), tracker));
  assert.deepEqual([otherId.portsFrom, otherId.srcPort, otherId.dstPort], ['unknown', 0, 0]);
  const otherSrc = ok(parseFlowKey(ipv4({ src: '198.51.100.11', dst: S4, proto: 17, id: 0x7777, flagsFragment: 3, payload: [0, 0, 0, 0, 0, 0, 0, 0] }), tracker));
  assert.equal(otherSrc.portsFrom, 'unknown');
  // Without the tracker, the same later fragment has no ports.
  const alone = ok(parseFlowKey(later));
  assert.deepEqual([alone.portsFrom, alone.srcPort], ['unknown', 0]);
  // A second tracker knows nothing of the first one's fragments.
  assert.equal(ok(parseFlowKey(later, new FragmentTracker())).portsFrom, 'unknown');
});

test('flow key: IPv6 later fragments (behind hop-by-hop) follow the first, in both directions', () => {
  const tracker = new FragmentTracker();
  const first = ipv6(C6, S6, 0, [...optionsHeader(44, 0), ...fragmentHeader(6, 0, true, 0x01020304), ...tcp(33000, 80)]);
  const later = ipv6(C6, S6, 0, [...optionsHeader(44, 0), ...fragmentHeader(6, 1448, false, 0x01020304), 1, 2, 3, 4, 5, 6, 7, 8]);
  const replyFirst = ipv6(S6, C6, 44, [...fragmentHeader(6, 0, true, 0x0a0b0c0d), ...tcp(80, 33000)]);
  const replyLater = ipv6(S6, C6, 44, [...fragmentHeader(6, 8, true, 0x0a0b0c0d), 1, 2, 3, 4, 5, 6, 7, 8]);
  // A later fragment seen first has no ports; it does not poison the tracker.
  assert.equal(ok(parseFlowKey(later, tracker)).portsFrom, 'unknown');
  const f = ok(parseFlowKey(first, tracker));
  const l = ok(parseFlowKey(later, tracker));
  assert.deepEqual([l.portsFrom, l.srcPort, l.dstPort, l.fragmentId], ['tracker', 33000, 80, 0x01020304]);
  sameKey(f, l);
  const rf = ok(parseFlowKey(replyFirst, tracker));
  const rl = ok(parseFlowKey(replyLater, tracker));
  sameKey(f, rf);
  sameKey(f, rl);
  assert.equal(rl.reversed, true);
});

test('flow key: a later fragment whose fragmentable part starts with destination options takes the first fragment\'s protocol', () => {
  const tracker = new FragmentTracker();
  const first = ipv6(C6, S6, 44, [...fragmentHeader(60, 0, true, 77), ...optionsHeader(17, 0), ...udp(1111, 2222)]);
  const later = ipv6(C6, S6, 44, [...fragmentHeader(60, 16, false, 77), 0, 0, 0, 0, 0, 0, 0, 0]);
  const f = ok(parseFlowKey(first, tracker));
  assert.equal(f.protocol, 17);
  const l = ok(parseFlowKey(later, tracker));
  assert.deepEqual([l.protocol, l.srcPort, l.dstPort], [17, 1111, 2222]);
  // Without the tracker all the later fragment says is "60".
  assert.equal(ok(parseFlowKey(later)).protocol, 60);
});

// ---- properties ----

const arbV4 = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map(([x, y]) => `198.51.${x}.${y}`);
const arbV6 = fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff })).map(([x, y]) => `2001:db8::${x.toString(16)}:${y.toString(16)}`);
const arbPort = fc.integer({ min: 0, max: 65535 });
const arbPortProto = fc.constantFrom(6, 17, 33, 132, 136);

/** A valid packet and the same conversation's packet the other way. */
const arbPair = fc.oneof(
  fc.tuple(arbV4, arbV4, arbPortProto, arbPort, arbPort).map(([a, b, p, x, y]) => [
    ipv4({ src: a, dst: b, proto: p, payload: udp(x, y) }),
    ipv4({ src: b, dst: a, proto: p, payload: udp(y, x) }),
  ]),
  fc.tuple(arbV6, arbV6, arbPortProto, arbPort, arbPort).map(([a, b, p, x, y]) => [
    ipv6(a, b, 0, [...optionsHeader(p, 0), ...udp(x, y)]),
    ipv6(b, a, p, udp(y, x)),
  ]),
  fc.tuple(arbV4, arbV4, arbPort).map(([a, b, id]) => [
    ipv4({ src: a, dst: b, proto: 1, payload: icmp(8, id, 1) }),
    ipv4({ src: b, dst: a, proto: 1, payload: icmp(0, id, 1) }),
  ]),
  fc.tuple(arbV6, arbV6, arbPort).map(([a, b, id]) => [ipv6(a, b, 58, icmp(128, id, 1)), ipv6(b, a, 58, icmp(129, id, 1))]),
);

test('property: both directions of a conversation give the same key', () => {
  fc.assert(
    fc.property(arbPair, ([there, back]) => {
      const x = ok(parseFlowKey(there));
      const y = ok(parseFlowKey(back));
      sameKey(x, y);
      if (x.key.a !== x.key.b) assert.notEqual(x.reversed, y.reversed);
    }),
    { numRuns: 1000 },
  );
});

test('property: every strict prefix of a valid packet is refused with a reason', () => {
  fc.assert(
    fc.property(arbPair, fc.nat(), ([packet], cut) => {
      const r = parseFlowKey(packet.subarray(0, cut % packet.length));
      assert.equal(r.ok, false);
    }),
    { numRuns: 1000 },
  );
});

test('property: any bytes give a key or a listed reason, never an exception', () => {
  const tracker = new FragmentTracker();
  const version = fc.constantFrom(0x45, 0x46, 0x4f, 0x60, 0x00, 0x55);
  fc.assert(
    fc.property(version, fc.uint8Array({ maxLength: 120 }), (first, rest) => {
      const r = parseFlowKey(Uint8Array.from([first, ...rest]), tracker);
      if (!r.ok) assert.ok((FLOW_KEY_REASONS as readonly string[]).includes(r.reason), r.reason);
    }),
    { numRuns: 5000 },
  );
});
