import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAbsoluteTarget, parseConnectTarget, type TargetResult } from '../../../src/proxy/server/target';

/** The result without its parsed destination, after checking that the destination is the same host (it goes to the SSRF check). */
function plain(result: TargetResult): unknown {
  if (!result.ok) return result;
  const { destination, ...value } = result.value;
  assert.deepEqual(destination, destination.kind === 'ip' ? { kind: 'ip', address: value.host, family: destination.family } : { ...destination, name: value.host });
  assert.equal(destination.kind === 'ip', value.hostIsIp);
  return { ok: true, value };
}

test('absolute-form targets: host, port, authority and path', () => {
  const cases: Array<[string, { host: string; port: number; authority: string; path: string; hostIsIp: boolean }]> = [
    ['http://Example.COM/a?b=1', { host: 'example.com', port: 80, authority: 'example.com', path: '/a?b=1', hostIsIp: false }],
    ['http://example.com', { host: 'example.com', port: 80, authority: 'example.com', path: '/', hostIsIp: false }],
    ['http://example.com?q', { host: 'example.com', port: 80, authority: 'example.com', path: '/?q', hostIsIp: false }],
    ['http://example.com:8080/x#frag', { host: 'example.com', port: 8080, authority: 'example.com:8080', path: '/x', hostIsIp: false }],
    ['http://example.com:/x', { host: 'example.com', port: 80, authority: 'example.com', path: '/x', hostIsIp: false }],
    ['HTTP://example.com./x', { host: 'example.com', port: 80, authority: 'example.com', path: '/x', hostIsIp: false }],
    ['http://0x7f.1:81/', { host: '127.0.0.1', port: 81, authority: '127.0.0.1:81', path: '/', hostIsIp: true }],
    ['http://2130706433/', { host: '127.0.0.1', port: 80, authority: '127.0.0.1', path: '/', hostIsIp: true }],
    ['http://[2001:DB8::1]:8080/p', { host: '2001:db8::1', port: 8080, authority: '[2001:db8::1]:8080', path: '/p', hostIsIp: true }],
    ['http://[::ffff:7f00:1]/', { host: '127.0.0.1', port: 80, authority: '127.0.0.1', path: '/', hostIsIp: true }],
  ];
  for (const [url, want] of cases) {
    const got = parseAbsoluteTarget(url);
    assert.deepEqual(plain(got), { ok: true, value: want }, url);
  }
});

test('absolute-form targets that are refused, with their reason', () => {
  const cases: Array<[string, string]> = [
    ['/path', 'origin-form'],
    ['*', 'origin-form'],
    ['example.com/x', 'origin-form'],
    ['https://example.com/', 'unsupported-scheme'],
    ['ftp://example.com/', 'unsupported-scheme'],
    ['http://user:pw@example.com/', 'userinfo'],
    ['http://example.com:0/', 'bad-port'],
    ['http://example.com:65536/', 'bad-port'],
    ['http://example.com:8o/', 'bad-port'],
    ['http:///x', 'bad-host'],
    ['http://2001:db8::1/', 'bad-host'],
    ['http://[2001:db8::1/', 'bad-host'],
    ['http://exa mple.com/', 'bad-host'],
    ['http://1.2.3.4.5/', 'bad-host'],
  ];
  for (const [url, reason] of cases) assert.deepEqual(parseAbsoluteTarget(url), { ok: false, reason }, url);
});

test('CONNECT targets need host:port', () => {
  assert.deepEqual(plain(parseConnectTarget('Example.com:443')), {
    ok: true,
    value: { host: 'example.com', port: 443, authority: 'example.com:443', path: '', hostIsIp: false },
  });
  assert.deepEqual(plain(parseConnectTarget('[2001:db8::1]:443')), {
    ok: true,
    value: { host: '2001:db8::1', port: 443, authority: '[2001:db8::1]:443', path: '', hostIsIp: true },
  });
  for (const [target, reason] of [
    ['example.com', 'missing-port'],
    ['example.com:', 'missing-port'],
    ['[2001:db8::1]', 'missing-port'],
    ['example.com:99999', 'bad-port'],
    [':443', 'bad-host'],
    ['2001:db8::1:443', 'bad-host'],
    ['/path', 'missing-port'],
    ['/path:443', 'bad-host'],
  ] as const) {
    assert.deepEqual(parseConnectTarget(target), { ok: false, reason }, target);
  }
});
