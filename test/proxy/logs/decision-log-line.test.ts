import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DECISION_LOG_FIELDS, decisionLogLine } from '../../../src/proxy/logs';
import { entry } from './entry';

test('one JSON object with every field, in DECISION_LOG_FIELDS order', () => {
  const line = decisionLogLine(entry({ durationMs: 1893.6, resolveMs: 2.2, connectMs: 0.6 }));
  assert.ok(!line.includes('\n'));
  const record = JSON.parse(line) as Record<string, unknown>;
  assert.deepEqual(Object.keys(record), [...DECISION_LOG_FIELDS]);
  assert.deepEqual(record, {
    time: '2026-11-22T02:39:45.123Z',
    client: '10.0.1.5',
    client_port: 50432,
    endpoint: 'vpce-0123456789abcdef0',
    method: 'GET',
    host: 'api.example.com',
    port: 80,
    url: 'http://api.example.com/v1/items',
    rule: 'api',
    decision: 'allow',
    reason: 'rule',
    resolved: ['203.0.113.20'],
    upstream: '203.0.113.20',
    status: 200,
    bytes_to_client: 1251,
    bytes_from_client: 87,
    duration_ms: 1894,
    resolve_ms: 2,
    connect_ms: 1,
  });
});

test('a denial before any connection: nulls, not missing keys; the default rule is null', () => {
  const record = JSON.parse(
    decisionLogLine(
      entry({
        endpoint: null,
        rule: null,
        decision: 'deny',
        reason: 'ssrf:link-local',
        resolvedAddresses: ['169.254.169.254'],
        upstreamAddress: null,
        hierarchy: 'HIER_NONE',
        status: 403,
        resolveMs: null,
        connectMs: null,
        contentType: null,
      }),
    ),
  ) as Record<string, unknown>;
  assert.deepEqual(Object.keys(record), [...DECISION_LOG_FIELDS]);
  assert.deepEqual(
    [record.endpoint, record.rule, record.decision, record.reason, record.resolved, record.upstream, record.resolve_ms, record.connect_ms],
    [null, null, 'deny', 'ssrf:link-local', ['169.254.169.254'], null, null, null],
  );
});

test('queries are kept unless asked; CONNECT targets never cut; control characters stay escaped inside the line', () => {
  const url = 'http://h/p?token=1';
  assert.equal((JSON.parse(decisionLogLine(entry({ url }))) as { url: string }).url, url);
  assert.equal((JSON.parse(decisionLogLine(entry({ url }), { stripQueryTerms: true })) as { url: string }).url, 'http://h/p?');
  const hostile = 'http://h/\r\n{"decision":"allow"}';
  const line = decisionLogLine(entry({ url: hostile, decision: 'deny' }));
  assert.ok(!/[\r\n]/.test(line));
  const back = JSON.parse(line) as { url: string; decision: string };
  assert.deepEqual([back.url, back.decision], [hostile, 'deny']);
  // An invalid start date cannot throw from a logger.
  assert.equal((JSON.parse(decisionLogLine(entry({ start: new Date(Number.NaN) }))) as { time: unknown }).time, null);
});
