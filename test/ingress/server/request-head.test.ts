import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readRequestHead } from '../../../src/ingress/server/request-head';

test('origin-form: host from Host, the facts the log and X-Forwarded-For need, in one pass', () => {
  const r = readRequestHead('/a?b=1', [
    'HOST', 'Api.Example.com:8443',
    'User-Agent', 'curl/8',
    'Referer', 'https://r.example/',
    'X-Forwarded-For', '198.51.100.1',
    'x-forwarded-for', '198.51.100.2',
    'Connection', 'keep-alive',
    'Content-Length', '5',
  ]);
  assert.deepEqual(r, {
    ok: true,
    head: {
      host: 'Api.Example.com:8443',
      path: '/a?b=1',
      forwardedFor: '198.51.100.1, 198.51.100.2',
      userAgent: 'curl/8',
      referer: 'https://r.example/',
      contentLength: '5',
      chunked: false,
      expectOrUpgrade: false,
    },
  });
  for (const field of ['Expect', 'upgrade']) {
    const withIt = readRequestHead('/', ['Host', 'a.example', field, field === 'Expect' ? '100-continue' : 'websocket']);
    assert.ok(withIt.ok && withIt.head.expectOrUpgrade, `${field} is seen`);
  }
});

test('absolute-form: the target authority wins over Host; an empty path is "/"', () => {
  const table: Array<[string, string, string]> = [
    ['http://www.example.test/x?y', 'www.example.test', '/x?y'],
    ['HTTPS://www.example.test:8443', 'www.example.test:8443', '/'],
    ['http://www.example.test?q=1', 'www.example.test', '/?q=1'],
  ];
  for (const [url, host, path] of table) {
    const r = readRequestHead(url, ['Host', 'other.example.test', 'Transfer-Encoding', 'chunked']);
    assert.ok(r.ok, url);
    assert.equal(r.head.host, host, url);
    assert.equal(r.head.path, path, url);
    assert.equal(r.head.chunked, true);
  }
});

test('targets that are neither a path nor an http(s) URL, and URLs with credentials, are refused', () => {
  assert.deepEqual(readRequestHead('*', []), { ok: false, reason: 'the request target "*" is neither a path nor an http(s) URL' });
  assert.deepEqual(readRequestHead('ftp://x/', []), { ok: false, reason: 'the request target "ftp://x/" is neither a path nor an http(s) URL' });
  assert.deepEqual(readRequestHead('http://user:pw@x.example/', []), { ok: false, reason: 'credentials in the request URL are not forwarded' });
});
