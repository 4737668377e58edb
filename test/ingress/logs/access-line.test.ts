import { test } from 'node:test';
import assert from 'node:assert/strict';
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
