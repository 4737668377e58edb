/**
 * WebSocket upgrades through `gatehouse ingress`: refused with 501 and the
 * reason on routes that are not passthrough (Lattice carries no
 * WebSockets), and carried end to end on a passthrough route to a tiny echo
 * upstream written here (RFC 6455 handshake and frames, nothing else).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { startIngress } from './harness';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function acceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

/** One frame with a payload under 126 bytes; `mask` for client frames. */
function frame(payload: Buffer, mask: boolean): Buffer {
  const head = Buffer.from([0x81, (mask ? 0x80 : 0) | payload.length]);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
  return Buffer.concat([head, key, masked]);
}

/** The payload of the first whole frame in `buf`, or null when it has not all arrived. */
function readFrame(buf: Buffer): { payload: Buffer; rest: Buffer } | null {
  if (buf.length < 2) return null;
  const masked = (buf[1] & 0x80) !== 0;
  const len = buf[1] & 0x7f;
  const start = 2 + (masked ? 4 : 0);
  if (len >= 126 || buf.length < start + len) return null;
  let payload = buf.subarray(start, start + len);
  if (masked) {
    const key = buf.subarray(2, 6);
    payload = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
  }
  return { payload, rest: buf.subarray(start + len) };
}

/** Echo upstream: answers the handshake, then sends back every text frame with "echo: " in front. */
async function echoUpstream(t: import('node:test').TestContext): Promise<{ port: number; upgrades: IncomingMessage[] }> {
  const upgrades: IncomingMessage[] = [];
  const sockets: Duplex[] = [];
  const server = createServer((_req, res) => res.writeHead(426).end());
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    upgrades.push(req);
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(String(req.headers['sec-websocket-key']))}\r\n\r\n`);
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (let f = readFrame(buf); f !== null; f = readFrame(buf)) {
        buf = f.rest;
        socket.write(frame(Buffer.concat([Buffer.from('echo: '), f.payload]), false));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, upgrades };
}

/** Sends an upgrade request and collects what comes back. */
async function openUpgrade(port: number, host: string, path: string): Promise<{ socket: Socket; received: () => Buffer; next: (min: number) => Promise<Buffer> }> {
  const socket = connect({ host: '127.0.0.1', port });
  let buf: Buffer = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    wake?.();
  });
  socket.on('close', () => wake?.());
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const key = randomBytes(16).toString('base64');
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const next = async (min: number): Promise<Buffer> => {
    for (let i = 0; i < 100 && buf.length < min && !socket.destroyed; i++) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return buf;
  };
  return { socket, received: () => buf, next };
}

test('an upgrade on a route that is not passthrough gets 501 with the reason', async (t) => {
  const ingress = await startIngress(t, {
    routes: 'routes:\n  - host: api.example.test\n    upstream: { service: api-0123.7d67968.vpc-lattice-svcs.us-east-1.on.aws }\n',
    args: ['--region', 'us-east-1'],
  });
  const ws = await openUpgrade(ingress.port, 'api.example.test', '/socket');
  t.after(() => ws.socket.destroy());
  const text = (await ws.next(200)).toString('latin1');
  assert.match(text, /^HTTP\/1\.1 501 Not Implemented\r\n/);
  const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: string; reason: string };
  assert.equal(body.error, 'websocket-unsupported');
  assert.match(body.reason, /VPC Lattice does not support WebSockets/);
  assert.match(body.reason, /websocket: passthrough/);
  const entry = await ingress.waitAccess((e) => e.upgrade === true);
  assert.equal(entry.status, 501);
});

test('a passthrough route carries the WebSocket both ways', async (t) => {
  const up = await echoUpstream(t);
  const ingress = await startIngress(t, {
    routes: `routes:\n  - host: chat.example.test\n    upstream: { url: http://127.0.0.1:${up.port}/ws }\n    sign: false\n    websocket: passthrough\n`,
  });
  const ws = await openUpgrade(ingress.port, 'chat.example.test', '/room?id=1');
  t.after(() => ws.socket.destroy());
  const head = (await ws.next(20)).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  const headEnd = ws.received().indexOf('\r\n\r\n') + 4;
  assert.ok(headEnd > 4);
  ws.socket.write(frame(Buffer.from('hello'), true));
  const afterFirst = await ws.next(headEnd + 2 + 'echo: hello'.length);
  const first = readFrame(afterFirst.subarray(headEnd));
  assert.equal(first?.payload.toString(), 'echo: hello');
  ws.socket.write(frame(Buffer.from('second message'), true));
  const afterSecond = await ws.next(headEnd + 2 + 'echo: hello'.length + 2 + 'echo: second message'.length);
  const second = readFrame(readFrame(afterSecond.subarray(headEnd))?.rest ?? Buffer.alloc(0));
  assert.equal(second?.payload.toString(), 'echo: second message');
  // The upstream saw the rewritten path and Host, the upgrade fields, and who the client is.
  assert.equal(up.upgrades.length, 1);
  const req = up.upgrades[0];
  assert.equal(req.url, '/ws/room?id=1');
  assert.equal(req.headers.host, `127.0.0.1:${up.port}`);
  assert.equal(req.headers.upgrade, 'websocket');
  assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
  ws.socket.end();
  const entry = await ingress.waitAccess((e) => e.upgrade === true);
  assert.equal(entry.status, 101);
  assert.equal(entry.route, 'chat.example.test/');
});

test('an upstream that does not switch protocols gets nothing more of the client\'s: its answer goes back, no second request', async (t) => {
  // A raw upstream that answers any upgrade with 400 and counts every request head it reads on the connection.
  const heads: string[] = [];
  const server = createServer();
  const sockets: Duplex[] = [];
  server.on('connection', (socket: Duplex) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  server.removeAllListeners('request');
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, ahead: Buffer) => {
    heads.push(`${req.method} ${req.url}`);
    let pending = ahead.toString('latin1');
    const count = (): void => {
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        heads.push(pending.slice(0, pending.indexOf(' ', pending.indexOf(' ') + 1)));
        pending = pending.slice(end + 4);
      }
    };
    count();
    socket.on('data', (d: Buffer) => {
      pending += d.toString('latin1');
      count();
    });
    socket.write('HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\n\r\nno');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const ingress = await startIngress(t, {
    routes: `routes:\n  - host: chat.example.test\n    paths:\n      - prefix: /ws/\n        upstream: { url: http://127.0.0.1:${port} }\n        sign: false\n        websocket: passthrough\n`,
  });
  const socket = connect({ host: '127.0.0.1', port: ingress.port });
  t.after(() => socket.destroy());
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  // The upgrade head and, in the same write, a second request for a path no route allows, with forged identity fields.
  socket.write(
    'GET /ws/room HTTP/1.1\r\nHost: chat.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n' +
      'GET /admin HTTP/1.1\r\nHost: chat.example.test\r\nX-Amzn-Lattice-Identity: forged\r\n\r\n',
  );
  for (let i = 0; i < 50 && !got.includes('\r\n\r\nno'); i++) await new Promise((r) => setTimeout(r, 100));
  assert.match(got, /^HTTP\/1\.1 400 Bad Request\r\n/);
  socket.write('GET /admin2 HTTP/1.1\r\nHost: chat.example.test\r\n\r\n');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(heads, ['GET /ws/room']);
  const entry = await ingress.waitAccess((e) => e.upgrade === true);
  assert.equal(entry.status, 400);
});
