/**
 * The Lattice signer computes the two hashes itself around smithy's
 * canonical request (lattice-signer.ts says why). Whatever it is asked to
 * sign, its headers must be exactly those smithy's own SignatureV4.sign()
 * produces for the same request: random methods, paths (escapes, unicode,
 * dot segments, empty segments), queries (repeated names, no "=", reserved
 * characters), hosts, times across midnight UTC, credentials with and
 * without a session token, and credentials that change between calls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { AwsCredentialIdentity } from '@smithy/types';
import { createLatticeSigner } from '../../../src/ingress/sigv4/lattice-signer';
import { smithySigned as smithySignedIn } from './smithy-signed';

const REGION = 'eu-west-1';

/** What smithy's own sign() returns for the request the signer is asked for (lower-case names). */
function smithySigned(credentials: AwsCredentialIdentity, at: Date, method: string, host: string, pathAndQuery: string): Promise<Record<string, string>> {
  return smithySignedIn(REGION, credentials, at, method, host, pathAndQuery);
}

const segment = fc.oneof(
  fc.constantFrom('', '.', '..', 'a', 'A-Z_~', '%20', '%2F', '%C3%A9t%C3%A9', 'x%25y', "it's", 'a+b', '%7E'),
  fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,;=:@-]{1,8}$/),
);
const path = fc.array(segment, { minLength: 0, maxLength: 5 }).chain((parts) => fc.boolean().map((slash) => `/${parts.join('/')}${slash && parts.length > 0 ? '/' : ''}`));
const queryPart = fc.oneof(fc.constantFrom('a', 'A', 'b', 'x%2Fy', '%2A', 'name%20two', '', '%C3%A9', 'a%3Db'), fc.stringMatching(/^[A-Za-z0-9._~-]{1,6}$/));
const pair = fc.tuple(queryPart, fc.option(queryPart, { nil: undefined })).map(([name, value]) => (value === undefined ? name : `${name}=${value}`));
const query = fc.array(pair, { maxLength: 5 }).map((pairs) => (pairs.length === 0 ? '' : `?${pairs.join('&')}`));
const host = fc.constantFrom('svc-0a1b2c3d.7d67968.vpc-lattice-svcs.eu-west-1.on.aws', 'billing-service.apps.example.com', '127.0.0.1:8080', 'Example.COM');
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH');
// Across a midnight UTC: the day (and so the signing key) changes between calls.
const time = fc.integer({ min: Date.UTC(2026, 10, 22, 23, 59, 50), max: Date.UTC(2026, 10, 23, 0, 0, 10) }).map((ms) => new Date(ms));
const credentials = fc.record({
  accessKeyId: fc.constantFrom('AKIDEXAMPLE', 'ASIAEXAMPLE2'),
  secretAccessKey: fc.constantFrom('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', 'another/secret+key=='),
  sessionToken: fc.option(fc.constantFrom('token-1', 'FwoGZXIvYXdzEXAMPLE//////////wEaDExample+/='), { nil: undefined }),
});

test('the signer returns exactly smithy SignatureV4.sign()\'s headers, call after call, as time and credentials change', async () => {
  // One signer for the whole run, as in the server: its day key and date caches see every change.
  let current: AwsCredentialIdentity = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
  let now = new Date();
  const signer = createLatticeSigner({ region: REGION, credentials: async () => current, clock: () => now });
  await fc.assert(
    fc.asyncProperty(credentials, time, method, host, path, query, async (creds, at, m, h, p, q) => {
      current = creds;
      now = at;
      const ours = await signer.sign({ method: m, host: h, path: `${p}${q}` });
      assert.deepEqual(ours, await smithySigned(creds, at, m, h, `${p}${q}`));
      // Right after, at the same time, the synchronous path signs the same.
      assert.deepEqual(signer.signNow({ method: m, host: h, path: `${p}${q}` }), ours);
    }),
    { numRuns: 400 },
  );
});

test('a new secret on the same day signs with the new key (the held day key is not reused)', async () => {
  let secret = 'first/secret';
  const at = new Date('2026-11-22T12:00:00Z');
  const signer = createLatticeSigner({ region: REGION, credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: secret }), clock: () => at });
  const first = await signer.sign({ method: 'GET', host: 'a.example.test', path: '/' });
  secret = 'second/secret';
  const second = await signer.sign({ method: 'GET', host: 'a.example.test', path: '/' });
  assert.notEqual(first.authorization, second.authorization);
  assert.deepEqual(second, await smithySigned({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: secret }, at, 'GET', 'a.example.test', '/'));
});

test('signNow signs only with credentials a sign() resolved within CREDENTIALS_REUSE_MS, on the day of its held key', async () => {
  let at = Date.UTC(2026, 10, 22, 23, 59, 59, 0);
  let calls = 0;
  const signer = createLatticeSigner({
    region: REGION,
    credentials: async () => {
      calls++;
      return { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'token-1' };
    },
    clock: () => new Date(at),
  });
  const req = { method: 'GET', host: 'a.example.test', path: '/x?y=1' };
  assert.equal(signer.signNow(req), null, 'nothing resolved yet');
  await signer.sign(req);
  at += 500;
  assert.deepEqual(signer.signNow(req), await smithySigned({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'token-1' }, new Date(at), 'GET', 'a.example.test', '/x?y=1'));
  at += 600; // past midnight and past the reuse window
  assert.equal(signer.signNow(req), null, 'credentials older than the reuse window are asked for again');
  await signer.sign(req);
  assert.equal(calls, 2);
  const nextDay = signer.signNow(req);
  assert.ok(nextDay !== null);
  assert.match(nextDay.authorization, /Credential=AKIDEXAMPLE\/20261123\//);
  assert.throws(() => signer.signNow({ method: 'get', host: 'a.example.test', path: '/' }), /upper-case HTTP method/);
});

test('signNow never signs past the credentials\' expiration', async () => {
  let at = Date.UTC(2026, 10, 22, 12, 0, 0);
  const expiration = new Date(at + 200);
  const signer = createLatticeSigner({ region: REGION, credentials: async () => ({ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 's', sessionToken: 't', expiration }), clock: () => new Date(at) });
  const req = { method: 'GET', host: 'a.example.test', path: '/' };
  await signer.sign(req);
  at += 100;
  assert.ok(signer.signNow(req) !== null);
  at += 150;
  assert.equal(signer.signNow(req), null);
});

test('a provider that updates its credentials object in place: a new secret or token in the same second is signed with', async () => {
  // The memoised chain could refresh into the same object; the signer must compare values, not the object.
  const shared: { accessKeyId: string; secretAccessKey: string; sessionToken: string } = { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'first/secret', sessionToken: 'token-1' };
  const at = new Date('2026-11-22T08:15:30.250Z');
  const signer = createLatticeSigner({ region: REGION, credentials: async () => shared, clock: () => at });
  const req = { method: 'GET', host: 'a.example.test', path: '/p?q=1' };
  const seen = new Set<string>();
  for (const change of [() => undefined, () => (shared.secretAccessKey = 'second/secret'), () => (shared.sessionToken = 'token-2'), () => (shared.accessKeyId = 'ASIAOTHER')]) {
    change();
    const ours = await signer.sign(req);
    assert.deepEqual(ours, await smithySigned({ ...shared }, at, req.method, req.host, req.path));
    assert.deepEqual(signer.signNow(req), ours);
    seen.add(ours.authorization);
  }
  assert.equal(seen.size, 4, 'each change gives another signature');
});

test('more hosts in one second than the signer remembers are all signed as smithy signs them', async () => {
  const creds: AwsCredentialIdentity = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'token-1' };
  const at = new Date('2026-11-22T08:15:30Z');
  const signer = createLatticeSigner({ region: REGION, credentials: async () => creds, clock: () => at });
  // 100 hosts, then the first ones again (remembered or not, the same answer).
  const hosts = Array.from({ length: 100 }, (_, i) => `svc-${i}.example.test`);
  for (const h of [...hosts, ...hosts.slice(0, 5), hosts[99]]) {
    assert.deepEqual(await signer.sign({ method: 'PUT', host: h, path: '/x' }), await smithySigned(creds, at, 'PUT', h, '/x'));
  }
});

test('a request repeated within its second gets the headers signed for it the first time; another second, path, method or host is signed anew', async () => {
  const creds: AwsCredentialIdentity = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'token-1' };
  let at = Date.UTC(2026, 10, 22, 8, 15, 30, 100);
  const signer = createLatticeSigner({ region: REGION, credentials: async () => creds, clock: () => new Date(at) });
  const req = { method: 'GET', host: 'a.example.test', path: '/items?id=7' };
  const first = await signer.sign(req);
  assert.ok(Object.isFrozen(first), 'handed out again: nobody may change it');
  at += 800; // the same second
  assert.equal(signer.signNow({ ...req }), first, 'the remembered headers, not signed again');
  for (const other of [{ ...req, path: '/items?id=8' }, { ...req, method: 'HEAD' }, { ...req, host: 'b.example.test' }]) {
    const signed = signer.signNow(other);
    assert.notEqual(signed?.authorization, first.authorization);
    assert.deepEqual(signed, await smithySigned(creds, new Date(at), other.method, other.host, other.path));
  }
  at += 200; // the next second (and past the credentials' reuse window: sign() asks again)
  const next = await signer.sign(req);
  assert.notEqual(next, first);
  assert.deepEqual(next, await smithySigned(creds, new Date(at), req.method, req.host, req.path));
  assert.throws(() => signer.signNow({ ...req, path: 'no-slash' }), { code: 'ERR_INVALID_ARG' });
});

test('more distinct requests in one second than the signer remembers are all signed as smithy signs them', async () => {
  const creds: AwsCredentialIdentity = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
  const at = new Date('2026-11-22T08:15:30Z');
  const signer = createLatticeSigner({ region: REGION, credentials: async () => creds, clock: () => at });
  const paths = Array.from({ length: 1100 }, (_, i) => `/n/${i}`);
  for (const p of [...paths, ...paths.slice(0, 3), paths[1099]]) {
    const ours = await signer.sign({ method: 'GET', host: 'a.example.test', path: p });
    assert.equal(ours.authorization, (await smithySigned(creds, at, 'GET', 'a.example.test', p)).authorization, p);
  }
});
