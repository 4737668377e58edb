/**
 * The relay's upstream addresses: one lookup per name at a time and per
 * cache period, the next address after a failed connection, a fresh lookup
 * once every address failed, and a deadline on a lookup that hangs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamAddresses, type AddressLookup } from '../../../src/ingress/server/upstream-addresses';

/** A lookup that answers from `table` and counts its calls; `hang` names never answer. */
function fakeLookup(table: Record<string, string[]>, hang: Set<string> = new Set()): { lookup: AddressLookup; calls: string[] } {
  const calls: string[] = [];
  const lookup: AddressLookup = (host) => {
    calls.push(host);
    if (hang.has(host)) return new Promise(() => undefined);
    const found = table[host];
    if (found === undefined) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(found.map((address) => ({ address })));
  };
  return { lookup, calls };
}

test('a name is looked up once for concurrent requests and then answered from the cache; IP literals are not looked up', async () => {
  const { lookup, calls } = fakeLookup({ 'svc.example.test': ['192.0.2.10', '2001:db8::10'] });
  const addresses = new UpstreamAddresses(1000, lookup);
  const [a, b] = await Promise.all([addresses.get('svc.example.test'), addresses.get('svc.example.test')]);
  assert.deepEqual([a, b], ['192.0.2.10', '192.0.2.10']);
  assert.equal(addresses.get('svc.example.test'), '192.0.2.10', 'answered at once from the cache');
  assert.equal(addresses.get('198.51.100.7'), '198.51.100.7');
  assert.equal(addresses.get('2001:db8::1'), '2001:db8::1');
  assert.deepEqual(calls, ['svc.example.test']);
});

test('a failed connection moves the name to its next address; once all failed, the name is looked up again', async () => {
  const { lookup, calls } = fakeLookup({ 'svc.example.test': ['192.0.2.10', '2001:db8::10'] });
  const addresses = new UpstreamAddresses(1000, lookup);
  assert.equal(await addresses.get('svc.example.test'), '192.0.2.10');
  addresses.failed('svc.example.test', '198.51.100.99'); // not the one in use: ignored
  assert.equal(addresses.get('svc.example.test'), '192.0.2.10');
  addresses.failed('svc.example.test', '192.0.2.10');
  assert.equal(addresses.get('svc.example.test'), '2001:db8::10');
  addresses.failed('svc.example.test', '2001:db8::10');
  assert.equal(await addresses.get('svc.example.test'), '192.0.2.10');
  assert.deepEqual(calls, ['svc.example.test', 'svc.example.test']);
});

test('a lookup that fails or hangs is an error with its code (ENOTFOUND, ETIMEDOUT after the deadline), and is tried again next time', async () => {
  const { lookup, calls } = fakeLookup({}, new Set(['slow.example.test']));
  const addresses = new UpstreamAddresses(50, lookup);
  await assert.rejects(Promise.resolve(addresses.get('missing.example.test')), { code: 'ENOTFOUND' });
  await assert.rejects(Promise.resolve(addresses.get('missing.example.test')), { code: 'ENOTFOUND' });
  await assert.rejects(Promise.resolve(addresses.get('slow.example.test')), { code: 'ETIMEDOUT' });
  assert.deepEqual(calls, ['missing.example.test', 'missing.example.test', 'slow.example.test']);
});
