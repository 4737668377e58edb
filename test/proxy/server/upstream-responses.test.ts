/**
 * The shapes an upstream's response can take, through the proxy's own
 * HTTP/1 upstream side (src/http1/upstream-pool.ts): a scripted upstream
 * on a raw socket writes exactly the bytes each case needs, split the way
 * each case needs, and curl is the client.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { curl, startTestProxy } from './helpers';

type Script = (path: string, socket: net.Socket) => void;

/** A raw upstream: for each request head it reads, `script` writes the answer; counts connections and requests. */
async function scriptedUpstream(t: TestContext, script: Script): Promise<{ port: number; connections: () => number; requests: string[] }> {
  const requests: string[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = '';
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        const [method, path] = head.split(' ');
        requests.push(`${method} ${path}`);
        script(path, socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections, requests };
}

/** Writes `pieces` one after the other with a pause between, so the proxy reads them apart. */
function writeApart(socket: net.Socket, pieces: string[], then?: () => void): void {
  const [first, ...rest] = pieces;
  if (first === undefined) {
    then?.();
    return;
  }
  socket.write(first, 'latin1');
  setTimeout(() => writeApart(socket, rest, then), 15);
}

async function proxyFor(t: TestContext) {
  const proxy = await startTestProxy();
  t.after(() => proxy.server.close({ drainMs: 0 }));
  return proxy;
}

test('chunked answers with extensions and trailers, split anywhere, reach the client whole, and the connection is reused', async (t) => {
  const up = await scriptedUpstream(t, (_path, s) =>
    writeApart(s, ['HTTP/1.1 200 OK\r\nTransfer-', 'Encoding: chunked\r\nContent-Type: text/x\r\n\r\n5;ext=1\r', '\nhel', 'lo\r\n6\r\n wor', 'ld\r\n0\r\nX-Trailer: t\r\n', '\r\n']),
  );
  const proxy = await proxyFor(t);
  const base = `http://upstream.test:${up.port}`;
  const r = await curl(['-x', proxy.url, '-D', '-', `${base}/a`, `${base}/b`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\r\n\r\nhello world/);
  assert.equal((r.stdout.match(/hello world/g) ?? []).length, 2);
  assert.match(r.stdout, /Transfer-Encoding: chunked/i, 'Node frames the body again for the client');
  assert.equal(up.connections(), 1, 'the second request went over the kept-alive connection');
  assert.equal(proxy.entries[0].contentType, 'text/x');
});

test('an answer delimited by close, an interim 103, and HEAD with a Content-Length all arrive as sent', async (t) => {
  const up = await scriptedUpstream(t, (path, s) => {
    if (path === '/close') writeApart(s, ['HTTP/1.1 200 OK\r\n\r\nuntil', ' the end'], () => s.end());
    else if (path === '/early') s.write('HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal');
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n'); // HEAD: no body follows
  });
  const proxy = await proxyFor(t);
  const base = `http://upstream.test:${up.port}`;
  const closed = await curl(['-x', proxy.url, `${base}/close`]);
  assert.equal(closed.stdout, 'until the end', closed.stderr);
  const early = await curl(['-x', proxy.url, `${base}/early`]);
  assert.equal(early.stdout, 'final', early.stderr);
  const head = await curl(['-x', proxy.url, '-I', `${base}/head`]);
  assert.equal(head.code, 0, head.stderr);
  assert.match(head.stdout, /^HTTP\/1\.1 200/);
  assert.match(head.stdout, /Content-Length: 1234/i);
  assert.deepEqual(proxy.entries.map((e) => e.status), [200, 200, 200]);
});

test('a malformed or smuggling-shaped answer is a 502, and the connection it came on is not reused', async (t) => {
  const up = await scriptedUpstream(t, (path, s) => {
    if (path === '/fold') s.write('HTTP/1.1 200 OK\r\nX-A: b\r\n folded\r\nContent-Length: 2\r\n\r\nok');
    else if (path === '/two-lengths') s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!');
    else if (path === '/bad-chunk') s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n');
    else if (path === '/both') s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n');
    else s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine');
  });
  const proxy = await proxyFor(t);
  const base = `http://upstream.test:${up.port}`;
  for (const path of ['/fold', '/two-lengths']) {
    const r = await curl(['-x', proxy.url, '-s', '-o', '/dev/null', '-w', '%{http_code}', `${base}${path}`]);
    assert.equal(r.stdout, '502', path);
  }
  // A body that goes bad after a good head: the client's transfer is cut short, never completed.
  const cut = await curl(['-x', proxy.url, `${base}/bad-chunk`]);
  assert.notEqual(cut.code, 0);
  assert.deepEqual(
    proxy.entries.map((e) => [e.status, e.decision, e.reason]),
    [[502, 'error', 'upstream:err_bad_response'], [502, 'error', 'upstream:err_bad_response'], [200, 'error', 'upstream:err_bad_response']],
  );
  assert.match(proxy.entries[2].squidResult, /_ABORTED$/);
  // Transfer-Encoding wins over Content-Length, and that connection is closed after the answer.
  const before = up.connections();
  const both = await curl(['-x', proxy.url, `${base}/both`, `${base}/next`]);
  assert.equal(both.stdout, 'okfine', both.stderr);
  assert.equal(up.connections() - before, 2, 'the answer with both headers closed its connection');
});

test('a kept-alive connection the upstream closed meanwhile is replaced once for an idempotent request, without an error', async (t) => {
  let answered = 0;
  const up = await scriptedUpstream(t, (_path, s) => {
    answered++;
    // Answers, then closes the connection right away, as an upstream with a short keep-alive does.
    s.end(`HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n${answered}!`);
  });
  const proxy = await proxyFor(t);
  const base = `http://upstream.test:${up.port}`;
  const first = await curl(['-x', proxy.url, `${base}/one`]);
  assert.equal(first.stdout, '1!', first.stderr);
  await new Promise((r) => setTimeout(r, 100)); // let the proxy see the close (or not: both ways must work)
  const second = await curl(['-x', proxy.url, `${base}/two`]);
  assert.equal(second.stdout, '2!', second.stderr);
  assert.deepEqual(up.requests, ['GET /one', 'GET /two']);
  assert.deepEqual(proxy.entries.map((e) => [e.status, e.decision]), [[200, 'allow'], [200, 'allow']]);
});

test('a connection paused by a slow client on the last chunk of a large answer serves the next request when reused', async (t) => {
  const big = 8 * 1024 * 1024;
  const up = await scriptedUpstream(t, (path, s) => {
    if (path === '/big') {
      s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big}\r\n\r\n`);
      s.write(Buffer.alloc(big, 0x62));
    } else {
      s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall');
    }
  });
  const proxy = await proxyFor(t);
  const base = `http://upstream.test:${up.port}`;
  // A client slower than loopback keeps the proxy's writes to it full until the end.
  const r = await curl(['-x', proxy.url, '--limit-rate', '16M', '-o', '/dev/null', '-w', '%{size_download} ', `${base}/big`, '-o', '-', `${base}/small`], 15_000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${big} small5 `);
  assert.equal(up.connections(), 1, 'the second request reused the upstream connection');
});

/** A script that answers the first request on each connection (kept alive) and does `later` with the ones after. */
function firstOnly(later: (socket: net.Socket) => void): Script {
  const seen = new WeakMap<net.Socket, number>();
  return (path, socket) => {
    const n = (seen.get(socket) ?? 0) + 1;
    seen.set(socket, n);
    if (n === 1) socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
    else later(socket);
  };
}

test('a kept-alive connection the upstream closes as the next request arrives: that GET is sent once more on a new connection', async (t) => {
  const up = await scriptedUpstream(t, firstOnly((socket) => socket.destroy()));
  const proxy = await proxyFor(t);
  const base = `http://upstream.test:${up.port}`;
  const r = await curl(['-x', proxy.url, `${base}/one`, `${base}/two`]);
  assert.equal(r.stdout, '/one/two', r.stderr);
  // /two went out on the reused connection (closed under it), then again on a new one.
  assert.deepEqual(up.requests, ['GET /one', 'GET /two', 'GET /two']);
  assert.equal(up.connections(), 2);
  assert.deepEqual(proxy.entries.map((e) => e.status), [200, 200]);
});

test('an upstream silent past the idle timeout on a reused connection is a 504, and the request is not sent again', async (t) => {
  const up = await scriptedUpstream(t, firstOnly(() => undefined));
  const proxy = await startTestProxy({ idleTimeoutMs: 600 });
  t.after(() => proxy.server.close({ drainMs: 0 }));
  const base = `http://upstream.test:${up.port}`;
  const r = await curl(['-x', proxy.url, '-s', '-w', '%{http_code} ', '-o', '/dev/null', `${base}/one`, '-o', '/dev/null', `${base}/two`]);
  assert.equal(r.stdout, '200 504 ', r.stderr);
  assert.deepEqual(up.requests, ['GET /one', 'GET /two']);
  assert.deepEqual(proxy.entries.map((e) => [e.status, e.reason]), [[200, 'rule'], [504, 'timeout']]);
});
