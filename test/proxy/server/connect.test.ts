import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { captureClientHello, closed, connectRaw, curl, makeCert, readUntil, startRawUpstream, startTestProxy, startTlsUpstream } from './helpers';

/** Sends CONNECT and reads the proxy's answer head. */
async function openTunnel(proxyPort: number, target: string): Promise<{ socket: net.Socket; head: string }> {
  const socket = await connectRaw(proxyPort);
  socket.on('error', () => undefined);
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  const got = await readUntil(socket, (text) => text.includes('\r\n\r\n'));
  return { socket, head: got.text };
}

test('curl reaches an HTTPS upstream through CONNECT, certificate verified', async (t) => {
  const cert = await makeCert(['allowed.test']);
  const upstream = await startTlsUpstream(cert);
  const proxy = await startTestProxy();
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
    cert.remove();
  });
  const r = await curl(['-x', proxy.url, '--cacert', cert.certPath, `https://allowed.test:${upstream.port}/secret/path`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'tls allowed.test /secret/path');
  const e = await proxy.nextEntry(0);
  assert.equal(e.method, 'CONNECT');
  assert.equal(e.url, `allowed.test:${upstream.port}`);
  assert.deepEqual([e.status, e.squidResult, e.hierarchy, e.decision, e.rule, e.reason], [200, 'TCP_TUNNEL', 'HIER_DIRECT', 'allow', 'allow-allowed.test', 'rule']);
  assert.equal(e.upstreamAddress, '127.0.0.1');
  assert.ok(e.bytesToClient > 100 && e.bytesFromClient > 100, `${e.bytesToClient} ${e.bytesFromClient}`);
  assert.equal(proxy.server.stats().tunnels, 1);
});

test('fronting: a ClientHello for another name closes the tunnel and the upstream gets no byte', async (t) => {
  const upstream = await startRawUpstream();
  const proxy = await startTestProxy();
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const { socket, head } = await openTunnel(proxy.port, `allowed.test:${upstream.port}`);
  assert.match(head, /^HTTP\/1\.1 200 Connection established\r\n\r\n$/);
  const client = tls.connect({ socket, servername: 'denied.test', rejectUnauthorized: false });
  const outcome = await new Promise<string>((resolve) => {
    client.once('secureConnect', () => resolve('handshake completed'));
    client.once('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
    client.once('close', () => resolve('closed'));
  });
  assert.notEqual(outcome, 'handshake completed');
  assert.ok(await closed(socket));
  const e = await proxy.nextEntry(0);
  assert.deepEqual([e.method, e.status, e.decision, e.reason, e.squidResult, e.hierarchy], ['CONNECT', 200, 'deny', 'fronting', 'TCP_DENIED', 'HIER_DIRECT']);
  assert.equal(upstream.connections(), 1, 'the tunnel did connect upstream');
  assert.equal(upstream.received()[0].length, 0, 'no client byte reached the upstream');
  assert.equal(proxy.server.stats().denied, 1);
});

test('fronting: an SNI the policy allows by itself passes, byte for byte, even split across writes', async (t) => {
  const upstream = await startRawUpstream();
  const proxy = await startTestProxy();
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const hello = await captureClientHello('upstream.test');
  const { socket, head } = await openTunnel(proxy.port, `allowed.test:${upstream.port}`);
  assert.match(head, /^HTTP\/1\.1 200 /);
  socket.write(hello.subarray(0, 20));
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.write(hello.subarray(20));
  const echoed = await readUntil(socket, (text) => text.length >= hello.length);
  assert.equal(Buffer.from(echoed.text, 'latin1').equals(hello), true, 'the upstream echoed the exact hello');
  assert.equal(upstream.received()[0].equals(hello), true);
  socket.destroy();
  const e = await proxy.nextEntry(0);
  assert.deepEqual([e.decision, e.reason, e.squidResult], ['allow', 'rule', 'TCP_TUNNEL']);
});

test('fronting: a split hello for a denied name is still refused before any byte goes upstream', async (t) => {
  const upstream = await startRawUpstream();
  const proxy = await startTestProxy();
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const hello = await captureClientHello('denied.test');
  const { socket } = await openTunnel(proxy.port, `allowed.test:${upstream.port}`);
  socket.write(hello.subarray(0, 7));
  await new Promise((resolve) => setTimeout(resolve, 50));
  socket.write(hello.subarray(7));
  assert.ok(await closed(socket));
  assert.equal((await proxy.nextEntry(0)).reason, 'fronting');
  assert.equal(upstream.received()[0].length, 0);
});

test('non-TLS in a tunnel follows fronting.nonTls; server-first protocols work when allowed', async (t) => {
  const upstream = await startRawUpstream('220 greeting\r\n');
  const strict = await startTestProxy();
  const lax = await startTestProxy({ fronting: { nonTls: 'allow' } });
  t.after(async () => {
    await strict.server.close({ drainMs: 0 });
    await lax.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const denied = await openTunnel(strict.port, `allowed.test:${upstream.port}`);
  const greeting = denied.head.includes('220 greeting') ? denied.head : (await readUntil(denied.socket, (x) => x.includes('220'))).text;
  assert.match(greeting, /220 greeting/, 'upstream bytes reach the client before the check');
  denied.socket.write('HELO client\r\n');
  assert.ok(await closed(denied.socket));
  const e = await strict.nextEntry(0);
  assert.deepEqual([e.decision, e.reason], ['deny', 'fronting']);
  assert.equal(upstream.received()[0].length, 0);

  const allowed = await openTunnel(lax.port, `allowed.test:${upstream.port}`);
  if (!allowed.head.includes('220 greeting')) await readUntil(allowed.socket, (x) => x.includes('220'));
  allowed.socket.write('HELO client\r\n');
  const echo = await readUntil(allowed.socket, (x) => x.includes('HELO client'));
  assert.match(echo.text, /HELO client\r\n/);
  allowed.socket.destroy();
  assert.equal(upstream.received()[1].toString(), 'HELO client\r\n');
  const e2 = await lax.nextEntry(0);
  assert.deepEqual([e2.decision, e2.squidResult], ['allow', 'TCP_TUNNEL']);
});

test('a client that sends nothing in a tunnel is closed after frontingTimeoutMs', async (t) => {
  const upstream = await startRawUpstream();
  const proxy = await startTestProxy({ frontingTimeoutMs: 200 });
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const { socket } = await openTunnel(proxy.port, `allowed.test:${upstream.port}`);
  assert.ok(await closed(socket));
  const e = await proxy.nextEntry(0);
  assert.deepEqual([e.status, e.decision, e.reason], [200, 'error', 'timeout']);
});

test('CONNECT refusals: 403 with the rule id, 400 without a port, 502 when refused', async (t) => {
  const proxy = await startTestProxy();
  const gone = net.createServer();
  await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
  const closedPort = (gone.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  t.after(() => proxy.server.close({ drainMs: 0 }));

  const denied = await openTunnel(proxy.port, 'denied.test:443');
  const body = denied.head.includes('rule') ? denied.head : denied.head + (await readUntil(denied.socket, (x) => x.includes('\n'))).text;
  assert.match(denied.head, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.match(denied.head, /\r\nX-Gatehouse-Rule: deny-rest\r\n/);
  assert.match(body, /denied by rule deny-rest/);
  assert.ok(await closed(denied.socket));
  const e = await proxy.nextEntry(0);
  assert.deepEqual([e.status, e.squidResult, e.decision, e.rule, e.url], [403, 'TCP_DENIED', 'deny', 'deny-rest', 'denied.test:443']);

  const noPort = await openTunnel(proxy.port, 'allowed.test');
  assert.match(noPort.head, /^HTTP\/1\.1 400 /);
  noPort.socket.destroy();
  assert.equal((await proxy.nextEntry(1)).reason, 'bad-request:missing-port');

  const refused = await curl(['-x', proxy.url, '-k', `https://allowed.test:${closedPort}/`]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /502/);
  const r = await proxy.nextEntry(2);
  assert.deepEqual([r.status, r.reason, r.decision, r.hierarchy], [502, 'upstream:econnrefused', 'error', 'HIER_NONE']);
});
