import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestFraming } from '../../../src/http1';
import { readRequestHead } from '../../../src/ingress/server/request-head';
import { upstreamRequestHeaders, type UpstreamHeaderInput } from '../../../src/ingress/server/upstream-headers';
import { clientResponseHeaders } from '../../../src/proxy/server/headers';

const CLIENT = [
  'Host', 'public.example.com',
  'Authorization', 'Bearer t',
  'X-Amz-Date', '20000101T000000Z',
  'X-Amz-Security-Token', 'forged',
  'X-Amzn-Lattice-Identity', 'forged',
  'X-AMZN-LATTICE-TARGET', 'forged',
  'Connection', 'close, X-Secret',
  'X-Secret', 's',
  'Keep-Alive', 'timeout=5',
  'Upgrade', 'h2c',
  'Expect', '100-continue',
  'X-Forwarded-For', '203.0.113.1',
  'X-Forwarded-Proto', 'https',
  'X-Forwarded-Host', 'forged',
  'Set-Cookie', 'a=1',
  'Set-Cookie', 'b=2',
  'Transfer-Encoding', 'chunked',
];

function build(input: Partial<UpstreamHeaderInput>): string[] {
  const read = readRequestHead('/p', CLIENT);
  assert.ok(read.ok);
  return upstreamRequestHeaders(CLIENT, read.head, { authority: 'svc-0.lattice.example', signature: null, stripAuthorization: false, client: '192.0.2.9', proto: 'http', framing: requestFraming('chunked', undefined).fields, ...input });
}

test('a signed route: Host is the signed authority, the signature replaces every client SigV4 field, injected fields are gone', () => {
  const signature = { host: 'svc-0.lattice.example', 'x-amz-date': '20261122T050000Z', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-security-token': 'tok', authorization: 'AWS4-HMAC-SHA256 Credential=...' };
  assert.deepEqual(build({ signature, stripAuthorization: true }), [
    'Host', 'svc-0.lattice.example',
    'Set-Cookie', 'a=1',
    'Set-Cookie', 'b=2',
    'X-Amz-Date', '20261122T050000Z',
    'X-Amz-Content-Sha256', 'UNSIGNED-PAYLOAD',
    'X-Amz-Security-Token', 'tok',
    'Authorization', 'AWS4-HMAC-SHA256 Credential=...',
    'X-Forwarded-For', '203.0.113.1, 192.0.2.9',
    'X-Forwarded-Proto', 'http',
    'X-Forwarded-Host', 'public.example.com',
    'Transfer-Encoding', 'chunked',
  ]);
});

test('an unsigned route keeps the client Authorization unless told to strip it; Lattice identity fields always go', () => {
  const kept = build({});
  assert.ok(kept.includes('Authorization'));
  assert.ok(kept.includes('X-Amz-Date'));
  assert.ok(!kept.some((n) => n.toLowerCase().startsWith('x-amzn-lattice-')));
  assert.ok(!build({ stripAuthorization: true }).includes('Authorization'));
});

test('the body framing field is the ingress\'s own: Connection cannot take a Content-Length away from a body', () => {
  const raw = ['Host', 'public.example.com', 'Connection', 'content-length', 'Content-Length', '5'];
  const read = readRequestHead('/p', raw);
  assert.ok(read.ok);
  const out = upstreamRequestHeaders(raw, read.head, { authority: 'svc', signature: null, stripAuthorization: false, client: '192.0.2.9', proto: 'http', framing: requestFraming(undefined, '5').fields });
  assert.deepEqual(out.slice(-2), ['Content-Length', '5']);
  assert.equal(out.filter((n) => n.toLowerCase() === 'content-length').length, 1);
});

test('response headers lose hop-by-hop fields and keep repeated ones', () => {
  assert.deepEqual(clientResponseHeaders(['Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'Transfer-Encoding', 'chunked', 'Set-Cookie', 'a', 'Set-Cookie', 'b'], null), [
    'Content-Type', 'text/plain',
    'Set-Cookie', 'a',
    'Set-Cookie', 'b',
  ]);
});

test('fields named by Proxy-Connection are hop-by-hop too (no Connection header needed)', () => {
  const raw = ['Host', 'public.example.com', 'Proxy-Connection', 'X-Private', 'X-Private', 'v', 'X-Kept', 'k'];
  const read = readRequestHead('/p', raw);
  assert.ok(read.ok);
  const out = upstreamRequestHeaders(raw, read.head, { authority: 'svc', signature: null, stripAuthorization: false, client: '192.0.2.9', proto: 'http', framing: [] });
  assert.ok(!out.includes('X-Private'));
  assert.ok(out.includes('X-Kept'));
});
