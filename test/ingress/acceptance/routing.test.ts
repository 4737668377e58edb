/**
 * Routing through `gatehouse ingress`: host rewrites reach the rewritten
 * upstream with the rewritten Host, unknown hosts and paths get the
 * resolver's 421/404 as JSON, unreachable and silent upstreams 502/504 with
 * the reason, and what a client must not inject never reaches the upstream.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RecordingUpstream, freePort, json, send, startIngress } from './harness';
import { createServer, type Socket } from 'node:net';

function names(rawHeaders: string[]): string[] {
  return rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
}

test('rewrite rules: first dot to -service, suffix swap, url with a path prefix; the upstream sees the rewritten Host', async (t) => {
  const up = await RecordingUpstream.start(t);
  const p = up.port;
  const ingress = await startIngress(t, {
    hosts: ['billing-service.apps.example.test', 'shop.svc.internal.test'],
    routes: `routes:
  - host: '*.apps.example.test'
    upstream: { rewrite: first-dot-to-service, port: ${p} }
    tls: false
    sign: false
  - host: '*.example.org'
    upstream: { rewrite: { suffix: .example.org, to: .svc.internal.test }, port: ${p} }
    tls: false
    sign: false
  - host: www.example.test
    sign: false
    paths:
      - prefix: /api/
        upstream: { url: http://127.0.0.1:${p}/base }
`,
  });
  const a = await send({ port: ingress.port, host: 'billing.apps.example.test', path: '/invoices?id=7' });
  assert.equal(a.status, 200, a.body.toString());
  assert.equal((json(a).headers as Record<string, string>).host, `billing-service.apps.example.test:${p}`);
  assert.equal(json(a).url, '/invoices?id=7');
  const b = await send({ port: ingress.port, host: 'SHOP.example.org:8080', path: '/' });
  assert.equal(b.status, 200, b.body.toString());
  assert.equal((json(b).headers as Record<string, string>).host, `shop.svc.internal.test:${p}`);
  assert.equal((json(b).headers as Record<string, string>)['x-forwarded-host'], 'SHOP.example.org:8080');
  const c = await send({ port: ingress.port, host: 'www.example.test', path: '/api/v1/items' });
  assert.equal(c.status, 200);
  assert.equal(json(c).url, '/base/api/v1/items');
  assert.equal((json(c).headers as Record<string, string>).host, `127.0.0.1:${p}`);
  // Absolute-form (RFC 9112 3.2.2): the target's authority routes, not the Host header.
  const d = await send({ port: ingress.port, host: 'nowhere.example.net', path: 'http://www.example.test/api/x' });
  assert.equal(d.status, 200);
  assert.equal(json(d).url, '/base/api/x');
});

test('unknown host: 421, known host without a matching path: 404, both JSON with the reason', async (t) => {
  const up = await RecordingUpstream.start(t);
  const ingress = await startIngress(t, {
    routes: `routes:\n  - host: www.example.test\n    sign: false\n    paths:\n      - prefix: /api/\n        upstream: { url: http://127.0.0.1:${up.port} }\n`,
  });
  const unknown = await send({ port: ingress.port, host: 'other.example.test', path: '/' });
  assert.equal(unknown.status, 421);
  assert.equal(unknown.headers['content-type'], 'application/json');
  assert.deepEqual(json(unknown), { error: 'misdirected-request', reason: 'No route for host "other.example.test" on this proxy' });
  const noPath = await send({ port: ingress.port, host: 'www.example.test', path: '/admin' });
  assert.equal(noPath.status, 404);
  assert.deepEqual(json(noPath), { error: 'not-found', reason: 'No route for path "/admin" on host "www.example.test" (routed prefixes: /api/)' });
  assert.equal(up.requests.length, 0);
  const entry = await ingress.waitAccess((e) => e.status === 404);
  assert.equal(entry.error, 'not-found');
  assert.equal(entry.route, null);
});

test('upstream port closed: 502 with the connection error; upstream silent past timeout_ms: 504', async (t) => {
  const closed = await freePort();
  // A listener that accepts and never answers.
  const silent = createServer((s: Socket) => s.on('error', () => undefined));
  const held: Socket[] = [];
  silent.on('connection', (s) => held.push(s));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of held) s.destroy();
    silent.close();
  });
  const silentPort = (silent.address() as import('node:net').AddressInfo).port;
  const ingress = await startIngress(t, {
    routes: `routes:
  - host: closed.example.test
    upstream: { url: http://127.0.0.1:${closed} }
    sign: false
  - host: silent.example.test
    upstream: { url: http://127.0.0.1:${silentPort} }
    sign: false
    timeout_ms: 300
`,
  });
  const bad = await send({ port: ingress.port, host: 'closed.example.test', path: '/' });
  assert.equal(bad.status, 502);
  const badBody = json(bad);
  assert.equal(badBody.error, 'bad-gateway');
  assert.match(String(badBody.reason), new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${closed}`));
  const late = await send({ port: ingress.port, host: 'silent.example.test', path: '/', method: 'POST', body: Buffer.from('x') });
  assert.equal(late.status, 504);
  assert.deepEqual(json(late), { error: 'gateway-timeout', reason: `the upstream 127.0.0.1:${silentPort} sent nothing for 300 ms` });
  const entry = await ingress.waitAccess((e) => e.status === 504);
  assert.equal(entry.error, 'gateway-timeout');
});

test('what a client must not inject never reaches the upstream; X-Forwarded-* are set', async (t) => {
  const up = await RecordingUpstream.start(t);
  const ingress = await startIngress(t, {
    routes: `routes:
  - host: strip.example.test
    upstream: { url: http://127.0.0.1:${up.port} }
    sign: false
    strip_authorization: true
  - host: keep.example.test
    upstream: { url: http://127.0.0.1:${up.port} }
    sign: false
`,
  });
  const injected = [
    'Authorization', 'Bearer client-token',
    'X-Amzn-Lattice-Identity', 'Principal=arn:aws:iam::123456789012:role/admin',
    'x-amzn-lattice-network', 'forged',
    'Connection', 'x-foo, keep-alive',
    'X-Foo', 'y',
    'Keep-Alive', 'timeout=5',
    'Proxy-Authorization', 'Basic Zm9vOmJhcg==',
    'TE', 'trailers',
    'X-Forwarded-Proto', 'https',
    'X-Forwarded-For', '198.51.100.7',
    'X-Custom', 'kept',
  ];
  const res = await send({ port: ingress.port, host: 'strip.example.test', path: '/h', headers: injected });
  assert.equal(res.status, 200);
  const seen = names(json(res).rawHeaders as string[]);
  for (const name of ['authorization', 'x-amzn-lattice-identity', 'x-amzn-lattice-network', 'x-foo', 'keep-alive', 'proxy-authorization', 'te']) {
    assert.ok(!seen.includes(name), `${name} reached the upstream`);
  }
  const h = json(res).headers as Record<string, string>;
  assert.equal(h['x-custom'], 'kept');
  assert.equal(h['x-forwarded-for'], '198.51.100.7, 127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h['x-forwarded-host'], 'strip.example.test');
  // Without strip_authorization (and unsigned), the client's Authorization is the upstream's business.
  const kept = await send({ port: ingress.port, host: 'keep.example.test', path: '/h', headers: ['Authorization', 'Bearer client-token', 'X-Amzn-Lattice-Identity', 'forged'] });
  const k = json(kept).headers as Record<string, string>;
  assert.equal(k.authorization, 'Bearer client-token');
  assert.equal(k['x-amzn-lattice-identity'], undefined);
});
