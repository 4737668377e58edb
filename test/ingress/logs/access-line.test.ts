import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { combinedAccessLine, jsonAccessLine } from '../../../src/ingress/logs';
import { newAccessEntry, pathWithoutQuery } from '../../../src/ingress/server/access';

function entry(): ReturnType<typeof newAccessEntry> {
  const e = newAccessEntry('203.0.113.9', 4242, 'GET', true);
  e.start = new Date('2026-11-22T05:25:20.123Z');
  Object.assign(e, {
    host: 'api.example.com',
    path: pathWithoutQuery('/items?token=secret'),
    status: 200,
    bytesIn: 120,
    bytesOut: 1532,
    durationMs: 12,
    route: 'api.example.com/',
    upstream: 'svc.example',
    upstreamMs: 10.04,
    signed: true,
    userAgent: 'curl/8 "x"',
    referer: '',
  });
  return e;
}

test('combined: Apache fields, UTC time, query cut, quotes escaped, empty referer "-"', () => {
  assert.equal(combinedAccessLine(entry()), '203.0.113.9 - - [22/Nov/2026:05:25:20 +0000] "GET /items? HTTP/1.1" 200 1532 "-" "curl/8 \\"x\\""');
  const cut = entry();
  cut.status = 0;
  cut.userAgent = 'bad\nagent\u00e9';
  assert.equal(combinedAccessLine(cut), '203.0.113.9 - - [22/Nov/2026:05:25:20 +0000] "GET /items? HTTP/1.1" - 1532 "-" "bad\\x0aagent\\xc3\\xa9"');
});

test('JSON: every field under a fixed name', () => {
  assert.deepEqual(JSON.parse(jsonAccessLine(entry())), {
    time: '2026-11-22T05:25:20.123Z',
    client: '203.0.113.9',
    client_port: 4242,
    method: 'GET',
    host: 'api.example.com',
    path: '/items?',
    protocol: 'HTTP/1.1',
    status: 200,
    bytes_in: 120,
    bytes_out: 1532,
    duration_ms: 12,
    route: 'api.example.com/',
    upstream: 'svc.example',
    upstream_ms: 10,
    signed: true,
    tls: true,
    upgrade: false,
    error: null,
    reason: null,
    user_agent: 'curl/8 "x"',
    referer: '',
  });
});

test('JSON: the line is what JSON.stringify makes of the fields, for any values (escapes, unicode, nulls, odd numbers)', () => {
  const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', 'a"b', 'back\\slash', 'tab\there', '\u007f', '\u2028', '\ud800'));
  const maybe = fc.option(text, { nil: null });
  const num = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, Number.NaN, Number.POSITIVE_INFINITY));
  fc.assert(
    fc.property(text, text, text, text, maybe, maybe, maybe, fc.option(num, { nil: null }), num, num, fc.boolean(), (client, host, path, agent, route, upstream, reason, upstreamMs, status, duration, flag) => {
      const e = entry();
      Object.assign(e, { client, host, path, userAgent: agent, referer: path, route, upstream, reason, upstreamMs, status, durationMs: duration, signed: flag, upgrade: !flag });
      const expected = JSON.stringify({
        time: e.start.toISOString(),
        client: e.client,
        client_port: e.clientPort,
        method: e.method,
        host: e.host,
        path: e.path,
        protocol: e.protocol,
        status: e.status,
        bytes_in: e.bytesIn,
        bytes_out: e.bytesOut,
        duration_ms: e.durationMs,
        route: e.route,
        upstream: e.upstream,
        upstream_ms: e.upstreamMs === null ? null : Math.round(e.upstreamMs * 10) / 10,
        signed: e.signed,
        tls: e.tls,
        upgrade: e.upgrade,
        error: e.error,
        reason: e.reason,
        user_agent: e.userAgent,
        referer: e.referer,
      });
      assert.equal(jsonAccessLine(e), expected);
    }),
    { numRuns: 2000 },
  );
});
