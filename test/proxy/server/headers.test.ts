import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientResponseHeaders, endToEndHeaders, hopByHopNames, upstreamRequestHeaders } from '../../../src/proxy/server/headers';

test('hop-by-hop names: the fixed set plus what Connection and Proxy-Connection name', () => {
  const names = hopByHopNames(['Connection', 'close, X-Private ,', 'Proxy-Connection', 'X-Other', 'connection', 'x-third']);
  for (const n of ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'x-private', 'x-other', 'x-third', 'close']) {
    assert.ok(names.has(n), n);
  }
  assert.equal(names.has('x-kept'), false);
});

test('end-to-end headers keep order, spelling and repeats', () => {
  const raw = ['Set-Cookie', 'a=1', 'Connection', 'X-Drop', 'X-Drop', 'v', 'set-cookie', 'b=2', 'Keep-Alive', '5', 'X-Keep', 'k'];
  assert.deepEqual(endToEndHeaders(raw), ['Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Keep', 'k']);
});

test('upstream request headers: Host from the target, Via and X-Forwarded-For appended, Expect removed', () => {
  const raw = ['Host', 'spoofed.example', 'Via', '1.0 first', 'X-Forwarded-For', '198.51.100.7', 'Expect', '100-continue', 'Proxy-Authorization', 'Basic x', 'Content-Length', '3', 'Accept', '*/*'];
  assert.deepEqual(upstreamRequestHeaders(raw, { authority: 'real.example:8080', via: '1.1 gatehouse', forwardedFor: '192.0.2.9' }), [
    'Host', 'real.example:8080',
    'Content-Length', '3',
    'Accept', '*/*',
    'Via', '1.0 first, 1.1 gatehouse',
    'X-Forwarded-For', '198.51.100.7, 192.0.2.9',
  ]);
  assert.deepEqual(upstreamRequestHeaders(['X-Forwarded-For', '198.51.100.7'], { authority: 'h', via: null, forwardedFor: null }), ['Host', 'h', 'X-Forwarded-For', '198.51.100.7']);
});

test('a chunked request body is re-framed chunked, never with a Content-Length', () => {
  const raw = ['Transfer-Encoding', 'chunked', 'Content-Length', '10'];
  assert.deepEqual(upstreamRequestHeaders(raw, { authority: 'h', via: null, forwardedFor: null }), ['Host', 'h', 'Transfer-Encoding', 'chunked']);
});

test('client response headers drop the upstream framing and hop-by-hop fields, add Via', () => {
  const raw = ['Transfer-Encoding', 'chunked', 'Connection', 'keep-alive, X-Up', 'X-Up', '1', 'Proxy-Authenticate', 'Basic', 'Content-Type', 'text/plain'];
  assert.deepEqual(clientResponseHeaders(raw, '1.1 gatehouse'), ['Content-Type', 'text/plain', 'Via', '1.1 gatehouse']);
  assert.deepEqual(clientResponseHeaders(['Via', '1.1 upstream-cdn'], '1.1 gatehouse'), ['Via', '1.1 upstream-cdn, 1.1 gatehouse']);
});
