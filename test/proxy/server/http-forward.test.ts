import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectRaw, curl, hostListPolicy, readUntil, startBlackholeListener, startHttpUpstream, startTestProxy } from './helpers';

/** The value of one header in a raw header array, or undefined. */
function header(raw: string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) return raw[i + 1];
  return undefined;
}

test('two GETs on one client connection reach the upstream over one kept-alive connection', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy();
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const base = `http://upstream.test:${upstream.port}`;
  const r = await curl(['-x', proxy.url, '-w', ' [%{num_connects}]', `${base}/a`, `${base}/b`]);
  assert.equal(r.code, 0, r.stderr);
  // curl reports one new connection for the first transfer and none for the second.
  assert.equal(r.stdout, 'hello /a [1]hello /b [0]');
  assert.equal(upstream.requests.length, 2);
  assert.equal(upstream.connections(), 1);
  assert.deepEqual(upstream.requests.map((q) => [q.url, q.connectionId]), [['/a', 1], ['/b', 1]]);
  assert.equal(header(upstream.requests[0].rawHeaders, 'host'), `upstream.test:${upstream.port}`);

  assert.equal(proxy.entries.length, 2);
  const e = proxy.entries[0];
  assert.equal(e.method, 'GET');
  assert.equal(e.url, `${base}/a`);
  assert.equal(e.host, 'upstream.test');
  assert.equal(e.port, upstream.port);
  assert.equal(e.status, 200);
  assert.equal(e.squidResult, 'TCP_MISS');
  assert.equal(e.hierarchy, 'HIER_DIRECT');
  assert.equal(e.upstreamAddress, '127.0.0.1');
  assert.deepEqual(e.resolvedAddresses, ['127.0.0.1']);
  assert.equal(e.rule, 'allow-upstream.test');
  assert.equal(e.decision, 'allow');
  assert.equal(e.contentType, 'text/plain');
  assert.equal(e.client, '127.0.0.1');
  assert.ok(e.bytesToClient > 'hello /a'.length, `bytesToClient ${e.bytesToClient}`);
  assert.ok(e.bytesFromClient > 0);
  const s = proxy.server.stats();
  assert.equal(s.connections, 1);
  assert.equal(s.requests, 2);
  assert.equal(s.denied, 0);
  assert.equal(s.errors, 0);
});

test('POST bodies stream through intact, with Content-Length and chunked; Expect: 100-continue is answered by the upstream', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy();
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-proxy-post-'));
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const file = join(dir, 'body.bin');
  writeFileSync(file, body);
  const want = `${createHash('sha256').update(body).digest('hex')} ${body.length}`;
  const url = `http://upstream.test:${upstream.port}/echo`;

  // -v: curl shows the interim answer it got (stderr); it sends Expect itself for a body this large, -H makes sure.
  const sized = await curl(['-v', '-x', proxy.url, '-H', 'Expect: 100-continue', '--data-binary', `@${file}`, url]);
  assert.equal(sized.code, 0, sized.stderr);
  assert.equal(sized.stdout, want);
  assert.equal(header(upstream.requests[0].rawHeaders, 'content-length'), String(body.length));
  assert.equal(header(upstream.requests[0].rawHeaders, 'expect'), '100-continue');
  assert.match(sized.stderr, /< HTTP\/1\.1 100 Continue/);

  const chunked = await curl(['-x', proxy.url, '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, url]);
  assert.equal(chunked.code, 0, chunked.stderr);
  assert.equal(chunked.stdout, want);
  assert.equal(header(upstream.requests[1].rawHeaders, 'transfer-encoding'), 'chunked');
  assert.equal(header(upstream.requests[1].rawHeaders, 'content-length'), undefined);
  assert.equal(proxy.entries[1].method, 'POST');
  assert.ok(proxy.entries[1].bytesFromClient > body.length);
});

test('hop-by-hop headers are removed both ways; Via and X-Forwarded-For are added', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy();
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const r = await curl([
    '-x', proxy.url, '-D', '-',
    '-H', 'Connection: X-Drop-Me',
    '-H', 'X-Drop-Me: 1',
    '-H', 'Keep-Alive: 300',
    '-H', 'Proxy-Authorization: Basic c2VjcmV0',
    '-H', 'TE: trailers',
    '-H', 'Upgrade: websocket',
    '-H', 'X-Forwarded-For: 198.51.100.7',
    '-H', 'Via: 1.0 first-hop',
    '-H', 'Host: spoofed.test',
    '-H', 'X-End-To-End: kept',
    `http://upstream.test:${upstream.port}/hop`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const seen = upstream.requests[0].rawHeaders.map((v, i) => (i % 2 === 0 ? v.toLowerCase() : v));
  for (const gone of ['x-drop-me', 'keep-alive', 'proxy-authorization', 'te', 'upgrade', 'proxy-connection']) {
    assert.equal(header(seen, gone), undefined, `${gone} reached the upstream`);
  }
  assert.equal(header(seen, 'x-end-to-end'), 'kept');
  assert.equal(header(seen, 'via'), '1.0 first-hop, 1.1 gatehouse');
  assert.equal(header(seen, 'x-forwarded-for'), '198.51.100.7, 127.0.0.1');
  // The Host the upstream sees is the request target's, not the client's claim.
  assert.equal(header(seen, 'host'), `upstream.test:${upstream.port}`);

  const head = r.stdout.split('\r\n\r\n')[0].toLowerCase();
  assert.match(head, /^http\/1\.1 200/);
  assert.doesNotMatch(head, /x-up-hop/);
  assert.doesNotMatch(head, /proxy-authenticate/);
  assert.doesNotMatch(head, /keep-alive: timeout=5/);
  assert.match(head, /\r\nx-up-end: kept/);
  assert.match(head, /\r\nset-cookie: a=1\r\nset-cookie: b=2/);
  assert.match(head, /\r\nvia: 1\.1 gatehouse/);
  assert.ok(r.stdout.endsWith('hop'));
});

test('a denied request gets 403 naming the rule; a name resolving to loopback without allow_addresses gets 403 ssrf', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy({ decide: hostListPolicy(['upstream.test'], { denyRule: 'deny-rest', allowLoopback: false }) });
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const denied = await curl(['-x', proxy.url, '-D', '-', `http://denied.test:${upstream.port}/x`]);
  assert.equal(denied.code, 0, denied.stderr);
  assert.match(denied.stdout, /^HTTP\/1\.1 403 /);
  assert.match(denied.stdout, /\r\nX-Gatehouse-Rule: deny-rest\r\n/i);
  assert.match(denied.stdout, /denied by rule deny-rest: denied\.test is not on the list/);
  const e = proxy.entries[0];
  assert.deepEqual([e.status, e.squidResult, e.decision, e.rule, e.reason, e.hierarchy], [403, 'TCP_DENIED', 'deny', 'deny-rest', 'rule', 'HIER_NONE']);

  const ssrf = await curl(['-x', proxy.url, '-D', '-', `http://upstream.test:${upstream.port}/x`]);
  assert.match(ssrf.stdout, /^HTTP\/1\.1 403 /);
  assert.match(ssrf.stdout, /ssrf:loopback/);
  const s = proxy.entries[1];
  assert.deepEqual([s.status, s.squidResult, s.decision, s.reason, s.rule], [403, 'TCP_DENIED', 'deny', 'ssrf:loopback', 'allow-upstream.test']);
  assert.deepEqual(s.resolvedAddresses, ['127.0.0.1']);
  assert.equal(upstream.requests.length, 0, 'nothing reached the upstream');
  assert.equal(proxy.server.stats().denied, 2);
});

test('origin-form and a missing host get 400; an unknown name 502', async (t) => {
  const proxy = await startTestProxy();
  t.after(() => proxy.server.close({ drainMs: 0 }));
  const origin = await curl(['-D', '-', `${proxy.url}/direct`]);
  assert.match(origin.stdout, /^HTTP\/1\.1 400 /);
  assert.match(origin.stdout, /absolute URL/);
  assert.deepEqual([proxy.entries[0].status, proxy.entries[0].squidResult, proxy.entries[0].decision], [400, 'NONE', 'error']);
  assert.equal(proxy.entries[0].reason, 'bad-request:origin-form');

  const socket = await connectRaw(proxy.port);
  socket.write('GET http:///nohost HTTP/1.1\r\nHost: x\r\n\r\n');
  const got = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
  socket.destroy();
  assert.match(got.text, /^HTTP\/1\.1 400 /);

  const proxy2 = await startTestProxy({ decide: hostListPolicy(['nowhere.example']) });
  t.after(() => proxy2.server.close({ drainMs: 0 }));
  const noName = await curl(['-x', proxy2.url, '-D', '-', 'http://nowhere.example/']);
  assert.match(noName.stdout, /^HTTP\/1\.1 502 /);
  assert.deepEqual([proxy2.entries[0].status, proxy2.entries[0].reason, proxy2.entries[0].decision], [502, 'resolve:ENOTFOUND', 'error']);
});

test('a refused upstream gives 502, an upstream that never accepts 504', async (t) => {
  const refused = net.createServer();
  await new Promise<void>((resolve) => refused.listen(0, '127.0.0.1', resolve));
  const closedPort = (refused.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => refused.close(() => resolve()));
  const blackhole = await startBlackholeListener();
  const proxy = await startTestProxy({ connectTimeoutMs: 300 });
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    blackhole.close();
  });

  const r502 = await curl(['-x', proxy.url, '-D', '-', `http://upstream.test:${closedPort}/`]);
  assert.match(r502.stdout, /^HTTP\/1\.1 502 /);
  assert.match(r502.stdout, /econnrefused/);
  assert.deepEqual([proxy.entries[0].status, proxy.entries[0].reason, proxy.entries[0].decision, proxy.entries[0].squidResult], [502, 'upstream:econnrefused', 'error', 'TCP_MISS']);

  const r504 = await curl(['-x', proxy.url, '-D', '-', `http://upstream.test:${blackhole.port}/`]);
  assert.match(r504.stdout, /^HTTP\/1\.1 504 /);
  assert.deepEqual([proxy.entries[1].status, proxy.entries[1].reason, proxy.entries[1].decision], [504, 'timeout', 'error']);
  assert.equal(proxy.server.stats().errors, 2);
});

test('a Connection header naming content-length cannot smuggle the body upstream as a second request', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy();
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: upstream.test\r\n\r\n';
  const socket = await connectRaw(proxy.port);
  t.after(() => socket.destroy());
  socket.write(
    `POST http://upstream.test:${upstream.port}/echo HTTP/1.1\r\nHost: upstream.test\r\nConnection: content-length\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
  );
  const answer = await readUntil(socket, (text) => /\r\n\r\n[0-9a-f]{64} \d+/.test(text));
  assert.match(answer.text, /^HTTP\/1\.1 200/);
  assert.deepEqual(upstream.requests.map((r) => [r.method, r.url, r.bodyBytes, r.headers['content-length']]), [['POST', '/echo', smuggled.length, String(smuggled.length)]]);
});
