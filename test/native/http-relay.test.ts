/**
 * The native HTTP/1 relay (native/src/http_relay.cc) through its TypeScript
 * API (src/native/http-relay.ts), held to the contract in
 * src/native/binding.ts (NativeHttpRelay, HttpRelayOptions).
 *
 * Real sockets on 127.0.0.1 only: raw HTTP/1.x clients (net.connect, bytes
 * written by hand), node:net upstreams that read and answer raw bytes, and
 * a handler that records every event and issues the commands each test
 * tells it to, from inside the relay's callbacks as the proxy does.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as net from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { GatehouseError } from '../../src/errors';
import type { HttpRelayOptions } from '../../src/native/binding';
import { HttpRelay, RELAY_BODY, type KeptRoute, type RelayClientError, type RelayHandler, type RelayOutcome } from '../../src/native/http-relay';

const OPTIONS: HttpRelayOptions = {
  maxHeadBytes: 16 * 1024,
  maxResponseHeadBytes: 16 * 1024,
  proxyProtocol: false,
  headerTimeoutMs: 10_000,
  idleTimeoutMs: 20_000,
  connectTimeoutMs: 5_000,
  poolIdleMs: 20_000,
  frontingTimeoutMs: 10_000,
  tickMs: 50,
};

// ---------------------------------------------------------------------------
// The handler: records, and reacts as told
// ---------------------------------------------------------------------------

type RelayEvent =
  | { kind: 'open'; id: number; peer: string; peerPort: number; proxyHeader: Buffer | null }
  | { kind: 'request'; id: number; head: string }
  | { kind: 'response'; id: number; head: string; connectMs: number }
  | { kind: 'connected'; id: number; connectMs: number }
  | { kind: 'fronting'; id: number; bytes: Buffer; timedOut: boolean }
  | { kind: 'done'; id: number; outcome: RelayOutcome; error: string | null; bytesFromClient: number; bytesToClient: number }
  | { kind: 'clientError'; id: number; error: RelayClientError; peer: string; peerPort: number }
  | { kind: 'closed'; id: number; bytesFromClient: number; bytesToClient: number }
  | { kind: 'routed'; id: number; path: string; keepAlive: boolean; startedAt: number }
  | { kind: 'answered'; id: number; status: number; connectMs: number; contentType: string | null }
  | {
      kind: 'routedDone';
      id: number;
      path: string;
      contentType: string | null;
      status: number;
      connectMs: number;
      bytesFromClient: number;
      bytesToClient: number;
      startedAt: number;
    }
  | { kind: 'answeredDone'; id: number; status: number; contentType: string | null; bytesFromClient: number; bytesToClient: number; tookMs: number; headMs: number };
type EventKind = RelayEvent['kind'];
type EventOf<K extends EventKind> = Extract<RelayEvent, { kind: K }>;

/**
 * Records every event in arrival order, then runs the test's reaction to it.
 * Reactions only issue commands: an assertion thrown inside the relay's
 * callback would be swallowed (the wrapper closes the connection instead),
 * so tests assert on the record afterwards.
 */
class Recorder implements RelayHandler {
  readonly events: RelayEvent[] = [];
  private relayRef: HttpRelay | null = null;
  onRequest: (id: number, head: string) => void = () => undefined;
  onResponse: (id: number, head: string) => void = () => undefined;
  onDone: (id: number, outcome: RelayOutcome) => void = () => undefined;

  set relay(relay: HttpRelay) {
    this.relayRef = relay;
  }
  get relay(): HttpRelay {
    if (this.relayRef === null) throw new Error('the recorder has no relay yet');
    return this.relayRef;
  }

  open(id: number, peer: string, peerPort: number, proxyHeader: Buffer | null): void {
    this.events.push({ kind: 'open', id, peer, peerPort, proxyHeader });
  }
  request(id: number, head: string): void {
    this.events.push({ kind: 'request', id, head });
    this.onRequest(id, head);
  }
  response(id: number, head: string, connectMs: number): void {
    this.events.push({ kind: 'response', id, head, connectMs });
    this.onResponse(id, head);
  }
  connected(id: number, connectMs: number): void {
    this.events.push({ kind: 'connected', id, connectMs });
  }
  fronting(id: number, bytes: Buffer, timedOut: boolean): void {
    this.events.push({ kind: 'fronting', id, bytes: Buffer.from(bytes), timedOut });
  }
  done(id: number, outcome: RelayOutcome, error: string | null, bytesFromClient: number, bytesToClient: number): void {
    this.events.push({ kind: 'done', id, outcome, error, bytesFromClient, bytesToClient });
    this.onDone(id, outcome);
  }
  clientError(id: number, kind: RelayClientError, peer: string, peerPort: number): void {
    this.events.push({ kind: 'clientError', id, error: kind, peer, peerPort });
  }
  closed(id: number, bytesFromClient: number, bytesToClient: number): void {
    this.events.push({ kind: 'closed', id, bytesFromClient, bytesToClient });
  }
  routed(id: number, path: string, keepAlive: boolean, startedAt: number): void {
    this.events.push({ kind: 'routed', id, path, keepAlive, startedAt });
  }
  answered(id: number, status: number, connectMs: number, contentType: string | null): void {
    this.events.push({ kind: 'answered', id, status, connectMs, contentType });
  }
  routedDone(
    id: number,
    path: string,
    contentType: string | null,
    status: number,
    connectMs: number,
    bytesFromClient: number,
    bytesToClient: number,
    startedAt: number,
  ): void {
    this.events.push({ kind: 'routedDone', id, path, contentType, status, connectMs, bytesFromClient, bytesToClient, startedAt });
  }

  answeredDone(id: number, status: number, _connectMs: number, contentType: string | null, bytesFromClient: number, bytesToClient: number, tookMs: number, headMs: number): void {
    this.events.push({ kind: 'answeredDone', id, status, contentType, bytesFromClient, bytesToClient, tookMs, headMs });
  }

  of<K extends EventKind>(kind: K, id?: number): EventOf<K>[] {
    return this.events.filter((e): e is EventOf<K> => e.kind === kind && (id === undefined || e.id === id));
  }

  /** The nth (1-based) event of this kind (for this id), waiting for it (bounded). */
  async next<K extends EventKind>(kind: K, id?: number, nth = 1, timeoutMs = 5000): Promise<EventOf<K>> {
    await eventually(() => this.of(kind, id).length >= nth, `${kind} event #${nth}${id === undefined ? '' : ` for connection ${id}`}`, timeoutMs);
    return this.of(kind, id)[nth - 1];
  }

  /** The kinds of this connection's events, in order. */
  kinds(id: number): EventKind[] {
    return this.events.filter((e) => e.id === id).map((e) => e.kind);
  }
}

// ---------------------------------------------------------------------------
// Real parts: the relay, raw clients, raw upstreams
// ---------------------------------------------------------------------------

/** Waits until `cond` holds, polling; throws naming `what` after timeoutMs. */
async function eventually(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function startRelay(t: TestContext, overrides: Partial<HttpRelayOptions> = {}): { relay: HttpRelay; rec: Recorder; port: number } {
  const rec = new Recorder();
  const relay = new HttpRelay({ ...OPTIONS, ...overrides }, rec);
  rec.relay = relay;
  t.after(() => relay.destroy());
  return { relay, rec, port: relay.listen('127.0.0.1', 0) };
}

/** A client that keeps every byte it receives. */
class RawClient {
  private chunks: Buffer[] = [];
  length = 0;
  ended = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('error', () => undefined);
  }
  bytes(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }
  text(): string {
    return this.bytes().toString('latin1');
  }
}

async function connectClient(t: TestContext, port: number): Promise<RawClient> {
  const socket = net.connect({ host: '127.0.0.1', port });
  const client = new RawClient(socket);
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  return client;
}

/** A node:net server on 127.0.0.1:0, closed with its sockets after the test. */
async function serve(t: TestContext, onSocket: (socket: net.Socket, connection: number) => void, opts: net.ServerOpts = {}): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer(opts, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket, ++connections);
  });
  t.after(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, connections: () => connections };
}

function contentLength(head: string): number {
  const m = /\r\ncontent-length: *(\d+)\r\n/i.exec(head);
  return m === null ? 0 : Number(m[1]);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface UpstreamRequest {
  connection: number; // 1-based, in accept order
  head: string;
  bodyBytes: number;
  bodySha256: string;
}

/**
 * An HTTP/1.1 upstream reading raw requests (Content-Length bodies only),
 * any number per connection, and handing each to `answer` with its socket.
 */
async function startHttpUpstream(
  t: TestContext,
  answer: (req: UpstreamRequest, socket: net.Socket) => void,
): Promise<{ port: number; requests: UpstreamRequest[]; connections: () => number }> {
  const requests: UpstreamRequest[] = [];
  const server = await serve(t, (socket, connection) => {
    let buf: Buffer = Buffer.alloc(0);
    let head: string | null = null;
    let left = 0;
    let bodyBytes = 0;
    let hash = createHash('sha256');
    socket.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      for (;;) {
        if (head === null) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          head = buf.toString('latin1', 0, end + 4);
          buf = buf.subarray(end + 4);
          left = contentLength(head);
          bodyBytes = 0;
          hash = createHash('sha256');
        }
        const take = Math.min(left, buf.length);
        hash.update(buf.subarray(0, take));
        bodyBytes += take;
        left -= take;
        buf = buf.subarray(take);
        if (left > 0) return;
        const req: UpstreamRequest = { connection, head, bodyBytes, bodySha256: hash.digest('hex') };
        head = null;
        requests.push(req);
        answer(req, socket);
      }
    });
  });
  return { port: server.port, requests, connections: server.connections };
}

/**
 * Returns once bytes written on loopback before this call have reached
 * their node:net sockets' 'data' listeners: a fresh connection made now
 * becomes ready after them, so by its accept (and the rest of that poll
 * round, which setImmediate waits out) the loop has read them too.
 */
async function loopBarrier(t: TestContext): Promise<void> {
  let accepted = false;
  const probe = await serve(t, (socket) => {
    accepted = true;
    socket.destroy();
  });
  const socket = net.connect({ host: '127.0.0.1', port: probe.port });
  socket.on('error', () => undefined);
  t.after(() => socket.destroy());
  await eventually(() => accepted, 'the barrier connection to be accepted');
  await nextTurn();
  await nextTurn();
}

/**
 * Decodes a chunked body strictly (no trailers): null while incomplete,
 * throws on bad framing, else the data and how many bytes the framing used.
 */
function decodeChunked(wire: Buffer): { body: Buffer; used: number; chunks: number } | null {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = wire.indexOf('\r\n', at);
    if (eol < 0) return null;
    const sizeLine = wire.toString('latin1', at, eol);
    if (!/^[0-9a-f]+$/i.test(sizeLine)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)} at ${at}`);
    const size = parseInt(sizeLine, 16);
    at = eol + 2;
    if (size === 0) {
      if (wire.length < at + 2) return null;
      if (wire.toString('latin1', at, at + 2) !== '\r\n') throw new Error(`expected CRLF after the last chunk at ${at}`);
      return { body: Buffer.concat(parts), used: at + 2, chunks: parts.length };
    }
    if (wire.length < at + size + 2) return null;
    parts.push(wire.subarray(at, at + size));
    if (wire.toString('latin1', at + size, at + size + 2) !== '\r\n') throw new Error(`expected CRLF after chunk data at ${at + size}`);
    at += size + 2;
  }
}

const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

test('options are checked; listen returns the bound port; a port already taken is ERR_LISTEN naming EADDRINUSE', { timeout: 30_000 }, async (t) => {
  const invalid: [Partial<HttpRelayOptions>, string][] = [
    [{ maxHeadBytes: 0 }, 'Expected integer between 64 and 1048576 for maxHeadBytes but received 0 of type number'],
    [{ tickMs: 1 }, 'Expected integer between 5 and 60000 for tickMs but received 1 of type number'],
    [{ idleTimeoutMs: 1.5 }, 'Expected integer between 1 and 86400000 for idleTimeoutMs but received 1.5 of type number'],
    [{ proxyProtocol: 'yes' as unknown as boolean }, 'Expected boolean for proxyProtocol but received "yes" of type string'],
  ];
  for (const [bad, message] of invalid) {
    assert.throws(
      () => new HttpRelay({ ...OPTIONS, ...bad }, new Recorder()),
      (err: unknown) => err instanceof GatehouseError && err.code === 'ERR_INVALID_ARG' && err.message === message,
      message,
    );
  }

  const { rec, port } = startRelay(t);
  assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `bound port ${port}`);
  // The port is real: a client reaches the relay on it.
  const client = await connectClient(t, port);
  const open = await rec.next('open');
  assert.equal(open.peer, '127.0.0.1');
  assert.equal(open.peerPort, client.socket.localPort);

  const taken = await serve(t, () => undefined);
  const second = new HttpRelay(OPTIONS, new Recorder());
  t.after(() => second.destroy());
  for (const busy of [taken.port, port]) {
    assert.throws(
      () => second.listen('127.0.0.1', busy),
      (err: unknown) => err instanceof GatehouseError && err.code === 'ERR_LISTEN' && err.message.includes(`127.0.0.1:${busy}`) && /\bEADDRINUSE\b/.test(err.message),
      `listening on taken port ${busy}`,
    );
  }
  // A name is not an IP literal: refused the same way.
  assert.throws(() => second.listen('localhost', 0), (err: unknown) => err instanceof GatehouseError && err.code === 'ERR_LISTEN' && /\(EINVAL\)$/.test(err.message));
});

test('keep-alive and pipelining: the second request of one write comes up only once the first is answered; both answers arrive in order on one connection', { timeout: 30_000 }, async (t) => {
  const { relay, rec, port } = startRelay(t);
  const client = await connectClient(t, port);
  const req1 = 'GET /first HTTP/1.1\r\nHost: a.test\r\n\r\n';
  const req2 = 'GET /second HTTP/1.1\r\nHost: a.test\r\nX-N: 2\r\n\r\n';
  const reply1 = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst';
  const reply2 = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond';
  client.socket.write(req1 + req2, 'latin1');

  const open = await rec.next('open');
  assert.equal(open.peer, '127.0.0.1');
  assert.equal(open.peerPort, client.socket.localPort);
  assert.equal(open.proxyHeader, null);
  const first = await rec.next('request');
  assert.equal(first.id, open.id);
  assert.equal(first.head, req1);
  // Both requests have been read, yet only the first went up.
  await eventually(() => relay.stats().bytesIn === req1.length + req2.length, 'the relay to have read both requests');
  assert.equal(rec.of('request').length, 1);

  const read1 = relay.respond(first.id, reply1, true);
  const second = await rec.next('request', open.id, 2);
  assert.equal(second.head, req2);
  const read2 = relay.respond(second.id, reply2, true);
  // Every byte read is counted once over the two marks.
  assert.equal(read1 + read2, req1.length + req2.length);

  await eventually(() => client.length >= reply1.length + reply2.length, 'both replies at the client');
  assert.equal(client.text(), reply1 + reply2);
  assert.equal(client.ended, false);
  assert.equal(rec.of('open').length, 1);
  assert.equal(rec.of('closed', open.id).length, 0);
  assert.deepEqual(rec.kinds(open.id), ['open', 'request', 'request']);
  assert.equal(relay.stats().active, 1);
});

test('forward + answer: a 3 MiB upload and a 3 MiB answer arrive intact; a second request reuses the pooled upstream connection', { timeout: 30_000 }, async (t) => {
  const { rec, port } = startRelay(t);
  const upload = randomBytes(3 * MiB);
  const download = randomBytes(3 * MiB);
  const downloadHead = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: ${download.length}\r\n\r\n`;
  const againReply = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nagain';
  const upstream = await startHttpUpstream(t, (req, socket) => {
    if (req.head.startsWith('POST ')) {
      socket.write(downloadHead, 'latin1');
      socket.write(download);
    } else {
      socket.write(againReply, 'latin1');
    }
  });
  const pooledAtDone: number[] = [];
  rec.onRequest = (id, head) => {
    const length = contentLength(head);
    rec.relay.forward(id, '127.0.0.1', upstream.port, head, length, length === 0);
  };
  rec.onResponse = (id, head) => {
    rec.relay.answer(id, head, RELAY_BODY.length, contentLength(head), true, true);
  };
  rec.onDone = () => pooledAtDone.push(rec.relay.stats().pooled);

  const client = await connectClient(t, port);
  const postHead = `POST /upload HTTP/1.1\r\nHost: up.test\r\nContent-Length: ${upload.length}\r\n\r\n`;
  client.socket.write(Buffer.concat([Buffer.from(postHead, 'latin1'), upload]));
  await eventually(() => client.length >= downloadHead.length + download.length, 'the 3 MiB answer at the client', 20_000);
  const got = client.bytes();
  assert.equal(got.length, downloadHead.length + download.length);
  assert.equal(got.toString('latin1', 0, downloadHead.length), downloadHead);
  assert.equal(sha256(got.subarray(downloadHead.length)), sha256(download));

  const id = (await rec.next('open')).id;
  assert.equal(upstream.requests.length, 1);
  assert.equal(upstream.requests[0].head, postHead);
  assert.equal(upstream.requests[0].bodyBytes, upload.length);
  assert.equal(upstream.requests[0].bodySha256, sha256(upload));
  const response = await rec.next('response', id);
  assert.equal(response.head, downloadHead);
  assert.ok(response.connectMs >= 0);
  const done = await rec.next('done', id);
  assert.deepEqual(
    { outcome: done.outcome, error: done.error, bytesFromClient: done.bytesFromClient, bytesToClient: done.bytesToClient },
    { outcome: 'complete', error: null, bytesFromClient: postHead.length + upload.length, bytesToClient: downloadHead.length + download.length },
  );
  assert.equal(pooledAtDone[0], 1, 'the upstream connection went to the pool');

  // The same client connection, a second request: the pooled upstream connection serves it.
  const getHead = 'GET /again HTTP/1.1\r\nHost: up.test\r\n\r\n';
  client.socket.write(getHead, 'latin1');
  await eventually(() => client.length >= got.length + againReply.length, 'the second answer at the client');
  assert.equal(client.bytes().toString('latin1', got.length), againReply);
  assert.equal(upstream.requests.length, 2);
  assert.equal(upstream.requests[1].head, getHead);
  assert.equal(upstream.connections(), 1);
  assert.equal(upstream.requests[1].connection, 1);
  const done2 = await rec.next('done', id, 2);
  assert.equal(done2.outcome, 'complete');
  assert.equal(done2.bytesFromClient, getHead.length);
  assert.equal(done2.bytesToClient, againReply.length);
  assert.equal(pooledAtDone[1], 1);
  assert.equal(client.ended, false);
  assert.deepEqual(rec.kinds(id), ['open', 'request', 'response', 'done', 'request', 'response', 'done']);
});

test('back-pressure: a client that does not read stops the relay reading its upstream; all 64 MiB arrive once it reads', { timeout: 90_000 }, async (t) => {
  const { relay, rec, port } = startRelay(t);
  const CHUNK = 64 * 1024;
  const CHUNKS = 1024; // 64 MiB
  const head = `HTTP/1.1 200 OK\r\nContent-Length: ${CHUNK * CHUNKS}\r\n\r\n`;
  const writer = { writeReturnedFalse: false, stalled: false, waitingForDrain: false, finished: false, hash: createHash('sha256') };
  const sendBody = async (socket: net.Socket): Promise<void> => {
    socket.write(head, 'latin1');
    for (let i = 0; i < CHUNKS; i++) {
      const chunk = Buffer.alloc(CHUNK, i & 0xff);
      chunk.writeUInt32BE(i, 0);
      writer.hash.update(chunk);
      if (socket.destroyed) return;
      if (!socket.write(chunk)) {
        writer.writeReturnedFalse = true;
        // Bytes still queued in Node after the write: the kernel's buffer toward the relay is full.
        if (socket.writableLength > 0) {
          writer.stalled = true;
          writer.waitingForDrain = true;
          try {
            await once(socket, 'drain');
          } catch {
            return;
          }
          writer.waitingForDrain = false;
        }
      }
    }
    writer.finished = true;
  };
  const upstream = await startHttpUpstream(t, (_req, socket) => void sendBody(socket));
  rec.onRequest = (id, h) => rec.relay.forward(id, '127.0.0.1', upstream.port, h, 0, true);
  rec.onResponse = (id, h) => rec.relay.answer(id, h, RELAY_BODY.length, contentLength(h), true, true);

  const client = await connectClient(t, port);
  client.socket.pause();
  client.socket.write('GET /big HTTP/1.1\r\nHost: up.test\r\n\r\n', 'latin1');

  await eventually(() => writer.waitingForDrain, 'the upstream to find its socket full while the client does not read', 30_000);
  // Wait (bounded) until nothing moves any more: then the relay has stopped reading.
  let last = -1;
  let still = 0;
  await eventually(
    () => {
      const out = relay.stats().bytesOut;
      still = out === last ? still + 1 : 0;
      last = out;
      return still >= 40;
    },
    'bytes toward the paused client to stop moving',
    30_000,
  );
  assert.equal(writer.finished, false, 'the upstream wrote all 64 MiB although the client read nothing');
  assert.ok(writer.waitingForDrain, 'the upstream is still waiting for its socket to drain');
  assert.ok(relay.stats().bytesOut < head.length + CHUNK * CHUNKS, `the relay queued ${relay.stats().bytesOut} bytes for a paused client`);
  assert.equal(client.length, 0);

  client.socket.resume();
  await eventually(() => client.length >= head.length + CHUNK * CHUNKS, 'all 64 MiB at the client', 60_000);
  const got = client.bytes();
  assert.equal(got.length, head.length + CHUNK * CHUNKS);
  assert.equal(got.toString('latin1', 0, head.length), head);
  assert.ok(writer.finished);
  assert.equal(sha256(got.subarray(head.length)), writer.hash.digest('hex'));
  assert.ok(writer.writeReturnedFalse && writer.stalled);
  const done = await rec.next('done');
  assert.equal(done.outcome, 'complete');
  assert.equal(done.bytesToClient, head.length + CHUNK * CHUNKS);
});

test('framing conversions: close-delimited -> chunked for an HTTP/1.1 client that stays open; chunked -> plain bytes for an HTTP/1.0 client that is closed', { timeout: 30_000 }, async (t) => {
  const { rec, port } = startRelay(t);
  const closeParts = ['part-one;', 'part-two;', 'part-three'];
  const chunkedUpstreamHead = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  const chunkedParts = ['5;name=va', 'lue\r\nhello\r\n6\r\n wor', 'ld\r\n0\r\nX-Trailer: yes\r\n\r\n'];
  const upstream = await startHttpUpstream(t, (req, socket) => {
    const parts = req.head.startsWith('GET /close ') ? ['HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n', ...closeParts] : [chunkedUpstreamHead, ...chunkedParts];
    const last = req.head.startsWith('GET /close ');
    const send = async (): Promise<void> => {
      for (const p of parts) {
        socket.write(p, 'latin1');
        await nextTurn();
      }
      if (last) socket.end(); // the body ends with the connection
    };
    void send();
  });
  const toClientChunked = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n';
  const toClient10 = 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n';
  const more = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmore';
  const wanted = new Map<number, string>();
  rec.onRequest = (id, head) => {
    const path = head.split(' ')[1];
    wanted.set(id, path);
    if (path === '/more') rec.relay.respond(id, more, true);
    else rec.relay.forward(id, '127.0.0.1', upstream.port, `GET ${path} HTTP/1.1\r\nHost: up.test\r\n\r\n`, 0, true);
  };
  rec.onResponse = (id) => {
    if (wanted.get(id) === '/close') rec.relay.answer(id, toClientChunked, RELAY_BODY.closeToChunked, 0, true, false);
    else rec.relay.answer(id, toClient10, RELAY_BODY.dechunk, 0, false, true);
  };

  // HTTP/1.1 client, close-delimited upstream answer.
  const c11 = await connectClient(t, port);
  c11.socket.write('GET /close HTTP/1.1\r\nHost: up.test\r\n\r\n', 'latin1');
  const framing = (): ReturnType<typeof decodeChunked> => (c11.length < toClientChunked.length ? null : decodeChunked(c11.bytes().subarray(toClientChunked.length)));
  await eventually(() => framing() !== null, 'the chunked answer to end with 0 CRLF CRLF');
  const framed = framing();
  assert.ok(framed !== null);
  assert.equal(c11.text().slice(0, toClientChunked.length), toClientChunked);
  assert.equal(framed.body.toString('latin1'), closeParts.join(''));
  assert.ok(framed.chunks >= 1);
  assert.ok(c11.text().endsWith('0\r\n\r\n'));
  assert.equal(toClientChunked.length + framed.used, c11.length, 'nothing after the last chunk');
  const id11 = rec.of('request')[0].id;
  const done11 = await rec.next('done', id11);
  assert.equal(done11.outcome, 'complete');
  assert.equal(done11.bytesToClient, c11.length);
  // Still open: another request on it is answered.
  const before = c11.length;
  c11.socket.write('GET /more HTTP/1.1\r\nHost: a.test\r\n\r\n', 'latin1');
  await eventually(() => c11.length >= before + more.length, 'the answer to the next request');
  assert.equal(c11.bytes().toString('latin1', before), more);
  assert.equal(c11.ended, false);
  assert.equal(rec.of('closed', id11).length, 0);

  // HTTP/1.0 client, chunked upstream answer.
  const c10 = await connectClient(t, port);
  c10.socket.write('GET /dechunk HTTP/1.0\r\nHost: up.test\r\n\r\n', 'latin1');
  await eventually(() => c10.ended, 'the HTTP/1.0 client connection to end');
  assert.equal(c10.text(), `${toClient10}hello world`);
  const id10 = rec.of('request').find((e) => e.head.startsWith('GET /dechunk '))?.id ?? -1;
  assert.equal((await rec.next('response', id10)).head, chunkedUpstreamHead);
  const done10 = await rec.next('done', id10);
  assert.equal(done10.outcome, 'complete');
  assert.equal(done10.bytesToClient, toClient10.length + 'hello world'.length);
  await rec.next('closed', id10);
  assert.deepEqual(rec.kinds(id10), ['open', 'request', 'response', 'done', 'closed']);
});

test('tunnel: the client bytes sent with CONNECT are held until allowTunnel; then both directions and half-closes pass through', { timeout: 30_000 }, async (t) => {
  const { relay, rec, port } = startRelay(t);
  const up = { received: Buffer.alloc(0), sawEnd: false, accepted: false };
  const upstream = await serve(
    t,
    (socket) => {
      up.accepted = true;
      socket.on('data', (d: Buffer) => {
        up.received = Buffer.concat([up.received, d]);
        if (up.received.toString('latin1') === 'hello') socket.write('world');
      });
      // Half-open: the client's FIN arrives, and this side can still answer.
      socket.on('end', () => {
        up.sawEnd = true;
        socket.end('bye');
      });
    },
    { allowHalfOpen: true },
  );
  const established = 'HTTP/1.1 200 Connection established\r\n\r\n';
  rec.onRequest = (id) => rec.relay.tunnel(id, '127.0.0.1', upstream.port, established);

  const client = await connectClient(t, port);
  const connectHead = `CONNECT 127.0.0.1:${upstream.port} HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\n\r\n`;
  client.socket.write(`${connectHead}hello`, 'latin1');
  const id = (await rec.next('open')).id;
  assert.equal((await rec.next('request', id)).head, connectHead);
  const connected = await rec.next('connected', id);
  assert.ok(connected.connectMs >= 0);
  const fronting = await rec.next('fronting', id);
  assert.equal(fronting.bytes.toString('latin1'), 'hello');
  assert.equal(fronting.timedOut, false);
  await eventually(() => client.length >= established.length && up.accepted, 'the 200 at the client and the upstream connection accepted');
  await loopBarrier(t);
  assert.equal(up.received.length, 0, 'the upstream received held bytes before allowTunnel');
  assert.equal(client.text(), established);

  assert.equal(relay.allowTunnel(id), true);
  assert.equal(relay.allowTunnel(id), false, 'a second allowTunnel has nothing to allow');
  await eventually(() => up.received.length >= 5, 'the held bytes at the upstream');
  assert.equal(up.received.toString('latin1'), 'hello');
  await eventually(() => client.length >= established.length + 5, '"world" at the client');
  assert.equal(client.text(), `${established}world`);

  client.socket.end();
  await eventually(() => up.sawEnd, 'the client FIN at the upstream');
  await eventually(() => client.ended, 'the upstream FIN at the client');
  assert.equal(client.text(), `${established}worldbye`);
  const done = await rec.next('done', id);
  assert.deepEqual(
    { outcome: done.outcome, error: done.error, bytesFromClient: done.bytesFromClient, bytesToClient: done.bytesToClient },
    { outcome: 'complete', error: null, bytesFromClient: connectHead.length + 'hello'.length, bytesToClient: established.length + 'worldbye'.length },
  );
  await rec.next('closed', id);
  assert.deepEqual(rec.kinds(id), ['open', 'request', 'connected', 'fronting', 'done', 'closed']);
  assert.equal(up.received.toString('latin1'), 'hello');
});

test('failures: a refused upstream is done/upstream-failed/ECONNREFUSED and the reply ends the connection; a head over maxHeadBytes is clientError head-too-large', { timeout: 30_000 }, async (t) => {
  const { relay, rec, port } = startRelay(t, { maxHeadBytes: 1024 });
  // A port nothing listens on any more.
  const gone = net.createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const deadPort = (gone.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => gone.close(() => resolve()));
  rec.onRequest = (id, head) => rec.relay.forward(id, '127.0.0.1', deadPort, head, 0, true);

  const refused = await connectClient(t, port);
  const req = 'GET /nowhere HTTP/1.1\r\nHost: gone.test\r\n\r\n';
  refused.socket.write(req, 'latin1');
  const idRefused = (await rec.next('open')).id;
  const done = await rec.next('done', idRefused);
  assert.deepEqual(
    { outcome: done.outcome, error: done.error, bytesToClient: done.bytesToClient },
    { outcome: 'upstream-failed', error: 'ECONNREFUSED', bytesToClient: 0 },
  );
  assert.equal(refused.length, 0, 'nothing goes to the client before the proxy answers');
  const badGateway = 'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
  const read = relay.respond(idRefused, badGateway, false);
  assert.equal(read + done.bytesFromClient, req.length, 'the request bytes are counted once');
  await eventually(() => refused.ended, 'the refused client connection to end');
  assert.equal(refused.text(), badGateway);
  await rec.next('closed', idRefused);
  assert.deepEqual(rec.kinds(idRefused), ['open', 'request', 'done', 'closed']);
  // Commands for an id that is gone do nothing and say so.
  assert.equal(relay.respond(idRefused, badGateway, false), -1);
  assert.equal(relay.forward(idRefused, '127.0.0.1', deadPort, req, 0, true), false);
  assert.equal(relay.answer(idRefused, badGateway, RELAY_BODY.none, 0, false, false), false);
  assert.equal(relay.tunnel(idRefused, '127.0.0.1', deadPort, ''), false);
  assert.equal(relay.allowTunnel(idRefused), false);
  assert.equal(relay.close(idRefused), false);

  const big = await connectClient(t, port);
  big.socket.write(`GET /big HTTP/1.1\r\nHost: a.test\r\nX-Fill: ${'a'.repeat(3000)}\r\n\r\n`, 'latin1');
  const openBig = await rec.next('open', undefined, 2);
  const clientError = await rec.next('clientError', openBig.id);
  assert.deepEqual(
    { error: clientError.error, peer: clientError.peer, peerPort: clientError.peerPort },
    { error: 'head-too-large', peer: '127.0.0.1', peerPort: big.socket.localPort },
  );
  assert.equal(rec.of('request', openBig.id).length, 0);
  const tooLarge = 'HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
  assert.ok(relay.respond(openBig.id, tooLarge, false) >= 0);
  await eventually(() => big.ended, 'the oversized client connection to end');
  assert.equal(big.text(), tooLarge);
  await rec.next('closed', openBig.id);
  assert.deepEqual(rec.kinds(openBig.id), ['open', 'clientError', 'closed']);
});

// ---------------------------------------------------------------------------
// Commands out of place
// ---------------------------------------------------------------------------

test(
  'respond after the answer began (mid-body) is a command in another state: -1, and the client\'s bytes stay one valid answer',
  { timeout: 30_000 },
  async (t) => {
    const { relay, rec, port } = startRelay(t);
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n';
    const held: { socket: net.Socket | null } = { socket: null };
    const upstream = await startHttpUpstream(t, (_req, socket) => {
      held.socket = socket;
      socket.write(`${head}abc`, 'latin1'); // the rest comes later
    });
    rec.onRequest = (id, h) => rec.relay.forward(id, '127.0.0.1', upstream.port, h, 0, true);
    rec.onResponse = (id, h) => rec.relay.answer(id, h, RELAY_BODY.length, contentLength(h), true, true);
    const client = await connectClient(t, port);
    client.socket.write('GET /x HTTP/1.1\r\nHost: up.test\r\n\r\n', 'latin1');
    await eventually(() => client.length >= head.length + 3, 'the answer head and 3 body bytes at the client');
    const id = (await rec.next('open')).id;

    assert.equal(relay.respond(id, 'HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n', false), -1);
    held.socket?.write('defghij', 'latin1');
    await eventually(() => client.length >= head.length + 10 || client.ended, 'the rest of the body (or the end of the connection)');
    assert.equal(client.text(), `${head}abcdefghij`);
    assert.equal((await rec.next('done', id)).outcome, 'complete');
  },
);

test(
  'listen refuses a port outside 0..65535 instead of binding another one',
  { timeout: 30_000 },
  (t) => {
    const { relay } = startRelay(t);
    for (const port of [70_000, -1]) {
      assert.throws(
        () => relay.listen('127.0.0.1', port),
        (err: unknown) => err instanceof GatehouseError && err.code === 'ERR_INVALID_ARG',
        `listen on port ${port}`,
      );
    }
  },
);

// ---------------------------------------------------------------------------
// Regressions (review fixes of commit 4c3e144 in http_relay.cc), and kept routes
// ---------------------------------------------------------------------------

/** Waits (bounded) until `read()` has not changed for `polls` polls in a row; returns its value then. */
async function settled(read: () => number, what: string, polls = 40, timeoutMs = 10_000): Promise<number> {
  let last = -1;
  let still = 0;
  await eventually(
    () => {
      const now = read();
      still = now === last ? still + 1 : 0;
      last = now;
      return still >= polls;
    },
    what,
    timeoutMs,
  );
  return last;
}

/**
 * An answer larger than what the kernel holds toward a client that does not
 * read (tcp_wmem's 4 MiB send buffer plus an unread receive buffer, which
 * does not grow while nothing reads it): the relay keeps the rest in its
 * own buffer.
 */
function bigReply(): { reply: string; sha: string } {
  const body = randomBytes(8 * MiB);
  const reply = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body.toString('latin1')}`;
  return { reply, sha: sha256(Buffer.from(reply, 'latin1')) };
}

test('a pooled upstream connection that said more after its 204 is not reused: the next client gets its own answer, not those stray bytes', { timeout: 30_000 }, async (t) => {
  const { relay, rec, port } = startRelay(t);
  const noContent = 'HTTP/1.1 204 No Content\r\n\r\n';
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  const stray = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON';
  const first = { socket: null as net.Socket | null, closed: false };
  const upstream = await startHttpUpstream(t, (req, socket) => {
    if (req.head.startsWith('GET /a ')) {
      first.socket = socket;
      socket.on('close', () => (first.closed = true));
      socket.write(noContent, 'latin1');
    } else {
      socket.write(ok, 'latin1');
    }
  });
  const idOf = new Map<string, number>();
  rec.onRequest = (id, head) => {
    const path = head.split(' ')[1];
    idOf.set(path, id);
    if (path === '/a') rec.relay.forward(id, '127.0.0.1', upstream.port, head, 0, true);
    // /b waits: it goes up once /a's upstream connection is back in the pool.
  };
  rec.onResponse = (id, head) => {
    if (id !== idOf.get('/a')) rec.relay.answer(id, head, RELAY_BODY.length, contentLength(head), true, true);
  };

  const clientB = await connectClient(t, port);
  clientB.socket.write('GET /b HTTP/1.1\r\nHost: up.test\r\n\r\n', 'latin1');
  const idB = (await rec.next('request')).id;
  const clientA = await connectClient(t, port);
  clientA.socket.write('GET /a HTTP/1.1\r\nHost: up.test\r\n\r\n', 'latin1');
  const responseA = await rec.next('response', undefined, 1);
  assert.equal(responseA.head, noContent);
  const idA = responseA.id;
  // The upstream says more while the relay waits for the proxy's answer
  // (and so reads nothing from it): the bytes sit unread in its socket.
  first.socket?.write(stray, 'latin1');
  await loopBarrier(t);

  assert.equal(relay.answer(idA, noContent, RELAY_BODY.none, 0, true, true), true);
  assert.equal(relay.stats().pooled, 1, 'the connection went to the pool (its stray bytes were not read)');
  assert.equal(relay.forward(idB, '127.0.0.1', upstream.port, 'GET /b HTTP/1.1\r\nHost: up.test\r\n\r\n', 0, true), true);

  await eventually(() => clientB.length >= ok.length, "B's answer at client B");
  assert.equal(clientB.text(), ok);
  await eventually(() => clientA.length >= noContent.length, "A's answer at client A");
  assert.equal(clientA.text(), noContent);
  assert.equal((await rec.next('done', idA)).outcome, 'complete');
  const doneB = await rec.next('done', idB);
  assert.deepEqual({ outcome: doneB.outcome, bytesToClient: doneB.bytesToClient }, { outcome: 'complete', bytesToClient: ok.length });
  assert.deepEqual(
    upstream.requests.map((r) => [r.head.split(' ')[1], r.connection]),
    [
      ['/a', 1],
      ['/b', 2],
    ],
  );
  await eventually(() => first.closed, 'the relay to close the upstream connection it did not reuse');
});

test('a client that pipelines requests and does not read the answers is not read further; it is served in full once it reads', { timeout: 30_000 }, async (t) => {
  const { relay, rec, port } = startRelay(t);
  const REQUESTS = 2000;
  const reply = `HTTP/1.1 403 Forbidden\r\nContent-Length: ${16 * 1024}\r\n\r\n${'x'.repeat(16 * 1024)}`;
  const req = 'GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n';
  rec.onRequest = (id) => rec.relay.respond(id, reply, true);
  const client = await connectClient(t, port);
  client.socket.pause();
  client.socket.write(req.repeat(REQUESTS), 'latin1');

  // 2000 answers are 32 MiB; the kernel holds a few MiB toward a client that
  // does not read, the relay a few hundred KiB more, and then it stops.
  const answered = await settled(() => rec.of('request').length, 'request events to stop while the client does not read');
  assert.ok(answered > 0 && answered < REQUESTS / 2, `${answered} of ${REQUESTS} requests taken from a client that reads nothing`);
  assert.equal(client.length, 0);

  client.socket.resume();
  await eventually(() => client.length >= REQUESTS * reply.length, `all ${REQUESTS} answers at the client`, 20_000);
  assert.equal(client.length, REQUESTS * reply.length);
  assert.equal(sha256(client.bytes()), sha256(Buffer.from(reply.repeat(REQUESTS), 'latin1')));
  assert.equal(rec.of('request').length, REQUESTS);
  assert.equal(relay.stats().bytesIn, REQUESTS * req.length);
  assert.equal(client.ended, false);
});

test('closeIdle: an answer still going out to a client that is not reading is delivered whole, then the connection ends', { timeout: 30_000 }, async (t) => {
  const { relay, rec, port } = startRelay(t);
  const { reply, sha } = bigReply();
  rec.onRequest = (id) => rec.relay.respond(id, reply, true);
  const client = await connectClient(t, port);
  client.socket.pause();
  client.socket.write('GET http://a.test/big HTTP/1.1\r\nHost: a.test\r\n\r\n', 'latin1');
  const id = (await rec.next('request')).id;
  await loopBarrier(t);
  assert.equal(rec.of('closed', id).length, 0);

  // Between exchanges (keep-alive), but 8 MiB of its answer still to go.
  relay.closeIdle();
  client.socket.resume();
  await eventually(() => client.ended, 'the connection to end after its answer');
  assert.equal(client.length, reply.length, 'the answer was cut short');
  assert.equal(sha256(client.bytes()), sha);
  await rec.next('closed', id);
  assert.deepEqual(rec.kinds(id), ['open', 'request', 'closed']);
});

test('connect deadline: an upstream that never completes the handshake ends the exchange as upstream-timeout with ETIMEDOUT', { timeout: 30_000 }, async (t) => {
  if (process.platform !== 'linux') {
    t.skip('needs Linux: a full accept queue drops SYNs');
    return;
  }
  // A listener that never accepts, its queue (backlog 0: one connection) filled by us: the kernel drops further SYNs.
  const listener = spawn('python3', ['-c', 'import socket,sys,time\ns=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(0)\nprint(s.getsockname()[1], flush=True)\ntime.sleep(60)'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => listener.kill());
  const fullPort = Number((await once(listener.stdout, 'data'))[0].toString().trim());
  const fillers: net.Socket[] = [];
  t.after(() => fillers.forEach((f) => f.destroy()));
  for (let i = 0; i < 2; i++) {
    const f = net.connect(fullPort, '127.0.0.1');
    f.on('error', () => undefined);
    fillers.push(f);
  }
  await new Promise((r) => setTimeout(r, 200));
  const { rec, port } = startRelay(t, { connectTimeoutMs: 300, tickMs: 10 });
  rec.onRequest = (id, head) => rec.relay.forward(id, '127.0.0.1', fullPort, head, 0, true);
  const client = await connectClient(t, port);
  client.socket.write('GET /slow HTTP/1.1\r\nHost: full.test\r\n\r\n', 'latin1');
  const id = (await rec.next('open')).id;
  const done = await rec.next('done', id, 1, 10_000);
  assert.deepEqual({ outcome: done.outcome, error: done.error }, { outcome: 'upstream-timeout', error: 'ETIMEDOUT' });
});

test('closeIdle: a connection between requests closes at once; one whose head has begun is read to its end and answered', { timeout: 30_000 }, async (t) => {
  const { relay, rec, port } = startRelay(t);
  const reply = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok';
  rec.onRequest = (id) => rec.relay.respond(id, reply, false);
  const idle = await connectClient(t, port);
  const arriving = await connectClient(t, port);
  arriving.socket.write('GET http://a.test/late HTTP/1.1\r\nHost: a', 'latin1');
  await eventually(() => rec.of('open').length === 2, 'both connections open');
  await loopBarrier(t);

  relay.closeIdle();
  await eventually(() => idle.ended, 'the idle connection to close');
  assert.equal(idle.length, 0);
  assert.equal(arriving.ended, false, 'a head already arriving was cut off');
  arriving.socket.write('.test\r\n\r\n', 'latin1');
  await eventually(() => arriving.ended, 'the answered connection to end');
  assert.equal(arriving.text(), reply);
  assert.equal(rec.of('request').length, 1);
});

test('idle deadline: a client that stops reading mid-answer is not cut at the idle time; it gets the whole answer when it reads, then the connection ends', { timeout: 30_000 }, async (t) => {
  const { rec, port } = startRelay(t, { idleTimeoutMs: 100, tickMs: 10 });
  const { reply, sha } = bigReply();
  const small = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nsmall';
  rec.onRequest = (id, head) => rec.relay.respond(id, head.startsWith('GET http://a.test/big ') ? reply : small, true);
  const slow = await connectClient(t, port);
  slow.socket.pause();
  slow.socket.write('GET http://a.test/big HTTP/1.1\r\nHost: a.test\r\n\r\n', 'latin1');
  const slowId = (await rec.next('request')).id;
  await loopBarrier(t);

  // A witness answered after the slow client's last write: once the idle
  // deadline closed it, the slow client's (earlier) one has passed too.
  const witness = await connectClient(t, port);
  witness.socket.write('GET http://a.test/small HTTP/1.1\r\nHost: a.test\r\n\r\n', 'latin1');
  await eventually(() => witness.ended, 'the idle deadline to close the witness connection');
  assert.equal(witness.text(), small);
  assert.equal(rec.of('closed', slowId).length, 0, 'the idle deadline closed a connection with an answer still going out');

  slow.socket.resume();
  await eventually(() => slow.ended, 'the slow connection to end after its answer');
  assert.equal(slow.length, reply.length, 'the answer was cut short');
  assert.equal(sha256(slow.bytes()), sha);
  await rec.next('closed', slowId);
  assert.deepEqual(rec.kinds(slowId), ['open', 'request', 'closed']);
});

test('pipelined requests: each done bills only its own request bytes, not the next ones read with it; nothing is left over for closed', { timeout: 30_000 }, async (t) => {
  const { rec, port } = startRelay(t);
  const ok = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  const upstream = await startHttpUpstream(t, (_req, socket) => socket.write(ok, 'latin1'));
  rec.onRequest = (id, head) => rec.relay.forward(id, '127.0.0.1', upstream.port, head, 0, true);
  rec.onResponse = (id, head) => rec.relay.answer(id, head, RELAY_BODY.length, contentLength(head), true, true);
  const requests = ['GET /1 HTTP/1.1\r\nHost: up.test\r\n\r\n', 'GET /22 HTTP/1.1\r\nHost: up.test\r\nX-N: 2\r\n\r\n', 'GET /333 HTTP/1.1\r\nHost: up.test\r\nX-N: 33\r\n\r\n'];
  const client = await connectClient(t, port);
  client.socket.write(requests.join(''), 'latin1');
  const id = (await rec.next('open')).id;
  await rec.next('done', id, requests.length);
  assert.deepEqual(
    rec.of('done', id).map((d) => [d.outcome, d.bytesFromClient, d.bytesToClient]),
    requests.map((r) => ['complete', r.length, ok.length]),
  );
  // done means the relay wrote the answer; this process's client socket reads it on a turn of its own.
  await eventually(() => client.length >= ok.length * requests.length, 'the three answers at the client');
  assert.equal(client.text(), ok.repeat(requests.length));

  client.socket.end();
  // closed reports what no exchange was billed for: nothing here.
  const closed = await rec.next('closed', id);
  assert.deepEqual({ in: closed.bytesFromClient, out: closed.bytesToClient }, { in: 0, out: 0 });
});

test('kept route: a plain repeat of a forwarded GET goes upstream rewritten with no request event and is reported once (routedDone); a body or another authority goes to the handler', { timeout: 30_000 }, async (t) => {
  const { rec, port } = startRelay(t);
  const answerFor = (path: string): string => `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${path.length + 3}\r\n\r\nat ${path}`;
  const upstream = await startHttpUpstream(t, (req, socket) => socket.write(answerFor(req.head.split(' ')[1]), 'latin1'));
  const route: KeptRoute = {
    method: 'GET',
    prefix: 'http://up.test',
    host: 'up.test',
    ip: '127.0.0.1',
    port: upstream.port,
    via: '1.1 gatehouse',
    forwardedFor: '127.0.0.1',
    lifetimeMs: 60_000,
  };
  const kept: boolean[] = [];
  rec.onRequest = (id, head) => {
    // As the proxy does: the target in origin form, the route kept right after forward.
    const originForm = head.replace(/^(\S+) http:\/\/[^/\s]+/, '$1 ');
    rec.relay.forward(id, '127.0.0.1', upstream.port, originForm, contentLength(head), true);
    if (head.startsWith('GET http://up.test/first ')) kept.push(rec.relay.keepRoute(id, route));
  };
  rec.onResponse = (id, head) => rec.relay.answer(id, head, RELAY_BODY.length, contentLength(head), true, true);
  const client = await connectClient(t, port);
  const exchange = async (request: string, answer: string): Promise<void> => {
    const before = client.length;
    client.socket.write(request, 'latin1');
    await eventually(() => client.length >= before + answer.length, `the answer to ${JSON.stringify(request.split('\r\n')[0])}`);
    assert.equal(client.bytes().toString('latin1', before), answer);
  };

  await exchange('GET http://up.test/first HTTP/1.1\r\nHost: up.test\r\n\r\n', answerFor('/first'));
  const id = (await rec.next('open')).id;
  await rec.next('done', id);
  assert.deepEqual(kept, [true]);

  // The repeat: Host replaced, Via and X-Forwarded-For appended, both ways.
  const repeat = 'GET http://up.test/second?q=1 HTTP/1.1\r\nHost: up.test\r\nAccept: */*\r\nVia: 1.0 edge\r\n\r\n';
  const rewrittenAnswer = answerFor('/second?q=1').replace('\r\n\r\n', '\r\nVia: 1.1 gatehouse\r\n\r\n');
  await exchange(repeat, rewrittenAnswer);
  const routedDone = await rec.next('routedDone', id);
  assert.deepEqual(
    {
      path: routedDone.path,
      status: routedDone.status,
      contentType: routedDone.contentType,
      bytesFromClient: routedDone.bytesFromClient,
      bytesToClient: routedDone.bytesToClient,
    },
    { path: '/second?q=1', status: 200, contentType: 'text/plain', bytesFromClient: repeat.length, bytesToClient: rewrittenAnswer.length },
  );
  assert.ok(routedDone.connectMs >= 0 && routedDone.startedAt > 0);
  assert.deepEqual(rec.kinds(id), ['open', 'request', 'response', 'done', 'routedDone']);
  assert.equal(upstream.requests[1].head, 'GET /second?q=1 HTTP/1.1\r\nHost: up.test\r\nAccept: */*\r\nVia: 1.0 edge, 1.1 gatehouse\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n');
  assert.equal(upstream.requests[1].connection, 1, 'the repeat went over the pooled upstream connection');

  // Not the route's plain repeat: another authority, then a body.
  const other = 'GET http://other.test/x HTTP/1.1\r\nHost: other.test\r\n\r\n';
  await exchange(other, answerFor('/x'));
  const withBody = 'GET http://up.test/with-body HTTP/1.1\r\nHost: up.test\r\nContent-Length: 3\r\n\r\n';
  await exchange(`${withBody}abc`, answerFor('/with-body'));
  assert.deepEqual(
    rec.of('request', id).map((e) => e.head),
    ['GET http://up.test/first HTTP/1.1\r\nHost: up.test\r\n\r\n', other, withBody],
  );
  assert.deepEqual(
    upstream.requests.slice(2).map((r) => [r.head, r.bodyBytes]),
    [
      ['GET /x HTTP/1.1\r\nHost: other.test\r\n\r\n', 0],
      ['GET /with-body HTTP/1.1\r\nHost: up.test\r\nContent-Length: 3\r\n\r\n', 3],
    ],
  );
  assert.equal(rec.of('routedDone', id).length, 1);
  assert.equal(rec.of('routed', id).length, 0);
  assert.equal(client.ended, false);
});

test('answerHere: a plain answer is rewritten by the relay and reported once with its end (no response event); a close-delimited one still comes up; one cut short is answered, then done aborted', { timeout: 30_000 }, async (t) => {
  const { rec, port } = startRelay(t, { reportDelayMs: 20 });
  const testStart = Date.now();
  const answers: Record<string, string> = {
    '/plain': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello',
    '/chunked': 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    '/close': 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end',
    '/cut': 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this',
  };
  const upstream = await startHttpUpstream(t, (req, socket) => {
    const path = req.head.split(' ')[1];
    socket.write(answers[path], 'latin1');
    if (path === '/close' || path === '/cut') socket.end();
  });
  rec.onRequest = (id, head) => rec.relay.forward(id, '127.0.0.1', upstream.port, head, 0, true, 0, { keepAlive: !head.includes('/cut'), headRequest: false });
  rec.onResponse = (id, head) => rec.relay.answer(id, head.replace('Connection: close\r\n', 'Transfer-Encoding: chunked\r\n'), RELAY_BODY.closeToChunked, 0, true, false);
  const client = await connectClient(t, port);
  const ask = async (path: string, until: string): Promise<string> => {
    const before = client.length;
    client.socket.write(`GET ${path} HTTP/1.1\r\nHost: up.test\r\n\r\n`, 'latin1');
    await eventually(() => client.text().slice(before).includes(until), `the answer to ${path}`);
    return client.text().slice(before);
  };

  // Hop-by-hop fields go, the rest stays byte for byte; nothing goes up until the report.
  assert.equal(await ask('/plain', 'hello'), 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello');
  const id = (await rec.next('open')).id;
  const first = await rec.next('answeredDone', id);
  assert.deepEqual(
    { status: first.status, contentType: first.contentType, bytesFromClient: first.bytesFromClient, bytesToClient: first.bytesToClient },
    { status: 200, contentType: 'text/plain', bytesFromClient: Buffer.byteLength('GET /plain HTTP/1.1\r\nHost: up.test\r\n\r\n'), bytesToClient: Buffer.byteLength('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello') },
  );
  assert.ok(first.headMs >= 0 && first.headMs <= first.tookMs && first.tookMs <= Date.now() - testStart, `head ${first.headMs} ms, took ${first.tookMs} ms`);

  assert.equal(await ask('/chunked', '0\r\n\r\n'), 'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
  assert.equal((await rec.next('answeredDone', id, 2)).status, 201);

  // Not plain (delimited by the close): TypeScript gets the head and frames it.
  assert.match(await ask('/close', '0\r\n\r\n'), /^HTTP\/1\.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nd\r\nuntil the end\r\n0\r\n\r\n$/);
  await rec.next('done', id);
  assert.equal(rec.of('response', id).length, 1, 'only the close-delimited answer came up as a response');

  // Cut short after its head went out: ANSWERED (the status the client saw), then DONE aborted, never a report.
  await ask('/cut', 'only this');
  await rec.next('done', id, 2);
  assert.deepEqual(
    rec.kinds(id).filter((k) => k === 'answered' || k === 'done' || k === 'answeredDone'),
    ['answeredDone', 'answeredDone', 'done', 'answered', 'done'],
  );
  assert.equal(rec.of('answered', id)[0].status, 200);
  assert.equal(rec.of('done', id)[1].outcome, 'aborted');
});
