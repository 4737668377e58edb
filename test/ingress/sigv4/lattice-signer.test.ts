/**
 * The signer's Authorization header must equal what an independent SigV4
 * implementation computes. `referenceSigV4` (reference-sigv4.ts) is written from the AWS
 * documentation ("Create a signed AWS API request": canonical request, string
 * to sign, HMAC key chain) with node:crypto only, and is itself checked first
 * against the AWS SigV4 test suite's published "get-vanilla" signature.
 */
import { createHash, createHmac } from 'node:crypto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLatticeSigner, splitPathAndQuery } from '../../../src/ingress/sigv4/lattice-signer';
import { GatehouseError } from '../../../src/errors';
import { referenceSigV4 } from './reference-sigv4';

const ACCESS_KEY = 'AKIDEXAMPLE';
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN = 'FwoGZXIvYXdzEXAMPLE//////////wEaDExampleSessionToken+/=';
const SIGNING_TIME = new Date('2015-08-30T12:36:00Z');
const AMZ_DATE = '20150830T123600Z';
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

test('the reference implementation reproduces the AWS SigV4 test suite get-vanilla signature', () => {
  const got = referenceSigV4({
    method: 'GET',
    path: '/',
    query: '',
    headers: { Host: 'example.amazonaws.com', 'X-Amz-Date': AMZ_DATE },
    payloadHash: EMPTY_SHA256,
    region: 'us-east-1',
    service: 'service',
    accessKey: ACCESS_KEY,
    secretKey: SECRET_KEY,
    amzDate: AMZ_DATE,
  });
  assert.equal(got.signature, '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  assert.equal(
    got.authorization,
    'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
  );
});

const LATTICE_HOST = 'orders-0a1b2c3d4e5f6a7b8.7d67968.vpc-lattice-svcs.us-west-2.on.aws';

const CASES: { name: string; method: string; pathAndQuery: string; sessionToken?: string }[] = [
  { name: 'GET / with long-term keys', method: 'GET', pathAndQuery: '/' },
  { name: 'GET with repeated and valueless query parameters', method: 'GET', pathAndQuery: '/api/v1/items?b=2&a=1&a=0&flag' },
  { name: 'POST with a session token', method: 'POST', pathAndQuery: '/api/v1/orders', sessionToken: SESSION_TOKEN },
  {
    name: 'encoded path segments and query values, with a session token',
    method: 'PUT',
    pathAndQuery: '/files/a%20b/%C3%A9t%C3%A9~x?q=x%2Fy&name=hello%20world&Z=%2A',
    sessionToken: SESSION_TOKEN,
  },
];

for (const c of CASES) {
  test(`Authorization equals the reference computation: ${c.name}`, async () => {
    const signer = createLatticeSigner({
      region: 'us-west-2',
      credentials: async () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, sessionToken: c.sessionToken }),
      clock: () => SIGNING_TIME,
    });
    const headers = await signer.sign({ method: c.method, host: LATTICE_HOST, path: c.pathAndQuery });

    const expectedSigned: Record<string, string> = {
      host: LATTICE_HOST,
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      'x-amz-date': AMZ_DATE,
    };
    if (c.sessionToken !== undefined) expectedSigned['x-amz-security-token'] = c.sessionToken;
    const mark = c.pathAndQuery.indexOf('?');
    const reference = referenceSigV4({
      method: c.method,
      path: mark === -1 ? c.pathAndQuery : c.pathAndQuery.slice(0, mark),
      query: mark === -1 ? '' : c.pathAndQuery.slice(mark + 1),
      headers: expectedSigned,
      payloadHash: 'UNSIGNED-PAYLOAD',
      region: 'us-west-2',
      service: 'vpc-lattice-svcs',
      accessKey: ACCESS_KEY,
      secretKey: SECRET_KEY,
      amzDate: AMZ_DATE,
    });

    assert.equal(headers.authorization, reference.authorization);
    assert.equal(
      reference.signedHeaders,
      c.sessionToken === undefined ? 'host;x-amz-content-sha256;x-amz-date' : 'host;x-amz-content-sha256;x-amz-date;x-amz-security-token',
    );
    // Exactly the headers to add, nothing else.
    assert.deepEqual(headers, { ...expectedSigned, authorization: reference.authorization });
  });
}

test('the signature changes with the host, so it must be computed after the rewrite', async () => {
  const signer = createLatticeSigner({
    region: 'us-west-2',
    credentials: async () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }),
    clock: () => SIGNING_TIME,
  });
  const a = await signer.sign({ method: 'GET', host: LATTICE_HOST, path: '/' });
  const b = await signer.sign({ method: 'GET', host: 'public.example.com', path: '/' });
  assert.notEqual(a.authorization, b.authorization);
  assert.equal(b.host, 'public.example.com');
});

test('region: option, then AWS_REGION, then AWS_DEFAULT_REGION, else ERR_INVALID_ARG', (t) => {
  const saved = { AWS_REGION: process.env.AWS_REGION, AWS_DEFAULT_REGION: process.env.AWS_DEFAULT_REGION };
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const credentials = async () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY });
  process.env.AWS_REGION = 'eu-west-1';
  process.env.AWS_DEFAULT_REGION = 'eu-central-1';
  assert.equal(createLatticeSigner({ region: 'ap-south-1', credentials }).region, 'ap-south-1');
  assert.equal(createLatticeSigner({ credentials }).region, 'eu-west-1');
  delete process.env.AWS_REGION;
  assert.equal(createLatticeSigner({ credentials }).region, 'eu-central-1');
  delete process.env.AWS_DEFAULT_REGION;
  assert.throws(
    () => createLatticeSigner({ credentials }),
    (err: unknown) =>
      err instanceof GatehouseError &&
      err.code === 'ERR_INVALID_ARG' &&
      err.message === 'Expected an AWS region (option region, AWS_REGION or AWS_DEFAULT_REGION) for region but received none',
  );
  assert.throws(
    () => createLatticeSigner({ region: 'US East', credentials }),
    (err: unknown) =>
      err instanceof GatehouseError && err.message === 'Expected an AWS region such as "us-east-1" for region but received "US East" of type string',
  );
});

test('bad requests are refused with the one message shape', async () => {
  const signer = createLatticeSigner({ region: 'us-west-2', credentials: async () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }) });
  await assert.rejects(signer.sign({ method: 'GET', host: 'bad host', path: '/' }), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected a host name for host but received "bad host" of type string',
  });
  await assert.rejects(signer.sign({ method: 'get', host: LATTICE_HOST, path: '/' }), { code: 'ERR_INVALID_ARG' });
  await assert.rejects(signer.sign({ method: 'GET', host: LATTICE_HOST, path: 'no-slash' }), { code: 'ERR_INVALID_ARG' });
  await assert.rejects(signer.sign({ method: 'GET', host: LATTICE_HOST, path: '/?a=%zz' }), {
    code: 'ERR_INVALID_ARG',
    message: 'Expected a query string with valid percent-encoding for path but received "/?a=%zz" of type string',
  });
});

test('splitPathAndQuery keeps the path encoded and decodes the query', () => {
  // The query has no prototype: Object's own names are parameters too.
  const bare = (fields: object): object => Object.assign(Object.create(null) as object, fields);
  assert.deepEqual(splitPathAndQuery('/a%20b?x=1&x=2&y&z=%2F'), { path: '/a%20b', query: bare({ x: ['1', '2'], y: '', z: '/' }) });
  assert.deepEqual(splitPathAndQuery('/'), { path: '/', query: bare({}) });
  assert.deepEqual(splitPathAndQuery('/?constructor=1&toString'), { path: '/', query: bare({ constructor: '1', toString: '' }) });
});

test('signingParts: what signs another target to the same host in the same second (the relay\'s kept routes), only with credentials that outlast it', async () => {
  let at = new Date('2026-11-22T12:00:00.250Z');
  let expiration: Date | undefined;
  const signer = createLatticeSigner({
    region: 'us-east-1',
    credentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', sessionToken: 'tok', expiration }),
    clock: () => at,
  });
  const host = 'svc-1.example.test';
  // The reference implementation's Authorization for these credentials and host.
  const referenceFor = (method: string, path: string, query: string, amzDate: string): string =>
    referenceSigV4({
      method,
      path,
      query,
      headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-date': amzDate, 'x-amz-security-token': 'tok' },
      payloadHash: 'UNSIGNED-PAYLOAD',
      region: 'us-east-1',
      service: 'vpc-lattice-svcs',
      secretKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      accessKey: 'AKIDEXAMPLE',
      amzDate,
    }).authorization;
  const first = await signer.sign({ method: 'GET', host, path: '/a' });
  const parts = signer.signingParts(first);
  assert.ok(parts !== null);
  assert.equal(parts.second, Date.UTC(2026, 10, 22, 12, 0, 0) / 1000);
  assert.ok(first.authorization.startsWith(parts.authorizationPrefix));
  // Another method, path and query, signed from the parts as the relay does, equals the reference implementation's signature.
  const canonical = `HEAD\n/b/c\nx=1&y=\n${parts.canonicalRest}`;
  const toSign = `${parts.stringToSignPrefix}${createHash('sha256').update(canonical).digest('hex')}`;
  const fromParts = `${parts.authorizationPrefix}${createHmac('sha256', parts.key).update(toSign).digest('hex')}`;
  assert.equal(fromParts, referenceFor('HEAD', '/b/c', 'y&x=1', first['x-amz-date']));
  // Query names that are Object.prototype's are parameters like any other; __proto__ is refused (smithy cannot sign it).
  const named = await signer.sign({ method: 'GET', host, path: '/q?toString=1&constructor=2' });
  assert.equal(named.authorization, referenceFor('GET', '/q', 'toString=1&constructor=2', named['x-amz-date']));
  await assert.rejects(signer.sign({ method: 'GET', host, path: '/q?__proto__=1' }), (err: unknown) => err instanceof GatehouseError && err.code === 'ERR_INVALID_ARG');
  // A later second: a signature's parts stay its own second's (the relay signs with them in that second only).
  at = new Date('2026-11-22T12:00:01.100Z');
  const later = await signer.sign({ method: 'GET', host, path: '/a' });
  assert.equal(signer.signingParts(first)?.second, parts.second);
  assert.equal(signer.signingParts(later)?.second, parts.second + 1);
  // Headers the signer did not make have none.
  assert.equal(signer.signingParts({ ...first }), null);
  // Credentials that expire within a second after the signature's second sign no further.
  at = new Date('2026-11-22T12:00:02.100Z');
  expiration = new Date('2026-11-22T12:00:02.900Z');
  assert.equal(signer.signingParts(await signer.sign({ method: 'GET', host, path: '/a' })), null);
  expiration = new Date('2026-11-22T12:30:00Z');
  at = new Date('2026-11-22T12:00:03.100Z');
  assert.ok(signer.signingParts(await signer.sign({ method: 'GET', host, path: '/a' })) !== null);
});
