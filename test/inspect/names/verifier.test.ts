import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { NameAddressCache, NameVerifier, dnsResolver, type NameResolver } from '../../../src/inspect/names';
import { startDnsmasq } from './dnsmasq';

const T0 = 1_800_000_000_000;
const NAME = 'api.allowed.test';
const ADDRESS = '203.0.113.20';

async function dnsmasqResolver(t: { after: (fn: () => Promise<void> | void) => void }, ttlS = 120) {
  const dnsmasq = await startDnsmasq({ [NAME]: ADDRESS }, ttlS);
  t.after(() => dnsmasq.stop());
  const resolver = new Resolver({ timeout: 1000, tries: 2 });
  resolver.setServers([`127.0.0.1:${dnsmasq.port}`]);
  t.after(() => resolver.cancel());
  return resolver;
}

/** Counts how often the verifier really asks. */
function counting(inner: NameResolver): { resolver: NameResolver; calls: () => number } {
  let calls = 0;
  return {
    resolver: (name) => {
      calls++;
      return inner(name);
    },
    calls: () => calls,
  };
}

test('seen DNS answers decide first, without a lookup', async () => {
  const cache = new NameAddressCache();
  cache.learnAnswers(
    [
      { name: 'alias.allowed.test', type: 5, ttl: 300, target: NAME },
      { name: NAME, type: 1, ttl: 300, address: ADDRESS },
    ],
    T0,
  );
  // A resolver that fails the test if asked.
  const verifier = new NameVerifier(cache, { resolver: () => Promise.reject(new Error('must not look up')) });
  assert.deepEqual(await verifier.verify('Alias.Allowed.Test.', ADDRESS, T0), { result: 'match', source: 'dns-seen', addresses: [ADDRESS] });
  assert.deepEqual(verifier.stats(), { lookups: 0, lookupFailures: 0, sharedLookups: 0 });
});

test('lookup fallback against a real dnsmasq: match, mismatch, learned with the TTL', async (t) => {
  const resolver = await dnsmasqResolver(t, 120);
  const cache = new NameAddressCache();
  const { resolver: asked, calls } = counting(dnsResolver(resolver));
  const verifier = new NameVerifier(cache, { resolver: asked });

  assert.deepEqual(await verifier.verify(NAME, ADDRESS, T0), { result: 'match', source: 'lookup', addresses: [ADDRESS] });
  assert.deepEqual(await verifier.verify(NAME, '203.0.113.99', T0), { result: 'mismatch', source: 'lookup', addresses: [ADDRESS] });
  assert.equal(calls(), 1, 'the second verify used the remembered lookup');

  // Learned into the cache with dnsmasq's TTL (120 s, above the 60 s floor).
  assert.equal(cache.has(NAME, ADDRESS, T0 + 119_000), true);
  assert.equal(cache.has(NAME, ADDRESS, T0 + 120_000), false);
  // Once the TTL has passed, the name is looked up again.
  assert.equal((await verifier.verify(NAME, ADDRESS, T0 + 121_000)).result, 'match');
  assert.equal(calls(), 2);

  // A name dnsmasq does not know (NXDOMAIN): nothing seen, nothing found, but not a failed lookup.
  assert.deepEqual(await verifier.verify('unknown.allowed.test', ADDRESS, T0), { result: 'unresolved', source: 'none', addresses: [] });
  assert.deepEqual(verifier.stats(), { lookups: 3, lookupFailures: 0, sharedLookups: 0 });
  // A server that refuses (dnsmasq forwards nothing outside its zone) is a failed lookup.
  assert.deepEqual(await verifier.verify('elsewhere.example', ADDRESS, T0), { result: 'unresolved', source: 'none', addresses: [] });
  assert.deepEqual(verifier.stats(), { lookups: 4, lookupFailures: 1, sharedLookups: 0 });
});

test('concurrent verifies of one name share one lookup', async (t) => {
  const resolver = await dnsmasqResolver(t);
  const { resolver: asked, calls } = counting(dnsResolver(resolver));
  const verifier = new NameVerifier(new NameAddressCache(), { resolver: asked });
  const results = await Promise.all([
    verifier.verify(NAME, ADDRESS, T0),
    verifier.verify(NAME.toUpperCase(), ADDRESS, T0),
    verifier.verify(`${NAME}.`, '203.0.113.99', T0),
    verifier.verify(NAME, ADDRESS, T0),
  ]);
  assert.equal(calls(), 1);
  assert.deepEqual(
    results.map((r) => r.result),
    ['match', 'match', 'mismatch', 'match'],
  );
  assert.deepEqual(verifier.stats(), { lookups: 1, lookupFailures: 0, sharedLookups: 3 });
});

test('seen answers that do not include the address: the lookup decides', async (t) => {
  const resolver = await dnsmasqResolver(t);
  const cache = new NameAddressCache();
  cache.learnAnswers([{ name: NAME, type: 1, ttl: 300, address: '203.0.113.50' }], T0);
  const verifier = new NameVerifier(cache, { resolver: dnsResolver(resolver) });
  // The client's resolver said .50, ours says .20: both are the name's addresses.
  assert.deepEqual(await verifier.verify(NAME, ADDRESS, T0), { result: 'match', source: 'lookup', addresses: [ADDRESS] });
  assert.deepEqual(await verifier.verify(NAME, '203.0.113.50', T0), {
    result: 'match',
    source: 'dns-seen',
    addresses: ['203.0.113.50', ADDRESS],
  });
  // Neither: a mismatch.
  assert.deepEqual(await verifier.verify(NAME, '203.0.113.99', T0), { result: 'mismatch', source: 'lookup', addresses: [ADDRESS] });
});

test('a lookup that times out gives unresolved, and the failure is remembered for negativeTtlMs', async (t) => {
  // A UDP socket that swallows every query.
  const sink = dgram.createSocket('udp4');
  let queries = 0;
  sink.on('message', () => queries++);
  await new Promise<void>((resolve) => sink.bind(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => sink.close(() => resolve())));
  // c-ares would wait 3 s; the verifier gives up after 200 ms.
  const resolver = new Resolver({ timeout: 3000, tries: 1 });
  resolver.setServers([`127.0.0.1:${sink.address().port}`]);
  t.after(() => resolver.cancel());
  const { resolver: asked, calls } = counting(dnsResolver(resolver));
  const verifier = new NameVerifier(new NameAddressCache(), { resolver: asked, timeoutMs: 200, negativeTtlMs: 5000 });

  assert.deepEqual(await verifier.verify(NAME, ADDRESS, T0), { result: 'unresolved', source: 'none', addresses: [] });
  assert.ok(queries >= 1, 'the query reached the sink');
  assert.deepEqual(await verifier.verify(NAME, ADDRESS, T0 + 4_999), { result: 'unresolved', source: 'none', addresses: [] });
  assert.equal(calls(), 1, 'within negativeTtlMs the failure is reused');
  assert.deepEqual(verifier.stats(), { lookups: 1, lookupFailures: 1, sharedLookups: 0 });

  // With seen answers, a failed lookup still leaves them to decide: a mismatch, from what was seen.
  const cache = new NameAddressCache();
  cache.learnAnswers([{ name: NAME, type: 1, ttl: 300, address: '203.0.113.50' }], T0);
  const withSeen = new NameVerifier(cache, { resolver: dnsResolver(resolver), timeoutMs: 200 });
  assert.deepEqual(await withSeen.verify(NAME, ADDRESS, T0), { result: 'mismatch', source: 'dns-seen', addresses: ['203.0.113.50'] });
});

test('bad input: an address that is not one rejects; an empty name is unresolved', async () => {
  const verifier = new NameVerifier(new NameAddressCache(), { resolver: () => Promise.resolve([ADDRESS]) });
  await assert.rejects(verifier.verify(NAME, 'api.allowed.test', T0), {
    name: 'GatehouseError',
    code: 'ERR_INVALID_ARG',
    message: 'Expected an IP address for address but received "api.allowed.test"',
  });
  assert.deepEqual(await verifier.verify('.', ADDRESS, T0), { result: 'unresolved', source: 'none', addresses: [] });
  assert.throws(() => new NameVerifier(new NameAddressCache(), { timeoutMs: 0 }), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected integer between 1 and 60000 for timeoutMs but received 0 of type number',
  });
  // A resolver without TTLs: addresses get the cache's floor; IPv6 answers are normalised.
  const plain = new NameVerifier(new NameAddressCache(), { resolver: () => Promise.resolve(['2001:DB8::20', ADDRESS]) });
  assert.deepEqual(await plain.verify(NAME, '2001:db8:0:0::20', T0), { result: 'match', source: 'lookup', addresses: ['2001:db8::20', ADDRESS] });
});
