import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GatehouseError } from '../../../src/errors';
import { NameAddressCache, normaliseAddress, normaliseName, type DnsAnswerRecord } from '../../../src/inspect/names';

const T0 = 1_800_000_000_000;
const A = (name: string, address: string, ttl = 300): DnsAnswerRecord => ({ name, type: 1, ttl, address });
const AAAA = (name: string, address: string, ttl = 300): DnsAnswerRecord => ({ name, type: 28, ttl, address });
const CNAME = (name: string, target: string, ttl = 300): DnsAnswerRecord => ({ name, type: 5, ttl, target });

test('A and AAAA records: has() and addresses(), names case-insensitive, trailing dot ignored', () => {
  const cache = new NameAddressCache();
  assert.equal(cache.learnAnswers([A('API.Example.com.', '203.0.113.10'), AAAA('api.example.com', '2001:DB8:0:0::10')], T0), 2);
  assert.equal(cache.has('api.example.com', '203.0.113.10', T0), true);
  assert.equal(cache.has('api.EXAMPLE.com.', '2001:db8::10', T0), true);
  assert.equal(cache.has('api.example.com', '2001:0db8:0000:0000:0000:0000:0000:0010', T0), true);
  assert.equal(cache.has('api.example.com', '203.0.113.11', T0), false);
  assert.equal(cache.has('other.example.com', '203.0.113.10', T0), false);
  assert.deepEqual(cache.addresses('api.example.com', T0).sort(), ['2001:db8::10', '203.0.113.10']);
});

test('CNAME chains resolve in any answer order and across answers', () => {
  const records = [CNAME('alias.example.com', 'www.example.com'), CNAME('www.example.com', 'edge.cdn.example.net'), A('edge.cdn.example.net', '203.0.113.10')];
  // Every order of the three records gives the same result.
  const orders = [
    [0, 1, 2],
    [2, 1, 0],
    [1, 2, 0],
    [2, 0, 1],
  ];
  for (const order of orders) {
    const cache = new NameAddressCache();
    cache.learnAnswers(order.map((i) => records[i]), T0);
    assert.deepEqual(cache.addresses('alias.example.com', T0), ['203.0.113.10'], `order ${order.join(',')}`);
    assert.equal(cache.has('www.example.com', '203.0.113.10', T0), true);
    assert.equal(cache.has('edge.cdn.example.net', '203.0.113.10', T0), true);
  }
  // Split across two answers, the target's address learned first.
  const split = new NameAddressCache();
  split.learnAnswers([A('www.example.com', '203.0.113.10')], T0);
  assert.equal(split.has('alias.example.com', '203.0.113.10', T0), false);
  split.learnAnswers([CNAME('alias.example.com', 'www.example.com')], T0 + 1000);
  assert.equal(split.has('alias.example.com', '203.0.113.10', T0 + 1000), true);
  // The alias does not leak backwards: www does not resolve to what alias has directly.
  split.learnAnswers([A('alias.example.com', '198.51.100.1')], T0);
  assert.equal(split.has('www.example.com', '198.51.100.1', T0), false);
});

test('CNAME loops and self-references terminate', () => {
  const cache = new NameAddressCache();
  cache.learnAnswers([CNAME('a.example', 'b.example'), CNAME('b.example', 'a.example'), A('b.example', '192.0.2.1'), CNAME('c.example', 'c.example')], T0);
  assert.deepEqual(cache.addresses('a.example', T0), ['192.0.2.1']);
  assert.deepEqual(cache.addresses('c.example', T0), []);
  assert.equal(cache.stats().ignored, 1); // the self-reference
});

test('TTL expiry with the injected clock; a 60 s floor; the floor is configurable; a chain lives as long as its shortest link', () => {
  const cache = new NameAddressCache();
  cache.learnAnswers([A('long.example', '192.0.2.1', 300), A('zero.example', '192.0.2.2', 0)], T0);
  assert.equal(cache.has('long.example', '192.0.2.1', T0 + 299_999), true);
  assert.equal(cache.has('long.example', '192.0.2.1', T0 + 300_000), false);
  assert.equal(cache.has('zero.example', '192.0.2.2', T0 + 59_999), true, 'TTL 0 is raised to the 60 s floor');
  assert.equal(cache.has('zero.example', '192.0.2.2', T0 + 60_000), false);

  const noFloor = new NameAddressCache({ minTtlS: 5 });
  noFloor.learnAnswers([A('x.example', '192.0.2.3', 1)], T0);
  assert.equal(noFloor.has('x.example', '192.0.2.3', T0 + 4_999), true);
  assert.equal(noFloor.has('x.example', '192.0.2.3', T0 + 5_000), false);

  const chain = new NameAddressCache();
  chain.learnAnswers([CNAME('alias.example', 'www.example', 100), A('www.example', '192.0.2.4', 3600)], T0);
  assert.equal(chain.has('alias.example', '192.0.2.4', T0 + 99_000), true);
  assert.equal(chain.has('alias.example', '192.0.2.4', T0 + 100_000), false, 'the CNAME expired');
  assert.equal(chain.has('www.example', '192.0.2.4', T0 + 100_000), true);

  // Relearning keeps the later expiry.
  chain.learnAnswers([A('www.example', '192.0.2.4', 60)], T0 + 10_000);
  assert.equal(chain.has('www.example', '192.0.2.4', T0 + 3_599_000), true);

  assert.equal(chain.prune(T0 + 200_000), 1);
  assert.equal(chain.size, 1);
});

test('bounded: past maxEntries the oldest learned records are evicted and counted', () => {
  const cache = new NameAddressCache({ maxEntries: 100 });
  for (let i = 0; i < 250; i++) cache.learnAnswers([A(`h${i}.example`, `192.0.2.${i % 250}`)], T0 + i);
  assert.equal(cache.size, 100);
  assert.deepEqual(cache.stats(), { entries: 100, evicted: 150, ignored: 0 });
  assert.equal(cache.has('h149.example', '192.0.2.149', T0 + 300), false);
  assert.equal(cache.has('h150.example', '192.0.2.150', T0 + 300), true);
  assert.equal(cache.has('h249.example', '192.0.2.249', T0 + 300), true);
  // Relearning an old record makes it young again.
  cache.learnAnswers([A('h150.example', '192.0.2.150')], T0 + 400);
  cache.learnAnswers([A('new.example', '198.51.100.1')], T0 + 401);
  assert.equal(cache.has('h150.example', '192.0.2.150', T0 + 402), true);
  assert.equal(cache.has('h151.example', '192.0.2.151', T0 + 402), false);
});

test('records that do not fit are ignored and counted', () => {
  const cache = new NameAddressCache();
  const learned = cache.learnAnswers(
    [
      A('a.example', 'not-an-address'),
      A('a.example', '2001:db8::1'), // IPv6 in an A record
      { name: 'a.example', type: 15, ttl: 60 }, // MX
      { name: 'a.example', type: 1, ttl: 60 }, // no address
      A('.', '192.0.2.1'), // no name left
      AAAA('a.example', '::ffff:192.0.2.7'),
    ],
    T0,
  );
  assert.equal(learned, 1);
  assert.deepEqual(cache.stats(), { entries: 1, evicted: 0, ignored: 5 });
  assert.deepEqual(cache.addresses('a.example', T0), ['192.0.2.7']);
  assert.equal(cache.has('a.example', '::ffff:c000:207', T0), true);
});

test('options are validated', () => {
  assert.throws(() => new NameAddressCache({ maxEntries: 0 }), {
    name: 'GatehouseError',
    code: 'ERR_INVALID_ARG',
    message: 'Expected integer between 1 and 100000000 for maxEntries but received 0 of type number',
  });
  assert.throws(() => new NameAddressCache({ minTtlS: 1.5 }), (e: unknown) => e instanceof GatehouseError && e.code === 'ERR_INVALID_ARG');
});

test('normaliseAddress: IPv6 in RFC 5952 form, IPv4-mapped as IPv4, junk rejected', () => {
  const cases: [string, string | null][] = [
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['0:0:0:0:0:0:0:0', '::'],
    ['::1', '::1'],
    ['::ffff:192.0.2.1', '192.0.2.1'],
    ['::FFFF:c000:0201', '192.0.2.1'],
    ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'], // NAT64 is not IPv4-mapped
    ['[2001:db8::1]', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['203.0.113.10', '203.0.113.10'],
    ['203.0.113.010', null],
    ['example.com', null],
    ['', null],
  ];
  for (const [input, expected] of cases) assert.equal(normaliseAddress(input), expected, input);
});

test('normaliseAddress agrees with the WHATWG URL serialiser on random IPv6 addresses', () => {
  const group = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
  fc.assert(
    fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), fc.boolean(), (groups, upper) => {
      let text = groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
      if (upper) text = text.toUpperCase();
      const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff;
      const ours = normaliseAddress(text);
      if (mapped) return ours === `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
      return `[${ours}]` === new URL(`http://[${text}]/`).hostname;
    }),
    { numRuns: 2000 },
  );
});

test('normaliseName: lowercase, no trailing dot, IDN as punycode', () => {
  assert.equal(normaliseName('WWW.Example.COM.'), 'www.example.com');
  assert.equal(normaliseName('bücher.example'), 'xn--bcher-kva.example');
  assert.equal(normaliseName('.'), null);
  assert.equal(normaliseName(''), null);
});
