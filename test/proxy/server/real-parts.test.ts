/**
 * The server with the parts the command plugs in: the proxy policy
 * (parseProxyPolicy + evaluateProxyPolicy) and resolveAndCheck, with the
 * PROXY protocol on. If these signatures drift from the server's injected
 * types, this file stops compiling.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateProxyPolicy, parseProxyPolicy } from '../../../src/proxy/policy';
import type { ProxyServerOptions } from '../../../src/proxy/server';
import { connectRaw, curl, loopbackResolver, readUntil, startHttpUpstream, startTestProxy } from './helpers';

const POLICY = [
  'version: 1',
  'default: deny',
  'connect_ports: [443]',
  'rules:',
  '  - id: block-denied',
  '    action: deny',
  '    host: denied.upstream.test',
  '    message: not this one',
  '  - id: upstream-web',
  '    action: allow',
  '    host: .upstream.test',
  '    allow_addresses: [127.0.0.0/8]',
].join('\n');

test('real policy, PROXY protocol, real resolver; IPv4 and IPv6 listeners', async (t) => {
  const policy = parseProxyPolicy(POLICY, 'proxy.yaml');
  const decide: ProxyServerOptions['decide'] = (facts) => evaluateProxyPolicy(policy, facts);
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy({
    listen: [
      { host: '127.0.0.1', port: 0 },
      { host: '::1', port: 0 },
    ],
    decide,
    resolve: loopbackResolver(),
    proxyProtocol: true,
  });
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const [v4, v6] = proxy.server.addresses();
  assert.equal(v4.host, '127.0.0.1');
  assert.equal(v6.host, '::1');

  const ok = await curl(['--haproxy-protocol', '-x', `http://[::1]:${v6.port}`, `http://www.upstream.test:${upstream.port}/six`]);
  assert.equal(ok.stdout, 'hello /six', ok.stderr);
  const e = await proxy.nextEntry(0);
  assert.deepEqual([e.client, e.rule, e.decision, e.status, e.host], ['::1', 'upstream-web', 'allow', 200, 'www.upstream.test']);

  const denied = await curl(['--haproxy-protocol', '-D', '-', '-x', `http://127.0.0.1:${v4.port}`, `http://denied.upstream.test:${upstream.port}/`]);
  assert.match(denied.stdout, /^HTTP\/1\.1 403 /);
  assert.match(denied.stdout, /X-Gatehouse-Rule: block-denied/i);
  assert.match(denied.stdout, /not this one/);

  // connect_ports: [443] refuses a CONNECT to another port before any rule.
  // (Raw: curl puts its PROXY header inside the tunnel, after CONNECT.)
  const socket = await connectRaw(v4.port);
  socket.write(`PROXY TCP4 198.51.100.9 192.0.2.1 40000 3128\r\nCONNECT www.upstream.test:${upstream.port} HTTP/1.1\r\n\r\n`);
  const answer = await readUntil(socket, () => false);
  assert.match(answer.text, /^HTTP\/1\.1 403 /);
  const p = await proxy.nextEntry(2);
  assert.deepEqual([p.method, p.status, p.decision, p.reason, p.rule, p.client], ['CONNECT', 403, 'deny', 'port', null, '198.51.100.9']);
  assert.equal(upstream.requests.length, 1);
});
