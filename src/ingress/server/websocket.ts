/**
 * Upgrade requests (WebSocket, h2c...). VPC Lattice does not carry
 * WebSockets, so by default they get 501 with the reason. A route marked
 * `websocket: passthrough` (the routes parser allows it only unsigned and
 * toward an upstream that is not a Lattice service) is passed through: the
 * request head goes upstream with its Upgrade and Connection fields, and
 * once the upstream answers 101 the two sockets are spliced, bytes both
 * ways. Until then nothing more of the client's reaches the upstream (bytes
 * it sent after its head wait): an upstream that does not switch protocols
 * gets no second request past the routing and header rules; its answer goes
 * to the client and the connection ends with it.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import { parseResponseHead, responseFraming, type ResponseHead } from '../../http1';
import { endWithReply } from '../../proxy/server/context';
import { resolveRoute, type ResolvedUpstream, type Route } from '../routes';
import { newAccessEntry, pathWithoutQuery, type IngressAccessEntry } from './access';
import { takeBytes, type ClientConnection, type IngressContext } from './context';
import { routeLabel } from './handle-request';
import { readRequestHead } from './request-head';
import { rawReply, type IngressReply } from './replies';
import { upstreamRequestHeaders } from './upstream-headers';

const LATTICE_NO_WEBSOCKETS =
  'VPC Lattice does not support WebSockets (or other protocol upgrades), so this route cannot carry them. ' +
  'For an upstream that is not a Lattice service, mark its route `sign: false` and `websocket: passthrough`.';

/** The largest upgrade answer head read before the sockets are spliced. */
const MAX_ANSWER_HEAD_BYTES = 16 * 1024;

/** How long a refused upgrade's socket may stay open for the client to read the answer. */
const REFUSAL_LINGER_MS = 2_000;

function upgradeValue(raw: readonly string[]): string {
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i].toLowerCase() === 'upgrade') return raw[i + 1];
  return '';
}

class UpgradeExchange {
  readonly entry: IngressAccessEntry;
  private readonly startedAt = performance.now();
  private upstream: net.Socket | null = null;
  private ended = false;

  constructor(
    private readonly ctx: IngressContext,
    private readonly conn: ClientConnection,
    private readonly req: IncomingMessage,
    private readonly socket: Duplex,
  ) {
    this.entry = newAccessEntry(conn.client, conn.clientPort, req.method ?? 'GET', ctx.tls);
    this.entry.upgrade = true;
  }

  start(head: Buffer): void {
    this.socket.once('close', this.onClose);
    const read = readRequestHead(this.req.url ?? '', this.req.rawHeaders);
    if (!read.ok) return this.refuse({ error: 'bad-request', reason: read.reason });
    const e = this.entry;
    e.host = read.head.host;
    e.path = pathWithoutQuery(read.head.path);
    e.userAgent = read.head.userAgent;
    e.referer = read.head.referer;
    const resolved = resolveRoute(this.ctx.routes(), read.head.host, read.head.path);
    if (!resolved.ok) return this.refuse({ error: resolved.status === 421 ? 'misdirected-request' : 'not-found', reason: resolved.reason });
    e.route = routeLabel(resolved.route);
    e.upstream = resolved.signHost;
    if (resolved.route.websocket !== 'passthrough') return this.refuse({ error: 'websocket-unsupported', reason: LATTICE_NO_WEBSOCKETS });
    const path = resolved.upstream.pathPrefix === undefined ? read.head.path : `${resolved.upstream.pathPrefix}${read.head.path}`;
    const headers = upstreamRequestHeaders(this.req.rawHeaders, read.head, {
      authority: resolved.signHost,
      signature: null,
      stripAuthorization: resolved.route.stripAuthorization,
      client: this.conn.client,
      proto: this.ctx.tls ? 'https' : 'http',
      // An upgrade request has no body: what follows its head is the new protocol's.
      framing: [],
    });
    headers.push('Connection', 'Upgrade', 'Upgrade', upgradeValue(this.req.rawHeaders));
    let text = `${e.method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i + 1 < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    this.connect(resolved.route, resolved.upstream, Buffer.from(`${text}\r\n`, 'latin1'), head);
  }

  private connect(route: Route, to: ResolvedUpstream, requestHead: Buffer, clientAhead: Buffer): void {
    let upstream: net.Socket;
    try {
      upstream = to.tls
        ? tls.connect({
            host: to.host,
            port: to.port,
            rejectUnauthorized: route.tls.verify,
            ...(net.isIP(to.host) === 0 ? { servername: to.host } : {}),
            ...(route.tls.caFile === null ? {} : { ca: readFileSync(route.tls.caFile) }),
          })
        : net.connect({ host: to.host, port: to.port });
    } catch (err) {
      return this.refuse({ error: 'bad-gateway', reason: `the upstream could not be reached: ${(err as Error).message}` });
    }
    this.upstream = upstream;
    const timer = setTimeout(() => upstream.destroy(new Error(`no connection to ${to.host}:${to.port} within ${route.timeoutMs} ms`)), route.timeoutMs);
    upstream.once(to.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      this.entry.upstreamMs = performance.now() - this.startedAt;
      upstream.write(requestHead);
      upstream.once('close', () => this.socket.destroy());
      this.awaitAnswer(upstream, clientAhead);
    });
    upstream.once('error', (err) => {
      clearTimeout(timer);
      if (this.entry.upstreamMs === null) {
        this.refuse({ error: 'bad-gateway', reason: `the upstream could not be reached: ${to.host}:${to.port}: ${err.message}` });
      } else {
        this.socket.destroy();
      }
    });
  }

  /** Reads the upstream's answer head; splices only on 101. */
  private awaitAnswer(upstream: net.Socket, clientAhead: Buffer): void {
    let got: Buffer = Buffer.alloc(0);
    let scanFrom = 0;
    const onData = (chunk: Buffer): void => {
      got = got.length === 0 ? chunk : Buffer.concat([got, chunk]);
      const parsed = parseResponseHead(got, MAX_ANSWER_HEAD_BYTES, scanFrom);
      if (parsed.kind === 'incomplete') {
        scanFrom = parsed.scanFrom;
        return;
      }
      upstream.removeListener('data', onData);
      if (parsed.kind === 'invalid' && parsed.reason === 'head-too-large') {
        upstream.destroy(new Error('the upgrade answer head is too large'));
        return;
      }
      // An answer that is not a well-formed head is no switch either.
      const answer = parsed.kind === 'head' ? parsed : null;
      this.entry.status = answer?.head.statusCode ?? 0;
      if (this.entry.status !== 101) {
        this.relayRefusal(upstream, got, answer);
        return;
      }
      this.socket.write(got);
      if (clientAhead.length > 0) upstream.write(clientAhead);
      // Splice: each side's end ends the other's writing; either closing closes both.
      upstream.pipe(this.socket);
      this.socket.pipe(upstream);
    };
    upstream.on('data', onData);
  }

  /**
   * The upstream did not switch: its answer goes to the client and the
   * connection ends with it (the client's bytes never reach the upstream).
   * An answer with a length (or none) is cut there; one delimited by
   * chunks or by close, or one that did not parse, runs until the upstream closes.
   */
  private relayRefusal(upstream: net.Socket, got: Buffer, answer: { head: ResponseHead; bytes: number } | null): void {
    const framing = answer === null ? null : responseFraming(answer.head, 'GET');
    if (answer === null || framing === null || !framing.ok || framing.framing.kind === 'chunked' || framing.framing.kind === 'close') {
      this.socket.write(got);
      upstream.pipe(this.socket);
      return;
    }
    const total = answer.bytes + (framing.framing.kind === 'length' ? framing.framing.length : 0);
    let sent = Math.min(got.length, total);
    this.socket.write(got.subarray(0, sent));
    const finish = (): void => {
      this.socket.end();
      upstream.destroy();
    };
    if (sent === total) return finish();
    upstream.on('data', (chunk: Buffer) => {
      const take = Math.min(chunk.length, total - sent);
      this.socket.write(chunk.subarray(0, take));
      sent += take;
      if (sent === total) finish();
    });
  }

  private refuse(reply: IngressReply): void {
    const text = rawReply(reply);
    this.entry.error = reply.error;
    this.entry.reason = reply.reason;
    this.entry.status = Number(text.slice(9, 12));
    endWithReply(this.socket as net.Socket, text, REFUSAL_LINGER_MS);
  }

  private readonly onClose = (): void => {
    if (this.ended) return;
    this.ended = true;
    this.upstream?.destroy();
    this.entry.durationMs = Math.round(performance.now() - this.startedAt);
    takeBytes(this.conn, this.entry);
    this.ctx.finished(this.conn, this.entry);
  };
}

/** Node's 'upgrade' event: the socket is detached from HTTP; `head` holds bytes already read after the request head. */
export function handleUpgrade(ctx: IngressContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const conn = ctx.connectionOf(socket);
  if (conn === undefined) {
    socket.destroy();
    return;
  }
  conn.busy++;
  new UpgradeExchange(ctx, conn, req, socket).start(head);
}
