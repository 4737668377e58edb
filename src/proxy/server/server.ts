/**
 * The egress forward proxy's listener: our own net.Server accepts each
 * connection, applies the connection limits, reads the PROXY protocol
 * header when there is one, and only then hands the socket to a node:http
 * Server (which brings keep-alive, head size and head time limits, and the
 * 'connect' event). The HTTP server never listens itself.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../../errors';
import { boundAddresses, canonicalAddress, closeAll, listenAll } from '../../listen';
import type { AccessEntry, ProxyRequestFacts } from '../types';
import { AccessRecord, type ClientIdentity } from './access';
import { endWithReply, takeBytes, type ClientConnection, type ProxyContext, type ProxyCounters } from './context';
import { handleHttpRequest } from './forward-http';
import { checkProxyServerOptions, type CheckedProxyServerOptions, type ProxyDecision, type ProxyServerOptions } from './options';
import { rawReply } from './responses';
import { handleConnect } from './tunnel';
import { UpstreamPool } from '../../http1';
import { checkedAddressDialer, type UpstreamTarget } from './upstream';

/** Largest upstream response head: Node's own default limit for heads it reads. */
const UPSTREAM_MAX_HEAD_BYTES = 16 * 1024;

export interface ProxyServerStats {
  /** Client connections accepted since start. */
  connections: number;
  /** Client connections open now. */
  active: number;
  /** HTTP requests and CONNECTs received. */
  requests: number;
  /** CONNECT tunnels established (200 sent). */
  tunnels: number;
  /** Access entries with decision 'deny' (policy, SSRF, fronting). */
  denied: number;
  /** Access entries with decision 'error' (bad requests, limits, timeouts, upstream failures). */
  errors: number;
  /** Bytes received from and sent to clients. */
  bytesIn: number;
  bytesOut: number;
}

export interface ProxyServer {
  /** The bound addresses (the real port when 0 was asked for). */
  addresses(): { host: string; port: number }[];
  stats(): ProxyServerStats;
  /**
   * Stops accepting, closes idle connections at once, lets requests and
   * tunnels in flight run until `drainMs`, then destroys what is left.
   */
  close(opts: { drainMs: number }): Promise<void>;
}

/** How often Node checks head deadlines: often enough to keep headerTimeoutMs within a quarter of itself. */
function checkingInterval(headerTimeoutMs: number): number {
  return Math.min(1000, Math.max(20, Math.floor(headerTimeoutMs / 4)));
}

const CLIENT_ERROR_REPLIES: Record<string, { status: number; reason: string; text: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'timeout', text: 'the request head did not arrive in time' },
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'header-too-large', text: 'the request head is too large' },
};

/** Peers that vanish are not a protocol error worth an answer or a log line. */
const PEER_GONE = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

class ProxyServerImpl implements ProxyServer, ProxyContext {
  readonly upstreams: UpstreamPool<UpstreamTarget>;
  readonly counters: ProxyCounters = { connections: 0, requests: 0, tunnels: 0, denied: 0, errors: 0 };
  private readonly http: HttpServer;
  private listeners: net.Server[] = [];
  /** Every open client socket; null until its PROXY header is read. */
  private readonly sockets = new Map<net.Socket, ClientConnection | null>();
  private readonly perClient = new Map<string, number>();
  private closedBytesIn = 0;
  private closedBytesOut = 0;
  private closingFlag = false;
  private closePromise: Promise<void> | null = null;
  private onAllClosed: (() => void) | null = null;

  constructor(readonly opts: CheckedProxyServerOptions) {
    this.upstreams = new UpstreamPool(
      { idleTimeoutMs: opts.idleTimeoutMs, connectTimeoutMs: opts.connectTimeoutMs, maxHeadBytes: UPSTREAM_MAX_HEAD_BYTES },
      checkedAddressDialer,
    );
    this.http = createHttpServer({
      maxHeaderSize: opts.maxHeaderBytes,
      headersTimeout: opts.headerTimeoutMs,
      // Bodies may stream for as long as they make progress; idle limits cover the rest.
      requestTimeout: 0,
      keepAliveTimeout: opts.idleTimeoutMs,
      connectionsCheckingInterval: checkingInterval(opts.headerTimeoutMs),
      // Absolute-form requests carry their host in the URL; a missing Host header is not an error here.
      requireHostHeader: false,
    });
    this.http.timeout = 0;
    // Node starts its head-deadline checks and its connection list (which
    // closeIdleConnections uses) on 'listening'. This server never listens
    // itself, so it is told it does.
    this.http.emit('listening');
    // A handler bug must cost one connection, never the process.
    this.http.on('request', (req, res) => handleHttpRequest(this, req, res).catch(() => res.destroy()));
    this.http.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => handleConnect(this, req, socket as net.Socket, head).catch(() => socket.destroy()));
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.onClientError(err, socket as net.Socket));
  }

  get closing(): boolean {
    return this.closingFlag;
  }

  async listen(): Promise<void> {
    this.listeners = await listenAll(this.opts.listen, (socket) => this.onConnection(socket), { allowHalfOpen: true });
  }

  addresses(): { host: string; port: number }[] {
    return boundAddresses(this.listeners);
  }

  stats(): ProxyServerStats {
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    for (const socket of this.sockets.keys()) {
      bytesIn += socket.bytesRead;
      bytesOut += socket.bytesWritten;
    }
    return { ...this.counters, active: this.sockets.size, bytesIn, bytesOut };
  }

  connectionOf(socket: net.Socket): ClientConnection | undefined {
    return this.sockets.get(socket) ?? undefined;
  }

  record(who: ClientIdentity, method: string, url: string): AccessRecord {
    return new AccessRecord((entry) => this.emitAccess(entry), who, method, url);
  }

  decide(facts: ProxyRequestFacts): ProxyDecision | null {
    try {
      return this.opts.decide(facts);
    } catch {
      return null;
    }
  }

  requestDone(conn: ClientConnection): void {
    conn.busy = Math.max(0, conn.busy - 1);
    if (this.closingFlag && conn.busy === 0) this.endGracefully(conn.socket);
  }

  private emitAccess(entry: AccessEntry): void {
    if (entry.decision === 'deny') this.counters.denied++;
    if (entry.decision === 'error') this.counters.errors++;
    try {
      this.opts.onAccess(entry);
    } catch {
      // A failing log sink must not take the proxy down with it.
    }
  }

  private onConnection(socket: net.Socket): void {
    this.counters.connections++;
    // Each user of the socket handles its errors; this keeps a late one from crashing the process.
    socket.on('error', () => undefined);
    if (this.closingFlag) {
      socket.destroy();
      return;
    }
    this.sockets.set(socket, null);
    socket.once('close', () => this.forget(socket));
    const peer: ClientIdentity = { client: canonicalAddress(socket.remoteAddress), clientPort: socket.remotePort ?? 0, endpoint: null };
    if (this.sockets.size > this.opts.maxConnections) {
      // Counted before the PROXY header: the limit protects this process, whoever is asking.
      this.refuse(socket, peer, 503, 'connection-limit', 'the proxy has too many connections; retry later');
      return;
    }
    this.admit(socket, peer).catch(() => socket.destroy());
  }

  private async admit(socket: net.Socket, peer: ClientIdentity): Promise<void> {
    let who = peer;
    if (this.opts.readProxyHeader !== null) {
      try {
        const header = await this.opts.readProxyHeader(socket, { timeoutMs: this.opts.headerTimeoutMs });
        who = header.source === null ? { ...peer, endpoint: header.vpceId } : { client: canonicalAddress(header.source.address), clientPort: header.source.port, endpoint: header.vpceId };
      } catch {
        if (!socket.destroyed) {
          this.record(peer, 'NONE', 'error:proxy-protocol').finish({ decision: 'error', reason: 'proxy-protocol', bytesFromClient: socket.bytesRead });
          socket.destroy();
        }
        return;
      }
      if (socket.destroyed || !this.sockets.has(socket)) return;
    }
    const conn: ClientConnection = { ...who, socket, busy: 0, markRead: 0, markWritten: 0 };
    this.sockets.set(socket, conn);
    const count = (this.perClient.get(conn.client) ?? 0) + 1;
    this.perClient.set(conn.client, count);
    if (count > this.opts.maxConnectionsPerClient) {
      this.refuse(socket, who, 429, 'client-limit', 'too many connections from this client; retry later');
      return;
    }
    if (this.closingFlag) {
      socket.destroy();
      return;
    }
    this.http.emit('connection', socket);
    // The header reader may leave the socket paused with the request's first bytes unshifted.
    if (socket.isPaused()) socket.resume();
  }

  private refuse(socket: net.Socket, who: ClientIdentity, status: 503 | 429, what: string, text: string): void {
    const reply = rawReply({ status, text });
    this.record(who, 'NONE', `error:${what}`).finish({ status, decision: 'error', reason: 'limit', bytesToClient: Buffer.byteLength(reply) });
    endWithReply(socket, reply, this.opts.headerTimeoutMs);
  }

  private forget(socket: net.Socket): void {
    const conn = this.sockets.get(socket);
    this.sockets.delete(socket);
    this.closedBytesIn += socket.bytesRead;
    this.closedBytesOut += socket.bytesWritten;
    if (conn) {
      const left = (this.perClient.get(conn.client) ?? 1) - 1;
      if (left > 0) this.perClient.set(conn.client, left);
      else this.perClient.delete(conn.client);
    }
    if (this.sockets.size === 0) this.onAllClosed?.();
  }

  /** Bad heads, head timeouts, oversized heads: answered (when nothing else is in flight) and closed. */
  private onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    const conn = this.sockets.get(socket);
    if (PEER_GONE.has(err.code ?? '') || conn === undefined || conn === null) {
      socket.destroy();
      return;
    }
    const known = CLIENT_ERROR_REPLIES[err.code ?? ''];
    const reply = known ?? { status: 400, reason: 'bad-request', text: 'the request could not be parsed' };
    const rec = this.record(conn, 'NONE', `error:${reply.reason}`);
    if (conn.busy > 0 || !socket.writable) {
      // A response is already on its way: no second one can be written.
      rec.finish({ decision: 'error', reason: reply.reason, ...takeBytes(conn) });
      socket.destroy();
      return;
    }
    const raw = rawReply({ status: reply.status, text: reply.text });
    endWithReply(socket, raw, this.opts.headerTimeoutMs);
    rec.finish({ status: reply.status, decision: 'error', reason: reply.reason, ...takeBytes(conn) });
  }

  /** Closes a connection once what was written to it is flushed. */
  private endGracefully(socket: net.Socket): void {
    if (socket.destroyed) return;
    socket.once('finish', () => socket.destroy());
    socket.end();
  }

  close(opts: { drainMs: number }): Promise<void> {
    if (this.closePromise !== null) return this.closePromise;
    if (!(Number.isFinite(opts?.drainMs) && opts.drainMs >= 0)) {
      throw new GatehouseError('ERR_INVALID_ARG', `Expected a number of milliseconds >= 0 for drainMs but received ${String(opts?.drainMs)}`);
    }
    this.closingFlag = true;
    const listenersClosed = closeAll(this.listeners);
    for (const [socket, conn] of this.sockets) {
      if (conn === null || conn.busy === 0) socket.destroy();
    }
    const drained = new Promise<void>((resolve) => {
      if (this.sockets.size === 0) resolve();
      else this.onAllClosed = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, opts.drainMs);
    });
    this.closePromise = Promise.race([drained, deadline]).then(async () => {
      clearTimeout(timer);
      for (const socket of this.sockets.keys()) socket.destroy();
      this.http.close(() => undefined); // stops Node's head-deadline checks
      this.upstreams.close();
      await listenersClosed;
    });
    return this.closePromise;
  }
}

/** Starts the egress forward proxy on every `listen` address. */
export async function startProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const server = new ProxyServerImpl(checkProxyServerOptions(options));
  await server.listen();
  return server;
}
