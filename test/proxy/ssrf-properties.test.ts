/**
 * Properties of the SSRF defences, with independent judges: the WHATWG URL
 * parser (node:url) for IPv4 notations, and node:net BlockList for the
 * address classes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import fc from 'fast-check';
import { bytesToIp, ipv6ToBytes } from '../../src/packet/address';
import { deniedAddressReason, parseDestinationHost } from '../../src/proxy/ssrf';

const RUNS = 2000;

test('parseDestinationHost never throws, and what it returns parses to itself', () => {
  const ipish = fc.string({ unit: fc.constantFrom(...'0123456789abcdefxX.:[]%ffff0 .'.split('')), maxLength: 40 });
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), ipish, fc.domain()), (raw) => {
      const parsed = parseDestinationHost(raw);
      if (parsed.kind === 'ip') assert.deepEqual(parseDestinationHost(parsed.address), parsed);
      if (parsed.kind === 'name') assert.deepEqual(parseDestinationHost(parsed.name), parsed);
      if (parsed.kind === 'invalid') assert.ok(parsed.reason.length > 0);
    }),
    { numRuns: RUNS * 5 },
  );
});

test('domain names stay names, lowercased', () => {
  fc.assert(
    fc.property(fc.domain(), fc.boolean(), (domain, upper) => {
      const raw = upper ? domain.toUpperCase() : domain;
      assert.deepEqual(parseDestinationHost(raw), { kind: 'name', name: domain.toLowerCase() });
    }),
    { numRuns: RUNS },
  );
});

const dotted = (v: number): string => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;

/** One number in decimal, 0x-hex (either case, padded) or 0-octal (padded). */
const renderPart = (value: number): fc.Arbitrary<string> =>
  fc.oneof(
    fc.constant(String(value)),
    fc.tuple(fc.constantFrom('0x', '0X'), fc.nat(3), fc.boolean()).map(([prefix, pad, upper]) => {
      const hex = '0'.repeat(pad) + value.toString(16);
      return prefix + (upper ? hex.toUpperCase() : hex);
    }),
    fc.nat(3).map((pad) => '0' + '0'.repeat(pad) + value.toString(8)),
  );

/** An IPv4 address in a random inet_aton/WHATWG notation: 1-4 parts, the last filling the remaining bytes. */
const ipv4Notation = fc
  .tuple(fc.nat({ max: 0xffffffff }), fc.integer({ min: 1, max: 4 }), fc.boolean())
  .chain(([value, parts, trailingDot]) => {
    const bytes = [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
    const lead = bytes.slice(0, parts - 1);
    const rest = bytes.slice(parts - 1).reduce((acc, b) => acc * 256 + b, 0);
    return fc.tuple(...[...lead, rest].map(renderPart)).map((rendered) => ({ value, text: rendered.join('.') + (trailingDot ? '.' : '') }));
  });

test('every IPv4 notation of an address normalises to its dotted form (and WHATWG URL agrees)', () => {
  fc.assert(
    fc.property(ipv4Notation, ({ value, text }) => {
      assert.deepEqual(parseDestinationHost(text), { kind: 'ip', address: dotted(value), family: 4 });
      assert.equal(new URL(`http://${text}/`).hostname, dotted(value));
    }),
    { numRuns: RUNS },
  );
});

test('IPv4-mapped and IPv4-compatible IPv6 normalise to the IPv4 they carry', () => {
  const hex = (n: number): string => n.toString(16);
  fc.assert(
    fc.property(fc.nat({ max: 0xffffffff }), fc.nat(3), fc.boolean(), (value, form, upper) => {
      const hi = hex(value >>> 16);
      const lo = hex(value & 0xffff);
      const texts = [`::ffff:${dotted(value)}`, `::ffff:${hi}:${lo}`, `0:0:0:0:0:ffff:${hi}:${lo}`, `0::ffff:${dotted(value)}`];
      const text = upper ? texts[form].toUpperCase() : texts[form];
      assert.deepEqual(parseDestinationHost(`[${text}]`), { kind: 'ip', address: dotted(value), family: 4 });
      if (value > 1) assert.deepEqual(parseDestinationHost(`[::${dotted(value)}]`), { kind: 'ip', address: dotted(value), family: 4 });
    }),
    { numRuns: RUNS },
  );
});

// --- a reference classifier, written plainly on node:net BlockList ---------

const familyOf = (a: string): 'ipv4' | 'ipv6' => (a.includes(':') ? 'ipv6' : 'ipv4');

const REFERENCE_CLASSES: Array<[string, string[]]> = [
  ['unspecified', ['0.0.0.0/8', '::/128']],
  ['loopback', ['127.0.0.0/8', '::1/128']],
  ['metadata', ['169.254.169.254/32', 'fd00:ec2::254/128']],
  ['link-local', ['169.254.0.0/16', 'fe80::/10']],
  ['private', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']],
  ['unique-local', ['fc00::/7']],
  ['cgnat', ['100.64.0.0/10']],
  ['multicast', ['224.0.0.0/4', 'ff00::/8']],
  ['broadcast', ['255.255.255.255/32']],
  ['reserved', ['240.0.0.0/4', '192.0.0.0/24', '192.88.99.0/24', '198.18.0.0/15']],
  ['ipv4-embedding', ['64:ff9b::/96', '2002::/16', '2001::/32']],
];

/**
 * One BlockList per family: BlockList matches IPv4 against IPv6 rules as
 * ::ffff:a.b.c.d, but here ::/0 means every IPv6 address and no IPv4.
 */
interface FamilyLists {
  check(address: string): boolean;
}

function blockList(cidrs: readonly string[]): FamilyLists {
  const lists = { ipv4: new BlockList(), ipv6: new BlockList() };
  for (const cidr of cidrs) {
    const [net, bits] = cidr.includes('/') ? cidr.split('/') : [cidr, cidr.includes(':') ? '128' : '32'];
    const family = familyOf(net);
    lists[family].addSubnet(net, Number(bits), family);
  }
  return { check: (address) => lists[familyOf(address)].check(address, familyOf(address)) };
}

const CLASS_LISTS = REFERENCE_CLASSES.map(([name, cidrs]) => [name, blockList(cidrs)] as const);
const GLOBAL_UNICAST = blockList(['2000::/3']);

/** The IPv4 inside NAT64 (last 32 bits), 6to4 (bits 16-47) or Teredo (last 32 bits inverted), from the bytes. */
function referenceEmbedded(a: string): string | null {
  if (familyOf(a) === 'ipv4') return null;
  const b = ipv6ToBytes(a);
  const isNat64 = b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0);
  if (isNat64) return [...b.slice(12)].join('.');
  if (b[0] === 0x20 && b[1] === 0x02) return [...b.slice(2, 6)].join('.');
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0 && b[3] === 0) return [...b.slice(12)].map((x) => x ^ 0xff).join('.');
  return null;
}

function referenceReason(a: string, allow: FamilyLists, own: FamilyLists): string | null {
  let cls: string | null = CLASS_LISTS.find(([, list]) => list.check(a))?.[0] ?? null;
  if (cls === null && familyOf(a) === 'ipv6' && !GLOBAL_UNICAST.check(a)) cls = 'reserved';
  if (cls === 'unspecified') return cls;
  if (allow.check(a)) {
    const inner = referenceEmbedded(a);
    return inner === null ? null : referenceReason(inner, allow, own);
  }
  if (own.check(a)) return 'own-address';
  return cls;
}

// Addresses near the edges of every class: a base with some low bits randomised.
const BASES = [
  '0.0.0.0', '127.0.0.1', '169.254.169.254', '169.254.0.0', '10.0.0.0', '172.16.0.0', '172.31.255.255', '192.168.0.0', '100.64.0.0',
  '100.127.255.255', '224.0.0.0', '255.255.255.255', '240.0.0.0', '192.0.0.0', '198.18.0.0', '203.0.113.10', '8.8.8.8',
  '::', '::1', 'fd00:ec2::254', 'fe80::', 'fc00::', 'ff02::1', '64:ff9b::a00:1', '64:ff9b::cb00:710a', '2002:a00:1::', '2002:cb00:710a::',
  '2001::', '2001:0:4136:e378:8000:63bf:f5ff:fffe', '2001:db8::1', '2001:1::', '2600::1', '4000::', '1fff:ffff::',
];

const address = fc.tuple(fc.constantFrom(...BASES), fc.nat(128), fc.uint8Array({ minLength: 16, maxLength: 16 })).map(([base, bits, noise]) => {
  const bytes = base.includes(':') ? ipv6ToBytes(base) : Uint8Array.from(base.split('.').map(Number));
  const keep = Math.max(0, bytes.length * 8 - (bits % (bytes.length * 8 + 1)));
  for (let i = 0; i < bytes.length; i++) {
    const fixed = Math.min(8, Math.max(0, keep - i * 8));
    const mask = (0xff << (8 - fixed)) & 0xff;
    bytes[i] = (bytes[i] & mask) | (noise[i] & ~mask & 0xff);
  }
  return bytesToIp(bytes);
});

const ALLOW_CHOICES = ['10.0.0.0/8', '64:ff9b::/96', '2002::/16', '2001::/32', '127.0.0.1/32', '0.0.0.0/0', '::/0', '169.254.169.254/32', 'fc00::/7', '2001:db8::/32', '192.0.2.0/24'];
const OWN_CHOICES = ['10.0.1.5', '203.0.113.7', '2001:db8::5', '192.0.2.0/24', '100.64.0.0/10'];

test('deniedAddressReason agrees with a plain reference classifier on random addresses', () => {
  fc.assert(
    fc.property(address, fc.subarray(ALLOW_CHOICES), fc.subarray(OWN_CHOICES), (a, allow, own) => {
      // IPv4-mapped and -compatible IPv6 are judged as IPv4 (parseDestinationHost's rule), the reference sees that IPv4.
      const host = parseDestinationHost(a);
      assert.equal(host.kind, 'ip');
      const subject = host.kind === 'ip' ? host.address : a;
      const expected = referenceReason(subject, blockList(allow), blockList(own));
      assert.equal(deniedAddressReason(a, { allow, own }), expected, `${a} allow=${allow.join(',')} own=${own.join(',')}`);
    }),
    { numRuns: RUNS * 5 },
  );
});
