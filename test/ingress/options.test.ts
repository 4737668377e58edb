import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { parseIngressOptions } from '../../src/ingress/options';

test('defaults: listen 0.0.0.0:8080, health 9091, JSON access log on stdout, 50 s upstream idle', () => {
  const o = parseIngressOptions(['--routes', 'r.yaml']);
  assert.ok(!('help' in o));
  assert.equal(o.routes, resolve('r.yaml'));
  assert.deepEqual(o.listen, [{ host: '0.0.0.0', port: 8080 }]);
  assert.equal(o.healthPort, 9091);
  assert.equal(o.accessLog, '-');
  assert.equal(o.accessLogFormat, 'json');
  assert.equal(o.upstreamIdleMs, 50_000);
  assert.equal(o.drainTimeoutMs, 30_000);
  assert.equal(o.tls, null);
});

test('flags are checked with the one message shape', () => {
  const cases: Array<[string[], string, string]> = [
    [[], 'ERR_USAGE', "gatehouse ingress: --routes FILE is required (see 'gatehouse ingress --help')"],
    [['--routes', 'r', '--tls-cert', 'c.pem'], 'ERR_USAGE', "gatehouse ingress: --tls-cert and --tls-key go together (see 'gatehouse ingress --help')"],
    [['--routes', 'r', '--access-log-format', 'xml'], 'ERR_INVALID_ARG', 'Expected one of json, combined for --access-log-format but received "xml"'],
    [['--routes', 'r', '--upstream-idle-timeout', '60'], 'ERR_INVALID_ARG', 'Expected an integer between 1 and 59 for --upstream-idle-timeout but received "60"'],
    [['--routes', 'r', '--region', 'Mars'], 'ERR_INVALID_ARG', 'Expected an AWS region such as "us-east-1" for --region but received "Mars"'],
    [['--routes', 'r', '--listen', 'nowhere'], 'ERR_INVALID_ARG', 'Expected ADDRESS:PORT, [IPv6]:PORT or :PORT for --listen but received "nowhere"'],
  ];
  for (const [argv, code, message] of cases) assert.throws(() => parseIngressOptions(argv), { code, message }, argv.join(' '));
});

test('--access-log off and a file, both TLS files, several listeners', () => {
  const o = parseIngressOptions(['--routes', 'r', '--access-log', 'off', '--tls-cert', 'c', '--tls-key', 'k', '--listen', '127.0.0.1:1', '--listen', '[::1]:2']);
  assert.ok(!('help' in o));
  assert.equal(o.accessLog, null);
  assert.deepEqual(o.tls, { cert: resolve('c'), key: resolve('k') });
  assert.deepEqual(o.listen, [{ host: '127.0.0.1', port: 1 }, { host: '::1', port: 2 }]);
  const f = parseIngressOptions(['--routes', 'r', '--access-log', 'logs/a.log']);
  assert.ok(!('help' in f));
  assert.equal(f.accessLog, resolve('logs/a.log'));
});
