import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { closed, connectRaw, curl, readUntil, startHttpUpstream, startRawUpstream, startTestProxy } from './helpers';

function request(port: number, path = '/a', extra = ''): string {
  return `GET http://upstream.test:${port}${path} HTTP/1.1\r\nHost: upstream.test:${port}\r\n${extra}\r\n`;
}

/** Polls `cond` every 10 ms, for at most 5 s. */
async function eventually(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('slowloris: a head sent byte by byte slower than headerTimeoutMs is cut off with 408', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy({ headerTimeoutMs: 300 });
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const socket = await connectRaw(proxy.port);
  socket.on('error', () => undefined);
  const head = request(upstream.port, '/slow-client', 'X-Pad: ' + 'p'.repeat(100) + '\r\n');
  const answer = readUntil(socket, () => false, 15000);
  let sent = 0;
  // At most one byte per 50 ms, stopping when the proxy hangs up (bounded by the head's length).
  while (sent < head.length && !socket.destroyed && socket.writable) {
    socket.write(head[sent++]);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const got = await answer;
  assert.ok(sent < head.length, `the whole head (${head.length} bytes) went through`);
  assert.match(got.text, /^HTTP\/1\.1 408 /);
  assert.equal(got.closed, true);
  assert.equal(upstream.requests.length, 0);
  const e = await proxy.nextEntry(0);
  assert.deepEqual([e.status, e.decision, e.reason, e.method], [408, 'error', 'timeout', 'NONE']);
});

test('a head larger than maxHeaderBytes gets 431', async (t) => {
  const proxy = await startTestProxy({ maxHeaderBytes: 1024 });
  t.after(() => proxy.server.close({ drainMs: 0 }));
  const socket = await connectRaw(proxy.port);
  socket.on('error', () => undefined);
  socket.write(request(80, '/', `X-Big: ${'b'.repeat(2048)}\r\n`));
  const got = await readUntil(socket, () => false);
  assert.match(got.text, /^HTTP\/1\.1 431 /);
  assert.equal((await proxy.nextEntry(0)).reason, 'header-too-large');
});

test('maxConnections: the connection past the limit gets 503 and is closed; room frees up as connections close', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy({ maxConnections: 2 });
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const held = [await connectRaw(proxy.port), await connectRaw(proxy.port)];
  const third = await connectRaw(proxy.port);
  third.on('error', () => undefined);
  third.write(request(upstream.port));
  const got = await readUntil(third, () => false);
  assert.match(got.text, /^HTTP\/1\.1 503 /);
  assert.equal(got.closed, true);
  const e = await proxy.nextEntry(0);
  assert.deepEqual([e.status, e.reason, e.decision, e.url], [503, 'limit', 'error', 'error:connection-limit']);
  assert.equal(upstream.requests.length, 0);

  for (const s of held) s.destroy();
  await eventually(() => proxy.server.stats().active === 0, 'the held connections to close');
  const r = await curl(['-x', proxy.url, `http://upstream.test:${upstream.port}/after`]);
  assert.equal(r.stdout, 'hello /after');
});

test('PROXY protocol: the client is the header source; maxConnectionsPerClient counts per source (429)', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy({ proxyProtocol: true, maxConnectionsPerClient: 1 });
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const header = (src: string, port: number): string => `PROXY TCP4 ${src} 192.0.2.1 ${port} 3128\r\n`;

  const a1 = await connectRaw(proxy.port);
  a1.write(header('198.51.100.1', 40001));
  await eventually(() => proxy.server.stats().active === 1, 'the first connection');

  const a2 = await connectRaw(proxy.port);
  a2.on('error', () => undefined);
  a2.write(header('198.51.100.1', 40002) + request(upstream.port));
  const refused = await readUntil(a2, () => false);
  assert.match(refused.text, /^HTTP\/1\.1 429 /);
  const e429 = await proxy.nextEntry(0);
  assert.deepEqual([e429.status, e429.client, e429.clientPort, e429.reason], [429, '198.51.100.1', 40002, 'limit']);

  // Another client, header and request in one write (the reader must hand the rest on).
  const b = await connectRaw(proxy.port);
  b.write(header('198.51.100.2', 40003) + request(upstream.port, '/b'));
  const ok = await readUntil(b, (x) => x.includes('hello /b'));
  assert.match(ok.text, /^HTTP\/1\.1 200 /);
  const eb = await proxy.nextEntry(1);
  assert.deepEqual([eb.client, eb.clientPort, eb.status], ['198.51.100.2', 40003, 200]);
  // Every byte the client sent, counted once: the PROXY header and the request head.
  assert.equal(eb.bytesFromClient, Buffer.byteLength(header('198.51.100.2', 40003) + request(upstream.port, '/b')));
  assert.equal(upstream.requests[0].headers['x-forwarded-for'], '198.51.100.2');
  b.destroy();

  // curl's own PROXY v1 header (source 127.0.0.1).
  const viaCurl = await curl(['--haproxy-protocol', '-x', proxy.url, `http://upstream.test:${upstream.port}/curl`]);
  assert.equal(viaCurl.stdout, 'hello /curl', viaCurl.stderr);
  assert.equal((await proxy.nextEntry(2)).client, '127.0.0.1');

  // No header at all: closed, recorded.
  const bad = await connectRaw(proxy.port);
  bad.on('error', () => undefined);
  bad.write(request(upstream.port));
  assert.ok(await closed(bad));
  assert.equal((await proxy.nextEntry(3)).reason, 'proxy-protocol');
  a1.destroy();
});

test('close({ drainMs }) closes idle connections at once and lets a slow download finish', async (t) => {
  const upstream = await startHttpUpstream();
  const proxy = await startTestProxy();
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  // An idle keep-alive connection.
  const idle = await connectRaw(proxy.port);
  idle.write(request(upstream.port, '/idle'));
  await readUntil(idle, (x) => x.includes('hello /idle'));

  const download = curl(['-x', proxy.url, '-w', ' %{size_download}', '-o', '/dev/null', `http://upstream.test:${upstream.port}/slow?chunks=10&ms=100`]);
  await eventually(() => upstream.requests.some((q) => q.url.startsWith('/slow')), 'the download to start');
  const closing = proxy.server.close({ drainMs: 15000 });
  assert.ok(await closed(idle), 'the idle connection was closed');
  const r = await download;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), '10000');
  await closing;
  const e = proxy.entries.find((x) => x.url.includes('/slow'));
  assert.ok(e);
  assert.deepEqual([e.status, e.squidResult], [200, 'TCP_MISS']);
  assert.ok(e.bytesToClient > 10000);
  await assert.rejects(connectRaw(proxy.port), /ECONNREFUSED/);
  const s = proxy.server.stats();
  assert.equal(s.active, 0);
  assert.ok(s.bytesOut > 10000 && s.bytesIn > 0);
});

test('close() destroys a tunnel still open at the drain deadline', async (t) => {
  const upstream = await startRawUpstream();
  const proxy = await startTestProxy({ fronting: { nonTls: 'allow' } });
  t.after(async () => {
    await proxy.server.close({ drainMs: 0 });
    await upstream.close();
  });
  const socket = await connectRaw(proxy.port);
  socket.on('error', () => undefined);
  socket.write(`CONNECT allowed.test:${upstream.port} HTTP/1.1\r\n\r\nping`);
  await readUntil(socket, (x) => x.endsWith('ping'));
  await proxy.server.close({ drainMs: 100 });
  assert.ok(await closed(socket));
  const e = await proxy.nextEntry(0);
  assert.deepEqual([e.method, e.status, e.squidResult], ['CONNECT', 200, 'TCP_TUNNEL']);
  assert.equal(upstream.received()[0].toString(), 'ping');
});

test('options are checked with the usual message shape', async () => {
  await assert.rejects(startTestProxy({ maxConnections: 0 }), { code: 'ERR_INVALID_ARG', message: 'Expected a positive integer for maxConnections but received 0' });
  const taken = net.createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const port = (taken.address() as net.AddressInfo).port;
  try {
    await assert.rejects(startTestProxy({ listen: [{ host: '127.0.0.1', port }] }), { code: 'ERR_LISTEN', message: new RegExp(`127\\.0\\.0\\.1:${port} \\(EADDRINUSE\\)`) });
  } finally {
    await new Promise<void>((resolve) => taken.close(() => resolve()));
  }
});
