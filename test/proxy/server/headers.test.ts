import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestFraming } from '../../../src/http1';
import { clientResponseHeaders, connectionNamedFields, endToEndHeaders, isHopByHop, upstreamRequestHeaders } from '../../../src/proxy/server/headers';

test('hop-by-hop names: the fixed set plus what Connection and Proxy-Connection name', () => {
  const named = connectionNamedFields(['Connection', 'close, X-Private ,', 'Proxy-Connection', 'X-Other', 'connection', 'x-third']);
  for (const n of ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'x-private', 'x-other', 'x-third', 'close']) {
    assert.ok(isHopByHop(n, named), n);
  }
  assert.equal(isHopByHop('x-kept', named), false);
});

test('connectionNamedFields: null without Connection headers; Proxy-Connection names count too', () => {
  assert.equal(connectionNamedFields(['Host', 'h', 'Accept', '*/*']), null);
  assert.deepEqual(connectionNamedFields(['Proxy-Connection', 'X-A, x-b']), new Set(['x-a', 'x-b']));
  assert.deepEqual(endToEndHeaders(['Proxy-Connection', 'X-A', 'X-A', '1', 'X-B', '2']), ['X-B', '2']);
});

test('end-to-end headers keep order, spelling and repeats', () => {
  const raw = ['Set-Cookie', 'a=1', 'Connection', 'X-Drop', 'X-Drop', 'v', 'set-cookie', 'b=2', 'Keep-Alive', '5', 'X-Keep', 'k'];
  assert.deepEqual(endToEndHeaders(raw), ['Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Keep', 'k']);
});

test('upstream request headers: Host from the target, Via and X-Forwarded-For appended, Expect kept', () => {
  const raw = ['Host', 'spoofed.example', 'Via', '1.0 first', 'X-Forwarded-For', '198.51.100.7', 'Expect', '100-continue', 'Proxy-Authorization', 'Basic x', 'Content-Length', '3', 'Accept', '*/*'];
  const framing = requestFraming(undefined, '3').fields;
  assert.deepEqual(upstreamRequestHeaders(raw, { authority: 'real.example:8080', via: '1.1 gatehouse', forwardedFor: '192.0.2.9', framing }), [
    'Host', 'real.example:8080',
    'Expect', '100-continue',
    'Accept', '*/*',
    'Content-Length', '3',
    'Via', '1.0 first, 1.1 gatehouse',
    'X-Forwarded-For', '198.51.100.7, 192.0.2.9',
  ]);
  assert.deepEqual(upstreamRequestHeaders(['X-Forwarded-For', '198.51.100.7'], { authority: 'h', via: null, forwardedFor: null, framing: [] }), ['Host', 'h', 'X-Forwarded-For', '198.51.100.7']);
});

test('the body framing field is always the proxy\'s own: a chunked body goes chunked, and Connection cannot remove a length', () => {
  const chunked = requestFraming('chunked', undefined);
  assert.deepEqual(chunked, { body: 'chunked', fields: ['Transfer-Encoding', 'chunked'] });
  assert.deepEqual(upstreamRequestHeaders(['Transfer-Encoding', 'chunked', 'Content-Length', '10'], { authority: 'h', via: null, forwardedFor: null, framing: chunked.fields }), ['Host', 'h', 'Transfer-Encoding', 'chunked']);
  // "Connection: content-length" would otherwise drop the length while the body is still sent: a smuggled request.
  const named = ['Connection', 'content-length, transfer-encoding', 'Content-Length', '5'];
  assert.deepEqual(upstreamRequestHeaders(named, { authority: 'h', via: null, forwardedFor: null, framing: requestFraming(undefined, '5').fields }), ['Host', 'h', 'Content-Length', '5']);
  assert.deepEqual(requestFraming(undefined, '0'), { body: 'none', fields: ['Content-Length', '0'] });
  assert.deepEqual(requestFraming(undefined, undefined), { body: 'none', fields: [] });
});

test('client response headers drop the upstream framing and hop-by-hop fields, add Via', () => {
  const raw = ['Transfer-Encoding', 'chunked', 'Connection', 'keep-alive, X-Up', 'X-Up', '1', 'Proxy-Authenticate', 'Basic', 'Content-Type', 'text/plain'];
  assert.deepEqual(clientResponseHeaders(raw, '1.1 gatehouse'), ['Content-Type', 'text/plain', 'Via', '1.1 gatehouse']);
  assert.deepEqual(clientResponseHeaders(['Via', '1.1 upstream-cdn'], '1.1 gatehouse'), ['Via', '1.1 upstream-cdn, 1.1 gatehouse']);
});
