import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  deniedAddressReason,
  parseDestinationHost,
  cachedLookup,
  resolveAndCheck,
  systemLookup,
  type LookupFunction,
  type ResolvedAddress,
  type ResolveAndCheckResult,
} from '../../src/proxy/ssrf';

const NONE = { allow: [], own: [] } as const;

/** A resolver from a table; it records the names it was asked, and fails with ENOTFOUND for others. */
function tableLookup(table: Record<string, ResolvedAddress[]>): LookupFunction & { asked: string[] } {
  const asked: string[] = [];
  const fn = async (name: string): Promise<ResolvedAddress[]> => {
    asked.push(name);
    const found = table[name];
    if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return found;
  };
  return Object.assign(fn, { asked });
}

const v4 = (address: string): ResolvedAddress => ({ address, family: 4 });
const v6 = (address: string): ResolvedAddress => ({ address, family: 6 });

const DNS = tableLookup({
  'internal.example': [v4('10.0.0.1')],
  'split.example': [v4('203.0.113.10'), v4('10.0.0.1')],
  'split-v6.example': [v6('2001:db8::10'), v6('fd00::1')],
  'public.example': [v4('203.0.113.10'), v6('2001:db8::10'), v4('203.0.113.10')],
  'mapped.example': [v6('::ffff:203.0.113.20')],
  'mapped-private.example': [v6('::ffff:192.168.1.1')],
  'metadata.example': [v4('169.254.169.254')],
  'garbage.example': [v4('not-an-address')],
  'empty.example': [],
});

function check(host: string, over: { allow?: string[]; own?: string[]; lookup?: LookupFunction } = {}): Promise<ResolveAndCheckResult> {
  return resolveAndCheck(host, { lookup: over.lookup ?? DNS, allow: over.allow ?? [], own: over.own ?? [], timeoutMs: 2000 });
}

// The table: each destination is refused with its class, before any connection.
const DENIED: Array<[string, string]> = [
  ['127.0.0.1', 'ssrf:loopback'],
  ['[::1]', 'ssrf:loopback'],
  ['169.254.169.254', 'ssrf:metadata'],
  ['0x7f000001', 'ssrf:loopback'],
  ['2130706433', 'ssrf:loopback'],
  ['[::ffff:127.0.0.1]', 'ssrf:loopback'],
  ['[::ffff:7f00:1]', 'ssrf:loopback'],
  ['0177.0.0.1', 'ssrf:loopback'],
  ['127.1', 'ssrf:loopback'],
  ['0x7f.0.0.1', 'ssrf:loopback'],
  ['017700000001', 'ssrf:loopback'],
  ['0xA9.0xFE.0xA9.0xFE', 'ssrf:metadata'],
  ['[fd00:ec2::254]', 'ssrf:metadata'],
  ['１２７．０．０．１', 'ssrf:loopback'],
  ['internal.example', 'ssrf:private'],
  ['split.example', 'ssrf:private'],
  ['split-v6.example', 'ssrf:unique-local'],
  ['mapped-private.example', 'ssrf:private'],
  ['metadata.example', 'ssrf:metadata'],
  ['garbage.example', 'ssrf:invalid'],
  ['0.0.0.0', 'ssrf:unspecified'],
  ['[::]', 'ssrf:unspecified'],
];

for (const [host, reason] of DENIED) {
  test(`resolveAndCheck refuses ${host} (${reason})`, async () => {
    const result = await check(host);
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.equal(result.reason, reason);
    assert.equal(result.status, 403);
  });
}

test('a name with one public and one private address is refused, and every address is reported', async () => {
  assert.deepEqual(await check('split.example'), { ok: false, reason: 'ssrf:private', addresses: ['203.0.113.10', '10.0.0.1'], status: 403 });
});

test('a public name gives the first address, normalised and without duplicates', async () => {
  assert.deepEqual(await check('Public.Example.'), { ok: true, address: '203.0.113.10', family: 4, addresses: ['203.0.113.10', '2001:db8::10'] });
  assert.deepEqual(await check('mapped.example'), { ok: true, address: '203.0.113.20', family: 4, addresses: ['203.0.113.20'] });
});

test('IP literals are checked without a lookup, in their canonical form', async () => {
  const lookup = tableLookup({});
  assert.deepEqual(await check('203.0.113.10', { lookup }), { ok: true, address: '203.0.113.10', family: 4, addresses: ['203.0.113.10'] });
  assert.deepEqual(await check('[2001:DB8:0:0::1]', { lookup }), { ok: true, address: '2001:db8::1', family: 6, addresses: ['2001:db8::1'] });
  assert.deepEqual(await check('0xcb.0.113.10', { lookup }), { ok: true, address: '203.0.113.10', family: 4, addresses: ['203.0.113.10'] });
  assert.deepEqual(await check('0x7f000001', { lookup }), { ok: false, reason: 'ssrf:loopback', addresses: ['127.0.0.1'], status: 403 });
  assert.deepEqual(lookup.asked, []);
});

test('resolver failures: NXDOMAIN and no answers are 502, a timeout 504, an invalid host 403', async () => {
  assert.deepEqual(await check('nowhere.example'), { ok: false, reason: 'resolve:ENOTFOUND', addresses: [], status: 502 });
  assert.deepEqual(await check('empty.example'), { ok: false, reason: 'resolve:no-addresses', addresses: [], status: 502 });
  const never: LookupFunction = () => new Promise(() => undefined);
  const timedOut = await resolveAndCheck('slow.example', { lookup: never, allow: [], own: [], timeoutMs: 20 });
  assert.deepEqual(timedOut, { ok: false, reason: 'resolve:timeout', addresses: [], status: 504 });
  const throwsNow: LookupFunction = () => {
    throw new Error('broken resolver');
  };
  assert.deepEqual(await check('x.example', { lookup: throwsNow }), { ok: false, reason: 'resolve:failed', addresses: [], status: 502 });
  assert.deepEqual(await check('1.2.3.4.5'), { ok: false, reason: 'invalid-host', addresses: [], status: 403 });
  await assert.rejects(resolveAndCheck('x.example', { lookup: DNS, allow: [], own: [], timeoutMs: 0 }), { code: 'ERR_INVALID_ARG' });
});

test('allow ranges open a class, but never the unspecified addresses', async () => {
  assert.deepEqual(await check('internal.example', { allow: ['10.0.0.0/8'] }), { ok: true, address: '10.0.0.1', family: 4, addresses: ['10.0.0.1'] });
  // Only part of the answers allowed: still refused.
  assert.equal((await check('split-v6.example', { allow: ['10.0.0.0/8'] })).ok, false);
  assert.equal((await check('127.0.0.1', { allow: ['127.0.0.1/32'] })).ok, true);
  assert.equal((await check('127.0.0.2', { allow: ['127.0.0.1/32'] })).ok, false);
  assert.deepEqual(await check('0.0.0.0', { allow: ['0.0.0.0/0'] }), { ok: false, reason: 'ssrf:unspecified', addresses: ['0.0.0.0'], status: 403 });
  assert.equal((await check('[::ffff:10.1.2.3]', { allow: ['10.0.0.0/8'] })).ok, true);
});

test('the proxy\'s own addresses are refused unless allowed explicitly', async () => {
  assert.deepEqual(await check('203.0.113.7', { own: ['203.0.113.7'] }), { ok: false, reason: 'ssrf:own-address', addresses: ['203.0.113.7'], status: 403 });
  assert.equal((await check('203.0.113.8', { own: ['203.0.113.7'] })).ok, true);
  assert.equal((await check('[2001:db8::5]', { own: ['2001:db8::/64'] })).ok, false);
  assert.equal((await check('203.0.113.7', { own: ['::ffff:203.0.113.7'] })).ok, false, 'an own address reported IPv4-mapped still counts');
  assert.equal((await check('203.0.113.7', { own: ['203.0.113.7'], allow: ['203.0.113.0/24'] })).ok, true);
});

test('the system resolver: localhost resolves and is refused as loopback', async () => {
  const result = await resolveAndCheck('localhost', { lookup: systemLookup, allow: [], own: [], timeoutMs: 5000 });
  assert.equal(result.ok, false);
  assert.ok(!result.ok && result.reason === 'ssrf:loopback', JSON.stringify(result));
  assert.ok(result.addresses.length >= 1 && result.addresses.every((a) => a === '127.0.0.1' || a === '::1' || a.startsWith('127.')));
});

// Address classes, one or more per class, and their edges.
const CLASSES: Array<[string, string | null]> = [
  ['127.0.0.1', 'loopback'],
  ['127.255.255.255', 'loopback'],
  ['::1', 'loopback'],
  ['169.254.169.254', 'metadata'],
  ['fd00:ec2::254', 'metadata'],
  ['169.254.169.253', 'link-local'],
  ['169.254.0.1', 'link-local'],
  ['fe80::1', 'link-local'],
  ['febf:ffff::1', 'link-local'],
  ['10.0.0.1', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['172.15.255.255', null],
  ['172.32.0.0', null],
  ['192.168.0.1', 'private'],
  ['fc00::1', 'unique-local'],
  ['fdff:ffff::1', 'unique-local'],
  ['fd00:ec2::253', 'unique-local'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['100.63.255.255', null],
  ['100.128.0.0', null],
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['ff02::1', 'multicast'],
  ['0.0.0.0', 'unspecified'],
  ['0.1.2.3', 'unspecified'],
  ['::', 'unspecified'],
  ['255.255.255.255', 'broadcast'],
  ['240.0.0.1', 'reserved'],
  ['255.255.255.254', 'reserved'],
  ['192.0.0.170', 'reserved'],
  ['198.18.0.1', 'reserved'],
  ['fec0::1', 'reserved'],
  ['100::1', 'reserved'],
  ['64:ff9b::7f00:1', 'ipv4-embedding'],
  ['64:ff9b::cb00:710a', 'ipv4-embedding'],
  ['2002:cb00:710a::1', 'ipv4-embedding'],
  ['2001::1', 'ipv4-embedding'],
  ['2001:0:ffff:ffff::1', 'ipv4-embedding'],
  // Documentation and ordinary public addresses pass; 2001:db8::/32 is not Teredo's 2001::/32.
  ['203.0.113.10', null],
  ['192.0.2.1', null],
  ['198.51.100.1', null],
  ['2001:db8::1', null],
  ['2001:1::1', null],
  ['2600::1', null],
  ['8.8.8.8', null],
  // Any notation is accepted; IPv4-mapped IPv6 is its IPv4.
  ['::ffff:169.254.169.254', 'metadata'],
  ['0x0a000001', 'private'],
  ['not an address', 'invalid'],
];

test('deniedAddressReason names the class of each address', () => {
  const got = CLASSES.map(([address]) => [address, deniedAddressReason(address, NONE)]);
  assert.deepEqual(got, CLASSES);
});

test('an allowed IPv4-embedding prefix is judged by the IPv4 behind it', () => {
  const nat64 = { allow: ['64:ff9b::/96'], own: [] };
  assert.equal(deniedAddressReason('64:ff9b::cb00:710a', nat64), null); // 203.0.113.10
  assert.equal(deniedAddressReason('64:ff9b::a00:1', nat64), 'private'); // 10.0.0.1
  assert.equal(deniedAddressReason('64:ff9b::a9fe:a9fe', nat64), 'metadata');
  assert.equal(deniedAddressReason('64:ff9b::a00:1', { allow: ['64:ff9b::/96', '10.0.0.0/8'], own: [] }), null);
  const sixToFour = { allow: ['2002::/16'], own: [] };
  assert.equal(deniedAddressReason('2002:7f00:1::', sixToFour), 'loopback');
  assert.equal(deniedAddressReason('2002:c000:201::', sixToFour), null); // 192.0.2.1
  // Teredo keeps the client address inverted in the last 32 bits: ~0x3ffffdd2 = 192.0.2.45, ~0xf5fffffe = 10.0.0.1.
  const teredo = { allow: ['2001::/32'], own: [] };
  assert.equal(deniedAddressReason('2001:0:4136:e378:8000:63bf:3fff:fdd2', teredo), null);
  assert.equal(deniedAddressReason('2001:0:4136:e378:8000:63bf:f5ff:fffe', teredo), 'private');
  // The embedded IPv4 is also subject to the own addresses.
  assert.equal(deniedAddressReason('64:ff9b::cb00:7107', { allow: ['64:ff9b::/96'], own: ['203.0.113.7'] }), 'own-address');
});

test('a bad allow or own entry is a programming error', () => {
  assert.throws(() => deniedAddressReason('203.0.113.1', { allow: ['10.0.0.0/33'], own: [] }), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected an IPv4 or IPv6 address or CIDR for allow but received "10.0.0.0/33"',
  });
});

// parseDestinationHost: the notations, and the refusals.
const HOSTS: Array<[string, ReturnType<typeof parseDestinationHost>]> = [
  ['127.0.0.1', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['2130706433', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['0x7f000001', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['0X7F.0.0.1', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['0177.0.0.1', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['017700000001', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['127.1', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['10.1.1', { kind: 'ip', address: '10.1.0.1', family: 4 }],
  ['10.65536', { kind: 'ip', address: '10.1.0.0', family: 4 }],
  ['127.0.0.1.', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['0x', { kind: 'ip', address: '0.0.0.0', family: 4 }],
  ['[::1]', { kind: 'ip', address: '::1', family: 6 }],
  ['::1', { kind: 'ip', address: '::1', family: 6 }],
  ['[2001:DB8:0:0:0:0:0:1]', { kind: 'ip', address: '2001:db8::1', family: 6 }],
  ['[::ffff:127.0.0.1]', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['[::ffff:7f00:1]', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['[0:0:0:0:0:FFFF:a9fe:a9fe]', { kind: 'ip', address: '169.254.169.254', family: 4 }],
  ['[::127.0.0.1]', { kind: 'ip', address: '127.0.0.1', family: 4 }],
  ['[::]', { kind: 'ip', address: '::', family: 6 }],
  ['Example.COM', { kind: 'name', name: 'example.com' }],
  ['example.com.', { kind: 'name', name: 'example.com' }],
  ['Bücher.example', { kind: 'name', name: 'xn--bcher-kva.example' }],
  ['_dmarc.example.com', { kind: 'name', name: '_dmarc.example.com' }],
  ['08.example', { kind: 'name', name: '08.example' }],
  ['0x7f.example', { kind: 'name', name: '0x7f.example' }],
  ['localhost', { kind: 'name', name: 'localhost' }],
  ['', { kind: 'invalid', reason: 'an empty host' }],
  ['[fe80::1%eth0]', { kind: 'invalid', reason: 'an IPv6 zone id (a link-local scope cannot be a proxy destination)' }],
  ['[fe80::1%25eth0]', { kind: 'invalid', reason: 'an IPv6 zone id (a link-local scope cannot be a proxy destination)' }],
  ['[::1', { kind: 'invalid', reason: 'a "[" without its "]"' }],
  ['[::g]', { kind: 'invalid', reason: 'not an IPv6 address' }],
  ['[::ffff:0177.0.0.1]', { kind: 'invalid', reason: 'not an IPv6 address' }],
  ['1.2.3.4.5', { kind: 'invalid', reason: 'a host that ends in a number but has more than 4 parts (not an IPv4 address)' }],
  ['example.123', { kind: 'invalid', reason: 'a host that ends in a number with the part "example" (not decimal, 0x-hex or 0-octal)' }],
  ['08', { kind: 'invalid', reason: 'a host that ends in a number with the part "08" (not decimal, 0x-hex or 0-octal)' }],
  ['4294967296', { kind: 'invalid', reason: 'an IPv4 number above 4294967295' }],
  ['256.0.0.1', { kind: 'invalid', reason: 'an IPv4 part above 255 before the last part' }],
  ['1.2.65536', { kind: 'invalid', reason: 'an IPv4 last part too big for the bytes it fills' }],
  ['.example.com', { kind: 'invalid', reason: 'a name pattern, not a host name' }],
  ['*.example.com', { kind: 'invalid', reason: 'a name pattern, not a host name' }],
  ['exa mple.com', { kind: 'invalid', reason: 'the character " "' }],
  ['a..b', { kind: 'invalid', reason: 'an empty label' }],
  ['xn--zz\u00e9', { kind: 'invalid', reason: 'an international name that does not convert to punycode' }],
];

test('parseDestinationHost normalises every notation and refuses what is not a host', () => {
  const got = HOSTS.map(([raw]) => [raw, parseDestinationHost(raw)]);
  assert.deepEqual(got, HOSTS);
});

// ---- the resolver's answer cache (ssrf/lookup-cache.ts)

test('an answer is reused until its TTL runs out, then asked again', async () => {
  const table: Record<string, ResolvedAddress[]> = {};
  const r = tableLookup(table);
  let clock = 1000;
  const lookup = cachedLookup(r, { ttlMs: 30_000, now: () => clock });
  table['a.test'] = [{ address: '192.0.2.10', family: 4 }];
  assert.deepEqual(await lookup('a.test'), [{ address: '192.0.2.10', family: 4 }]);
  assert.deepEqual(await lookup('a.test'), [{ address: '192.0.2.10', family: 4 }]);
  assert.deepEqual(r.asked, ['a.test']);
  assert.ok(Array.isArray(lookup('a.test')), 'a cached answer comes back at once, without a promise or a timer');
  table['a.test'] = [{ address: '192.0.2.20', family: 4 }];
  clock += 29_999;
  assert.equal((await lookup('a.test'))[0].address, '192.0.2.10');
  clock += 1;
  assert.equal((await lookup('a.test'))[0].address, '192.0.2.20');
  assert.deepEqual(r.asked, ['a.test', 'a.test']);
});

test('failures and empty answers are not cached; concurrent lookups of one name share one call', async () => {
  const table: Record<string, ResolvedAddress[]> = {};
  const r = tableLookup(table);
  const lookup = cachedLookup(r, { ttlMs: 30_000 });
  await assert.rejects(async () => lookup('gone.test'), { code: 'ENOTFOUND' });
  table['gone.test'] = [];
  assert.deepEqual(await lookup('gone.test'), []);
  table['gone.test'] = [{ address: '2001:db8::1', family: 6 }];
  const both = await Promise.all([lookup('gone.test'), lookup('gone.test')]);
  assert.deepEqual(both, [[{ address: '2001:db8::1', family: 6 }], [{ address: '2001:db8::1', family: 6 }]]);
  assert.deepEqual(r.asked, ['gone.test', 'gone.test', 'gone.test']);
});

test('ttl 0 asks every time; the oldest name is evicted past maxEntries; callers get copies', async () => {
  const table: Record<string, ResolvedAddress[]> = {};
  const r = tableLookup(table);
  table['a.test'] = [{ address: '192.0.2.1', family: 4 }];
  table['b.test'] = [{ address: '192.0.2.2', family: 4 }];
  const uncached = cachedLookup(r, { ttlMs: 0 });
  await uncached('a.test');
  await uncached('a.test');
  assert.equal(r.asked.length, 2);

  r.asked.length = 0;
  const small = cachedLookup(r, { ttlMs: 30_000, maxEntries: 1 });
  const first = await small('a.test');
  first[0].address = '127.0.0.1'; // a caller that changes its answer must not change the next one
  assert.equal((await small('a.test'))[0].address, '192.0.2.1');
  await small('b.test'); // evicts a.test
  await small('b.test');
  await small('a.test');
  assert.deepEqual(r.asked, ['a.test', 'b.test', 'a.test']);
});

test('a cached answer is still checked per request against that request\'s rule', async () => {
  const table: Record<string, ResolvedAddress[]> = {};
  const r = tableLookup(table);
  table['inside.test'] = [{ address: '10.0.0.1', family: 4 }];
  const lookup = cachedLookup(r, { ttlMs: 30_000 });
  const allowed = await resolveAndCheck('inside.test', { lookup, allow: ['10.0.0.0/8'], own: [], timeoutMs: 1000 });
  assert.equal(allowed.ok, true);
  const denied = await resolveAndCheck('inside.test', { lookup, allow: [], own: [], timeoutMs: 1000 });
  assert.deepEqual(denied, { ok: false, reason: 'ssrf:private', addresses: ['10.0.0.1'], status: 403 });
  assert.deepEqual(r.asked, ['inside.test']);
});

test('deniedAddressReason gives the same verdicts with frozen lists (remembered) as with fresh copies, asked again and again', () => {
  const allow = Object.freeze(['10.1.0.0/16', '64:ff9b::/96']);
  const own = Object.freeze(['192.0.2.53']);
  const addresses = ['10.1.2.3', '10.2.0.1', '192.0.2.53', '127.0.0.1', '64:ff9b::a01:203', '64:ff9b::7f00:1', '203.0.113.9', 'not-an-ip', '::ffff:10.1.0.1'];
  const fresh = addresses.map((a) => deniedAddressReason(a, { allow: [...allow], own: [...own] }));
  assert.deepEqual(fresh, [null, 'private', 'own-address', 'loopback', null, 'loopback', null, 'invalid', null]);
  for (let round = 0; round < 3; round++) assert.deepEqual(addresses.map((a) => deniedAddressReason(a, { allow, own })), fresh);
  // Another frozen rule list is judged on its own, not from the first list's memory.
  const none = Object.freeze([] as string[]);
  assert.deepEqual(addresses.map((a) => deniedAddressReason(a, { allow: none, own })), ['private', 'private', 'own-address', 'loopback', 'ipv4-embedding', 'ipv4-embedding', null, 'invalid', 'private']);
});
