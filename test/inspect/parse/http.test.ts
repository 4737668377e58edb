import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HTTP_HEAD_MAX_BYTES, HTTP_MALFORMED_REASONS, parseHttpRequest, type HttpRequestResult } from '../../../src/inspect/parse';
import { hostName } from './fixtures';

const REASONS = new Set<string>(HTTP_MALFORMED_REASONS);
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
const parse = (s: string): HttpRequestResult => parseHttpRequest(bytes(s));

function assertValidResult(r: HttpRequestResult): void {
  switch (r.status) {
    case 'complete':
      assert.ok(['HTTP/1.0', 'HTTP/1.1'].includes(r.version));
      assert.ok(r.method.length > 0 && r.target.length > 0);
      assert.ok(r.host === null || (r.host.length > 0 && r.host === r.host.toLowerCase() && !r.host.endsWith('.')));
      return;
    case 'incomplete':
    case 'not-http':
      return;
    case 'malformed':
      assert.ok(REASONS.has(r.reason), r.reason);
      return;
    default:
      assert.fail(`unknown status ${JSON.stringify(r)}`);
  }
}

const hostCases: [string, string, string | null][] = [
  ['plain', 'GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n', 'www.example.com'],
  ['case, port and trailing dot', 'GET /a?b HTTP/1.1\r\nhOsT:  WWW.Example.COM.:8080 \r\nAccept: */*\r\n\r\n', 'www.example.com'],
  ['IPv6 literal', 'GET / HTTP/1.1\r\nHost: [2001:DB8::1]:8443\r\n\r\n', '2001:db8::1'],
  ['IPv4 literal', 'GET / HTTP/1.1\r\nHost: 192.0.2.7\r\n\r\n', '192.0.2.7'],
  ['no Host (HTTP/1.0)', 'GET / HTTP/1.0\r\n\r\n', null],
  ['empty Host', 'OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n', null],
  ['absolute-form, no Host', 'GET http://Proxied.Example.org:81/x HTTP/1.1\r\n\r\n', 'proxied.example.org'],
  ['absolute-form with userinfo', 'GET http://allowed.example@evil.example/ HTTP/1.1\r\n\r\n', 'evil.example'],
  ['absolute-form and the same Host', 'GET http://a.example/ HTTP/1.1\r\nHost: a.example:80\r\n\r\n', 'a.example'],
  ['CONNECT authority-form', 'CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n', 'tunnel.example'],
  ['the same Host twice', 'GET / HTTP/1.1\r\nHost: a.example\r\nHost: A.example.\r\n\r\n', 'a.example'],
];

for (const [what, head, host] of hostCases) {
  test(`host: ${what}`, () => {
    const r = parse(head);
    assert.equal(r.status, 'complete', JSON.stringify(r));
    assert.equal(r.status === 'complete' && r.host, host);
  });
}

test('complete result carries method, target and version as sent; body bytes are ignored', () => {
  assert.deepEqual(parse('POST /submit?x=1 HTTP/1.1\r\nHost: api.example\r\nContent-Length: 3\r\n\r\nabc'), {
    status: 'complete',
    method: 'POST',
    target: '/submit?x=1',
    version: 'HTTP/1.1',
    host: 'api.example',
  });
});

test('incomplete until CRLFCRLF; not-http for other protocols', () => {
  for (const s of ['', 'G', 'GET', 'GET ', 'GET / HTTP/1.1\r', 'GET / HTTP/1.1\r\nHost: a\r\n', 'GET / HTTP/1.1\r\nHost: a\r\n\r']) {
    assert.deepEqual(parse(s), { status: 'incomplete' }, JSON.stringify(s));
  }
  const others = ['SSH-2.0-OpenSSH_9.2\r\n', 'get / HTTP/1.1\r\n\r\n', ' GET / HTTP/1.1', '\x16\x03\x01', '\r\n\r\n', 'ABCDEFGHIJKLMNOPQRSTUV'];
  for (const s of others) {
    assert.deepEqual(parse(s), { status: 'not-http' }, JSON.stringify(s));
  }
});

const malformedCases: [string, string, string][] = [
  ['bare LF', 'GET / HTTP/1.1\nHost: a\n\n', 'bare-lf'],
  ['bare CR', 'GET / HTTP/1.1\rHost: a\r\n\r\n', 'bare-cr'],
  ['two spaces', 'GET  / HTTP/1.1\r\n\r\n', 'bad-request-line'],
  ['no version (HTTP/0.9)', 'GET /\r\n\r\n', 'bad-request-line'],
  ['SMTP-like line', 'EHLO mail.example\r\n', 'bad-request-line'],
  ['space in the target', 'GET /a b HTTP/1.1\r\n\r\n', 'bad-request-line'],
  ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'unsupported-version'],
  ['obs-fold', 'GET / HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n', 'obs-fold'],
  ['space before the colon', 'GET / HTTP/1.1\r\nHost : a.example\r\n\r\n', 'bad-header'],
  ['no colon', 'GET / HTTP/1.1\r\nHost a.example\r\n\r\n', 'bad-header'],
  ['a NUL in a value', 'GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n', 'bad-header'],
  ['two different Hosts', 'GET / HTTP/1.1\r\nHost: allowed.example\r\nHost: evil.example\r\n\r\n', 'conflicting-host'],
  ['Host with userinfo', 'GET / HTTP/1.1\r\nHost: a@b.example\r\n\r\n', 'bad-host'],
  ['Host with percent-encoding', 'GET / HTTP/1.1\r\nHost: %65vil.example\r\n\r\n', 'bad-host'],
  ['Host with a bad port', 'GET / HTTP/1.1\r\nHost: a.example:99999\r\n\r\n', 'bad-host'],
  ['Host with an unclosed bracket', 'GET / HTTP/1.1\r\nHost: [2001:db8::1\r\n\r\n', 'bad-host'],
  ['Host of a bracketed name', 'GET / HTTP/1.1\r\nHost: [a.example]\r\n\r\n', 'bad-host'],
  ['absolute-form with an empty authority', 'GET http:///x HTTP/1.1\r\n\r\n', 'bad-host'],
  ['absolute-form naming another host', 'GET http://evil.example/ HTTP/1.1\r\nHost: allowed.example\r\n\r\n', 'host-mismatch'],
];

for (const [what, head, reason] of malformedCases) {
  test(`malformed '${reason}': ${what}`, () => {
    assert.deepEqual(parse(head), { status: 'malformed', reason });
  });
}

test('a bad request line is reported before the head ends', () => {
  assert.deepEqual(parse('GET /x HTTP/9.9\r\nHost: a'), { status: 'malformed', reason: 'unsupported-version' });
});

test(`the ${HTTP_HEAD_MAX_BYTES}-byte cap on the head`, () => {
  const head = (filler: number): string => `GET / HTTP/1.1\r\nHost: a.example\r\nX-Pad: ${'p'.repeat(filler)}\r\n\r\n`;
  const overhead = head(0).length;
  assert.equal(parse(head(HTTP_HEAD_MAX_BYTES - overhead)).status, 'complete'); // exactly at the cap
  assert.deepEqual(parse(head(HTTP_HEAD_MAX_BYTES - overhead + 1)), { status: 'malformed', reason: 'head-too-large' });
  const unterminated = head(HTTP_HEAD_MAX_BYTES).slice(0, HTTP_HEAD_MAX_BYTES);
  assert.deepEqual(parse(unterminated), { status: 'malformed', reason: 'head-too-large' });
  assert.deepEqual(parse(unterminated.slice(0, -1)), { status: 'incomplete' });
});

const requestArb = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'HEAD', 'PUT', 'OPTIONS', 'DELETE', 'PATCH'),
    path: fc.stringMatching(/^\/[a-zA-Z0-9/._~?=&-]{0,30}$/),
    host: hostName,
    port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
    absolute: fc.boolean(),
    headers: fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/), fc.stringMatching(/^[ -~]{0,40}$/)), {
      maxLength: 5,
    }),
  })
  .filter(({ headers }) => headers.every(([name]) => name.toLowerCase() !== 'host'))
  .map(({ method, path, host, port, absolute, headers }) => {
    const authority = port === undefined ? host : `${host}:${port}`;
    const target = absolute ? `http://${authority}${path}` : path;
    const lines = [`${method} ${target} HTTP/1.1`, `Host: ${authority}`, ...headers.map(([n, v]) => `${n}: ${v}`)];
    return { text: `${lines.join('\r\n')}\r\n\r\n`, host, method, target };
  });

test('property: generated requests give back method, target and host', () => {
  fc.assert(
    fc.property(requestArb, ({ text, host, method, target }) => {
      assert.deepEqual(parse(text), { status: 'complete', method, target, version: 'HTTP/1.1', host });
    }),
    { numRuns: 1000 },
  );
});

test('property: every prefix of a valid request is incomplete', () => {
  fc.assert(
    fc.property(requestArb, ({ text }) => {
      for (let cut = 0; cut < text.length; cut++) assert.equal(parse(text.slice(0, cut)).status, 'incomplete');
    }),
    { numRuns: 200 },
  );
});

test('property: random bytes, and mutated and truncated requests, never throw and give a valid result', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => assertValidResult(parseHttpRequest(b))), { numRuns: 3000 });
  const mutated = fc
    .tuple(requestArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }))
    .map(([{ text }, edits]) => {
      const b = bytes(text);
      for (const [at, value] of edits) b[at % b.length] = value;
      return b;
    });
  fc.assert(
    fc.property(mutated, (b) => {
      for (let cut = 0; cut <= b.length; cut += 7) assertValidResult(parseHttpRequest(b.subarray(0, cut)));
      assertValidResult(parseHttpRequest(b));
    }),
    { numRuns: 1500 },
  );
});
